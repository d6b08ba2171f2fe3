"""gradviz.views.html: the explorer page, read as a file and driven in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

import gradviz
from gradviz import trace_file
from gradviz.output import written_by_gradviz

from cdp import Page, chromium
from conftest import SAMPLES, run_cli

needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="needs Chromium (apt-get install chromium), as .ci/run installs")
KB = 1024


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id="gradviz-data" type="application/json">(.*?)</script>', text, re.S)
                      .group(1))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    for name in ("neuron", "softmax_cce", "spiral_mlp"):
        out = run_cli("trace", SAMPLES / f"{name}.py", "--no-table", "--format", "html", "--out-dir", folder)
        assert out.returncode == 0, out.stderr
    return {p.stem: p for p in folder.glob("*.html")}


def test_one_file_that_asks_the_network_for_nothing(pages):
    for path in pages.values():
        text = path.read_text(encoding="utf-8")
        # every script and style is inline; the policy forbids loading anything, even if a label held a URL
        assert not re.search(r'<(script|img|link|iframe)[^>]*\b(src|href)=', text)
        assert "default-src 'none'" in text
        assert written_by_gradviz(path)  # so gradviz may overwrite it, and only it
        assert "Copyright 2009-2010 Andrea Leofreddi" in text or "svg-pan-zoom v3.6.2" in text


def test_sizes(pages):
    assert pages["neuron"].stat().st_size < 300 * KB
    assert pages["spiral_mlp"].stat().st_size < 2048 * KB


def test_numbers_are_embedded_at_full_precision(pages):
    graph = trace_file(SAMPLES / "softmax_cce.py")
    data = page_data(pages["softmax_cce"])
    assert [n["label"] for n in data["nodes"]] == [graph.label(n.id) for n in graph.nodes]
    for node, item in zip(graph.nodes, data["nodes"], strict=True):
        assert item["value"] == node.value  # the same double: JSON carries the shortest round-trip form
        assert item["grad"] == (None if node.kind == "const" else node.grad)
    spiral = trace_file(SAMPLES / "spiral_mlp.py")
    big = page_data(pages["spiral_mlp"])["nodes"][1]  # dense1.weights, 2 × 64: min, max, norm and a heatmap
    w = spiral.nodes[1].value
    assert big["value"]["shape"] == [2, 64] and "data" not in big["value"]
    assert (big["value"]["min"], big["value"]["max"]) == (w.min(), w.max())
    assert big["value"]["norm"] == pytest.approx(float((w ** 2).sum() ** 0.5), rel=1e-12)


def test_steps_are_backwards_order(pages):
    data = page_data(pages["neuron"])
    assert [data["nodes"][s["node"]]["label"] for s in data["steps"]][:4] == ["forward", "z", "b", "x[2]*w[2]"]
    assert data["steps"][2]["caption"] == "step 2 of 11: grad of b is complete: the chain from its one use gives 1"


def explain_cli(wrt: str) -> tuple[str, dict | list]:
    text = run_cli("explain", SAMPLES / "neuron.py", "--wrt", wrt)
    js = run_cli("explain", SAMPLES / "neuron.py", "--wrt", wrt, "--format", "json")
    assert text.returncode == 0 and js.returncode == 0
    return text.stdout, json.loads(js.stdout)


def center(page: Page, selector: str) -> tuple[float, float]:
    return page.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); "
                     "return [r.x + r.width / 2, r.y + r.height / 2]; })()")


def highlighted(page: Page) -> set[tuple[str, str]]:
    """(src label, dst label) of every edge drawn highlighted."""
    pairs = page.eval("[...document.querySelectorAll('.drawing.picking g.edge.on')].map((g) => { "
                      "const data = JSON.parse(document.getElementById('gradviz-data').textContent); "
                      "const e = data.edges[+g.dataset.edge]; "
                      "return [data.nodes[e.src].label, data.nodes[e.dst].label]; })")
    return {tuple(p) for p in pairs}


def path_pairs(paths: list[dict]) -> set[tuple[str, str]]:
    """Consecutive labels of explain's paths, output first: the edges (input, result) they go through."""
    return {(b, a) for p in paths for a, b in pairwise(p["labels"])}


def unwrapped(text: str) -> list[str]:
    """explain's lines as the panel holds them: rich wraps at the terminal's width, the panel at its own."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@needs_chromium
def test_hover_shows_the_numbers_of_the_json(pages):
    graph = trace_file(SAMPLES / "softmax_cce.py")
    data = page_data(pages["softmax_cce"])
    node = next(i for i, n in enumerate(data["nodes"]) if n["label"].startswith("probabilities"))
    edge = next(i for i, e in enumerate(data["edges"]) if e["dst"] == node and e["local"] not in (None, 1.0))
    with Page(pages["softmax_cce"].as_uri()) as page:
        for what, selector in (("node", f'g[data-node="{node}"] > ellipse'), ("edge", f'g[data-edge="{edge}"] > text')):
            page.mouse("mouseMoved", 1, 1)
            page.wait_for("document.getElementById('tip').hidden")
            page.mouse("mouseMoved", *center(page, selector))
            page.wait_for("!document.getElementById('tip').hidden")
            shown = page.eval("Object.fromEntries([...document.querySelectorAll('#tip dl.nums dt')]"
                              ".map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))")
            if what == "node":
                assert float(shown["value"]) == graph.nodes[node].value  # every digit, no rounding
                assert float(shown["grad"]) == graph.nodes[node].grad
                assert page.eval("document.querySelector('#tip .head').textContent") == graph.label(node)
            else:
                e = graph.edges[edge]
                assert (float(shown["local"]), float(shown["upstream"]), float(shown["chain"])) == \
                    (e.local, e.upstream, e.chain)
                assert page.eval("document.getElementById('tip').textContent").count("∂") >= 2  # the rule, with names
        assert page.errors() == []


@needs_chromium
def test_clicking_w0_and_finding_w_show_what_explain_shows(pages):
    with Page(pages["neuron"].as_uri()) as page:
        page.click(*center(page, 'g[data-node="3"]'))  # the leaf w[0]
        page.wait_for("!document.getElementById('panel').hidden")
        text, js = explain_cli("w[0]")
        assert highlighted(page) == path_pairs(js["paths"]) == {("w[0]", "x[0]*w[0]"), ("x[0]*w[0]", "z"),
                                                                ("z", "forward")}
        assert unwrapped(page.eval("document.getElementById('chain-rule').innerText")) == unwrapped(text)
        assert page.eval("document.getElementById('sum').textContent") == "∂output/∂w[0] = 1"

        page.press("Escape", 27)
        page.wait_for("document.getElementById('panel').hidden && !document.querySelector('.picking')")

        page.eval("document.getElementById('search').focus()")
        page.send("Input.insertText", text="w")
        page.press("Enter", 13)
        page.wait_for("!document.getElementById('panel').hidden")
        text, js = explain_cli("w")
        assert highlighted(page) == path_pairs([p for ex in js for p in ex["paths"]])
        assert unwrapped(page.eval("document.getElementById('chain-rule').innerText")) == unwrapped(text)
        # the sum of each element's paths: ∂y/∂w = x = [1, -2, 3]
        assert [ex["total"] for ex in js] == [1, -2, 3]
        assert page.eval("document.getElementById('sum').textContent") == "∂output/∂w = [1, -2, 3]"
        assert page.errors() == [] and page.requests() == [pages["neuron"].as_uri()]


@needs_chromium
def test_search_finds_a_node_by_part_of_its_label(pages):
    with Page(pages["neuron"].as_uri()) as page:
        page.eval("document.getElementById('search').focus()")
        page.send("Input.insertText", text="X[2]*W")  # case-insensitive, a part of the label
        page.press("Enter", 13)
        page.wait_for("!!document.querySelector('g.node.start')")
        start = page.eval("+document.querySelector('g.node.start').dataset.node")
        assert page_data(pages["neuron"])["nodes"][start]["label"] == "x[2]*w[2]"
        assert highlighted(page) == {("x[2]*w[2]", "z"), ("z", "forward")}


@needs_chromium
def test_zoom_keys_and_wheel_change_the_view(pages):
    with Page(pages["spiral_mlp"].as_uri()) as page:
        transform = "document.querySelector('.drawing:not([hidden]) .svg-pan-zoom_viewport').getAttribute('transform')"
        scale = f"+/matrix\\(([^,]+)/.exec({transform})[1]"
        fitted = page.eval(scale)

        def becomes(target: float) -> None:  # svg-pan-zoom draws on the next animation frame
            page.wait_for(f"Math.abs({scale} - {target}) < 1e-6 * {target}")  # fit() recomputes: float noise

        page.press("+", 187)
        becomes(fitted * 1.25)  # zoomScaleSensitivity 0.25
        page.press("0", 48)
        becomes(fitted)
        x, y = center(page, "#figure")
        page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-300)
        page.wait_for(f"{scale} > {fitted * 1.01}")
        page.press("0", 48)
        becomes(fitted)
        page.press("-", 189)
        becomes(fitted / 1.25)
        # the drawing opens fitted: the whole figure inside the window
        box = page.eval("(() => { const r = document.querySelector('.drawing:not([hidden]) .svg-pan-zoom_viewport')"
                        ".getBoundingClientRect(); return [r.width, r.height]; })()")
        assert box[0] > 0 and box[1] > 0
        assert page.errors() == []


@needs_chromium
def test_opens_fitted_to_the_window(pages):
    with Page(pages["neuron"].as_uri(), width=900, height=600) as page:
        r = page.eval("(() => { const f = document.getElementById('figure').getBoundingClientRect(); "
                      "const g = document.querySelector('.drawing:not([hidden]) .svg-pan-zoom_viewport')"
                      ".getBoundingClientRect(); "
                      "return [g.left - f.left, f.right - g.right, g.top - f.top, f.bottom - g.bottom]; })()")
        assert min(r) >= -1  # inside the figure's area on every side
        assert min(r[0] + r[1], r[2] + r[3]) < 2  # and as large as it fits: it touches two opposite sides


@needs_chromium
def test_layers_collapse_and_expand(pages):
    with Page(pages["spiral_mlp"].as_uri()) as page:
        visible = "document.querySelector('.drawing:not([hidden])').dataset.view"
        assert page.eval(visible) == "expanded"
        page.click(*center(page, "#layers"))
        assert page.eval(visible) == "collapsed"
        assert page.eval("document.querySelectorAll('.drawing:not([hidden]) g.node.block').length") == 5
        page.eval("document.querySelector('.drawing:not([hidden]) g.node.block[data-block=\"2\"]')"
                  ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")  # dense2's box
        assert page.eval(visible) == "expanded"
        page.eval("document.querySelector('.drawing:not([hidden]) g.cluster[data-block=\"0\"] > path')"
                  ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")  # dense1's box
        assert page.eval(visible) == "collapsed"
        assert page.errors() == []


@needs_chromium
def test_dark_mode_keeps_the_meaning_of_colours(pages):
    with Page(pages["neuron"].as_uri(), dark=True) as page:
        fill = "getComputedStyle(document.querySelector('g[data-node=\"{}\"] > :is(path, polygon, ellipse)')).fill"
        assert page.eval(fill.format(3)) == "rgb(30, 58, 95)"  # a leaf: dark blue, where light mode is light blue
        assert page.eval(fill.format(12)) == "rgb(20, 64, 31)"  # the output: dark green
        assert page.eval("getComputedStyle(document.body).backgroundColor") == "rgb(17, 24, 39)"
    with Page(pages["neuron"].as_uri()) as page:
        assert page.eval(fill.format(3)) == "rgb(219, 234, 254)"


def test_open_starts_the_browser_on_the_page(tmp_path, model):
    browser = tmp_path / "browser"
    browser.write_text(f"#!{sys.executable}\nimport sys, pathlib\n"
                       f"pathlib.Path({str(tmp_path / 'opened')!r}).write_text(sys.argv[1])\n")
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser)}
    out = subprocess.run([sys.executable, "-m", "gradviz", "trace", str(SAMPLES / "neuron.py"), "--no-table",
                          "--format", "html", "--open", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "opened").read_text() == (tmp_path / "neuron.html").resolve().as_uri()
    refused = run_cli("trace", SAMPLES / "neuron.py", "--no-table", "--open", "--out-dir", tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "gradviz: error: --open opens the explorer page: add --format html (or --steps)\n"


def test_render_from_the_api_and_the_saved_graph(tmp_path):
    graph = trace_file(SAMPLES / "neuron.py")
    page = graph.render(tmp_path / "n.html")
    assert page_data(page)["explain"]["b"]["totals"] == [1.0]
    graph.render(tmp_path / "n.json")
    out = run_cli("render", tmp_path / "n.json", "--format", "html", "--out-dir", tmp_path / "again")
    assert out.returncode == 0, out.stderr
    again = page_data(tmp_path / "again" / "n.html")
    assert again["explain"]["w[1]"] == page_data(page)["explain"]["w[1]"]  # the same chain rule, from data alone
    (tmp_path / "mine.html").write_text("<p>someone's page</p>")
    with pytest.raises(gradviz.GradvizError, match="was not written by gradviz"):
        graph.render(tmp_path / "mine.html")


def test_notebook_shows_two_explorers(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat (pip install -e '.[test]')")
    client = pytest.importorskip("nbclient", reason="the notebook test needs nbclient (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel (pip install -e '.[test]')")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"import gradviz\n"
                                          f"neuron = gradviz.trace_file({str(SAMPLES / 'neuron.py')!r})\nneuron"),
                nbformat.v4.new_code_cell(f"gradviz.trace_file({str(SAMPLES / 'softmax_cce.py')!r})")]
    client.NotebookClient(nb, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [cell.outputs[0]["data"] for cell in nb.cells]
    assert all("text/html" in d and "image/svg+xml" in d for d in shown)  # SVG stays for where scripts do not run
    pages = [re.search(r'srcdoc="(.*?)"', d["text/html"], re.S).group(1) for d in shown]
    assert "forward" in pages[0] and "probabilities" in pages[1]
    if chromium() is None:
        return
    # both in one document, as a notebook shows them: each explorer works in its own frame
    (tmp_path / "notebook.html").write_text("<!DOCTYPE html><meta charset='utf-8'>"
                                            + "".join(d["text/html"] for d in shown), encoding="utf-8")
    with Page((tmp_path / "notebook.html").as_uri()) as page:
        frames = "[...document.querySelectorAll('iframe')]"
        page.wait_for(f"{frames}.every((f) => f.contentDocument "
                      "&& f.contentDocument.querySelector('.svg-pan-zoom_viewport'))")
        counts = page.eval(f"{frames}.map((f) => f.contentDocument.querySelectorAll('g.node[data-node]').length)")
        assert counts == [13, 48]
        heights = page.eval(f"{frames}.map((f) => f.getBoundingClientRect().height)")
        assert all(240 <= h <= 642 for h in heights), heights  # 640 and a 1 px border
        assert page.errors() == []



MLP = """
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal(6)
W1 = rng.standard_normal((6, 12))
W2 = rng.standard_normal((12, 4))


def forward(x, W1, W2):
    return np.sum(np.tanh(np.maximum(x @ W1, 0) @ W2))
"""


@needs_chromium
def test_a_large_drawing_moves_as_a_picture_then_is_drawn_once(tmp_path, model):
    # 282 nodes and 391 edges drawn: past 600, a drag moves the painted <svg> and the pan is applied on release
    assert run_cli("trace", model(MLP), "--no-table", "--format", "html", "--out-dir", tmp_path).returncode == 0
    with Page((tmp_path / "model1.html").as_uri()) as page:
        matrix = ("(/matrix\\(([^)]*)\\)/.exec(document.querySelector('.svg-pan-zoom_viewport')"
                  ".getAttribute('transform'))[1].split(',').map(Number))")
        assert page.eval("document.querySelector('.drawing').classList.contains('large')") is True
        before = page.eval(matrix)
        x, y = 640, 420
        page.mouse("mouseMoved", x, y)
        page.mouse("mousePressed", x, y, button="left", clickCount=1)
        for k in range(1, 11):
            page.mouse("mouseMoved", x - 12 * k, y + 5 * k, button="left", buttons=1)
        assert page.eval("document.querySelector('.drawing svg').style.transform") == "translate(-120px, 50px)"
        assert page.eval(matrix) == before  # nothing redrawn during the drag
        page.mouse("mouseReleased", x - 120, y + 50, button="left", clickCount=1)
        page.wait_for(f"{matrix}[4] !== {before[4]}")
        after = page.eval(matrix)
        assert after[4] - before[4] == pytest.approx(-120) and after[5] - before[5] == pytest.approx(50)
        assert after[0] == before[0]
        for _ in range(2):
            page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-100)
        assert page.eval("document.querySelector('.drawing svg').style.transform") == "scale(1.5625)"
        page.wait_for(f"{matrix}[0] !== {after[0]}")
        zoomed = page.eval(matrix)
        assert zoomed[0] == pytest.approx(after[0] * 1.25 ** 2, rel=1e-9)
        # the point under the pointer stays where it was: (x, y) in the drawing's pixels, below the header
        top = page.eval("document.querySelector('.drawing svg').getBoundingClientRect().top")
        for axis, at in ((4, x), (5, y - top)):
            assert (at - zoomed[axis]) / zoomed[0] == pytest.approx((at - after[axis]) / after[0], rel=1e-6)
        assert page.eval("document.querySelector('.drawing svg').style.transform") == ""
        assert page.errors() == []


@needs_chromium
def test_nan_and_forward_mode_and_wrt(tmp_path, model):
    # ∂/∂x of log(x)·√x at x = 0: the paths carry 0 · inf and -inf · inf, the gradient is NaN
    nan = model("import numpy as np\nx = np.array([0.0, 1.0])\n\n"
                "def forward(x):\n    return np.sum(np.log(x) * np.sqrt(x))\n")
    assert run_cli("trace", nan, "--no-table", "--format", "html", "--wrt", "x[0]",
                   "-o", tmp_path / "nan.html").returncode == 0
    assert run_cli("trace", SAMPLES / "neuron.py", "--no-table", "--format", "html", "--mode", "forward",
                   "--wrt", "w[1]", "-o", tmp_path / "fwd.html").returncode == 0
    with Page((tmp_path / "nan.html").as_uri()) as page:
        # --wrt opens the page with the paths to x[0] picked; its red (non-finite) edges stay red
        assert page.eval("document.getElementById('sum').textContent") == "∂output/∂x[0] = nan"
        # x[0] → log (0 · inf), x[0] → √ (-inf · inf) and √ → product (local log 0 = -inf); log → product carries 0
        assert page.eval("document.querySelectorAll('.picking g.edge.on.bad').length") == 3
        assert page.errors() == []
    with Page((tmp_path / "fwd.html").as_uri()) as page:
        page.mouse("mouseMoved", *center(page, 'g[data-node="7"] > ellipse'))  # x[0]*w[0]: ∂/∂w[1] is 0
        page.wait_for("!document.getElementById('tip').hidden")
        assert page.eval("[...document.querySelectorAll('#tip dt')].map((d) => d.textContent)") == [
            "value", "grad", "∂·/∂w[1]"]
        page.mouse("mouseMoved", *center(page, 'g[data-node="8"] > ellipse'))  # x[1]*w[1]: ∂/∂w[1] = x[1] = -2
        page.wait_for("document.querySelector('#tip .head').textContent === 'x[1]*w[1]'")
        assert page.eval("document.querySelectorAll('#tip dd')[2].textContent") == "-2"
        assert page.errors() == []


@needs_chromium
def test_hostile_labels_are_text(tmp_path):
    # a saved graph is data from anyone: a label that tries to end the script, and a file name holding {{data}}
    graph = trace_file(SAMPLES / "neuron.py").to_dict()  # the @1 form, every field named; render reads it
    evil = "</script><!--<script>x{{data}}"
    graph["nodes"][6]["label"] = evil  # b
    graph["source"] = "{{figures}}"
    (tmp_path / "g{{data}}.json").write_text(json.dumps(graph), encoding="utf-8")
    out = run_cli("render", tmp_path / "g{{data}}.json", "--format", "html", "--out-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    page_file = tmp_path / "g{{data}}.html"
    assert page_data(page_file)["nodes"][6]["label"] == evil
    with Page(page_file.as_uri()) as page:
        assert page.eval("document.title") == "{{figures}} · gradviz"
        assert page.eval("document.querySelectorAll('.drawing').length") == 1
        page.mouse("mouseMoved", *center(page, 'g[data-node="6"] > path'))
        page.wait_for("!document.getElementById('tip').hidden")
        assert page.eval("document.querySelector('#tip .head').textContent") == evil
        assert page.errors() == []


@pytest.mark.parametrize("renderer", ["embedded", "system"])
def test_every_drawn_edge_is_tied_to_its_data(tmp_path, renderer):
    if renderer == "system" and shutil.which("dot") is None:
        pytest.skip("no system Graphviz dot")
    env = {**os.environ, "GRADVIZ_RENDERER": renderer}
    out = subprocess.run([sys.executable, "-m", "gradviz", "trace", str(SAMPLES / "neuron.py"), "--no-table",
                          "--format", "html", "--out-dir", str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "neuron.html").read_text(encoding="utf-8")
    # the page finds edge i of the data by the id "ei" of its drawing; nodes by the title "nI"
    assert sorted(int(i) for i in re.findall(r'<g id="e(\d+)" class="edge"', text)) == list(range(12))
    assert sorted(int(i) for i in re.findall(r"<title>n(\d+)</title>", text)) == list(range(13))
