"""The terminal view: forward table, backward table (in the order backward visits the edges), gradients."""
from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from ..graph import Graph
from ..rounding import magnitudes
from . import format as fmt

MAX_ROWS = 200  # a table longer than this shows its first rows and says how many it left out


def forward_table(graph: Graph) -> Table:
    tensor = graph.granularity == "tensor"
    m = magnitudes(graph)
    t = _table("Forward pass")
    t.add_column("node")
    t.add_column("op" + (" shape" if tensor else ""))
    t.add_column("inputs")
    t.add_column("value", justify="right")
    for n in graph.nodes[:MAX_ROWS]:
        op = (n.op or n.kind) + (" ⚠" if n.nondiff else "") + (f" {fmt.shape(n.shape)}" if tensor else "")
        inputs = ", ".join(graph.label(e.src) for e in graph.in_edges(n.id))
        t.add_row(_label(graph.label(n.id)), Text(op), _label(inputs), _num(n.value, m.value[n.id]))
    _cut(t, len(graph.nodes))
    return t


def backward_table(graph: Graph) -> Table:
    """One row per edge: which edge, its local partial (the rule with the graph's names, then its number),
    the upstream gradient and their product, the chain."""
    t = _table("Backward pass (edges in the order backward visits them; chain = upstream × local)")
    t.add_column("edge: input → result")
    t.add_column("local ∂result/∂input")
    t.add_column("upstream", justify="right")
    t.add_column("chain", justify="right")
    m = magnitudes(graph)
    visited = [k for k in range(len(graph.edges) - 1, -1, -1) if graph.edges[k].chain is not None]
    for k in visited[:MAX_ROWS]:
        e = graph.edges[k]
        t.add_row(_label(f"{graph.label(e.src)} → {graph.label(e.dst)}"),
                  Text(fmt.breakable(fmt.local_rule(graph, e))),  # labels in it are printable already
                  _num(e.upstream, m.grad[e.dst]), _num(e.chain, m.chain[k]))
    _cut(t, len(visited))
    return t


def _table(title: str) -> Table:
    """A table without rules between columns, so the width goes to names and numbers. The title is Text, never
    markup: an output [nan, 0] in it would read as a style tag and vanish."""
    return Table(title=Text(title, style="bold"), title_justify="left", box=None, padding=(0, 1), pad_edge=False,
                 header_style="bold")


class Fitted:
    """A table whose columns are sized so that no word is cut: each column at least as wide as its widest
    word (a name, a number), and the rest of the width shared out evenly up to each one's longest line.
    rich's own shrinking narrows the widest columns first, below their widest word, and then cuts it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        columns = self.table.columns
        room = options.max_width - 2 * (len(columns) - 1)  # two spaces between columns
        words, lines = [], []
        for column in columns:
            texts = [str(column.header)] + [str(c) for c in column.cells]
            rows = [line for text in texts for line in text.splitlines()]
            words.append(max((cell_len(w) for row in rows for w in row.split()), default=1))
            lines.append(max((cell_len(row) for row in rows), default=1))
        if room >= sum(words) and sum(lines) > room:
            # the widest level every column may grow to (from its widest word up to its longest line)
            level = max(level for level in range(max(lines) + 1)
                        if sum(min(line, max(word, level)) for word, line in zip(words, lines, strict=True)) <= room)
            for column, word, line in zip(columns, words, lines, strict=True):
                column.width = min(line, max(word, level))
        yield self.table


def gradient_table(graph: Graph) -> Table:
    m = magnitudes(graph)
    out = fmt.value(graph.output_value, m.output_value(graph))
    t = _table(f"Gradient (output = {out})")
    t.add_column("leaf")
    t.add_column("value", justify="right")
    t.add_column("∂output/∂leaf", justify="right")
    for name in graph.leaves:
        t.add_row(_label(name), _num(graph.leaf_value(name)), _num(graph.grad(name), m.leaf(graph, name)))
    return t


def tables(graph: Graph) -> Group:
    parts = [Fitted(forward_table(graph)), Fitted(backward_table(graph)), Fitted(gradient_table(graph))]
    for rule, labels in graph.nondiff_rules().items():
        at = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
        parts.append(Text(f"⚠ {at}: not differentiable there (a tie, or exactly at a kink); the local partial "
                          f"is taken as 0, as the rule {rule} gives", style="yellow"))
    why = graph.no_leaf_reason()
    if why:
        parts.append(Text(why, style="yellow"))
    spaced = [part for table in parts[:3] for part in (table, Text(""))] + parts[3:]  # a blank line after each table
    return Group(*spaced)


def print_tables(graph: Graph, console: Console) -> None:
    console.print(tables(graph))


def _label(text: str) -> Text:
    """A label shown exactly as written (with spaces around its operators, where a line may break): Text is
    never parsed as markup, and control characters are spelled out."""
    return Text(fmt.breakable(fmt.printable(text)))


def _num(v, magnitude=None) -> Text:
    return Text(fmt.value(v, magnitude), style="" if fmt.finite(v) else "bold red")


def _cut(t: Table, total: int) -> None:
    if total > MAX_ROWS:
        t.caption = f"first {MAX_ROWS} of {total} rows; --format json has them all"
