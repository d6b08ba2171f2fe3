"""The terminal tables: every name and number whole at the widths people use, small arrays in full,
rounding noise read as 0."""
from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from gradviz import trace, trace_file
from gradviz.views.table import Fitted, backward_table, forward_table, gradient_table, tables

from conftest import SAMPLES

SAMPLE_FILES = sorted(SAMPLES.glob("*.py"))


def _render(renderable, width: int, color: bool = False) -> str:
    colors = {"force_terminal": True, "color_system": "truecolor"} if color else {"color_system": None}
    console = Console(file=io.StringIO(), width=width, highlight=False, **colors)
    console.print(renderable)
    return console.file.getvalue()


def _cells(graph) -> list[str]:
    return [str(cell) for table in (forward_table(graph), backward_table(graph), gradient_table(graph))
            for column in table.columns for cell in [column.header, *column.cells]]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("granularity", ["auto", "tensor"])
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_no_name_or_number_is_split_across_lines(path, granularity, width):
    graph = trace_file(path, granularity=granularity)
    text = _render(tables(graph), width)
    assert max(len(line) for line in text.splitlines()) <= width
    cells = _cells(graph)
    for word in {w for cell in cells for w in cell.split()}:
        # every place a word appears in a cell, it appears whole in the rendered text: a word split across
        # two lines (or cut short with …) would be missing there
        expected = sum(cell.count(word) for cell in cells)
        assert text.count(word) >= expected, f"{word!r} is split or cut in {path.name} at {width} columns"


@pytest.mark.parametrize("width", [30, 60, 100])
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_tables_are_drawn_as_richs_table_draws_them_at_the_same_widths(path, width):
    """Fitted draws the lines itself (rich's layout of every cell was half the command's own time): the same
    characters and the same styles, escape sequences and all, as rich's Table given Fitted's widths."""
    graph = trace_file(path)
    for table in (forward_table(graph), backward_table(graph), gradient_table(graph)):
        fitted = Fitted(table)
        widths = fitted.widths(width)
        if widths is None:  # narrower than the widest words: rich draws it
            continue
        ours = [_render(fitted, width, color) for color in (False, True)]
        for column, w in zip(table.columns, widths, strict=True):
            column.width = w
        assert ours == [_render(table, width, color) for color in (False, True)]


def test_softmax_gradient_table_shows_its_nine_numbers():
    graph = trace_file(SAMPLES / "softmax_cce.py", granularity="tensor")
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [-1.0, 0.2, 1.5]])
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (soft - np.eye(3)[[0, 1, 1]]) / 3  # (softmax − one-hot) / n, the textbook result
    text = _render(gradient_table(graph), 100)
    for v in expected.ravel():
        assert f"{v:.4g}" in text
    assert "‖·‖" not in text


def test_a_large_array_is_shape_norm_min_and_max():
    values = np.arange(1.0, 14.0)  # 13 elements: one more than is shown in full
    graph = trace(lambda x: x * 2.0, granularity="tensor", x=values)
    text = _render(gradient_table(graph), 100)
    assert "(13) all 2" in text
    text = _render(forward_table(graph), 100)
    assert f"‖·‖={np.linalg.norm(values):.4g}" in text and "min=1 " in text and "max=13" in text


def test_rounding_noise_reads_zero_in_the_tables_of_the_spiral():
    graph = trace_file(SAMPLES / "spiral_mlp.py")
    # the shifted max of the softmax: its gradient is exactly 0 (softmax is shift-invariant); as a float it
    # is 0 or rounding noise, depending on the machine
    shift = next(n for n in graph.nodes if graph.label(n.id) == "max(dense2.output)")
    assert np.max(np.abs(shift.grad)) < 1e-15
    text = _render(tables(graph), 100)
    assert not any(f"e-{k}" in text for k in range(13, 30))


def test_the_gradient_title_shows_an_output_that_starts_with_nan():
    # "[nan, 0]" was read as rich markup, a style tag, and the title said "Gradient (output = )"
    graph = trace(lambda x: np.log(x), x=np.array([-1.0, 1.0]))
    assert "Gradient (output = [nan, 0])" in _render(tables(graph), 100)


def test_an_output_that_depends_on_no_leaf_says_why_under_the_empty_backward_table():
    def relu(x):
        if x > 0:
            return x
        return 0.0

    graph = trace(relu, x=-2.0)  # x ≤ 0: the branch returns the constant 0
    text = " ".join(_render(tables(graph), 100).split())
    assert "the function returned a constant: the traced path took a branch that returns a value computed " \
           "without x" in text
    assert graph.grad("x") == 0.0


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_the_check_table_keeps_every_input_name_whole_at_80_columns(path):
    from gradviz.check import check
    from gradviz.loader import load
    from gradviz.views.check_table import check_tables

    model = load(f"{path}:forward")
    report = check(model.fn, model.leaves, state=model.state)
    text = _render(check_tables(report), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    for c in report.inputs[:20]:  # the table lists at most MAX_ROWS rows; each begins with its input, whole
        assert any(line.startswith(c.input + " ") for line in lines), f"{c.input!r} is cut in {path.name}"
