"""`gradviz check`: the gradient check as a rich table, or as JSON for machines."""
from __future__ import annotations

import json

from rich.console import Group
from rich.text import Text

from ..check import Comparison, Report
from .table import MAX_ROWS, Fitted, _cut, _table

_STYLE = {"ok": "green", "mismatch": "bold red", "nondiff": "yellow"}
_WORD = {"ok": "ok", "mismatch": "MISMATCH", "nondiff": "⚠ nondiff"}


def check_tables(report: Report) -> Group:
    t = _table("Gradient check: backward against central finite differences")
    for name in ("input", "analytic", "numeric", "abs error", "rel error", "status"):
        t.add_column(name, justify="left" if name in ("input", "status") else "right")
    # a long table shows the disagreements first, then agreements, up to MAX_ROWS rows
    rows = sorted(report.inputs, key=lambda c: c.status == "ok") if len(report.inputs) > MAX_ROWS else report.inputs
    for c in rows[:MAX_ROWS]:
        t.add_row(Text(c.input), *_numbers(c), _status(c))
    _cut(t, len(rows))
    parts: list = [Fitted(t), Text("")]
    if report.ops:
        o = _table("Your operations: written partials against finite differences of the body (worst point)")
        for name in ("op", "input", "at", "written", "numeric", "abs error", "rel error", "status"):
            o.add_column(name, justify="right" if name in ("written", "numeric", "abs error", "rel error") else "left")
        for c in report.ops:
            o.add_row(Text(c.op or ""), Text(c.input), Text(c.at), *_numbers(c), _status(c))
        parts += [Fitted(o), Text("")]
    parts += [Text(line, style=style) for line, style in _summary(report)]
    return Group(*parts)


def _summary(report: Report) -> list[tuple[str, str]]:
    tol = f"(|analytic − numeric| ≤ {report.atol:g} + {report.rtol:g}·max(|analytic|, |numeric|))"
    lines = []
    for c in report.ops:
        if c.status == "mismatch":
            lines.append((f"✗ {c.op}: the written ∂{c.op}/∂{c.input} is wrong: it gives {c.analytic:.6g} at "
                          f"{c.at}, but the function's slope there is {c.numeric:.6g}", "bold red"))
    bad = [c.input for c in report.inputs if c.status == "mismatch"]
    if bad:
        lines.append((f"✗ {len(bad)} of {len(report.inputs)} gradients disagree with finite differences: "
                      f"{', '.join(bad[:8])}{' …' if len(bad) > 8 else ''} {tol}", "bold red"))
    flagged = [c.input for c in report.inputs if c.status == "nondiff"]
    if flagged:
        lines.append((f"⚠ {', '.join(flagged)}: differs, but a node on the way is not differentiable at this "
                      "point (a tie or a kink), where gradviz takes the local partial as 0", "yellow"))
    if report.passed:
        lines.append((f"✓ all {len(report.inputs)} gradients agree with finite differences {tol}", "green"))
    return lines


def check_json(report: Report) -> str:
    def row(c: Comparison) -> dict:
        d = {"op": c.op, "input": c.input} if c.op else {"input": c.input}
        if c.op:
            d["at"] = c.at
        d.update(analytic=_num(c.analytic), numeric=_num(c.numeric), abs_err=_num(c.abs_err),
                 rel_err=_num(c.rel_err), status=c.status)
        return d
    return json.dumps({"passed": report.passed, "rtol": report.rtol, "atol": report.atol,
                       "inputs": [row(c) for c in report.inputs], "ops": [row(c) for c in report.ops]},
                      ensure_ascii=False, indent=1) + "\n"


def _numbers(c: Comparison) -> list[Text]:
    # 7 digits keep the columns within 80 with names like net.params['W1'][0,0]; the errors show the rest
    return [Text(f"{c.analytic:.7g}"), Text(f"{c.numeric:.7g}"), Text(f"{c.abs_err:.2e}"), Text(f"{c.rel_err:.2e}")]


def _status(c: Comparison) -> Text:
    return Text(_WORD[c.status], style=_STYLE[c.status])


def _num(v: float):
    return v if v == v and abs(v) != float("inf") else str(v)
