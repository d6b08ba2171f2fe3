"""The explorer on a 2,000-node graph: how long the page takes to write and to open, and the frame time while
panning, measured in headless Chromium (requestAnimationFrame intervals during a scripted drag, during a
scripted zoom with the wheel, and, as the baseline, during a pan that redraws the SVG on every frame).
Run: python bench/explorer.py  (needs Chromium; uses the system dot if present)

The graph: an MLP 10 → 40 → 14 at scalar granularity, 2,040 nodes and 2,988 edges.

Latest run (2 cores shared with other jobs, load average 8; headless Chromium, software rendering):
    page 7.88 MB, made in 13.1 s (system dot); opened in 7.2 s
    pan (drag): 131 frames, median 16.7 ms, 95th percentile 83.4 ms, longest 1649.9 ms (the one repaint)
    zoom (wheel): 140 frames, median 16.7 ms, 95th percentile 50.0 ms, longest 133.3 ms
    pan repainting every frame (baseline): 31 frames, median 650.0 ms, 95th percentile 1099.9 ms
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import gradviz  # noqa: E402
from gradviz.views.html import to_html  # noqa: E402

from cdp import Page, chromium  # noqa: E402

MODEL = """
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal(10)
W1 = rng.standard_normal((10, 40))
W2 = rng.standard_normal((40, 14))


def forward(x, W1, W2):
    h = np.maximum(x @ W1, 0)
    return np.sum(np.tanh(h @ W2))
"""

# records the interval between consecutive animation frames until window.__stop is set
RECORD = """
window.__frames = []; window.__stop = false;
(function tick(last) { requestAnimationFrame((now) => { if (last !== null) window.__frames.push(now - last);
  if (!window.__stop) tick(now); }); })(null);
"""


# the baseline: svg-pan-zoom's own pan, which redraws the SVG on every frame (what a large drawing would
# do without the painted-picture gestures); svgPanZoom(svg) returns the page's instance
REPAINT = """new Promise((done) => { const pz = svgPanZoom(document.querySelector('.drawing:not([hidden]) svg'));
  let k = 0; (function step() { pz.panBy({x: -4, y: 0}); if (++k < 30) requestAnimationFrame(step);
  else requestAnimationFrame(() => done()); })(); })"""


def frames(page: Page, gesture) -> list[float]:
    page.eval(RECORD)
    gesture()
    time.sleep(0.5)  # the one repaint after the gesture counts too
    page.eval("window.__stop = true")
    time.sleep(0.1)
    return page.eval("window.__frames")


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    return (f"{name}: {len(ms)} frames, median {statistics.median(ms):.1f} ms, 95th percentile "
            f"{ms[int(0.95 * (len(ms) - 1))]:.1f} ms, longest {ms[-1]:.1f} ms")


def main() -> None:
    if chromium() is None:
        sys.exit("needs Chromium (apt-get install chromium)")
    folder = Path(tempfile.mkdtemp(prefix="gradviz-bench-"))
    (folder / "mlp.py").write_text(textwrap.dedent(MODEL))
    graph = gradviz.trace_file(folder / "mlp.py", granularity="scalar")
    start = time.perf_counter()
    page_text, renderer = to_html(graph)
    written = time.perf_counter() - start
    path = folder / "mlp.html"
    path.write_text(page_text, encoding="utf-8")
    print(f"graph: {len(graph.nodes):,} nodes, {len(graph.edges):,} edges; page {path.stat().st_size / 1e6:.2f} MB, "
          f"made in {written:.1f} s ({renderer})")
    start = time.perf_counter()
    with Page(path.as_uri(), width=1280, height=800) as page:
        page.wait_for("!!document.querySelector('.svg-pan-zoom_viewport')")
        print(f"opened (navigation to a fitted drawing, as measured over CDP): {time.perf_counter() - start:.2f} s")
        x, y = 640, 420
        page.press("+", 187)  # zoomed in a little, as one pans a large graph
        page.press("+", 187)

        def drag() -> None:
            page.mouse("mouseMoved", x, y)
            page.mouse("mousePressed", x, y, button="left", clickCount=1)
            for k in range(1, 121):
                page.mouse("mouseMoved", x - 4 * k, y - (k % 20), button="left", buttons=1)
                time.sleep(1 / 120)
            page.mouse("mouseReleased", x - 480, y, button="left", clickCount=1)

        def wheel() -> None:
            for k in range(40):
                page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-40 if k < 20 else 40)
                time.sleep(1 / 60)

        print(summary("pan (drag)", frames(page, drag)))
        print(summary("zoom (wheel)", frames(page, wheel)))
        print(summary("pan repainting every frame (baseline)", frames(page, lambda: page.eval(REPAINT))))
        assert page.errors() == [], page.errors()


if __name__ == "__main__":
    main()
