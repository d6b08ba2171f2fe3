"""The annotated graph as a Mermaid flowchart inside a Markdown code block, which GitHub draws in place.

The same words and numbers as the DOT figure and the tables. Labels are quoted Mermaid strings; every
character that could end a string, start markup or an entity is written as a Mermaid entity (`#34;`).
"""
from __future__ import annotations

from ..errors import GradvizError
from ..graph import Graph
from ..rounding import magnitudes
from . import format as fmt
from .dot import BAD, EDGE, FADED, RANKDIRS, STYLES, WRT, ZERO, _magnitude, wrt_edges

# kind: Mermaid node shape brackets
SHAPES = {"leaf": ("[", "]"), "const": ("[/", "/]"), "op": ("([", "])"), "output": ("((", "))")}
_UNSAFE = set('"#&<>|{}`;\\')


def to_mermaid(graph: Graph, rankdir: str = "LR", wrt: str | None = None) -> str:
    """A ```mermaid block of the graph; `wrt` names a leaf whose paths to the output are highlighted."""
    if rankdir not in RANKDIRS:
        raise GradvizError(f"--rankdir {rankdir}: choose LR (left to right) or TB (top to bottom)")
    on_path = wrt_edges(graph, wrt) if wrt is not None else None
    outputs = set(graph.output_ids())
    m = magnitudes(graph)
    lines = ["```mermaid", f"flowchart {rankdir}"]
    kinds: dict[str, list[str]] = {k: [] for k in STYLES}
    for node in graph.nodes:
        kind = "output" if node.id in outputs else node.kind
        kinds[kind].append(f"n{node.id}")
        head = graph.label(node.id) + (f" ({node.op})" if node.kind == "op" else "")
        if graph.granularity == "tensor":
            head += f" {fmt.shape(node.shape)}"
        rows = [head, f"value = {fmt.value(node.value, m.value[node.id])}"]
        if node.kind != "const":
            rows.append(f"grad = {fmt.value(node.grad, m.grad[node.id])}")
        if node.nondiff:
            rows.append("⚠ not differentiable here")
        left, right = SHAPES[kind]
        lines.append(f"  n{node.id}{left}{_label(rows)}{right}")
    styles = []
    for i, edge in enumerate(graph.edges):
        if graph.nodes[edge.src].kind == "const":
            lines.append(f"  n{edge.src} --> n{edge.dst}")
        else:
            text = _label([fmt.local_line(graph, edge), fmt.chain_line(edge, m.grad[edge.dst], m.chain[i])])
            lines.append(f"  n{edge.src} -->|{text}| n{edge.dst}")
        size = _magnitude(fmt.without_noise(edge.chain, m.chain[i]))
        color = BAD if size == float("inf") else ZERO if size == 0 else EDGE
        if on_path is not None:
            color = (WRT if i in on_path else FADED) if color != BAD else BAD
        dash = ",stroke-dasharray:4 3" if size == 0 else ""
        styles.append(f"  linkStyle {i} stroke:{color}{dash}")
    for kind, (_, _, fill, border, peripheries, _) in STYLES.items():
        lines.append(f"  classDef {kind} fill:{fill},stroke:{border},stroke-width:{peripheries}px,color:#111")
        if kinds[kind]:
            lines.append(f"  class {','.join(kinds[kind])} {kind}")
    lines += styles
    lines.append("```")
    return "\n".join(lines) + "\n"


def _label(rows: list[str]) -> str:
    """A quoted Mermaid string: rows joined by <br/>, every unsafe character as an entity."""
    return '"' + "<br/>".join(_escape(r) for r in rows) + '"'


def _escape(text: str) -> str:
    return "".join(f"#{ord(c)};" if c in _UNSAFE else c for c in fmt.printable(" ".join(text.split())))
