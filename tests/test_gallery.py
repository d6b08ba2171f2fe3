"""The committed figures (docs/gallery, docs/neuron.svg) show what the code computes now.

Compared as a reader sees them: the texts of the figure, each number as printed and read back, equal up to
the last printed digit. Which Graphviz drew a figure (bytes, positions, text order) and the rounding noise of
a CPU or BLAS build (a 4th significant digit that flips) never fail the test; a changed label, rule or number
does.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from gradviz import trace_file
from gradviz.views.dot import to_dot
from gradviz.views.render import render

ROOT = Path(__file__).resolve().parent.parent
NS = "{http://www.w3.org/2000/svg}"
NUMBER = re.compile(r"[-−]?(?:\d+\.?\d*|\.\d+)(?:e[-+−]?\d+)?")
DIGITS = 1e-3  # numbers are printed with 4 significant digits: one unit in the last one, relative


def reader_view(svg: bytes) -> dict[str, list[tuple[float, ...]]]:
    """Each text of the figure with its numbers taken out ("chain = # × # = #"), mapped to the numbers each
    occurrence shows."""
    view = defaultdict(list)
    for element in ET.fromstring(svg).iter(f"{NS}text"):
        text = "".join(element.itertext())
        numbers = tuple(float(m.replace("−", "-")) for m in NUMBER.findall(text))
        view[NUMBER.sub("#", text)].append(numbers)
    return {template: sorted(rows) for template, rows in view.items()}


def same_to_a_reader(a: dict, b: dict) -> list[str]:
    """What differs between two reader views, as lines; empty when a reader sees the same figure."""
    diffs = [f"only in one figure: {t!r}" for t in sorted(set(a) ^ set(b))]
    for template in sorted(set(a) & set(b)):
        rows_a, rows_b = a[template], b[template]
        if len(rows_a) != len(rows_b):
            diffs.append(f"{template!r}: {len(rows_a)} against {len(rows_b)} times")
            continue
        for x, y in zip(rows_a, rows_b, strict=True):
            if not all(math.isclose(p, q, rel_tol=DIGITS, abs_tol=0) or p == q for p, q in zip(x, y, strict=True)):
                diffs.append(f"{template!r}: {x} against {y}")
    return diffs


def test_reader_view_ignores_the_last_digit_and_nothing_else():
    figure = b'<svg xmlns="http://www.w3.org/2000/svg"><text>chain = 1 \xc3\x97 0.3986 = 0.3986</text></svg>'
    flipped = figure.replace(b"0.3986 = 0.3986", b"0.3985 = 0.3985")
    changed = figure.replace(b"0.3986 = 0.3986", b"0.3886 = 0.3886")
    relabelled = figure.replace(b"chain", b"local")
    assert same_to_a_reader(reader_view(figure), reader_view(flipped)) == []
    assert same_to_a_reader(reader_view(figure), reader_view(changed))
    assert same_to_a_reader(reader_view(figure), reader_view(relabelled))


@pytest.fixture
def embedded(monkeypatch):
    monkeypatch.setenv("GRADVIZ_RENDERER", "embedded")


def test_committed_gallery_is_up_to_date(monkeypatch, embedded):
    """Regenerate with: gradviz gallery samples --out-dir docs/gallery
    and gradviz trace samples/neuron.py --no-table -o docs/neuron.svg"""
    monkeypatch.chdir(ROOT)
    committed = sorted((ROOT / "docs/gallery").glob("*.svg"))
    assert [p.stem for p in committed] == sorted(p.stem for p in (ROOT / "samples").glob("*.py"))
    for path in committed + [ROOT / "docs/neuron.svg"]:
        fresh = render(to_dot(trace_file(Path("samples") / f"{path.stem}.py")), "svg")[0]
        diffs = same_to_a_reader(reader_view(path.read_bytes()), reader_view(fresh))
        assert not diffs, (f"{path.relative_to(ROOT)} is stale: run gradviz gallery samples --out-dir docs/gallery "
                           "and gradviz trace samples/neuron.py --no-table -o docs/neuron.svg\n"
                           + "\n".join(diffs[:10]))
