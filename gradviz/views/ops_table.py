"""`gradviz ops`: the table of operations, as a rich table."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..ops import OPS


def ops_table() -> Table:
    t = Table(title="Supported operations (local partial of the result with respect to each input)",
              title_justify="left")
    t.add_column("op")
    t.add_column("written as", overflow="fold")
    t.add_column("rule", overflow="fold")
    for op in OPS.values():
        t.add_row(Text(op.name), Text(", ".join(op.syntax)), Text("\n".join(op.rules)))
    t.caption = ("No gradient (run on plain values): comparisons, argmax/argmin, np.sign, isnan. "
                 "At a tie or a kink the local partial is 0 and the node is flagged.")
    return t
