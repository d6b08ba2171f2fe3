"""gradviz explain: the chain rule as a sum over paths, each a product of local partials."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from gradviz import trace_file
from gradviz.inputs import inputs
from gradviz.paths import explain
from gradviz.views.explain import explain_text

from conftest import SAMPLES, run_cli

DIAMOND = SAMPLES / "two_paths.py"  # e = (a + b)·(b + 1) at a = 2, b = 1

# 25 diamonds in a row: each doubles the number of paths, so 2^25 = 33,554,432 paths lead from the output
# down to x; every path's product is 0.5^25 and ∂out/∂x = 2^25 · 0.5^25 = 1.
DIAMONDS = """
    \"\"\"A chain of 25 diamonds.\"\"\"
    x = 1.0

    def forward(x):
        for _ in range(25):
            left = 0.5 * x
            right = 0.5 * x
            x = left + right
        return x
"""


def _explain(path, wrt):
    graph = trace_file(path, granularity="scalar")
    return graph, explain(graph, inputs(graph, wrt)[0])


def test_two_paths_of_e_to_b(model):
    # e = c·d with c = a + b = 3, d = b + 1 = 2.  Path e→c→b: ∂e/∂c · ∂c/∂b = d · 1 = 2;
    # path e→d→b: ∂e/∂d · ∂d/∂b = c · 1 = 3;  ∂e/∂b = 2 + 3 = 5
    graph, ex = _explain(DIAMOND, "b")
    paths = list(ex.paths)
    assert ex.n_paths == 2 and ex.total == 5.0
    assert [[graph.label(i) for i in p.nodes] for p in paths] == [["e", "c", "b"], ["e", "d", "b"]]
    assert [p.locals for p in paths] == [[2.0, 1.0], [3.0, 1.0]]
    assert [p.product for p in paths] == [2.0, 3.0]


def test_explain_cli_text_json_latex(model):
    path = DIAMOND
    text = run_cli("explain", path, "--wrt", "b")
    assert text.returncode == 0, text.stderr
    assert "∂e/∂c · ∂c/∂b = 2 · 1 = 2" in text.stdout
    assert "∂e/∂d · ∂d/∂b = 3 · 1 = 3" in text.stdout
    assert "∂e/∂b = 2 + 3 = 5" in text.stdout

    data = json.loads(run_cli("explain", path, "--wrt", "b", "--format", "json").stdout)
    assert data == {"wrt": "b", "total": 5.0, "n_paths": 2, "paths": [
        {"labels": ["e", "c", "b"], "locals": [2.0, 1.0], "product": 2.0},
        {"labels": ["e", "d", "b"], "locals": [3.0, 1.0], "product": 3.0}]}

    latex = run_cli("explain", path, "--wrt", "b", "--latex").stdout
    assert latex.startswith("\\begin{align*}") and latex.rstrip().endswith("\\end{align*}")
    assert r"\frac{\partial e}{\partial c}\,\frac{\partial c}{\partial b} && = 2 \cdot 1 = 2" in latex
    assert r"&= 5 && \text{(sum over 2 paths)}" in latex


def test_neuron_weight_reads_like_the_notes():
    # y = max(z, 0), z = Σ x[i]·w[i] + b = 6 > 0:  ∂y/∂w[0] = 1 · 1 · x[0] = 1
    out = run_cli("explain", SAMPLES / "neuron.py", "--wrt", "w[0]")
    assert out.returncode == 0, out.stderr
    assert "∂forward/∂w[0] = ∂forward/∂z · ∂z/∂(x[0]*w[0]) · ∂(x[0]*w[0])/∂w[0] = 1 · 1 · 1 = 1" in out.stdout
    # each factor beside its rule, with the graph's names, then its number
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert lines[1:4] == ["∂forward/∂z = 1 if z > 0 else 0 = 1", "∂z/∂(x[0]*w[0]) = 1", "∂(x[0]*w[0])/∂w[0] = x[0] = 1"]


def test_a_path_of_one_edge_is_its_rule():
    out = run_cli("explain", SAMPLES / "product.py", "--wrt", "x")  # x·y at y = 3: ∂(x·y)/∂x = y = 3
    assert out.stdout.splitlines()[0] == "∂forward/∂x = y = 3"


def test_array_leaf_explains_every_element_in_json():
    data = json.loads(run_cli("explain", SAMPLES / "neuron.py", "--wrt", "w", "--format", "json").stdout)
    # ∂y/∂w = x = [1, -2, 3], one path each: 1 · 1 · x[i]
    assert [(d["wrt"], d["total"], d["n_paths"]) for d in data] == [("w[0]", 1.0, 1), ("w[1]", -2.0, 1),
                                                                     ("w[2]", 3.0, 1)]
    assert [d["paths"][0]["locals"] for d in data] == [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, 1.0, 3.0]]


def test_a_square_is_two_paths(model):
    # y = x·x: the product has two edges from x, so two paths, each with local x = 3; ∂y/∂x = 3 + 3 = 6
    graph, ex = _explain(model("""
        \"\"\"x times itself\"\"\"
        x = 3.0
        def forward(x):
            return x * x
    """), "x")
    paths = list(ex.paths)
    assert ex.n_paths == 2 and [p.product for p in paths] == [3.0, 3.0] and ex.total == 6.0
    # each path takes its own edge, so each is written out with its rule (both read "x = 3")
    assert [p.edges[0].arg for p in paths] == [0, 1]
    text = str(explain_text(graph, explain(graph, inputs(graph, "x")[0]), 20))
    assert text.count("∂forward/∂x = x = 3") == 2


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_sum_over_all_paths_is_the_gradient(path):
    graph = trace_file(path, granularity="scalar")
    for leaf in graph.leaves:
        grad = graph.grad(leaf)
        for x in inputs(graph, leaf):
            ex = explain(graph, x)
            products = [p.product for p in ex.paths]
            assert len(products) == ex.n_paths
            np.testing.assert_allclose(sum(products), grad[x.index], rtol=1e-12, atol=1e-15, err_msg=x.label)


def test_millions_of_paths_are_counted_not_listed(model):
    graph, ex = _explain(model(DIAMONDS), "x")
    assert ex.n_paths == 2**25
    first = list(itertools.islice(ex.paths, 20))
    assert len(first) == 20
    assert all(len(p.locals) == 50 and p.product == 0.5**25 for p in first)
    assert len({tuple(p.nodes) for p in first}) == 20  # twenty different paths
    assert ex.total == 1.0

    data = json.loads(run_cli("explain", model(DIAMONDS), "--wrt", "x", "--format", "json").stdout)
    assert data["n_paths"] == 2**25 and len(data["paths"]) == 20 and data["total"] == 1.0
    text = run_cli("explain", model(DIAMONDS), "--wrt", "x", "--max-paths", "3").stdout
    assert f"{2**25 - 3} more paths" in text


def test_explain_errors_are_one_line(model):
    path = DIAMOND
    for wrt, expected in [("q", "no leaf named 'q'"), ("b[0]", "b has shape [], so no element b[0]"),
                          ("b[", "expected a leaf name")]:
        out = run_cli("explain", path, "--wrt", wrt)
        assert out.returncode == 2 and expected in out.stderr and len(out.stderr.strip().splitlines()) == 1
