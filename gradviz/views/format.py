"""Numbers and arrays as short text, the same in every view."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..graph import Edge, Graph

FULL_ARRAY = 8  # arrays with at most this many elements are shown in full


def number(v: Any) -> str:
    """A number as a person would write it: 6, -3, 0.5, 1e-07, nan."""
    v = float(v)
    if v == 0:
        return "0"
    return f"{v:.4g}"


def value(v: Any) -> str:
    """A scalar, a small array in full, or a large array by shape and norm."""
    if v is None:
        return "—"
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return number(arr)
    if arr.size <= FULL_ARRAY:
        return _nested(arr)
    return f"{shape(arr.shape)} ‖·‖={number(np.linalg.norm(arr))}"


def _nested(arr: np.ndarray) -> str:
    if arr.ndim == 1:
        return "[" + ", ".join(number(x) for x in arr) + "]"
    return "[" + ", ".join(_nested(row) for row in arr) + "]"


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
        return rule
    _, _, rhs = rule.partition(" = ")
    inputs = [graph.label(e.src) for e in graph.in_edges(edge.dst)]
    src = inputs[edge.arg]
    style = op.kind.rule_style
    if style == "element":  # a tensor reduction reads element-wise: xᵢ is one element of the input
        rhs = rhs.replace("xᵢ", src if graph.granularity == "scalar" else f"{_grouped(src)}ᵢ")
    elif style == "variables":
        names = op.variables
        found = dict(zip(names, inputs))
        pattern = re.compile(rf"(?<![{_WORD}])({'|'.join(found)})(?![{_WORD}])")
        rest = pattern.sub("", rhs)
        if re.search(rf"(?<![{_WORD}])({'|'.join(names)})(?![A-Za-z0-9_])|[ˣʸ]|(?<![A-Za-z])[xyXW](?=[A-Za-z0-9ˣʸ])", rest):
            return rule
        whole = rhs.strip() in found
        rhs = pattern.sub(lambda m: found[m.group(1)] if whole else _grouped(found[m.group(1)]), rhs)
    else:
        return rule
    return f"∂{_grouped(graph.label(edge.dst))}/∂{_grouped(src)} = {rhs}"


def _grouped(label: str) -> str:
    """A label inside a formula: in parentheses when it is itself an expression."""
    return f"({label})" if any(c in label for c in "+-*/@ ") and not re.fullmatch(r"-?[\d.]+(e[+-]?\d+)?", label) else label


def local_line(graph: "Graph", edge: "Edge") -> str:
    """`∂(x[0]*w[0])/∂x[0] = w[0] = -3`: the rule with labels, then its number when the rule is not one."""
    text = partial(graph, edge)
    if edge.local is None:  # an unmaterialised Jacobian: the rule says what multiplies the upstream
        return text
    local = np.asarray(edge.local, dtype=float)
    # a tensor's local partial that is the same for every element (1 for add, −1 for neg) is one number
    same = local.size > 0 and np.isfinite(local).all() and bool(np.all(local == local.ravel()[0]))
    number_ = value(local.ravel()[0]) if same else value(local)
    said = text.rsplit(" = ", 1)[-1].replace("−", "-")  # the rule may already be the number: ∂(x+y)/∂x = 1
    return text if said == number_ else f"{text} = {number_}"


def chain_line(edge: "Edge") -> str:
    """`chain = 1 × -3 = -3` (upstream × local) for scalars; `chain = <array>` when arrays are involved."""
    if edge.local is not None and np.ndim(edge.upstream) == 0 and np.ndim(edge.local) == 0:
        return f"chain = {value(edge.upstream)} × {value(edge.local)} = {value(edge.chain)}"
    return f"chain = {value(edge.chain)}"
