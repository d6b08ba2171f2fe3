"""Forward mode: ∂node/∂input for every node; the output's tangent is the reverse-mode gradient."""
from __future__ import annotations

import re

import numpy as np
import pytest

from gradviz import GradvizError, trace_file
from gradviz.forward import forward_mode, output_tangent
from gradviz.graph import Graph
from gradviz.inputs import inputs

from conftest import SAMPLES, run_cli


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_tangent_equals_gradient_on_every_sample(path, granularity):
    graph = trace_file(path, granularity=granularity)
    for leaf in graph.leaves:
        grad = graph.grad(leaf)
        for x in inputs(graph, leaf):
            forward_mode(graph, x.label)
            np.testing.assert_allclose(output_tangent(graph), grad[x.index], rtol=1e-12, atol=1e-15,
                                       err_msg=x.label)


def test_tangents_by_hand():
    # chain3: h = x·z, g = h², f = g·y at x = 3, y = 2, z = −1.  With respect to x:
    # ∂h/∂x = z = −1;  ∂g/∂x = 2h · ∂h/∂x = 2·(−3)·(−1) = 6;  ∂f/∂x = y · ∂g/∂x = 12
    graph = forward_mode(trace_file(SAMPLES / "chain3.py", granularity="scalar"), "x")
    tangents = {graph.label(n.id): n.tangent for n in graph.nodes}
    assert tangents == {"x": 1.0, "y": 0.0, "z": 0.0, "h": -1.0, "2": None, "g": 6.0, "f": 12.0}  # constants: none


def test_tensor_tangents_through_matmul_and_indexing():
    # dense_relu: Z = X·W + B, out = Σ ReLU(Z).  ∂Z/∂W[2,1] = X[:, 2] in column 1 = [[0, −1], [0, 2]];
    # the ReLU mask [[1, 1], [0, 1]] keeps both, so ∂out/∂W[2,1] = −1 + 2 = 1
    graph = forward_mode(trace_file(SAMPLES / "dense_relu.py", granularity="tensor"), "weights[2,1]")
    matmul = next(n for n in graph.nodes if n.op == "dot")
    np.testing.assert_array_equal(matmul.tangent, [[0.0, -1.0], [0.0, 2.0]])
    assert output_tangent(graph) == 1.0
    # softmax_cce indexes clipped[range(3), y_true]: the tangent of a picked element moves with it
    graph = forward_mode(trace_file(SAMPLES / "softmax_cce.py", granularity="tensor"), "inputs[1,1]")
    assert output_tangent(graph) == pytest.approx(graph.grad("inputs")[1, 1], rel=1e-12)


def test_json_carries_tangents(tmp_path):
    dest = tmp_path / "neuron.json"
    out = run_cli("trace", SAMPLES / "neuron.py", "-g", "tensor", "--mode", "forward", "--wrt", "w[1]",
                  "--format", "json", "-o", dest)
    assert out.returncode == 0, out.stderr
    data = Graph.from_json(dest.read_bytes()).to_dict()
    assert data["wrt"] == "w[1]"
    by_label = {n["label"]: n["tangent"] for n in data["nodes"]}
    # y = max(x·w + b, 0) with x[1] = −2: ∂·/∂w[1] is −2 from the dot product up
    assert by_label == {"x": [0.0, 0.0, 0.0], "w": [0.0, 1.0, 0.0], "b": 0.0, "x@w": -2.0, "z": -2.0, "0": None,
                        "forward": -2.0}
    assert [e["tangent"] for e in data["edges"]] == [0.0, -2.0, -2.0, 0.0, -2.0, None]
    run_cli("trace", SAMPLES / "neuron.py", "--no-table", "--format", "json", "-o", dest)
    plain = Graph.from_json(dest.read_bytes()).to_dict()
    assert "wrt" not in plain and "tangent" not in plain["nodes"][0]  # reverse mode: the schema as before


def test_explain_forward_tables():
    out = run_cli("explain", SAMPLES / "chain.py", "--wrt", "x", "--mode", "forward")
    assert out.returncode == 0, out.stderr
    # z = 3x² = 27, y = 5z = 135: ∂z/∂x = 6x = 18, ∂y/∂x = 5 · 18 = 90
    assert "the output's tangent ∂output/∂x = 90; reverse mode (backward) gives ∂output/∂x = 90" in out.stdout
    rows = {line.split()[0]: line.split()[-1] for line in out.stdout.split("Tangents")[1].splitlines()[2:]
            if line.strip() and not line.startswith("forward mode")}
    assert rows["z"] == "18" and rows["y"] == "90"


def test_forward_mode_needs_one_number():
    graph = trace_file(SAMPLES / "neuron.py", granularity="scalar")
    with pytest.raises(GradvizError, match=r"name one, e.g. --wrt w\[0\]"):
        forward_mode(graph, "w")
    out = run_cli("trace", SAMPLES / "neuron.py", "--mode", "forward")
    assert out.returncode == 2 and "--mode forward needs --wrt NAME" in out.stderr


def test_figure_shows_tangents():
    from gradviz.views.dot import to_dot

    # e = (a+b)·(b+1) at a = 2, b = 1: ∂c/∂b = 1, ∂d/∂b = 1, ∂e/∂b = d·1 + c·1 = 2 + 3 = 5
    graph = forward_mode(trace_file(SAMPLES / "two_paths.py", granularity="scalar"), "b")
    dot = to_dot(graph)
    assert re.search(r"<b>e</b>.*∂e/∂b = 5</font>", dot)
    # each edge into e passes on local × the tangent of its input: d · 1 = 2 and c · 1 = 3
    assert "share = 2 × 1 = 2" in dot and "share = 3 × 1 = 3" in dot
    assert "forward mode: the tangent ∂·/∂b of every node" in dot
    assert "grad =" not in dot and "chain =" not in dot  # tangents only, not reverse mode's numbers beside them
    assert "∂·/∂" not in to_dot(trace_file(SAMPLES / "neuron.py"))  # reverse mode alone: no tangents


def test_saved_forward_graph_keeps_its_tangents():

    graph = forward_mode(trace_file(SAMPLES / "dense_relu.py", granularity="tensor"), "weights[2,1]")
    saved = Graph.from_json(graph.to_json().encode(), "saved.json")
    assert saved.wrt == "weights[2,1]"
    for a, b in zip(graph.nodes + graph.edges, saved.nodes + saved.edges, strict=True):
        assert (a.tangent is None and b.tangent is None) or np.array_equal(a.tangent, b.tangent)
