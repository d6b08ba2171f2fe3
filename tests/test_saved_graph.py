"""Graph.from_json: a saved graph reads back as the same graph (property tests), and any label survives
escaping into JSON, DOT and SVG."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gradviz
from gradviz.forward import forward_mode
from gradviz.graph import Graph, SavedGraphError, _SavedGraph
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


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
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
    assert Graph.from_json(back.to_json()).to_dict() == d


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
    _refused_in_one_line_or_shown(lambda: Graph.from_dict(d, "g.json"))


def _refused_in_one_line_or_shown(read) -> None:
    from rich.console import Console

    from gradviz.views.mermaid import to_mermaid
    from gradviz.views.table import print_tables

    try:
        g = read()
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


# -- schema @2 (what to_json writes) against @1 (what earlier versions wrote) ---------------------------

@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.py")))
@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_a_sample_saved_as_v1_and_as_v2_reads_back_as_the_same_graph(sample, granularity):
    g = gradviz.trace_file(SAMPLES / sample, granularity=granularity)
    v1, v2 = json.dumps(g.to_dict()), g.to_json()
    assert json.loads(v1)["schema"] == "gradviz/graph@1" and json.loads(v2)["schema"] == "gradviz/graph@2"
    a, b = Graph.from_json(v1, "g1.json"), Graph.from_json(v2, "g2.json")
    assert a.to_dict() == b.to_dict() == g.to_dict()
    assert a.to_json() == b.to_json() == v2
    assert a.clusters == b.clusters == g.clusters and a.leaves.keys() == b.leaves.keys() == g.leaves.keys()
    for name in g.leaves:
        np.testing.assert_array_equal(b.grad(name), g.grad(name))


def test_v2_states_each_rule_once_and_numbers_nodes():
    g = gradviz.trace(lambda x, w: np.sum(x * w), granularity="scalar", x=np.ones(50), w=np.ones(50))
    d = json.loads(g.to_json())
    assert d["rules"] == ["∂(x·y)/∂x = y", "∂(x·y)/∂y = x", "∂(Σᵢ xᵢ)/∂xᵢ = 1"]
    assert len(d["edges"]) == 150 and [e[0] for e in d["edges"][:2]] == [0, 1] and d["edges"][-1][0] == 2
    assert d["output"] == 150 and d["nodes"][150][2] == "sum"
    assert [e[1:3] for e in d["edges"][:2]] == [[0, 100], [50, 100]]  # x[0]·w[0], the first product: node 100


def v2_neuron() -> dict:
    return json.loads(gradviz.trace(lambda x, w, b: max(x * w + b, 0.0), granularity="scalar",
                                    x=2.0, w=-1.5, b=4.0).to_json())


def changed(change) -> str:
    d = v2_neuron()
    change(d)
    return json.dumps(d)


@pytest.mark.parametrize("text, message", [
    (changed(lambda d: d["nodes"][1].__setitem__(4, "1e3")),
     "g.json: nodes[1].value: expected a number or a rectangular list of numbers"),
    (changed(lambda d: d["nodes"][1].__setitem__(3, [2])), "g.json: nodes[1].value: shape [] does not match the "
                                                          "node's shape [2]"),
    (changed(lambda d: d["nodes"][1].__setitem__(0, "evil")),
     "g.json: nodes[1].kind: expected 'leaf', 'const' or 'op', not 'evil'"),
    (changed(lambda d: d["nodes"][2].pop()), "g.json: nodes[2]: expected a list of 8 fields: kind, label, op, shape, "
                                             "value, grad, nondiff, cluster"),
    (changed(lambda d: d["nodes"][3].__setitem__(5, None)), "g.json: nodes[3].grad: missing"),
    (changed(lambda d: d["nodes"][3].__setitem__(7, 0)),
     "g.json: nodes[3].cluster: expected an index into clusters, not 0"),
    (changed(lambda d: d["edges"][1].__setitem__(1, 99)), "g.json: edges[1]: no node 99"),
    (changed(lambda d: d["edges"][1].__setitem__(2, 2**63)), "g.json: edges[1]: no node 9223372036854775808"),
    (changed(lambda d: d["edges"][1].__setitem__(1, d["edges"][1][2])),
     "g.json: edges[1]: edges must run from an earlier node to a later one, grouped by their dst in node order, "
     "as gradviz writes them"),
    (changed(lambda d: d["edges"][0].__setitem__(0, 7)), "g.json: edges[0].rule: expected an index into rules, not 7"),
    (changed(lambda d: d["edges"][0].__setitem__(5, True)),
     "g.json: edges[0].chain: expected a number or a rectangular list of numbers"),
    (changed(lambda d: d.update(node_fields=["label"])), "g.json: node_fields: expected ['kind', 'label', 'op', "
                                                         "'shape', 'value', 'grad', 'nondiff', 'cluster']"),
    (changed(lambda d: d.update(output=77)), "g.json: output: no node 77"),
    (changed(lambda d: d.update(rules=[1])), "g.json: rules[0]: unexpected int 1"),
])
def test_a_malformed_v2_graph_is_refused_naming_the_field(text, message):
    with pytest.raises(SavedGraphError) as info:
        Graph.from_json(text, "g.json")
    assert str(info.value) == message


@st.composite
def tampered_v2(draw):
    """A graph saved as @2 with one field somewhere replaced by arbitrary JSON, or removed."""
    d = json.loads(draw(st.sampled_from([
        lambda: gradviz.trace(lambda x, w, b: max(x * w + b, 0.0), granularity="scalar", x=2.0, w=-1.5, b=4.0),
        lambda: gradviz.trace(lambda x, w: np.maximum(x @ w, 0.0).sum(), granularity="tensor",
                              x=np.array([[1.0, -2.0], [0.5, 3.0]]), w=np.array([1.0, -1.0]))]))().to_json())
    where = draw(st.sampled_from(["top", "nodes", "edges"]))
    if where == "top":
        key = draw(st.sampled_from(sorted(d)))
        if draw(st.booleans()):
            d[key] = draw(json_values)
        else:
            del d[key]
        return d
    row = d[where][draw(st.integers(0, len(d[where]) - 1))]
    i = draw(st.integers(0, len(row) - 1))
    if draw(st.booleans()):
        row[i] = draw(json_values)
    else:
        del row[i]
    return d


@settings(max_examples=300, deadline=None)
@given(tampered_v2())
def test_a_tampered_v2_graph_is_refused_in_one_line_or_shown(d):
    _refused_in_one_line_or_shown(lambda: Graph.from_json(json.dumps(d), "g.json"))


def test_a_tensor_graph_whose_output_is_a_list_is_refused():
    """One node holds a tensor graph's output: a list of ids (a scalar graph's array output) cannot be drawn."""
    v1 = tensor_dict()
    v1["output"] = ["n0"]
    v2 = json.loads(Graph.from_dict(tensor_dict()).to_json())
    v2["output"] = [0]
    for d in (v1, v2):
        with pytest.raises(SavedGraphError) as info:
            Graph.from_json(json.dumps(d), "g.json")
        assert str(info.value) == ("g.json: output: expected a node id (one node holds the whole output at "
                                   "tensor granularity)")



# -- a scalar graph laid out as to_json lays it out is read a piece of rows at a time: as the whole document is --

def laid_out(d: dict) -> str:
    """d as JSON text laid out as to_json lays out a graph, a line per row, whatever the rows hold."""
    def text(v: object) -> str:
        if not isinstance(v, list):
            return json.dumps(v, ensure_ascii=False)
        rows = [text(r) for r in v]
        return "[" + ",".join("[\n  " + r[1:] if r.startswith("[") else r for r in rows) + "]"

    keys = [k for k in d if k not in ("nodes", "edges")] + [k for k in ("nodes", "edges") if k in d]
    return "{\n" + ",\n".join(f" {json.dumps(k, ensure_ascii=False)}: {text(d[k])}" for k in keys) + "\n}\n"


def read_whole(text: str) -> object:
    """What the reader makes of the text parsed as one document: the graph's data, or the error's words."""
    try:
        return Graph.from_dict(json.loads(text), "g.json").to_dict()
    except SavedGraphError as exc:
        return str(exc)


def read(text: str | bytes) -> object:
    try:
        return Graph.from_json(text, "g.json").to_dict()
    except SavedGraphError as exc:
        return str(exc)


@pytest.fixture
def one_row_pieces(monkeypatch):
    """Each piece the reader parses is one row: it cuts between every two rows."""
    monkeypatch.setattr("gradviz.graph._PIECE", 1)


def scalar_texts() -> list[str]:
    net = gradviz.trace_file(SAMPLES / "dense_relu.py", granularity="scalar")
    tangents = forward_mode(gradviz.trace(lambda x, w: np.tanh(x * w).sum(), granularity="scalar",
                                          x=np.ones(3), w=np.full(3, 0.5)), "x[1]")
    return [net.to_json(), tangents.to_json()]


def test_a_scalar_graph_is_read_a_piece_at_a_time_as_the_whole(one_row_pieces):
    for text in scalar_texts():
        assert _SavedGraph.load_v2_pieces(text, "g.json") is not None
        back = Graph.from_json(text.encode("utf-8"))
        assert back.to_dict() == read_whole(text) and back.to_json() == text


def duplicate_key(text: str, where: str) -> str:
    key = '"\\u006eodes": []'  # "nodes", spelled with an escape
    if where == "first":
        return text.replace('\n "granularity"', "\n " + key + ',\n "granularity"', 1)
    return text[:-3] + ",\n " + key + "\n}\n"


@pytest.mark.parametrize("change", [
    lambda t: duplicate_key(t, "first"),  # the rows below win, as in the whole document
    lambda t: duplicate_key(t, "last"),  # this empty list wins
    lambda t: t.replace('\n "source"', '\n "source": {"nodes": [1]}, "was"', 1),  # a "nodes" that is not the graph's
    lambda t: t.replace("[\n  ", "[", 3),  # rows without a line of their own
    lambda t: t.replace('"inputs[0,0]",', '"inputs],[\\n  [0,0]",', 1),  # a label that reads like a cut
    lambda t: t.replace(",[]", ",[[1],[\n  2]]", 1),  # a cut inside a row
    lambda t: t.replace(",[]", ",[[1],[\n  2.0,", 1),  # not JSON
    lambda t: t.replace(",[]", ',["\n"]', 1),  # not JSON: a line break in a string
    lambda t: t.replace('\n  "op",', '\n  "op" ,', 5),
    lambda t: t.replace('\n  "op",', '\n  "plus",', 1),
    lambda t: t.replace("false", "0", 1),
    lambda t: t[:-3] + ",\n \"extra\": [[\n  1]]\n}\n",
    lambda t: t.replace("],\n \"edges\": [", "],\n \"edges\": [\n ", 1),
    lambda t: t.replace('"scalar"', '"tensor"', 1),
    lambda t: t.replace("]\n}", "] }", 1),
    lambda t: t.replace("]\n}", "]\n} []", 1),
])
def test_a_changed_text_is_read_as_the_whole_document_is(one_row_pieces, change):
    text = change(scalar_texts()[0])
    try:
        expected = read_whole(text)
    except json.JSONDecodeError as exc:
        expected = f"g.json:{exc.lineno}: not valid JSON: {exc.msg}"
    assert read(text) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tampered_v2())
def test_a_tampered_v2_graph_laid_out_as_written_is_read_as_the_whole_document(one_row_pieces, d):
    text = laid_out(d)
    assert read(text) == read_whole(text)
