"""The terminal view: forward table, backward table (in the order backward visits the edges), gradients."""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..graph import Graph
from ..rounding import magnitudes
from . import format as fmt

MAX_ROWS = 200  # a table longer than this shows its first rows and says how many it left out


def forward_table(graph: Graph) -> Table:
    tensor = graph.granularity == "tensor"
    t = Table(title="Forward pass", title_justify="left", expand=False)
    t.add_column("node", overflow="fold")
    t.add_column("op")
    if tensor:
        t.add_column("shape")
    t.add_column("inputs", overflow="fold")
    t.add_column("value", justify="right", overflow="fold")
    for n in graph.nodes[:MAX_ROWS]:
        op = n.op or n.kind
        inputs = ", ".join(graph.label(e.src) for e in graph.in_edges(n.id))
        row = [_label(graph.label(n.id)), _label(op + (" ⚠" if n.nondiff else ""))]
        if tensor:
            row.append(Text(fmt.shape(n.shape)))
        row += [_label(inputs), _num(n.value)]
        t.add_row(*row)
    _cut(t, len(graph.nodes))
    return t


def backward_table(graph: Graph) -> Table:
    t = Table(title="Backward pass (edges in the order backward visits them; chain = upstream × local)",
              title_justify="left")
    t.add_column("edge", overflow="fold")
    t.add_column("rule", overflow="fold")
    t.add_column("local", justify="right", overflow="fold")
    t.add_column("upstream", justify="right", overflow="fold")
    t.add_column("chain", justify="right", overflow="fold")
    m = magnitudes(graph)
    visited = [k for k in range(len(graph.edges) - 1, -1, -1) if graph.edges[k].chain is not None]
    for k in visited[:MAX_ROWS]:
        e = graph.edges[k]
        t.add_row(_label(f"{graph.label(e.src)} → {graph.label(e.dst)}"), _label(fmt.partial(graph, e)),
                  _num(e.local), _num(e.upstream, m.grad[e.dst]), _num(e.chain, m.chain[k]))
    _cut(t, len(visited))
    return t


def gradient_table(graph: Graph) -> Table:
    out = fmt.value(graph.output_value)
    t = Table(title=f"Gradient (output = {out})", title_justify="left")
    t.add_column("leaf")
    t.add_column("value", justify="right", overflow="fold")
    t.add_column("∂output/∂leaf", justify="right", overflow="fold")
    m = magnitudes(graph)
    for name in graph.leaves:
        t.add_row(_label(name), _num(graph.leaf_value(name)), _num(graph.grad(name), m.leaf(graph, name)))
    return t


def tables(graph: Graph) -> Group:
    parts = [forward_table(graph), backward_table(graph), gradient_table(graph)]
    if any(n.nondiff for n in graph.nodes):
        parts.append(Text("⚠ not differentiable at this point (a tie, or exactly at a kink): "
                          "the local partial there is taken as 0, as d max(x, 0)/dx = 0 at x = 0", style="yellow"))
    return Group(*parts)


def print_tables(graph: Graph, console: Console) -> None:
    console.print(tables(graph))


def _label(text: str) -> Text:
    """A label shown exactly as written: Text is never parsed as markup, and control characters are spelled out."""
    return Text(fmt.printable(text))


def _num(v, magnitude=None) -> Text:
    return Text(fmt.value(v, magnitude), style="" if fmt.finite(v) else "bold red")


def _cut(t: Table, total: int) -> None:
    if total > MAX_ROWS:
        t.caption = f"first {MAX_ROWS} of {total} rows; --format json has them all"
