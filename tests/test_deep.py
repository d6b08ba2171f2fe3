"""Graphs far deeper than Python's recursion limit trace, differentiate, label and export to JSON."""
from __future__ import annotations

import functools
import sys

import numpy as np
import pytest

from gradviz import trace
from gradviz.graph import Graph

DEPTH = 5 * sys.getrecursionlimit()  # any recursion over the graph would fail long before this


def test_unnamed_chain_of_products_deeper_than_the_recursion_limit():
    # x·x·…·x (n factors), built by functools.reduce so no intermediate is ever bound to a name:
    # every label is an expression over its inputs' labels. d(xⁿ)/dx = n·xⁿ⁻¹.
    n, x = DEPTH, 1.0 + 1e-4
    graph = trace(lambda x: functools.reduce(np.multiply, [x] * n), granularity="scalar", x=x)

    assert len(graph.nodes) == n  # the leaf and n − 1 products
    np.testing.assert_allclose(graph.output_value, x ** n, rtol=1e-9)
    np.testing.assert_allclose(graph.grad("x"), n * x ** (n - 1), rtol=1e-9)
    data = Graph.from_json(graph.to_json()).to_dict()
    assert len(data["nodes"]) == n and len(data["edges"]) == 2 * (n - 1)
    assert data["nodes"][-1]["label"] == "(…*x)*x"  # a label looks two levels down, however deep the graph


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_tanh_chain_matches_the_product_of_its_local_derivatives(granularity):
    n = DEPTH

    def forward(x):
        for _ in range(n):
            x = np.tanh(x)
        return x

    graph = trace(forward, granularity=granularity, x=0.5)
    values = [0.5]
    for _ in range(n):
        values.append(np.tanh(values[-1]))
    expected = np.prod([1.0 - v * v for v in values[1:]])  # d tanh(u)/du = 1 − tanh²(u), chained

    np.testing.assert_allclose(graph.output_value, values[-1], rtol=1e-12)
    np.testing.assert_allclose(graph.grad("x"), expected, rtol=1e-9)
    assert all(node.name == "x" for node in graph.nodes[1:])  # each step was bound to x


def test_builtin_sum_of_many_scalars_is_one_n_ary_node():
    n = 10_000
    w = np.linspace(-1.0, 1.0, n)

    def forward(x):
        return sum(x[i] * w[i] for i in range(n))

    graph = trace(forward, granularity="scalar", x=np.ones(n))
    out = int(graph.output)
    assert graph.nodes[out].op == "sum" and len(graph.in_edges(out)) == n
    np.testing.assert_allclose(graph.output_value, w.sum(), atol=1e-9)
    np.testing.assert_array_equal(graph.grad("x"), w)  # ∂(Σ xᵢwᵢ)/∂xᵢ = wᵢ
