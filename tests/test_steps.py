"""gradviz trace --steps: the order in which backward completes each gradient, and the explorer's step control."""
from __future__ import annotations

import json
import re

import pytest

from gradviz import trace_file
from gradviz.steps import backward_steps

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
    graph = trace_file(SAMPLES / "two_paths.py", granularity="scalar")
    steps = backward_steps(graph)
    b = next(s for s in steps if graph.label(s.node) == "b")
    assert sorted(graph.edges[i].chain for i in b.edges) == [2.0, 3.0]
    assert [graph.label(s.node) for s in steps].index("b") > [graph.label(s.node) for s in steps].index("d")


def test_steps_writes_the_explorer_opened_on_the_first_step(tmp_path):
    out = run_cli("trace", SAMPLES / "neuron.py", "--steps", "--no-table", "--format", "json", "--out-dir", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"wrote {tmp_path / 'neuron.json'}", f"wrote {tmp_path / 'neuron-steps.html'}"]
    page = (tmp_path / "neuron-steps.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="gradviz-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["start"]["step"] == 0
    assert [s["caption"] for s in data["steps"]][2] == \
        "step 2 of 11: grad of b is complete: the chain from its one use gives 1"


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (apt-get install chromium), as .ci/run installs")
def test_step_control_pages_through_backprop_in_a_browser(tmp_path):
    assert run_cli("trace", SAMPLES / "neuron.py", "--steps", "--no-table", "--format", "none",
                   "--out-dir", tmp_path).returncode == 0
    empty = "[...document.querySelectorAll('.drawing:not([hidden]) text')].filter((t) => t.textContent === '{}').length"
    with Page((tmp_path / "neuron-steps.html").as_uri()) as page:
        assert page.eval("document.getElementById('counter').textContent") == "step 0 of 11"
        assert page.eval("document.getElementById('prev').disabled") is True
        # at the seed, only the output has its gradient: 7 leaves (x, w, b), 3 products and z show "grad = —"
        assert page.eval(empty.format("grad = —")) == 11
        page.press("ArrowRight", 39)
        page.press("ArrowRight", 39)
        assert page.eval("document.getElementById('counter').textContent") == "step 2 of 11"
        assert page.eval("document.querySelector('#caption b').textContent") == \
            "step 2 of 11: grad of b is complete: the chain from its one use gives 1"
        # after step 2 the leaves x[i], w[i] have no gradient yet: 6 leaves and 3 products show "grad = —"
        assert page.eval(empty.format("grad = —")) == 9
        # backward has visited the last 3 of the 12 edges (z → output, 0 → output, b → z): 9 carry no chain yet
        assert page.eval(empty.format("chain = —")) == 9
        assert page.eval("location.hash") == "#step=2"
        # the slider reaches the last step: every gradient complete, every chain known
        page.eval("const s = document.getElementById('step'); s.value = s.max; s.dispatchEvent(new Event('input'))")
        assert page.eval("document.getElementById('counter').textContent") == "step 11 of 11"
        assert page.eval(empty.format("grad = —")) == 0 and page.eval(empty.format("chain = —")) == 0
        assert page.eval("document.getElementById('next').disabled") is True
        assert page.eval("[...document.querySelectorAll('g.node.now')].map((g) => g.dataset.node)") == ["0"]  # x[0]
        page.press("ArrowLeft", 37)
        assert page.eval("document.getElementById('counter').textContent") == "step 10 of 11"
        assert page.errors() == []
