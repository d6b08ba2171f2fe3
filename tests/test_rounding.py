"""Numbers that are zero up to floating-point rounding read 0 in tables, figures and explain; JSON keeps them."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

from gradviz import trace, trace_file
from gradviz.graph import Graph
from gradviz.inputs import inputs
from gradviz.paths import explain
from gradviz.rounding import magnitudes
from gradviz.views.dot import to_dot
from gradviz.views.explain import explain_text
from gradviz.views.table import tables

from conftest import SAMPLES

# a number printed with an exponent of -13 or below: where gradviz's numbers are noise if anything
TINY = re.compile(r"\d(\.\d+)?e-(1[3-9]|[2-9]\d|\d{3})")


def _text(renderable) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def cancelling(x):
    # ∂/∂x = 0.1 + 0.2 - 0.3: in float64 such a sum is a few 1e-17 on every IEEE 754 machine, not 0
    return x * 0.1 + x * 0.2 - x * 0.3


def test_a_gradient_that_cancels_reads_zero_but_json_keeps_the_float():
    g = trace(cancelling, granularity="scalar", x=2.0)
    raw = g.grad("x")
    assert 0 < abs(raw) < 1e-16  # the float the computation made: noise
    assert magnitudes(g).leaf(g, "x") == pytest.approx(0.6)  # |0.1| + |0.2| + |-0.3|, what was summed
    table = _text(tables(g))
    assert re.search(r"\bx\s+2\s+0\s*$", table, re.M)  # the gradient table's row: leaf, value, gradient 0
    assert not TINY.search(table)
    dot = to_dot(g)
    assert "grad = 0" in dot and not TINY.search(dot)
    text = str(explain_text(g, explain(g, inputs(g, "x")[0]), 20))
    assert text.rstrip().endswith("= 0") or " = 0\n" in text
    assert not TINY.search(text)
    saved = Graph.from_json(g.to_json())  # read back from the JSON text
    assert saved.grad("x") == raw  # JSON keeps the exact float


def test_a_real_small_gradient_is_not_mistaken_for_noise():
    g = trace(lambda x: x * 1e-20, x=3.0)  # tiny, but nothing cancels: it is the whole of what was summed
    assert "grad = 1e-20" in to_dot(g)


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_softmax_shifted_max_gets_exactly_zero_and_nothing_prints_noise(granularity):
    # the gradient into the max subtracted for stability is exactly 0 (softmax is shift-invariant)
    g = trace_file(SAMPLES / "softmax_cce.py", granularity=granularity)
    for n in g.nodes:
        if g.label(n.id).startswith("max("):
            assert np.all(np.abs(n.grad) < 1e-15)
    assert not TINY.search(to_dot(g))
    assert not TINY.search(_text(tables(g)))
    if granularity == "scalar":
        for x in inputs(g, "inputs"):
            assert not TINY.search(str(explain_text(g, explain(g, x), 20)))


def test_spiral_figure_and_tables_print_no_noise():
    # the figure used to print `chain = (300,1) ‖·‖=7.636e-18` for the softmax's shifted max
    g = trace_file(SAMPLES / "spiral_mlp.py")
    dot = to_dot(g)
    assert not TINY.search(dot)
    assert "chain = (300,1) all 0" in dot
    assert not TINY.search(_text(tables(g)))
    assert not TINY.search(to_dot(g, collapse=True))
