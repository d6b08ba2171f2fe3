"""The gradviz command: formats, output paths, renderers, exit statuses, hostile file names."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.graph import Graph

ROOT = Path(__file__).resolve().parent.parent
NEURON = ROOT / "samples/neuron.py"
NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz 'dot' is not on PATH")


def gradviz(*args: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRADVIZ_RENDERER"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "gradviz", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def no_dot_path(tmp_path: Path) -> str:
    """A PATH without Graphviz: only a folder holding this Python."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "python").symlink_to(sys.executable)
    return str(bin_)


def texts(path: Path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(path).getroot().iter(f"{NS}text")]


def test_without_dot_trace_writes_a_valid_svg_by_default(tmp_path):
    r = gradviz("trace", str(NEURON), "--no-table", "--verbose", cwd=tmp_path, path=no_dot_path(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "wrote out/neuron.svg (embedded Graphviz (graphviz-pure" in r.stdout
    assert "∂(x[0]*w[0])/∂x[0] = w[0] = -3" in texts(tmp_path / "out/neuron.svg")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["neuron.svg"]


def test_without_dot_png_is_one_line_and_the_rest_is_written(tmp_path):
    r = gradviz("trace", str(NEURON), "--no-table", "-f", "svg,png,pdf,dot,json", cwd=tmp_path,
                path=no_dot_path(tmp_path))
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("gradviz: not written: PNG and PDF need the Graphviz 'dot' program: install it")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["neuron.dot", "neuron.json", "neuron.svg"]
    assert Graph.from_json((tmp_path / "out/neuron.json").read_bytes()).to_dict()["output"] == "n12"


@needs_dot
def test_with_dot_png_and_pdf_come_out(tmp_path):
    r = gradviz("trace", str(NEURON), "--no-table", "-f", "png,pdf", "--out-dir", "figs", "-v", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(system Graphviz dot" in r.stdout
    assert (tmp_path / "figs/neuron.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "figs/neuron.pdf").read_bytes()[:5] == b"%PDF-"


def test_output_names_one_file_and_refuses_several(tmp_path):
    r = gradviz("trace", str(NEURON), "--no-table", "-f", "mermaid", "-o", "g.md", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.md").read_text().startswith("```mermaid\nflowchart LR\n")
    r = gradviz("trace", str(NEURON), "--no-table", "-f", "svg,dot", "-o", "g.svg", cwd=tmp_path)
    assert r.returncode == 2 and "use --out-dir" in r.stderr
    r = gradviz("trace", str(NEURON), "--no-table", "-f", "gif", cwd=tmp_path)
    assert r.returncode == 2 and "choose one or more of svg, png, pdf, dot, mermaid, json" in r.stderr
    r = gradviz("trace", str(NEURON), "--no-table", "--wrt", "q", cwd=tmp_path)
    assert r.returncode == 2 and "leaves: x, w, b" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.md"]  # nothing else written, no temp files


def test_hostile_model_file_name_renders(tmp_path):
    model = tmp_path / 'we<ird> & "name".py'
    model.write_text(NEURON.read_text())
    r = gradviz("trace", str(model), "--no-table", "-f", "svg,dot", "--rankdir", "TB", "--wrt", "w",
                cwd=tmp_path, path=no_dot_path(tmp_path))
    assert r.returncode == 0, r.stderr
    svg = tmp_path / 'out/we<ird> & "name".svg'
    title = texts(svg)[0]
    assert title.startswith(f'{model}:forward · scalar granularity')
    assert "rankdir=TB" in (tmp_path / 'out/we<ird> & "name".dot').read_text()


def test_gallery_draws_every_model(tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("neuron.py", "relu.py"):
        shutil.copy(ROOT / "samples" / name, tmp_path / "models" / name)
    r = gradviz("gallery", "models", "--out-dir", "g", "-f", "svg,dot", cwd=tmp_path, path=no_dot_path(tmp_path))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["neuron.dot", "neuron.svg", "relu.dot", "relu.svg"]
