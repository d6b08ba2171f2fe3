"""gradviz trace --steps: one figure per completed gradient, and a page that flips through them."""
from __future__ import annotations

import re

import pytest

from gradviz import trace_file
from gradviz.steps import backward_steps
from gradviz.views.render import system_dot

from cdp import Page, chromium
from conftest import SAMPLES, run_cli


def test_steps_follow_backward_on_the_neuron():
    graph = trace_file(SAMPLES / "neuron.py", granularity="scalar")
    steps = backward_steps(graph)
    order = [graph.label(s.node) for s in steps]
    # the output first (its gradient is the seed), then z, then z's inputs in reverse order, then the leaves;
    # the constant 0 of the ReLU is not a step
    assert order == ["forward", "z", "b", "x[2]*w[2]", "x[1]*w[1]", "x[0]*w[0]",
                     "w[2]", "x[2]", "w[1]", "x[1]", "w[0]", "x[0]"]
    assert [s.visited for s in steps] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    for s in steps[1:]:
        # each step's edges leave the completed node, and their chains sum to its gradient
        assert all(graph.edges[i].src == s.node for i in s.edges)
        assert sum(graph.edges[i].chain for i in s.edges) == graph.nodes[s.node].grad


def test_a_node_with_two_uses_completes_after_both():
    # e = (a+b)·(b+1): b feeds c and d, so its gradient (2 + 3 = 5) is complete only after both chains
    graph = trace_file(SAMPLES.parent / "tests" / "models" / "diamond.py", granularity="scalar")
    steps = backward_steps(graph)
    b = next(s for s in steps if graph.label(s.node) == "b")
    assert sorted(graph.edges[i].chain for i in b.edges) == [2.0, 3.0]
    assert [graph.label(s.node) for s in steps].index("b") > [graph.label(s.node) for s in steps].index("d")


@pytest.mark.skipif(system_dot() is None, reason="needs the Graphviz dot program (apt-get install graphviz)")
def test_step_figures_and_index(tmp_path):
    out = run_cli("trace", SAMPLES / "neuron.py", "--steps", "--no-table", "--format", "json", "--out-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "neuron-steps"
    svgs = sorted(p.name for p in folder.glob("step_*.svg"))
    assert svgs == [f"step_{k:03d}.svg" for k in range(12)]
    step2 = (folder / "step_002.svg").read_text()
    assert "step 2 of 11: grad of b is complete: the chain from its one use gives 1" in step2
    # after step 2 the leaves x[i], w[i] have no gradient yet: 6 leaves and 3 products show "grad = —"
    assert step2.count("grad = —") == 9
    last = (folder / "step_011.svg").read_text()
    assert "grad = —" not in last and "grad = &#45;3" in last  # ∂y/∂x[0] = w[0] = −3 (SVG escapes the minus)
    page = (folder / "index.html").read_text()
    assert re.findall(r'"file": "(step_\d+\.svg)"', page) == svgs


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (apt-get install chromium), as .ci/run installs")
@pytest.mark.skipif(system_dot() is None, reason="needs the Graphviz dot program (apt-get install graphviz)")
def test_index_pages_forward_in_a_browser(tmp_path):
    assert run_cli("trace", SAMPLES / "neuron.py", "--steps", "--no-table", "--format", "json",
                   "--out-dir", tmp_path).returncode == 0
    with Page((tmp_path / "neuron-steps" / "index.html").as_uri()) as page:
        page.wait_for("document.readyState === 'complete' && document.getElementById('figure').naturalWidth > 0")
        assert page.eval("document.getElementById('counter').textContent") == "step 0 of 11"
        assert page.eval("document.getElementById('prev').disabled") is True
        page.press("ArrowRight", 39)
        page.wait_for("document.getElementById('figure').getAttribute('src') === 'step_001.svg'")
        page.wait_for("document.getElementById('figure').complete && document.getElementById('figure').naturalWidth > 0")
        assert page.eval("document.getElementById('counter').textContent") == "step 1 of 11"
        assert page.eval("document.getElementById('figure').alt") == \
            "step 1 of 11: grad of z is complete: the chain from its one use gives 1"
        assert page.eval("location.hash") == "#1"
