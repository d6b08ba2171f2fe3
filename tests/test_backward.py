"""Reverse mode: every edge's chain is upstream × local, a node's grad is the sum over its outgoing edges,
the numbers are reproducible, and depth is no limit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradviz
from gradviz.backward import backward
from gradviz.ops import OPS, unbroadcast

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples").glob("*.py"))


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_chain_is_upstream_times_local_and_grads_sum_outgoing_chains(sample, granularity):
    g = gradviz.trace_file(sample, granularity=granularity)
    outgoing = {n.id: [] for n in g.nodes}
    for e in g.edges:
        assert np.array_equal(e.upstream, g.nodes[e.dst].grad)
        if g.nodes[e.src].kind == "const":
            assert e.local is None and e.chain is None
            continue
        outgoing[e.src].append(e.chain)
        if e.local is None:  # unmaterialised Jacobian: chain is the VJP, shaped like the input
            assert np.shape(e.chain) == g.nodes[e.src].shape
            continue
        op = OPS[g.nodes[e.dst].op]
        if granularity == "scalar":
            assert e.chain == e.upstream * e.local
        elif op.kind.name in ("contraction", "opaque"):
            # a scalar result: its local Jacobian is the gradient, shaped like the input
            np.testing.assert_array_equal(e.chain, e.upstream * e.local)
        elif op.kind.name == "elementwise":
            np.testing.assert_array_equal(e.chain, unbroadcast(e.upstream * e.local, g.nodes[e.src].shape))
        else:
            keep = np.reshape(e.upstream, g.nodes[e.dst].ctx[1]["keep_shape"])
            np.testing.assert_array_equal(e.chain, keep * e.local)
    output = set(g.output_ids())
    for n in g.nodes:
        if n.id in output or n.kind == "const":
            continue
        expected = sum(outgoing[n.id], np.zeros(n.shape)) if outgoing[n.id] else np.zeros(n.shape)
        np.testing.assert_allclose(n.grad, expected, rtol=1e-12, atol=1e-15)


def test_x_times_x_gives_two_edges_each_with_local_x():
    g = gradviz.trace(lambda x: x * x, granularity="scalar", x=3.0)
    (mul,) = [n for n in g.nodes if n.op == "mul"]
    edges = g.in_edges(mul.id)
    assert [(e.arg, e.local, e.chain) for e in edges] == [(0, 3.0, 3.0), (1, 3.0, 3.0)]
    assert g.grad("x") == 6.0


def test_relu_local_read_after_backward_is_a_float_mask_and_the_constant_has_none():
    # backward multiplies by the mask z > 0 as computed (bool); the graph's local is computed when read: floats
    g = gradviz.trace(lambda z: np.sum(np.maximum(0, z) * np.array([1.0, 2.0, 3.0])), granularity="tensor",
                      z=[-1.0, 0.5, 2.0])
    (relu,) = [n for n in g.nodes if n.op == "maximum"]
    zero_edge, z_edge = g.in_edges(relu.id)
    assert zero_edge.local is None and zero_edge.chain is None
    assert z_edge.local.dtype == np.float64 and z_edge.local.tolist() == [0.0, 1.0, 1.0]
    assert z_edge.upstream.tolist() == [1.0, 2.0, 3.0] and z_edge.chain.tolist() == [0.0, 2.0, 3.0]
    assert g.grad("z").tolist() == [0.0, 2.0, 3.0]


def test_backward_twice_gives_the_same_numbers():
    g = gradviz.trace_file(SAMPLES[0].parent / "neuron.py", granularity="scalar")
    first = g.to_dict()
    backward(g)
    assert g.to_dict() == first


def test_seed_gradient_scales_every_gradient():
    g = gradviz.trace_file(SAMPLES[0].parent / "neuron.py", granularity="tensor", seed_grad=2.5)
    np.testing.assert_array_equal(g.grad("x"), 2.5 * np.array([-3.0, -1.0, 2.0]))


def test_array_output_seeds_ones_per_element():
    def f(x, w):
        return x * w

    for granularity in ("scalar", "tensor"):
        g = gradviz.trace(f, granularity=granularity, x=[1.0, 2.0], w=[3.0, 4.0])
        np.testing.assert_array_equal(g.grad("x"), [3.0, 4.0])
        g = gradviz.trace(f, granularity=granularity, seed_grad=[1.0, -1.0], x=[1.0, 2.0], w=[3.0, 4.0])
        np.testing.assert_array_equal(g.grad("w"), [1.0, -2.0])


def test_a_chain_of_a_million_operations_traces_and_differentiates():
    def chain(x):
        for _ in range(500_000):
            x = x * 1.0000001
            x = x + 0.5
        return x

    g = gradviz.trace(chain, granularity="tensor", x=1.0)
    assert len(g.edges) >= 1_000_000
    # d/dx of x ↦ (x·c + 0.5) repeated n times is c**n
    assert g.grad("x") == pytest.approx(1.0000001 ** 500_000, rel=1e-9)
