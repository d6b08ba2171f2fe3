"""gradviz.views.dot: the figure carries the tables' numbers, escapes user text, and shows gradient flow."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import gradviz
from gradviz import trace_file
from gradviz.errors import GradvizError
from gradviz.forward import forward_mode
from gradviz.views.dot import FONT, to_dot, wrt_edges
from gradviz.views.format import partial
from gradviz.views.render import PNG_DPI, fitted, render

ROOT = Path(__file__).resolve().parent.parent
NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz 'dot' is not on PATH")


def svg_texts(data: bytes) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(data).iter(f"{NS}text")]


@pytest.fixture
def embedded(monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDERER", "embedded")


@pytest.fixture
def neuron():
    return trace_file(ROOT / "samples/neuron.py", granularity="scalar")


# Hand-derived for y = max(x·w + b, 0), x = [1, -2, 3], w = [-3, -1, 2], b = 1: each product's local
# partials are the other input; every chain below the ReLU is 1 × local since z = 6 > 0.
NEURON_EDGES = [
    "∂(x[0]*w[0])/∂x[0] = w[0] = -3", "chain = 1 × -3 = -3",
    "∂(x[0]*w[0])/∂w[0] = x[0] = 1", "chain = 1 × 1 = 1",
    "∂(x[1]*w[1])/∂x[1] = w[1] = -1", "chain = 1 × -1 = -1",
    "∂(x[1]*w[1])/∂w[1] = x[1] = -2", "chain = 1 × -2 = -2",
    "∂(x[2]*w[2])/∂x[2] = w[2] = 2", "chain = 1 × 2 = 2",
    "∂(x[2]*w[2])/∂w[2] = x[2] = 3", "chain = 1 × 3 = 3",
    "∂z/∂(x[0]*w[0]) = 1", "∂z/∂(x[1]*w[1]) = 1", "∂z/∂(x[2]*w[2]) = 1", "∂z/∂b = 1",
    "∂forward/∂z = 1 if z > 0 else 0 = 1",  # the output, never bound to a name, is called after its function
]


def test_neuron_svg_shows_every_edge_local_and_chain_and_every_label(neuron, embedded):
    texts = svg_texts(render(to_dot(neuron), "svg")[0])
    for line in NEURON_EDGES:
        assert line in texts, line
    assert not any(t.startswith("∂forward/∂0") for t in texts)  # the constant 0 is not differentiated
    assert texts.count("chain = 1 × 1 = 1") == 6  # w[0]'s product edge, three sum inputs, b, the ReLU
    labels = {t for t in texts}
    for name in ["x[0]", "x[1]", "x[2]", "w[0]", "w[1]", "w[2]", "b", "z"]:
        assert name in labels, name
    # the node of x[0] shows its value 1 and ∂y/∂x[0] = w[0] = -3
    i = texts.index("x[0]")
    assert texts[i + 1:i + 3] == ["value = 1", "grad = -3"]


def test_svg_scales_to_its_content(neuron, embedded):
    root = ET.fromstring(render(to_dot(neuron), "svg")[0])
    width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    x0, y0, w, h = map(float, root.get("viewBox").split())
    assert (x0, y0) == (0, 0) and abs(w - width) < 1 and abs(h - height) < 1


def test_table_and_figure_print_the_same_rule_text(neuron):
    dot = to_dot(neuron)
    for edge in neuron.edges:
        if edge.chain is not None:  # a constant's edge carries no rule
            assert partial(neuron, edge).replace(">", "&gt;") in dot


def test_zero_gradient_edges_are_grey_dashed_and_width_follows_log_chain(neuron):
    dot = to_dot(neuron)
    const_edge = next(line for line in dot.splitlines() if line.startswith("  n11 -> n12"))
    assert 'style="dashed"' in const_edge  # the constant 0 of the ReLU passes no gradient
    widths = {m.group(1): float(m.group(2)) for m in re.finditer(r"  (n\d+ -> n\d+) \[penwidth=\"([\d.]+)\"", dot)}
    assert widths["n7 -> n10"] == 2.0  # |chain| = 1
    assert widths["n5 -> n9"] == pytest.approx(2 + 0.75 * __import__("math").log10(3), abs=0.01)


def test_dead_relu_and_nan_are_marked():
    dead = gradviz.trace(lambda x: max(x, 0.0), x=-2.0)
    assert 'style="dashed"' in to_dot(dead)
    kink = gradviz.trace(lambda x: max(x, 0.0), x=0.0)
    assert "▲ not differentiable here" in to_dot(kink)
    bad = gradviz.trace(lambda x: x / 0.0, x=1.0)
    assert '<font color="#dc2626"><b>inf</b></font>' in to_dot(bad)


def test_wrt_highlights_exactly_the_paths_from_the_leaf(neuron):
    # b reaches the output through b → z → forward (max(z,0)) only
    assert {(neuron.edges[i].src, neuron.edges[i].dst) for i in wrt_edges(neuron, "b")} == {(6, 10), (10, 12)}
    # x reaches it through each product, the sum and the ReLU
    assert len(wrt_edges(neuron, "x")) == 3 + 3 + 1
    with pytest.raises(GradvizError, match="no leaf or value"):
        wrt_edges(neuron, "nope")


def test_tensor_figure_shows_shapes_and_summarises_large_arrays(embedded):
    g = trace_file(ROOT / "samples/softmax_cce.py", granularity="tensor")
    texts = svg_texts(render(to_dot(g, "TB"), "svg")[0])
    assert "(3,3)" in texts  # the inputs' shape beside their name
    assert "value = [[2, 1, 0.1]," in texts and "[-1, 0.2, 1.5]]" in texts  # 9 elements: in full, a row a line
    assert "value = [0.659, 0.8025, 0.2012]" in texts  # 3 elements: in full


HOSTILE = 'we<ird> & "name" {a|b}\nnext'


def test_hostile_text_is_escaped_and_svg_parses(embedded):
    g = gradviz.trace(lambda x: x * 2.0, x=1.0)
    g.source = HOSTILE
    g.nodes[0].name = 'a<b>&"c"|{d}'
    dot = to_dot(g)
    assert "<ird>" not in dot and '"name"' not in dot
    texts = " ".join(svg_texts(render(dot, "svg")[0]))
    assert 'we<ird> & "name" {a|b} next' in texts
    assert 'a<b>&"c"|{d}' in texts


def test_rule_text_with_markup_is_escaped(embedded):
    g = gradviz.trace(lambda x, y: max(x, y), x=2.0, y=1.0)  # the rule reads "1 if x > y else 0"
    texts = svg_texts(render(to_dot(g), "svg")[0])
    assert "∂max(x,y)/∂x = 1 if x > y else 0 = 1" in texts


def test_unknown_rankdir_is_an_input_error(neuron):
    with pytest.raises(GradvizError, match="rankdir"):
        to_dot(neuron, "RL")


@needs_dot
def test_python_render_and_jupyter(tmp_path, neuron, monkeypatch):
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)
    assert neuron.render(tmp_path / "n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert neuron.render(tmp_path / "n.out", format="pdf").read_bytes()[:5] == b"%PDF-"
    assert "∂z/∂b = 1" in svg_texts(neuron._repr_svg_().encode())
    assert os.stat(tmp_path / "n.png").st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_every_character_of_the_figures_is_drawn_by_the_embedded_renderer(embedded):
    """Its built-in fonts lack some symbols (⚠, ∝): a missing one is drawn as the same empty box as a
    private-use character, so its PNG is byte for byte that box's."""
    sources = [to_dot(trace_file(path, granularity=g)) for path in sorted((ROOT / "samples").glob("*.py"))
               for g in ("scalar", "tensor")]
    neuron = trace_file(ROOT / "samples/neuron.py", granularity="scalar")
    sources.append(to_dot(forward_mode(neuron, "w[0]")))
    sources.append(to_dot(trace_file(ROOT / "samples/spiral_mlp.py"), collapse=True))
    used = sorted({c for source in sources for c in source if ord(c) > 127})

    def drawn(char: str) -> bytes:
        return render(f'digraph {{ a [fontname="{FONT}", label="{char}"]; }}', "png")[0]

    box = drawn("\ue000")
    missing = [c for c in used if drawn(c) == box]
    assert not missing, f"drawn as empty boxes: {' '.join(missing)}"


@needs_dot
def test_system_dot_draws_every_figure_without_a_warning():
    """gradviz does not pass a renderer's warnings on (views/render.py), so they are looked for here: the
    legend's swatches once held a space too tall for their 14 points, "Warning: cell size too small for
    content in label of node legend" on every figure."""
    sources = [to_dot(trace_file(path, granularity=g)) for path in sorted((ROOT / "samples").glob("*.py"))
               for g in ("auto", "tensor")]
    neuron = trace_file(ROOT / "samples/neuron.py", granularity="scalar")
    sources.append(to_dot(neuron, wrt="w"))
    sources.append(to_dot(forward_mode(neuron, "w[0]")))
    sources.append(to_dot(trace_file(ROOT / "samples/spiral_mlp.py"), collapse=True))
    for source in sources:
        proc = subprocess.run(["dot", "-Tsvg"], input=source.encode("utf-8"), capture_output=True, check=True)
        assert proc.stderr.decode() == "", source.splitlines()[1]


@pytest.mark.parametrize("path", sorted((ROOT / "samples").glob("*.py")), ids=lambda p: p.stem)
def test_no_default_figure_of_a_sample_is_over_3_to_1_wide_past_2000_px(embedded, path):
    graph = trace_file(path)
    svg, _, _ = fitted(lambda rankdir: to_dot(graph, rankdir), "svg")
    width, height = (float(re.search(rf'{key}="([\d.]+)pt"', svg.decode()).group(1)) for key in ("width", "height"))
    px = width * PNG_DPI / 72  # the PNG's width in pixels
    assert px <= 2000 or width <= 3 * height, f"{path.name}: {px:.0f} px wide, {width / height:.1f}:1"
