"""Layer clusters in the figures: boxes named after objects, a layer called in a loop drawn once "× N",
the collapsed view, and --max-nodes fitting a big graph into something Graphviz can lay out."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gradviz import trace_file
from gradviz.views import format as fmt
from gradviz.views.clusters import drawn_count, fit, plan, tail
from gradviz.views.dot import to_dot

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "samples/spiral_mlp.py"

LOOP = '''
import numpy as np


class Layer:
    def __init__(self):
        self.weights = np.array([[0.5, -0.25], [0.75, 0.5]])

    def forward(self, inputs):
        self.output = np.tanh(np.dot(inputs, self.weights))
        return self.output


x = np.array([[1.0, -1.0]])
layer = Layer()


def forward(x):
    for _ in range(3):
        x = layer.forward(x)
    return np.sum(x)
'''


@pytest.fixture(scope="module")
def spiral():
    return trace_file(SPIRAL, granularity="tensor")


@pytest.fixture
def loop(tmp_path):
    path = tmp_path / "loop.py"
    path.write_text(textwrap.dedent(LOOP))
    return trace_file(path, granularity="tensor")


def dot_nodes(dot: str) -> list[str]:
    """The drawn nodes: values (n12), collapsed layers (b0) and grouped leaves (leaf_0); not the legend."""
    return re.findall(r"^\s+((?:n|b|leaf_)\d+) \[", dot, flags=re.M)


def dot_edges(dot: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b in re.findall(r"^\s+(\w+) -> (\w+) \[", dot, flags=re.M) if b != "legend"]


def test_each_layer_is_a_box_named_after_its_object(spiral):
    dot = to_dot(spiral)
    boxes = re.findall(r"subgraph cluster_\d+ \{\n.*label=<<b>(\w+)</b>>;\n((?:    n\d+ .*\n)*)", dot)
    assert [name for name, _ in boxes] == ["dense1", "activation1", "dense2", "activation2", "loss_function"]
    members = {name: [spiral.label(int(i)) for i in re.findall(r"^    n(\d+) ", body, flags=re.M)]
               for name, body in boxes}
    assert members["dense1"] == ["X@dense1.weights", "dense1.output"]
    # the parameters stay outside the boxes, as inputs of the layer
    assert "dense1.weights" not in members["dense1"]


def test_a_layer_called_in_a_loop_is_drawn_once_times_n(loop):
    p = plan(loop)
    assert [(b.name, b.repeat) for b in p.blocks] == [("layer", 3)]
    dot = to_dot(loop)
    assert dot.count("subgraph cluster_") == 1 and "<b>layer</b> × 3" in dot
    # drawn: x, layer.weights, one call (matmul, tanh), the sum; no edge from a call's tanh into the next matmul
    assert len(dot_nodes(dot)) == drawn_count(loop, False) == 5
    matmul, tanh = p.blocks[0].nodes
    assert (f"n{tanh}", f"n{matmul}") not in dot_edges(dot)


def test_collapsed_view_draws_each_layer_as_one_node_with_the_gradients_crossing_it(spiral, loop):
    dot = to_dot(spiral, collapse=True)
    leaves = {name: f"n{spiral.leaves[name]}" for name in spiral.leaves}
    assert sorted(dot_edges(dot)) == sorted([
        (leaves["X"], "b0"), (leaves["dense1.weights"], "b0"), (leaves["dense1.biases"], "b0"), ("b0", "b1"),
        ("b1", "b2"), (leaves["dense2.weights"], "b2"), (leaves["dense2.biases"], "b2"), ("b2", "b3"), ("b3", "b4")])
    assert len(dot_nodes(dot)) == drawn_count(spiral, True) == 10
    # dense2.output feeds softmax's max and its subtraction: the two chains sum to dense2.output's gradient
    out = next(n for n in spiral.nodes if spiral.label(n.id) == "dense2.output")
    assert f"Σ of 2 chains = {fmt.value(out.grad)}" in dot
    # the three calls of the loop's layer send back three chains; their sum is the weights' gradient
    dot = to_dot(loop, collapse=True)
    rows = fmt.value(loop.grad("layer.weights")).split("\n")  # a small matrix: one row per line
    assert f"Σ of 3 chains = {'<br/>'.join(row.strip() for row in rows)}" in dot
    assert "<b>layer</b> × 3" in dot and "first call" not in dot


def test_tail_keeps_the_nodes_nearest_the_output_and_their_inputs(tmp_path):
    path = tmp_path / "chain.py"
    path.write_text("def forward(x=2.0):\n    for _ in range(50):\n        x = x * 0.5 + 1.0\n    return x\n")
    graph = trace_file(path, granularity="scalar")
    sub, left_out = tail(graph, 6)
    assert len(sub.nodes) <= 6 and left_out == len(graph.nodes) - len(sub.nodes)
    # the last step x*0.5 + 1.0, its constants, and the x it reads, drawn without its history as "… x"
    assert [(sub.label(n.id), n.kind) for n in sub.nodes] == [
        ("… x", "op"), ("0.5", "const"), ("x*0.5", "op"), ("1", "const"), ("x", "op")]
    assert sub.nodes[0].grad == 0.5 and not sub.in_edges(0)  # ∂(x·0.5 + 1)/∂x
    np.testing.assert_allclose(sub.output_value, graph.output_value)
    assert [(e.src, e.dst) for e in sub.edges] == [(0, 2), (1, 2), (2, 4), (3, 4)]


def test_fit_says_what_it_did(spiral, tmp_path):
    graph, collapse, note = fit(spiral, 100, False, None)
    assert (graph, collapse, note) == (spiral, False, None)
    graph, collapse, note = fit(spiral, 15, False, None)
    assert collapse and note == ("the figure would have 23 nodes, more than --max-nodes 15: "
                                 "layers drawn collapsed (10 nodes)")
    scalar = trace_file(ROOT / "samples/dense_relu.py", granularity="scalar")
    graph, collapse, note = fit(scalar, 20, False,
                                lambda: trace_file(ROOT / "samples/dense_relu.py", granularity="tensor"))
    assert graph.granularity == "tensor" and note.endswith(f"drawn at tensor granularity ({len(graph.nodes)} nodes)")


def test_cli_max_nodes_draws_a_big_graph_small_with_a_one_line_note(tmp_path):
    out = tmp_path / "chain.dot"
    result = subprocess.run([sys.executable, "-m", "gradviz", "trace", str(ROOT / "bench/models/scalar_chain.py"),
                             "--no-table", "-f", "dot", "-o", str(out), "--max-nodes", "40"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    note = re.fullmatch(r"gradviz: the figure would have 20,001 nodes, more than --max-nodes 40: drawn are the "
                        r"(\d+) nodes nearest the output \(the ([\d,]+) before them are left out\)\n", result.stderr)
    drawn, left_out = note.groups()
    assert int(drawn) <= 40 and int(drawn) + int(left_out.replace(",", "")) == 20_001
    assert len(dot_nodes(out.read_text())) == int(drawn)


def test_collapsed_scalar_graph_draws_a_leaf_array_as_one_input(tmp_path):
    path = tmp_path / "loop.py"
    path.write_text(textwrap.dedent(LOOP).replace("return np.sum(x)", "return np.sum(x) * 2.0"))
    graph = trace_file(path, granularity="scalar")
    dot = to_dot(graph, collapse=True)
    # 4 weights, each in one product per call, 3 calls: 12 chains, summed per weight = its gradient
    grad = graph.grad("layer.weights").ravel()
    assert f"Σ of 12 chains = {fmt.value(grad)}" in dot
    assert "leaf_1 -> b0" in dot and "leaf_0 -> b0" in dot  # x and layer.weights, each one node
    # the constant 2 only feeds the output: its edge carries no label and no gradient
    const = next(n.id for n in graph.nodes if n.kind == "const" and n.cluster is None)
    assert re.search(rf"^  n{const} -> n\d+ \[[^\]]*style=\"dashed\"[^\]]*\];$", dot, flags=re.M)
