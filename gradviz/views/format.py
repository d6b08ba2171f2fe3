"""Numbers and arrays as short text, the same in every view."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..graph import Edge, Graph

FULL_ARRAY = 12  # arrays with at most this many elements (a 3×4 matrix) are shown in full
# A number is shown as 0 when it is smaller than this fraction of the magnitudes that were added up to make
# it (gradviz/rounding.py): float64 rounds each addition by about 1e-16 of its size, so after thousands
# of operations what is left of terms that cancel exactly is still far below 1e-12 of them.
NOISE = 1e-12


def without_noise(v: Any, magnitude: Any) -> Any:
    """v with every element that is zero up to rounding (|v| ≤ NOISE × the magnitude behind it) set to 0."""
    if v is None or magnitude is None:
        return v
    arr = np.asarray(v, dtype=float)
    noise = np.isfinite(arr) & (np.abs(arr) <= NOISE * np.asarray(magnitude, dtype=float))
    if not noise.any():
        return v
    cleaned = np.where(noise, 0.0, arr)
    return float(cleaned) if cleaned.ndim == 0 else cleaned


def number(v: Any, magnitude: Any = None) -> str:
    """A number as a person would write it: 6, -3, 0.5, 1e-07, nan; 0 when it is rounding noise."""
    v = float(without_noise(v, magnitude))
    if v == 0:
        return "0"
    return f"{v:.4g}"


def value(v: Any, magnitude: Any = None) -> str:
    """A scalar, a small array in full, or a large array by shape, norm, min and max; numbers that are
    rounding noise against magnitude (the size of the terms they were summed from) read 0."""
    if v is None:
        return "—"
    arr = np.asarray(without_noise(v, magnitude), dtype=float)
    if arr.ndim == 0:
        return number(arr)
    if arr.size <= FULL_ARRAY:
        return _nested(arr)
    if not arr.size:
        return f"{shape(arr.shape)} empty"
    low, high = np.min(arr), np.max(arr)
    if low == high:
        return f"{shape(arr.shape)} all {number(low)}"
    return (f"{shape(arr.shape)} ‖·‖={number(np.linalg.norm(arr))} "
            f"min={number(low)} max={number(high)}")


def _nested(arr: np.ndarray) -> str:
    """[1, -2, 3]; a matrix one row per line (views that draw one line turn the breaks into spaces)."""
    if arr.ndim == 1:
        return "[" + ", ".join(number(x) for x in arr) + "]"
    return "[" + ",\n ".join(_nested(row) for row in arr) + "]"


def shape(s: tuple[int, ...]) -> str:
    return "(" + ",".join(str(n) for n in s) + ")" if s else "scalar"


def finite(v: Any) -> bool:
    return v is None or bool(np.all(np.isfinite(np.asarray(v, dtype=float))))


def printable(text: str) -> str:
    """text with control characters written out (\\n, \\x1b), so a label from a stranger's JSON can
    neither break a table row nor send escape sequences to the terminal."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)

# A letter that belongs to a word (or carries a superscript, as in xʸ) is not a variable on its own.
_WORD = "A-Za-z0-9_ˣʸᵢ"


def partial(graph: "Graph", edge: "Edge") -> str:
    """The edge's local-partial rule written with the graph's own labels, as the tables and figures print it.

    `∂(x·y)/∂x = y` on the edge x[0] → x[0]*w[0] reads `∂(x[0]*w[0])/∂x[0] = w[0]`. A rule whose variables
    cannot all be replaced (`2x`, `y·xʸ⁻¹`) keeps its textbook form, so no formula ever mixes the two.
    """
    rule = graph.rule(edge)
    node = graph.nodes[edge.dst]
    from ..ops import OPS  # the ops table is data; imported here so this module stays import-light

    op = OPS.get(node.op)
    if op is None:  # a graph saved by another version of gradviz: its rule text is all there is
        return printable(rule)
    _, _, rhs = rule.partition(" = ")
    inputs = [printable(graph.label(e.src)) for e in graph.in_edges(edge.dst)]
    src = inputs[edge.arg]
    style = op.kind.rule_style
    if style == "element":  # a tensor reduction reads element-wise: xᵢ is one element of the input
        rhs = rhs.replace("xᵢ", src if graph.granularity == "scalar" else f"{grouped(src)}ᵢ")
    elif style == "variables":
        names = op.variables
        found = dict(zip(names, inputs, strict=False))
        pattern = re.compile(rf"(?<![{_WORD}])({'|'.join(found)})(?![{_WORD}])")
        rest = pattern.sub("", rhs)
        if re.search(rf"(?<![{_WORD}])({'|'.join(names)})(?![A-Za-z0-9_])|[ˣʸ]|(?<![A-Za-z])[xyXW](?=[A-Za-z0-9ˣʸ])",
                     rest):
            return printable(rule)
        whole = rhs.strip() in found

        def put(m: re.Match) -> str:  # σ(x) with x = w*x reads σ(w*x), not σ((w*x))
            bare = whole or (rhs[m.start() - 1:m.start()] == "(" and rhs[m.end():m.end() + 1] == ")")
            return found[m.group(1)] if bare else grouped(found[m.group(1)])
        rhs = pattern.sub(put, rhs)
    else:
        return printable(rule)
    return f"∂{grouped(printable(graph.label(edge.dst)))}/∂{grouped(src)} = {rhs}"


def grouped(label: str) -> str:
    """A label inside a formula: in parentheses when it is itself an expression."""
    expression = any(c in label for c in "+-*/@ ") and not re.fullmatch(r"-?[\d.]+(e[+-]?\d+)?", label)
    return f"({label})" if expression else label


def local_line(graph: "Graph", edge: "Edge") -> str:
    """`∂(x[0]*w[0])/∂x[0] = w[0] = -3`: the rule with labels, then its number when the rule is not one."""
    text = partial(graph, edge)
    number_ = _local_number(edge)
    said = text.rsplit(" = ", 1)[-1].replace("−", "-")  # the rule may already be the number: ∂(x+y)/∂x = 1
    return text if number_ is None or said == number_ else f"{text} = {number_}"


def local_rule(graph: "Graph", edge: "Edge") -> str:
    """local_line without its `∂result/∂input = `, for a view that names the edge beside it: `w[0] = -3`."""
    line = local_line(graph, edge)
    lhs, sep, _ = partial(graph, edge).partition(" = ")
    return line[len(lhs) + 3:] if sep and lhs.startswith("∂") else line


def _local_number(edge: "Edge") -> str | None:
    if edge.local is None:  # an unmaterialised Jacobian: the rule says what multiplies the upstream
        return None
    local = np.asarray(edge.local, dtype=float)
    # a tensor's local partial that is the same for every element (1 for add, −1 for neg) is one number
    same = local.size > 0 and np.isfinite(local).all() and bool(np.all(local == local.ravel()[0]))
    return value(local.ravel()[0]) if same else value(local)


_BINARY = re.compile(r"(?<=[\w\])…])(?<!\d[eE])([+\-*/@]|\*\*)(?=[\w(\[…])")


def breakable(text: str) -> str:
    """An expression with spaces around its operators and after commas between arguments, so a table
    can wrap it between names and numbers instead of inside one: `x[0]*w[0]` → `x[0] * w[0]`."""
    text = _BINARY.sub(r" \1 ", text)
    out, depth = [], 0
    for i, c in enumerate(text):
        depth += (c == "[") - (c == "]")
        # not inside an index (w[0,1]) nor between the sizes of a shape ((300,64)), nor where a space follows
        spaced = c == "," and depth == 0 and not text[i + 1:i + 2].isdigit() and text[i + 1:i + 2] != " "
        out.append(", " if spaced else c)
    return "".join(out)


def chain_line(edge: "Edge", upstream: Any = None, chain: Any = None) -> str:
    """`chain = 1 × -3 = -3` (upstream × local) for scalars; `chain = <array>` when arrays are involved.
    upstream and chain: the magnitudes behind those numbers (gradviz/rounding.py), so noise reads 0."""
    if edge.local is not None and np.ndim(edge.upstream) == 0 and np.ndim(edge.local) == 0:
        return f"chain = {value(edge.upstream, upstream)} × {value(edge.local)} = {value(edge.chain, chain)}"
    return f"chain = {value(edge.chain, chain)}"


def share_line(edge: "Edge", tangent: Any, tangent_size: Any = None, share_size: Any = None) -> str:
    """Forward mode: `share = -3 × 1 = -3` (local × the input's tangent) for scalars; `share = <array>` else."""
    if edge.local is not None and np.ndim(tangent) == 0 and np.ndim(edge.local) == 0:
        return f"share = {value(edge.local)} × {value(tangent, tangent_size)} = {value(edge.tangent, share_size)}"
    return f"share = {value(edge.tangent, share_size)}"
