"""`gradviz ops`: the table of operations, grouped by family, as a rich table."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..ops import families


def ops_table() -> Table:
    t = Table(title="Supported operations (local partial of the result with respect to each input)",
              title_justify="left")
    t.add_column("op")
    t.add_column("written as", overflow="fold")
    t.add_column("rule", overflow="fold")
    for family, entries in families().items():
        t.add_section()
        t.add_row(Text(family, style="bold"), Text(""), Text(""))
        for entry in entries:
            rule = "\n".join(entry.rules) + (f"\n({entry.note})" if entry.note else "")
            t.add_row(Text(entry.name), Text(", ".join(entry.spellings())), Text(rule))
    t.caption = ("No gradient (run on plain values): comparisons, argmax/argmin/argsort, isnan. "
                 "At a tie or a kink the local partial is 0 and the node is flagged.")
    return t
