"""How long `explain` takes on a graph with 2^25 paths: trace, count by dynamic programming, list 20.

Run: python bench/explain_paths.py [DIAMONDS]   (default 25 diamonds: 33,554,432 paths)
"""
from __future__ import annotations

import itertools
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from gradviz import trace_file
from gradviz.inputs import inputs
from gradviz.paths import explain


def main(diamonds: int = 25) -> None:
    source = textwrap.dedent(f"""
        x = 1.0

        def forward(x):
            for _ in range({diamonds}):
                left = 0.5 * x
                right = 0.5 * x
                x = left + right
            return x
    """)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "diamonds.py"
        path.write_text(source)
        t0 = time.perf_counter()
        graph = trace_file(path, granularity="scalar")
        t1 = time.perf_counter()
        ex = explain(graph, inputs(graph, "x")[0])
        t2 = time.perf_counter()
        listed = list(itertools.islice(ex.paths, 20))
        t3 = time.perf_counter()
    print(f"{diamonds} diamonds: {len(graph.nodes)} nodes, {ex.n_paths:,} paths, {len(listed)} listed")
    print(f"trace + backward {1e3 * (t1 - t0):.1f} ms, count {1e3 * (t2 - t1):.2f} ms, "
          f"list 20 {1e3 * (t3 - t2):.2f} ms")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
