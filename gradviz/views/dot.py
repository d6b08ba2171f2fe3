"""The annotated graph as Graphviz DOT source: what the SVG, PNG and PDF figures show.

Every value is a node with its label, value and gradient; every edge carries its local partial (the rule
with the graph's labels, and its number) over its chain product (upstream × local), the same text as the
tables. Shape and colour tell leaves, constants, operations and the output apart; edge width follows
|chain| on a log scale so vanishing and exploding paths stand out. All user text goes through `_html`:
labels are HTML-like, so `<`, `>`, `&` and quotes are entities and nothing reaches Graphviz raw.
"""
from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from ..errors import GradvizError
from ..graph import Edge, Graph
from . import format as fmt

FONT = "Helvetica,Arial,sans-serif"
RANKDIRS = ("LR", "TB")

# kind: (shape, style, fill, border, peripheries, legend text)
STYLES = {
    "leaf": ("box", "rounded,filled", "#dbeafe", "#1d4ed8", 1, "leaf (an input of the model)"),
    "const": ("box", "filled,dashed", "#f3f4f6", "#6b7280", 1, "constant"),
    "op": ("ellipse", "filled", "#fef3c7", "#b45309", 1, "operation"),
    "output": ("ellipse", "filled", "#dcfce7", "#15803d", 2, "output"),
}
EDGE = "#334155"
ZERO = "#b6bcc6"  # an edge that passes no gradient (a dead ReLU, a constant's input)
BAD = "#dc2626"  # NaN or inf
NONDIFF = "#c2410c"
WRT = "#7c3aed"
FADED = "#cbd5e1"
MUTED = "#6b7280"
TANGENT = "#0e7490"  # forward mode's ∂node/∂wrt


def to_dot(graph: Graph, rankdir: str = "LR", wrt: str | None = None) -> str:
    """DOT source for the annotated graph; `wrt` names a leaf whose paths to the output are highlighted."""
    if rankdir not in RANKDIRS:
        raise GradvizError(f"--rankdir {rankdir}: choose LR (left to right) or TB (top to bottom)")
    on_path = wrt_edges(graph, wrt) if wrt is not None else None
    path_nodes = {graph.edges[i].src for i in on_path or ()} | {graph.edges[i].dst for i in on_path or ()}
    outputs = set(graph.output_ids())
    title = (f"{graph.source or 'graph'} · {graph.granularity} granularity · "
             f"output = {fmt.value(graph.output_value)}")
    if wrt is not None:
        title += f" · paths to {wrt} highlighted"
    lines = [
        "digraph gradviz {",
        f'  graph [rankdir={rankdir}, fontname="{FONT}", fontsize=12, labelloc=t, ordering=in, nodesep=0.25, ranksep=0.5, '
        f"label=<<b>{_html(title)}</b>>];",
        f'  node [fontname="{FONT}", fontsize=11, margin="0.08,0.04"];',
        f'  edge [fontname="{FONT}", fontsize=10, color="{EDGE}", arrowsize=0.7];',
    ]
    for node in graph.nodes:
        kind = "output" if node.id in outputs else node.kind
        shape, style, fill, border, peripheries, _ = STYLES[kind]
        attrs = {"shape": shape, "style": style, "fillcolor": fill, "color": border, "peripheries": str(peripheries)}
        if node.nondiff:
            attrs.update(color=NONDIFF, penwidth="2")
        if on_path is not None and node.id in path_nodes:
            attrs.update(color=WRT, penwidth="2.5")
        lines.append(f"  n{node.id} [{_attrs(attrs)}, label=<{_node_label(graph, node.id)}>];")
    for i, edge in enumerate(graph.edges):
        lines.append(f"  n{edge.src} -> n{edge.dst} [{_attrs(_edge_style(edge, on_path, i))}, "
                     f"label=<{_edge_label(graph, edge)}>];")
    lines += _legend(graph, max(outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


def wrt_edges(graph: Graph, name: str) -> set[int]:
    """Indexes of the edges on some path from the leaf `name` (or the node labelled `name`) to the output."""
    if name in graph.leaves:
        start = set(np.ravel(graph.leaves[name]).astype(int).tolist())
    else:
        start = {n.id for n in graph.nodes if graph.label(n.id) == name}
    if not start:
        raise GradvizError(f"--wrt {name}: no leaf or value of that name; leaves: {', '.join(graph.leaves)}")
    below = set(start)  # reached from the leaf going forward; nodes are in topological order
    for edge in graph.edges:
        if edge.src in below:
            below.add(edge.dst)
    above = set(graph.output_ids())  # reach the output going backward
    for edge in reversed(graph.edges):
        if edge.dst in above:
            above.add(edge.src)
    return {i for i, e in enumerate(graph.edges) if e.src in below and e.src in above and e.dst in above}


def _node_label(graph: Graph, node_id: int) -> str:
    node = graph.nodes[node_id]
    head = f"<b>{_html(graph.label(node_id))}</b>"
    if node.kind == "op":
        head += f' <font color="{MUTED}">{_html(node.op)}</font>'
    if graph.granularity == "tensor":
        head += f' <font color="{MUTED}">{_html(fmt.shape(node.shape))}</font>'
    rows = [head, f"value = {_number(node.value)}"]
    if node.kind != "const":
        rows.append(f"grad = {_number(node.grad)}")
    if graph.wrt is not None and node.tangent is not None:  # forward mode ran
        rows.append(f'<font color="{TANGENT}">∂·/∂{_html(graph.wrt)} = {_number(node.tangent)}</font>')
    if node.nondiff:
        rows.append(f'<font color="{NONDIFF}">⚠ not differentiable here</font>')
    return "<br/>".join(rows)


def _edge_label(graph: Graph, edge: Edge) -> str:
    if graph.nodes[edge.src].kind == "const":  # a constant only feeds the operation; no gradient to show
        return ""
    line = fmt.local_line(graph, edge)
    head, sep, rest = line.partition(" = ")
    # a long formula breaks after ∂result/∂input, so edge labels stay narrow and the figure compact
    top = f"{_html(head)}<br/>= {_html(rest)}" if sep and len(line) > 40 else _html(line)
    chain = _html(fmt.chain_line(edge))
    if not fmt.finite(edge.local):
        top = f'<font color="{BAD}">{top}</font>'
    if graph.wrt is not None and edge.tangent is not None:  # forward mode: this edge's share of dst's tangent
        chain += f'<br/><font color="{TANGENT}">share of ∂·/∂{_html(graph.wrt)} = {_number(edge.tangent)}</font>'
    if not fmt.finite(edge.chain):
        return f'{top}<br/><font color="{BAD}"><b>{chain}</b></font>'
    return f'{top}<br/><font color="{MUTED}">{chain}</font>'


def _edge_style(edge: Edge, on_path: set[int] | None, index: int) -> dict[str, str]:
    size = _magnitude(edge.chain)
    attrs: dict[str, str] = {}
    if not math.isfinite(size):
        attrs.update(color=BAD, fontcolor=BAD, penwidth="2.5")
    elif size == 0:
        attrs.update(color=ZERO, fontcolor=MUTED, style="dashed", penwidth="1")
    else:
        # 1 → 2 pt; each factor of 10 adds 0.75 pt, so 1e-2 is a hairline and 1e4 is five times as thick
        attrs["penwidth"] = f"{min(5.0, max(0.5, 2 + 0.75 * math.log10(size))):.2f}"
    if on_path is not None:
        if index in on_path:
            attrs["color"] = WRT if math.isfinite(size) else BAD
        else:
            attrs.update(color=FADED, fontcolor=FADED)
    return attrs


def _magnitude(v: Any) -> float:
    """|chain| for a scalar, its norm for an array; NaN or inf when any element is."""
    arr = np.asarray(v if v is not None else 0.0, dtype=float)
    if not np.all(np.isfinite(arr)):
        return math.inf
    return float(np.linalg.norm(arr.ravel()))


def _legend(graph: Graph, anchor: int) -> list[str]:
    """One small table placed just past the output (an invisible edge from it), out of the graph's way."""
    rows = []
    for shape, style, fill, border, peripheries, text in STYLES.values():
        look = ' style="dashed"' if "dashed" in style else (' style="rounded"' if shape != "box" or "rounded" in style else "")
        rows.append(f'<tr><td bgcolor="{fill}" color="{border}" border="{peripheries}"{look} fixedsize="true" '
                    f'width="24" height="14"> </td><td align="left">{text}</td></tr>')
    what = "|chain|" if graph.granularity == "scalar" else "‖chain‖"
    notes = [
        "edge value → result: ∂result/∂value = rule = local",
        f'<font color="{MUTED}">chain = upstream × local (the gradient it carries)</font>',
        "grad = ∂output/∂value = sum of its outgoing chains",
        f"edge width ∝ log {what}",
        f'<font color="{MUTED}">dashed grey: no gradient flows</font>',
        f'<font color="{BAD}">red: NaN or inf</font> · <font color="{NONDIFF}">⚠ not differentiable</font>',
    ]
    if graph.wrt is not None:
        notes.append(f'<font color="{TANGENT}">∂·/∂{_html(graph.wrt)} (forward mode) = sum of the shares, '
                     f"local × ∂input/∂{_html(graph.wrt)}, on its incoming edges</font>")
    rows += [f'<tr><td colspan="2" align="left">{n}</td></tr>' for n in notes]
    table = f'<table border="0" cellborder="0" cellspacing="2" cellpadding="1">{"".join(rows)}</table>'
    return [f'  legend [shape=box, style="rounded", color="{FADED}", fontsize=9, label=<{table}>];',
            f"  n{anchor} -> legend [style=invis];"]


def _number(v: Any) -> str:
    text = _html(fmt.value(v))
    return text if fmt.finite(v) else f'<font color="{BAD}"><b>{text}</b></font>'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in attrs.items())


def _html(text: str) -> str:
    """User text inside an HTML-like label: markup characters as entities, line breaks as spaces."""
    return html.escape(" ".join(str(text).split()), quote=True)
