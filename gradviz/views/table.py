"""The terminal view: forward table, backward table (in the order backward visits the edges), gradients."""
from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
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
    rich's own shrinking narrows the widest columns first, below their widest word, and then cuts it.

    With the widths known, the lines are made here, as rich's Table would make them (same characters, same
    styles): rich measured and laid out every cell through its general machinery, about half of
    `gradviz trace`'s own time for the neuron's three tables. Only a terminal narrower than the widest words
    leaves the table to rich."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.cells = [[Text(column.header), *column.cells] for column in table.columns]

    def widths(self, max_width: int) -> list[int] | None:
        """Each column's width in a table max_width wide; None when even its widest words do not fit."""
        room = max_width - 2 * (len(self.cells) - 1)  # two spaces between columns
        words, lines = [], []
        for column in self.cells:
            rows = [line for cell in column for line in cell.plain.splitlines()]
            words.append(max((cell_len(w) for row in rows for w in row.split()), default=1))
            lines.append(max((cell_len(row) for row in rows), default=1))
        if sum(lines) <= room:
            return lines
        if room < sum(words):
            return None
        # the widest level every column may grow to (from its widest word up to its longest line)
        level = max(level for level in range(max(lines) + 1)
                    if sum(min(line, max(word, level)) for word, line in zip(words, lines, strict=True)) <= room)
        return [min(line, max(word, level)) for word, line in zip(words, lines, strict=True)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        if widths is None:
            yield self.table
        else:
            yield from _draw(self.table, self.cells, widths, console, options)


def _draw(table: Table, cells: list[list[Text]], widths: list[int], console: Console,
          options: ConsoleOptions) -> RenderResult:
    """The segments rich's Table gives a table of _table's style (no box, one space of padding inside
    the edges, bold header, bold title, caption below) whose columns are these widths."""
    last = len(widths) - 1
    pads = [(0 if i == 0 else 1, 0 if i == last else 1) for i in range(len(widths))]
    annotation = options.update(width=sum(widths) + 2 * last, highlight=False, height=None)
    yield from console.render(table.title, annotation.update(justify="left"))
    header = console.get_style(table.header_style)
    justify = [column.justify for column in table.columns]
    overflow = [column.overflow for column in table.columns]
    for index, row in enumerate(zip(*cells, strict=True)):
        style = header if index == 0 else None
        drawn = []
        for k, (cell, width, (left, right)) in enumerate(zip(row, widths, pads, strict=True)):
            lines = _cell_lines(cell, width, justify[k], overflow[k], console)
            drawn.append([[*([Segment(" " * left)] if left else []), *line, *([Segment(" " * right)] if right else [])]
                          for line in lines])
        height = max(map(len, drawn))
        for k, (lines, width, (left, right)) in enumerate(zip(drawn, widths, pads, strict=True)):
            blank = [[Segment(" " * (left + width + right))]] * (height - len(lines))
            drawn[k] = blank + lines if index == 0 else lines + blank  # the header sits on the bottom line
        for n in range(height):
            for lines in drawn:
                yield from (Segment.apply_style(lines[n], style) if style else lines[n])
            yield Segment.line()
    if table.caption:
        yield from console.render(Text(table.caption, style=table.caption_style or "table.caption"),
                                  annotation.update(justify=table.caption_justify))


def _cell_lines(cell: Text, width: int, justify: str, overflow: str, console: Console) -> list[list[Segment]]:
    """A cell's lines, each `width` wide, as rich's Text would wrap, justify and render it."""
    plain = cell.plain
    if not cell.spans and "\n" not in plain and "\t" not in plain and cell_len(plain) <= width:
        if justify == "right":
            plain = plain.rstrip()
            line = " " * (width - cell_len(plain)) + plain
        else:
            line = plain + " " * (width - cell_len(plain))
        return [[Segment(line, console.get_style(cell.style) if cell.style else None)]]
    wrapped = cell.wrap(console, width, justify=justify, overflow=overflow)
    return list(Segment.split_and_crop_lines(Text("\n").join(wrapped).render(console), width, pad=True,
                                           include_new_lines=False))


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
