"""The annotated graph as Graphviz DOT source: what the SVG, PNG and PDF figures show.

Every value is a node with its label, value and gradient; every edge carries its local partial (the rule
with the graph's labels, and its number) over its chain product (upstream × local), the same text as the
tables. Shape and colour tell leaves, constants, operations and the output apart; edge width follows
|chain| on a log scale so vanishing and exploding paths stand out. All user text goes through `_html`:
labels are HTML-like, so `<`, `>`, `&` and quotes are entities and nothing reaches Graphviz raw.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import GradvizError
from ..graph import Edge, Graph
from ..rounding import magnitudes
from . import format as fmt
from .clusters import Plan, plan

# one family: the embedded renderer has metrics for Helvetica (a list falls back to Times' narrower ones and
# text overflows its box); SVG viewers and system Graphviz map it to their sans-serif
FONT = "Helvetica"
WARN = "▲"  # the figure's mark of a point where a derivative does not exist (⚠ is in no font of the embedded renderer)
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


def to_dot(graph: Graph, rankdir: str = "LR", wrt: str | None = None, collapse: bool = False) -> str:
    """DOT source for the annotated graph; `wrt` names a leaf whose paths to the output are highlighted.

    The operations of each method call of an object are drawn in a box named after it (`dense1`); calls of
    one layer in a loop are drawn once, "× N". collapse draws each such box as one node, as a textbook
    draws a layer: its inputs, its outputs and the gradients that cross its border."""
    if rankdir not in RANKDIRS:
        raise GradvizError(f"--rankdir {rankdir}: choose LR (left to right) or TB (top to bottom)")
    on_path = wrt_edges(graph, wrt) if wrt is not None else None
    path_nodes = {graph.edges[i].src for i in on_path or ()} | {graph.edges[i].dst for i in on_path or ()}
    outputs = set(graph.output_ids())
    title = (f"{graph.source or 'graph'} · {graph.granularity} granularity · "
             f"output = {fmt.value(graph.output_value, magnitudes(graph).output_value(graph))}")
    if graph.wrt is not None:
        title += f" · forward mode: the tangent ∂·/∂{graph.wrt} of every node"
    elif wrt is not None:
        title += f" · paths to {wrt} highlighted"
    layers = plan(graph)
    if collapse:
        title += " · layers collapsed"
    lines = [
        "digraph gradviz {",
        f'  graph [rankdir={rankdir}, fontname="{FONT}", fontsize=12, labelloc=t, ordering=in, '
        "nodesep=0.25, ranksep=0.5, "
        f"label=<<b>{_html(title)}</b>>];",
        f'  node [fontname="{FONT}", fontsize=11, margin="0.08,0.04"];',
        # decorate: a thin line joins each label to its edge, so siblings' labels cannot be mistaken
        f'  edge [fontname="{FONT}", fontsize=10, color="{EDGE}", arrowsize=0.7, decorate=true];',
    ]
    if collapse:
        return "\n".join(lines + _collapsed(graph, layers, on_path) + _legend(graph, None) + ["}"]) + "\n"
    boxes: list[list[str]] = [[] for _ in layers.blocks]
    for node in graph.nodes:
        if layers.shown[node.id] != node.id:
            continue
        kind = "output" if node.id in outputs else node.kind
        shape, style, fill, border, peripheries, _ = STYLES[kind]
        attrs = {"shape": shape, "style": style, "fillcolor": fill, "color": border, "peripheries": str(peripheries)}
        if node.nondiff or node.op == "cut":
            attrs.update(color=NONDIFF, penwidth="2")
        if on_path is not None and node.id in path_nodes:
            attrs.update(color=WRT, penwidth="2.5")
        line = f"  n{node.id} [{_attrs(attrs)}, label=<{_node_label(graph, node.id)}>];"
        b = layers.block_of.get(node.id)
        (lines if b is None else boxes[b]).append(line)
    for b, (block, members) in enumerate(zip(layers.blocks, boxes, strict=True)):
        lines += [f"  subgraph cluster_{b} {{",
                  f'    style="rounded,dashed"; color="{MUTED}"; fontcolor="{MUTED}"; '
                  f"label=<{_block_title(block, True)}>;"]
        lines += ["  " + m for m in members] + ["  }"]
    for src, dst, i in layers.drawn_edges(graph):
        edge = graph.edges[i]
        m = magnitudes(graph)
        # width by what the edge carries: the chain, or in forward mode the tangent share
        chain = (fmt.without_noise(edge.chain, m.chain[i]) if graph.wrt is None
                 else fmt.without_noise(edge.tangent, m.share[i]))
        lines.append(f"  n{src} -> n{dst} [{_attrs(_edge_style(chain, on_path, i))}, "
                     f"label=<{_edge_label(graph, i)}>];")
    lines += _legend(graph, layers.shown[max(outputs)])
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
    above = graph.feeding(graph.output_ids())
    return {i for i, e in enumerate(graph.edges) if e.src in below and above[e.src] and above[e.dst]}


def _node_label(graph: Graph, node_id: int) -> str:
    node = graph.nodes[node_id]
    head = f"<b>{_html(graph.label(node_id))}</b>"
    if node.kind == "op":
        head += f' <font color="{MUTED}">{_html(node.op)}</font>'
    if graph.granularity == "tensor":
        head += f' <font color="{MUTED}">{_html(fmt.shape(node.shape))}</font>'
    m = magnitudes(graph)
    rows = [head, f"value = {_number(node.value, m.value[node_id])}"]
    if graph.wrt is not None:  # forward mode: tangents only, no reverse-mode gradients beside them
        if node.tangent is not None:
            rows.append(f'<font color="{TANGENT}">∂{_html(fmt.grouped(graph.label(node_id)))}/∂{_html(graph.wrt)} = '
                        f'{_number(node.tangent, m.tangent[node_id])}</font>')
    elif node.kind != "const":
        rows.append(f"grad = {_number(node.grad, m.grad[node_id])}")
    if node.nondiff:
        rows.append(f'<font color="{NONDIFF}">{WARN} not differentiable here</font>')
    if node.op == "cut":  # the model took this value as a plain number (float(x), an index): a cut
        rows.append(f'<font color="{NONDIFF}">the gradient stops here</font>')
    return "<br/>".join(rows)


def _edge_label(graph: Graph, index: int) -> str:
    edge, m = graph.edges[index], magnitudes(graph)
    if graph.nodes[edge.src].kind == "const":  # a constant only feeds the operation; no gradient to show
        return ""
    line = fmt.local_line(graph, edge)
    head, sep, rest = line.partition(" = ")
    # a long formula breaks after ∂result/∂input, so edge labels stay narrow and the figure compact
    top = f"{_html(head)}<br/>= {_rows(rest)}" if sep and len(line) > 40 else _rows(line)
    if not fmt.finite(edge.local):
        top = f'<font color="{BAD}">{top}</font>'
    if graph.wrt is not None:  # forward mode: this edge's share of its result's tangent, local × the input's
        if edge.tangent is None:
            return top
        share = _rows(fmt.share_line(edge, graph.nodes[edge.src].tangent, m.tangent[edge.src], m.share[index]))
        color = TANGENT if fmt.finite(edge.tangent) else BAD
        return f'{top}<br/><font color="{color}">{share}</font>'
    chain = _rows(fmt.chain_line(edge, m.grad[edge.dst], m.chain[index]))
    if not fmt.finite(edge.chain):
        return f'{top}<br/><font color="{BAD}"><b>{chain}</b></font>'
    return f'{top}<br/><font color="{MUTED}">{chain}</font>'


def _block_title(block, first_call: bool) -> str:
    title = f"<b>{_html(block.name)}</b>"
    if block.repeat > 1:
        title += f" × {block.repeat}"
        if first_call:
            title += f' <font color="{MUTED}">(numbers of the first call)</font>'
    return title


def _collapsed(graph: Graph, layers: Plan, on_path: set[int] | None) -> list[str]:
    """Each block as one node; the edges that cross a block's border, grouped by what they join."""
    outputs = set(graph.output_ids())
    m = magnitudes(graph)
    leaf_of = {}
    if graph.granularity == "scalar":  # an array leaf split into elements is still one input of a layer
        leaf_of = {i: name for name, ref in graph.leaves.items() for i in np.ravel(ref).tolist()}

    def item(node_id: int) -> str:
        b = layers.block_of.get(node_id)
        if b is not None:
            return f"b{b}"
        return f"leaf_{list(graph.leaves).index(leaf_of[node_id])}" if node_id in leaf_of else f"n{node_id}"

    crossing: dict[tuple[str, str], list[int]] = {}
    leaving: dict[int, set[int]] = {}  # block -> the nodes of its last call whose values leave it
    for i, e in enumerate(graph.edges):
        b_src, b_dst = layers.block_of.get(e.src), layers.block_of.get(e.dst)
        if b_src is not None and b_src == b_dst:
            continue
        crossing.setdefault((item(e.src), item(e.dst)), []).append(i)
        if b_src is not None:
            leaving.setdefault(b_src, set()).add(e.src)
    for i in outputs:
        if layers.block_of.get(i) is not None:
            leaving.setdefault(layers.block_of[i], set()).add(i)

    lines, drawn = [], set()
    for node in graph.nodes:
        name = item(node.id)
        if name in drawn or node.id in layers.block_of:
            continue
        drawn.add(name)
        kind = "output" if node.id in outputs else node.kind
        shape, style, fill, border, peripheries, _ = STYLES[kind]
        attrs = {"shape": shape, "style": style, "fillcolor": fill, "color": border, "peripheries": str(peripheries)}
        if node.id in leaf_of:
            leaf = leaf_of[node.id]
            value, grad = graph.leaf_value(leaf), graph.grad(leaf)
            label = (f"<b>{_html(leaf)}</b> <font color=\"{MUTED}\">{_html(fmt.shape(np.shape(value)))}</font>"
                     f"<br/>value = {_number(value)}<br/>grad = {_number(grad, m.leaf(graph, leaf))}")
        else:
            label = _node_label(graph, node.id)
        lines.append(f"  {name} [{_attrs(attrs)}, label=<{label}>];")
    for b, block in enumerate(layers.blocks):
        ops = [graph.nodes[i].op for i in block.nodes if graph.nodes[i].kind == "op"]
        steps = " → ".join(op for k, op in enumerate(ops) if k == 0 or ops[k - 1] != op)
        rows = [_block_title(block, False), f'<font color="{MUTED}">{_html(steps)}</font>']
        for i in sorted(leaving.get(b, ()))[:3]:
            node = graph.nodes[i]
            rows.append(f"out {_html(graph.label(i))} {_html(fmt.shape(node.shape))}:<br/>"
                        f"value = {_number(node.value, m.value[i])}, grad = {_number(node.grad, m.grad[i])}")
        border = "output" if outputs & set(block.calls[-1]) else "op"
        _, _, fill, color, peripheries, _ = STYLES[border]
        lines.append(f'  b{b} [shape=box, style="filled", fillcolor="{fill}", color="{color}", '
                     f'peripheries="{peripheries}", label=<{"<br/>".join(rows)}>];')
    for (src, dst), indexes in crossing.items():
        edges = [graph.edges[i] for i in indexes]
        on = None if on_path is None else ({0} if on_path.intersection(indexes) else set())
        if graph.nodes[edges[0].src].kind == "const":  # a constant only feeds the layer: no gradient to show
            lines.append(f"  {src} -> {dst} [{_attrs(_edge_style(edges[0].chain, on, 0))}];")
            continue
        chain = fmt.without_noise(_combined(edges, [e.chain for e in edges]),
                                  _combined(edges, [m.chain[i] for i in indexes]))
        text = (_html(fmt.local_line(graph, edges[0])) + "<br/>") if len(edges) == 1 and not dst.startswith("b") else ""
        what = f"Σ of {len(edges)} chains" if len(edges) > 1 else "chain"
        text += f'<font color="{MUTED}">{what} = {_number(chain)}</font>'
        # highlighted (--wrt) when one of the edges drawn as this one is on a path to the leaf
        lines.append(f"  {src} -> {dst} [{_attrs(_edge_style(chain, on, 0))}, label=<{text}>];")
    return lines


def _combined(edges: list[Edge], chains: list[Any]) -> Any:
    """The chains (or their magnitudes) of edges drawn as one, summed per value they leave (the gradient a
    layer sends back to that input); several values (the elements of a leaf at scalar granularity) side by side."""
    sums: dict[int, Any] = {}
    for e, c in zip(edges, chains, strict=True):
        sums[e.src] = sums.get(e.src, 0.0) + np.asarray(c, dtype=float)
    if len(sums) == 1:
        return next(iter(sums.values()))
    return np.concatenate([np.ravel(v) for v in sums.values()])


def _edge_style(chain: Any, on_path: set[int] | None, index: int) -> dict[str, str]:
    """Width by |chain| (noise already read as 0), grey and dashed when it carries no gradient."""
    size = _magnitude(chain)
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


def _legend(graph: Graph, anchor: int | None) -> list[str]:
    """One small table beside the output (in its rank), out of the graph's way without widening it."""
    rows = []
    for shape, style, fill, border, peripheries, text in STYLES.values():
        rounded = shape != "box" or "rounded" in style
        look = ' style="dashed"' if "dashed" in style else (' style="rounded"' if rounded else "")
        rows.append(f'<tr><td bgcolor="{fill}" color="{border}" border="{peripheries}"{look} fixedsize="true" '
                    f'width="24" height="14"></td><td align="left">{text}</td></tr>')
    bars = "|{}|" if graph.granularity == "scalar" else "‖{}‖"
    if graph.wrt is None:
        notes = [
            "edge value → result: ∂result/∂value = rule = local",
            f'<font color="{MUTED}">chain = upstream × local (the gradient it carries)</font>',
            "grad = ∂output/∂value = sum of its outgoing chains",
            f"edge width grows with log {bars.format('chain')}",
            f'<font color="{MUTED}">dashed grey: no gradient flows</font>',
        ]
    else:
        wrt = _html(graph.wrt)
        notes = [
            "edge value → result: ∂result/∂value = rule = local",
            f'<font color="{TANGENT}">share = local × ∂value/∂{wrt} (forward mode)</font>',
            f'<font color="{TANGENT}">∂result/∂{wrt} = sum of the shares on its incoming edges</font>',
            f"edge width grows with log {bars.format('share')}",
            f'<font color="{MUTED}">dashed grey: does not depend on {wrt}</font>',
        ]
    notes.append(f'<font color="{BAD}">red: NaN or inf</font> · '
                 f'<font color="{NONDIFF}">{WARN} not differentiable</font>')
    rows += [f'<tr><td colspan="2" align="left">{n}</td></tr>' for n in notes]
    table = f'<table border="0" cellborder="0" cellspacing="2" cellpadding="1">{"".join(rows)}</table>'
    legend = [f'  legend [shape=box, style="rounded", color="{FADED}", fontsize=9, label=<{table}>];']
    return legend if anchor is None else legend + [f"  {{rank=same; n{anchor}; legend}}"]


def _rows(text: str) -> str:
    """Text for a label with a small matrix in it one row per line, so labels stay narrow."""
    return "<br/>".join(_html(row) for row in text.split("\n"))


def _number(v: Any, magnitude: Any = None) -> str:
    """A value for a label; a small matrix one row per line."""
    text = _rows(fmt.value(v, magnitude))
    return text if fmt.finite(v) else f'<font color="{BAD}"><b>{text}</b></font>'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in attrs.items())


# html.escape's entities, without importing the html module (its table of 2,231 named entities: 1 ms a start)
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def _html(text: str) -> str:
    """User text inside an HTML-like label: markup characters as entities, line breaks as spaces, other
    control characters spelled out (\\x1b), since DOT and XML cannot hold them."""
    return fmt.printable(" ".join(str(text).split())).translate(_ENTITIES)
