"""Graph.from_json: a saved graph reads back as the same graph (property tests), and any label survives
escaping into JSON, DOT and SVG."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradviz
from gradviz.graph import Graph, SavedGraphError
from gradviz.views.dot import to_dot
from gradviz.views.render import render
from test_trace import build, programs

SVG = "{http://www.w3.org/2000/svg}"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def svg_texts(data: bytes) -> list[str]:
    return sorted("".join(t.itertext()) for t in ET.fromstring(data).iter(f"{SVG}text"))


@pytest.fixture
def embedded(monkeypatch):
    """The renderer every machine has (pip's graphviz-pure), so these tests need no system Graphviz."""
    monkeypatch.setenv("GRADVIZ_RENDERER", "embedded")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from(["scalar", "tensor"]), st.sampled_from([None, 0.5]))
def test_saved_graph_reads_back_as_the_same_graph(program, granularity, seed):
    leaves, steps = program
    g = gradviz.trace(build(steps), granularity=granularity, seed_grad=seed, a=leaves[0], b=leaves[1], c=leaves[2])
    text = g.to_json()
    back = Graph.from_json(text, "g.json")
    assert back.to_dict() == g.to_dict()
    assert back.to_json() == text
    for name in "abc":
        np.testing.assert_array_equal(back.grad(name), g.grad(name))
        np.testing.assert_array_equal(back.leaf_value(name), g.leaf_value(name))
    assert back.warnings() == g.warnings()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs(), st.sampled_from(["scalar", "tensor"]))
def test_saved_graph_draws_the_same_figure(embedded, program, granularity):
    leaves, steps = program
    g = gradviz.trace(build(steps), granularity=granularity, a=leaves[0], b=leaves[1], c=leaves[2])
    back = Graph.from_json(g.to_json())
    assert to_dot(back) == to_dot(g)
    assert to_dot(back, "TB", "a") == to_dot(g, "TB", "a")


labels = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


def neuron_dict() -> dict:
    return gradviz.trace(lambda x, w, b: max(x * w + b, 0.0), granularity="scalar", x=2.0, w=-1.5, b=4.0).to_dict()


@settings(max_examples=200, deadline=None)
@given(labels, labels)
def test_any_label_survives_json(leaf_label, rule):
    d = neuron_dict()
    d["nodes"][0]["label"] = leaf_label
    d["edges"][0]["rule"] = rule
    back = Graph.from_json(json.dumps(d))
    assert back.label(0) == leaf_label and back.rule(back.edges[0]) == rule
    assert json.loads(back.to_json()) == d


# what str.isprintable() accepts: other characters are spelled out (\x1b) in every view, tested below
printable_labels = st.text(st.characters(codec="utf-8", include_characters=" ",
                                         exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")),
                           min_size=1, max_size=30).filter(lambda s: s.strip() == s and "  " not in s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(printable_labels, st.sampled_from(['<b>&"q"</b>', "{a|b}", "[bold]x[/bold]", "a\\nb", "</text>",
                                                    "]]>", "<!--", "&amp;", "\\\"", "'"])))
def test_any_label_shows_literally_in_the_svg(embedded, label):
    d = neuron_dict()
    d["nodes"][0]["label"] = label
    svg, _ = render(to_dot(Graph.from_json(json.dumps(d))), "svg")
    texts = svg_texts(svg)  # parses as XML
    assert label in texts


def test_control_characters_are_spelled_out_in_the_svg(embedded):
    d = neuron_dict()
    d["nodes"][0]["label"] = "a\nb\x00c\x1b[31md\x7f\u202eevil"
    svg, _ = render(to_dot(Graph.from_json(json.dumps(d))), "svg")
    assert "a b\\x00c\\x1b[31md\\x7f\\u202eevil" in svg_texts(svg)


def test_nan_and_inf_read_back_as_numbers():
    g = gradviz.trace(lambda x: np.log(x) * 2.0, granularity="tensor", x=np.array([0.0, -1.0, 1.0]))
    back = Graph.from_json(g.to_json())
    np.testing.assert_array_equal(back.output_value, [-np.inf, np.nan, 0.0])  # 2·log x
    np.testing.assert_array_equal(back.grad("x"), [np.inf, -2.0, 2.0])  # 2/x, the rule, even where log x is nan
    assert back.warnings() == g.warnings()


def test_scalar_leaves_regroup_into_arrays():
    g = gradviz.trace_file(SAMPLES / "dense_relu.py", granularity="scalar")
    back = Graph.from_json(g.to_json())
    assert list(back.leaves) == list(g.leaves)
    for name in g.leaves:
        assert back.grad(name).shape == g.grad(name).shape
        np.testing.assert_array_equal(back.grad(name), g.grad(name))


def test_a_graph_of_another_kind_is_refused():
    with pytest.raises(SavedGraphError, match=r"^g.json: not a gradviz graph \(schema None"):
        Graph.from_json('{"nodes": []}', "g.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(["n0", "n1", "n5", "nan", "inf", "leaf", "op", "const", "add", "mul", "scalar", "tensor"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@st.composite
def tampered(draw):
    """A saved graph with one field somewhere replaced by arbitrary JSON, or removed."""
    d = draw(st.sampled_from([neuron_dict, tensor_dict]))()
    where = draw(st.sampled_from(["top", "nodes", "edges"]))
    if where == "top":
        target = d
    else:
        target = d[where][draw(st.integers(0, len(d[where]) - 1))]
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        target[key] = draw(json_values)
    else:
        del target[key]
    return d


def tensor_dict() -> dict:
    return gradviz.trace(lambda x, w: np.maximum(x @ w, 0.0).sum(), granularity="tensor",
                         x=np.array([[1.0, -2.0], [0.5, 3.0]]), w=np.array([1.0, -1.0])).to_dict()


@settings(max_examples=300, deadline=None)
@given(tampered())
def test_a_tampered_graph_is_refused_in_one_line_or_shown(d):
    """Whatever a stranger's JSON holds, reading and showing it ends in a SavedGraphError or a drawing."""
    from rich.console import Console
    from gradviz.views.mermaid import to_mermaid
    from gradviz.views.table import print_tables

    try:
        g = Graph.from_dict(d, "g.json")
    except SavedGraphError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("g.json")
        return
    to_dot(g)
    to_mermaid(g, "LR", None)
    print_tables(g, Console(file=open("/dev/null", "w"), width=100))
    g.warnings()
    assert Graph.from_json(g.to_json()).to_dict() == g.to_dict()


def test_a_network_reads_back_with_its_layers():
    g = gradviz.trace_file(SAMPLES / "spiral_mlp.py", granularity="tensor")
    back = Graph.from_json(g.to_json())
    assert back.clusters == g.clusters and back.clusters[0] == ("dense1", 0)
    assert [back.cluster_of(n.id) for n in back.nodes] == [g.cluster_of(n.id) for n in g.nodes]
    assert to_dot(back, collapse=True) == to_dot(g, collapse=True)
    np.testing.assert_array_equal(back.grad("dense1.weights"), g.grad("dense1.weights"))
