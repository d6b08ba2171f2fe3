"""Peak resident memory per node of `gradviz trace -g scalar`, and of `gradviz render` per byte of JSON: the
two constants of gradviz/budget.py (BYTES_PER_NODE, READ_BYTES_PER_JSON_BYTE) come from this script.

Each command runs as its own process; its peak resident set size is read from the kernel's accounting of
the child (getrusage(RUSAGE_CHILDREN) of a fresh helper process, so no earlier child counts). The cost per
node is the slope between two sizes of the same model, so the fixed cost of a process (Python, NumPy, the
tables) drops out.

    python bench/graph_memory.py            # about two minutes and 2 GB of memory at the default sizes
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MODELS = {
    # a scalar matmul: n·n·n products of two inputs and n·n sums of n terms, three edges per node
    "matmul": ("import numpy as np\nA = np.random.default_rng(0).standard_normal(({n}, {n}))\n"
               "B = np.random.default_rng(1).standard_normal(({n}, {n}))\n\n\ndef forward(A=A, B=B):\n"
               "    return A @ B\n", lambda n: n ** 3 + n * n),
    # a chain of tanh, one edge per node
    "chain": ("import numpy as np\n\n\ndef forward(x=0.5):\n    for _ in range({n}):\n        x = np.tanh(x)\n"
              "    return x\n", lambda n: n + 1),
    # one sum over n leaves, one edge per node
    "wide sum": ("import numpy as np\n\n\ndef forward(x=np.linspace(-1, 1, {n})):\n    return np.sum(x)\n",
                 lambda n: n + 1),
}
SIZES = {"matmul": (60, 120), "chain": (200_000, 600_000), "wide sum": (300_000, 1_500_000)}
JSON_SIZES = (30, 60)


def peak(argv: list[str]) -> tuple[int, float]:
    """(peak resident bytes, wall seconds) of one command, run by a fresh helper so only it is counted."""
    helper = ("import resource, subprocess, sys, time\nt = time.perf_counter()\n"
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, time.perf_counter() - t)\n")
    out = subprocess.run([sys.executable, "-c", helper, *argv], check=True, capture_output=True, text=True).stdout
    rss, wall = out.split()
    return int(rss), float(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    gradviz = [sys.executable, "-m", "gradviz"]
    slopes = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (source, count) in MODELS.items():
            points = []
            for n in SIZES[name]:
                model = folder / f"{name.replace(' ', '_')}_{n}.py"
                model.write_text(source.format(n=n))
                rss, wall = peak([*gradviz, "trace", str(model), "-g", "scalar", "--no-table", "--out-dir",
                                  str(folder), "--max-graph-nodes", str(10 ** 9)])
                points.append((count(n), rss))
                print(f"{name:9} {count(n):>11,} nodes  trace: peak {rss / 2**20:7.0f} MiB  {wall:6.1f} s")
            (n0, r0), (n1, r1) = points
            slopes[name] = (r1 - r0) / (n1 - n0)
        points = []
        for n in JSON_SIZES:  # writing JSON takes several kB per node: smaller graphs than above
            model = folder / f"matmul_{n}.py"
            model.write_text(MODELS["matmul"][0].format(n=n))
            saved = folder / f"matmul_{n}.json"
            subprocess.run([*gradviz, "trace", str(model), "-g", "scalar", "--no-table", "-f", "json", "-o",
                            str(saved), "--max-graph-nodes", str(10 ** 9)], check=True, stdout=subprocess.DEVNULL)
            rss, wall = peak([*gradviz, "render", str(saved), "-f", "none", "--max-graph-nodes", str(10 ** 9)])
            size = saved.stat().st_size
            points.append((size, rss))
            print(f"render of {size / 2**20:5.0f} MiB of JSON: peak {rss / 2**20:5.0f} MiB  {wall:6.1f} s")
        (s0, r0), (s1, r1) = points
        read_ratio = (r1 - r0) / (s1 - s0)
    print(json.dumps({"bytes per node (slope)": {k: round(v) for k, v in slopes.items()},
                      "render: bytes per byte of JSON (slope)": round(read_ratio, 1)}, indent=1))


if __name__ == "__main__":
    main()
