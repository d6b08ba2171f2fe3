"""NNFS-style class code: parameters found where the objects keep them, layer clusters, and the spiral
network's gradients checked against finite differences and against the book's hand-written backward pass."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import gradviz
from gradviz import trace_file
from gradviz.errors import ModelError
from gradviz.graph import Graph
from gradviz.loader import load_module

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nnfs_backward import forward_backward  # noqa: E402

SPIRAL = Path(__file__).resolve().parent.parent / "samples" / "spiral_mlp.py"
PARAMS = ["dense1.weights", "dense1.biases", "dense2.weights", "dense2.biases"]


@pytest.fixture(scope="module")
def spiral():
    """(module as plain NumPy, traced graph)."""
    return load_module(SPIRAL), trace_file(SPIRAL, granularity="tensor")


def _hand(module):
    return forward_backward(module.X, module.y, module.dense1.weights, module.dense1.biases,
                            module.dense2.weights, module.dense2.biases)


def test_spiral_data_is_the_books(spiral):
    module, _ = spiral
    assert module.X.shape == (300, 2) and module.X.dtype == np.float64
    assert module.y.dtype.kind == "u" and np.bincount(module.y).tolist() == [100, 100, 100]


def test_parameters_are_found_where_the_layers_keep_them(spiral):
    module, graph = spiral
    # X is forward's parameter; y holds integer class targets, so it stays a constant
    assert list(graph.leaves) == ["X"] + PARAMS
    np.testing.assert_array_equal(graph.leaf_value("dense2.weights"), module.dense2.weights)
    assert graph.grad("dense1.weights").shape == (2, 64)


def test_spiral_loss_and_gradients_match_the_books_backward_pass(spiral):
    module, graph = spiral
    loss, grads = _hand(module)
    # 64 random weights of 0.01 scale: every class is about equally likely, loss ≈ ln 3
    assert abs(loss - np.log(3)) < 1e-3
    np.testing.assert_allclose(graph.output_value, loss, rtol=1e-12)
    for name, expected in grads.items():
        np.testing.assert_allclose(graph.grad(name), expected, rtol=1e-9, atol=1e-15, err_msg=name)


def test_spiral_gradients_match_central_finite_differences(spiral):
    module, graph = spiral
    rng = np.random.default_rng(1)
    h = 1e-6
    for name in PARAMS:
        owner, attr = name.split(".")
        array = getattr(module, owner).__dict__[attr]
        for flat in rng.choice(array.size, size=min(8, array.size), replace=False):
            idx = np.unravel_index(flat, array.shape)
            original = array[idx]
            array[idx] = original + h
            up = module.forward(module.X, module.y)
            array[idx] = original - h
            down = module.forward(module.X, module.y)
            array[idx] = original
            np.testing.assert_allclose(graph.grad(name)[idx], (up - down) / (2 * h), rtol=1e-5, atol=1e-9,
                                       err_msg=f"{name}{list(idx)}")


def test_layers_are_clusters_named_after_their_objects(spiral):
    _, graph = spiral
    by_cluster: dict = {}
    for n in graph.nodes:
        by_cluster.setdefault(graph.cluster_of(n.id), []).append(n.op)
    assert [c for c in by_cluster if c] == [("dense1", 0), ("activation1", 0), ("dense2", 0), ("activation2", 0),
                                           ("loss_function", 0)]
    assert by_cluster[("dense1", 0)] == ["dot", "add"]
    assert [op for op in by_cluster[("activation1", 0)] if op] == ["maximum"]
    # Loss.calculate calling self.forward stays one cluster: clip, pick, log, negate, then the mean
    assert [op for op in by_cluster[("loss_function", 0)] if op] == ["clip", "getitem", "log", "neg", "mean"]
    assert set(by_cluster[None]) == {None}  # only the leaves are outside every layer
    # a value a method stores on its object is named by where it lives
    assert "dense1.output" in [graph.label(n.id) for n in graph.nodes]
    nodes = Graph.from_json(graph.to_json()).to_dict()["nodes"]
    assert [(n["label"], n["cluster"], n["call"]) for n in nodes if n["label"] == "dense1.output"] == [
        ("dense1.output", "dense1", 0)]
    assert nodes[0]["cluster"] is None and nodes[0]["call"] is None


def test_params_narrows_and_const_pins():
    graph = trace_file(SPIRAL, granularity="tensor", params=["dense*.weights"], consts=("X",))
    assert list(graph.leaves) == ["dense1.weights", "dense2.weights"]
    _, grads = _hand(load_module(SPIRAL))
    np.testing.assert_allclose(graph.grad("dense2.weights"), grads["dense2.weights"], rtol=1e-9)
    graph = trace_file(SPIRAL, granularity="tensor", consts=("dense1.biases",))
    assert list(graph.leaves) == ["X", "dense1.weights", "dense2.weights", "dense2.biases"]


def test_params_and_const_that_match_nothing_are_errors():
    with pytest.raises(ModelError, match=r"--params conv\*: matches nothing .* dense1\.weights"):
        trace_file(SPIRAL, params=["conv*"])
    with pytest.raises(ModelError, match="--const W9: no such leaf"):
        trace_file(SPIRAL, consts=("W9",))


class Scale:
    def __init__(self, k: float) -> None:
        self.k = np.array([k])
        self.unused = np.array([1.0, 2.0])
        self.step = 3  # an int: not a parameter unless --params asks for it

    def forward(self, inputs):
        self.output = inputs * self.k * self.step
        return self.output


layer = Scale(2.0)
blocks = [Scale(0.5), Scale(4.0)]
offset = np.array([1.0])
unused_global = np.array([5.0])


def _three_calls(x):
    for _ in range(3):
        x = layer.forward(x)
    return np.sum(x) + offset[0]


def test_state_found_in_globals_lists_and_objects_and_restored_after():
    graph = gradviz.trace(_three_calls, granularity="tensor", x=np.array([1.0, 2.0]))
    # out = Σ x·(3k)³ + offset; only what takes part is a leaf
    assert list(graph.leaves) == ["x", "layer.k", "offset"]
    k = 2.0
    np.testing.assert_allclose(graph.output_value, 3 * (3 * k) ** 3 + 1)
    np.testing.assert_allclose(graph.grad("x"), [(3 * k) ** 3] * 2)
    np.testing.assert_allclose(graph.grad("layer.k"), [3 * 3 * 27 * k ** 2])  # Σx · 27 · 3k²
    np.testing.assert_allclose(graph.grad("offset"), [1.0])
    # the same layer called three times: three calls of one cluster
    assert sorted({graph.cluster_of(n.id) for n in graph.nodes} - {None}) == [("layer", 0), ("layer", 1), ("layer", 2)]
    # the objects are left as they were: original arrays back, no traced value stored on them
    assert type(layer.k) is np.ndarray and not hasattr(layer, "output")
    assert type(offset) is np.ndarray


def _blocks(x):
    return np.sum(blocks[1].forward(blocks[0].forward(x)))


def test_objects_in_a_global_list_are_named_by_index_and_params_widens():
    graph = gradviz.trace(_blocks, granularity="tensor", x=np.array([1.0]))
    assert list(graph.leaves) == ["x", "blocks[0].k", "blocks[1].k"]
    graph = gradviz.trace(_blocks, granularity="tensor", params=["blocks[[]1].*"], x=np.array([1.0]))
    # widened to the int `step`: out = x·0.5·3 · 4·step, ∂out/∂step = x·1.5·4 = 6
    assert list(graph.leaves) == ["x", "blocks[1].k", "blocks[1].step"]
    np.testing.assert_allclose(graph.grad("blocks[1].step"), 6.0)
    assert blocks[1].step == 3 and type(blocks[1].step) is int


def _fails(x):
    layer.forward(x)
    raise ValueError("boom")


def test_state_is_restored_when_the_model_fails():
    with pytest.raises(ModelError, match="boom"):
        gradviz.trace(_fails, x=np.array([1.0]))
    assert type(layer.k) is np.ndarray and not hasattr(layer, "output")


def _made_inside(x):
    first, second = Scale(2.0), Scale(0.5)
    return np.sum(second.forward(first.forward(x)))


def test_objects_made_inside_the_function_are_named_by_the_variable_holding_them():
    graph = gradviz.trace(_made_inside, granularity="tensor", x=np.array([1.0, 2.0]))
    # constructors are not clusters: each object's one call is its call 0
    clusters = [graph.cluster_of(n.id) for n in graph.nodes if n.kind == "op"]
    assert clusters == [("first", 0), ("first", 0), ("second", 0), ("second", 0), None]
    np.testing.assert_allclose(graph.grad("x"), [2.0 * 3 * 0.5 * 3] * 2)  # x·k·step twice
