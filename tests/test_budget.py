"""The graph-size budget (gradviz/budget.py): a trace that would pass the limit stops at the operation, before
the memory is spent, with one line at the model's line; a graph that fits still traces.

The large requests run as their own processes, whose processor time and peak resident memory are read
from the kernel's accounting of that child (getrusage(RUSAGE_CHILDREN)), not assumed. The time asserted is
the processor time the child spent (user + system), not the wall time: on a machine shared with other jobs
the wall time measures the neighbours (the same refusal took 0.9 s of wall time at a load of 2 and 3 s at a
load of 7 on 2 cores, for 0.9 s of processor time both times).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradviz
from gradviz import budget
from gradviz.budget import Budget, GraphTooLarge

ROOT = Path(__file__).resolve().parent.parent
MATMUL = """import numpy as np
N = {n}
A = np.random.default_rng(0).standard_normal((N, N))
B = np.random.default_rng(1).standard_normal((N, N))


def forward(A=A, B=B):
    return A @ B
"""
LINE = 8  # the line of `return A @ B` above
MB = 2**20


def matmul(folder: Path, n: int) -> Path:
    path = folder / f"mm{n}.py"
    path.write_text(MATMUL.format(n=n))
    return path


# Runs the command and reports its peak resident memory and processor time. The command is started from this
# small helper rather than from pytest: Linux counts a child's peak memory from the process it was forked
# from, and pytest's own (after a large test) would be counted as the child's.
HELPER = """import resource, subprocess, sys
with open("stderr.txt", "wb") as err:
    code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(code, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)  # ru_maxrss is in kB on Linux
"""


def measured(argv: list[str], cwd: Path) -> tuple[int, str, float, int]:
    """(exit status, stderr, processor seconds, peak resident bytes) of one command run as its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    out = subprocess.run([sys.executable, "-c", HELPER, *argv], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True).stdout
    code, cpu, rss = out.split()
    return int(code), (cwd / "stderr.txt").read_text(), float(cpu), int(rss)


def refused_fast(argv: list[str], cwd: Path) -> str:
    """The message of a command that must fail with status 2 in under 2 s and 500 MB: the point is that it
    fails before allocating, not after."""
    code, err, cpu, rss = measured(argv, cwd)
    assert code == 2, err
    assert cpu < 2.0, (cpu, err)
    assert rss < 500 * MB, (rss / MB, err)
    assert err.count("\n") == 1, err
    return err


CLI_600 = {
    "trace": ["trace", "mm600.py", "-g", "scalar"],
    "check": ["check", "mm600.py", "-g", "scalar"],
    "explain": ["explain", "mm600.py", "--wrt", "A[0,0]"],
    "forward mode": ["trace", "mm600.py", "-g", "scalar", "--mode", "forward", "--wrt", "A[0,0]"],
    "steps": ["trace", "mm600.py", "-g", "scalar", "--steps"],
}


@pytest.mark.parametrize("command", CLI_600)
def test_a_600_by_600_scalar_matmul_is_refused_at_its_line_before_allocating(tmp_path, command):
    matmul(tmp_path, 600)
    err = refused_fast([sys.executable, "-m", "gradviz", *CLI_600[command]], tmp_path)
    # 600·600·600 products and 600·600 sums, on top of the 2·600·600 leaf elements
    assert err.startswith(f"gradviz: error: mm600.py:{LINE}: matmul (600, 600) @ (600, 600) split into "
                          f"216,000,000 products and 360,000 sums would add 216,360,000 nodes to the 720,000 "
                          f"traced so far, about 217 GB of memory in all, over the limit of "), err
    todo = ("explain splits every array into numbers: give it a smaller input (--set), or see the gradients with "
            "gradviz trace --granularity tensor" if command == "explain" else
            "use --granularity tensor or auto, or a smaller input")
    assert err.endswith(f"free, at ~1 kB per node): {todo} (--max-graph-nodes N sets the limit)\n"), err
    assert not (tmp_path / "out").exists()  # nothing written, not even a partial file


@pytest.mark.parametrize("call", ['gradviz.trace_file("mm600.py", granularity="scalar")',
                                  'gradviz.trace(m.forward, granularity="scalar")'])
def test_the_python_api_refuses_it_the_same_way(tmp_path, call):
    matmul(tmp_path, 600)
    script = ("import sys\nimport gradviz\nsys.path.insert(0, '.')\nimport mm600 as m\n"
              f"try:\n    {call}\nexcept gradviz.GraphTooLarge as exc:\n"
              "    sys.stderr.write(str(exc) + '\\n')\n    sys.exit(2)\n")
    err = refused_fast([sys.executable, "-c", script], tmp_path)
    assert err.startswith(f"mm600.py:{LINE}: matmul (600, 600) @ (600, 600) split into 216,000,000 products "
                          f"and 360,000 sums would add 216,360,000 nodes"), err


def test_a_100_by_100_scalar_matmul_still_traces(tmp_path):
    # about a million nodes: 1,000,000 products and 10,000 sums (and 20,000 leaves), some seconds
    path = matmul(tmp_path, 100)
    graph = gradviz.trace_file(path, granularity="scalar")
    assert graph.granularity == "scalar"
    assert len(graph.nodes) == 100**3 + 100**2 + 2 * 100**2
    A = np.random.default_rng(0).standard_normal((100, 100))
    B = np.random.default_rng(1).standard_normal((100, 100))
    # ∂Σ(AB)/∂A[i,k] = Σ_j B[k,j] and ∂Σ(AB)/∂B[k,j] = Σ_i A[i,k]
    np.testing.assert_allclose(graph.grad("A"), np.tile(B.sum(axis=1), (100, 1)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(graph.grad("B"), np.tile(A.sum(axis=0)[:, None], (1, 100)), rtol=1e-12, atol=1e-12)


def test_max_graph_nodes_lowers_the_limit_below_the_100_by_100_matmul(tmp_path):
    matmul(tmp_path, 100)
    err = refused_fast([sys.executable, "-m", "gradviz", "trace", "mm100.py", "-g", "scalar",
                        "--max-graph-nodes", "500000"], tmp_path)
    assert err == (f"gradviz: error: mm100.py:{LINE}: matmul (100, 100) @ (100, 100) split into 1,000,000 products "
                   f"and 10,000 sums would add 1,010,000 nodes to the 20,000 traced so far, about 1.0 GB of memory "
                   f"in all, over --max-graph-nodes 500,000: use --granularity tensor or auto, or a smaller input "
                   f"(--max-graph-nodes N sets the limit)\n")


def test_max_graph_nodes_in_the_python_api(tmp_path):
    path = matmul(tmp_path, 20)  # 8,000 products, 400 sums, 800 leaves
    with pytest.raises(GraphTooLarge, match=r"mm20.py:8: .* would add 8,400 nodes to the 800 traced so far"):
        gradviz.trace_file(path, granularity="scalar", max_graph_nodes=9_199)
    assert len(gradviz.trace_file(path, granularity="scalar", max_graph_nodes=9_200).nodes) == 9_200


def test_auto_still_draws_the_600_by_600_matmul_as_tensors(tmp_path):
    graph = gradviz.trace_file(matmul(tmp_path, 600), granularity="auto")
    assert graph.granularity == "tensor"
    B = np.random.default_rng(1).standard_normal((600, 600))
    np.testing.assert_allclose(graph.grad("A"), np.tile(B.sum(axis=1), (600, 1)), rtol=1e-9)


def test_a_model_catching_exceptions_cannot_swallow_the_refusal():
    def forward(x):
        try:
            y = np.sum(x * x)  # 50 products (the 51st node on), then one sum
        except Exception:
            y = np.sum(x)  # a different graph: never to be returned silently
        return y

    with pytest.raises(GraphTooLarge, match=r"mul of \(50,\) and \(50,\) would add 50 nodes to the 50 traced"):
        gradviz.trace(forward, granularity="scalar", max_graph_nodes=60, x=np.ones(50))


def test_a_leaf_too_large_is_refused_at_the_function():
    def forward(x):
        return np.sum(x)

    line = forward.__code__.co_firstlineno
    with pytest.raises(GraphTooLarge, match=rf"test_budget.py:{line}: the leaf x \(300, 300\) would make 90,000 nodes, "
                                            r"about 90 MB of memory, over --max-graph-nodes 1,000: use --granularity"):
        gradviz.trace(forward, granularity="scalar", max_graph_nodes=1000, x=np.ones((300, 300)))


def test_the_default_limit_is_half_the_free_memory_at_the_measured_cost_per_node(monkeypatch):
    assert budget.BYTES_PER_NODE == 1000
    assert budget.default_max_nodes(free=8 * 10**9) == 4_000_000
    monkeypatch.setattr(budget, "free_memory", lambda: 2 * 10**9)
    assert Budget().limit == 1_000_000
    with pytest.raises(budget.OverBudget, match=r"over the limit of 1,000,000 nodes \(half of the 2.0 GB of memory "
                                                r"free, at ~1 kB per node\)"):
        Budget().check(1_000_001, 1, "add of (1,) and (1,)", scalar=True)
    Budget().check(1_000_000, 1, "add of (1,) and (1,)", scalar=True)


def test_free_memory_reads_what_the_system_has_available():
    free = budget.free_memory()
    if Path("/proc/meminfo").exists():
        text = Path("/proc/meminfo").read_text()
        kb = int(next(line for line in text.splitlines() if line.startswith("MemAvailable:")).split()[1])
        assert abs(free - kb * 1024) < 2**30  # read a moment apart: other processes allocate meanwhile
    assert free > 0


def test_render_refuses_a_saved_graph_too_large_to_read_without_reading_it(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(10**12)  # a sparse terabyte: no disk used, and reading it would take 7 TB of memory
    err = refused_fast([sys.executable, "-m", "gradviz", "render", "huge.json"], tmp_path)
    assert err.startswith("gradviz: error: huge.json: reading this 1.0 TB graph would take about 7.0 TB of "
                          "memory, as much as a graph of 7,000,000,000 nodes, over the limit of "), err
    assert not (tmp_path / "out").exists()


def test_render_takes_max_graph_nodes_and_still_draws_what_fits(tmp_path):
    path = matmul(tmp_path, 3)
    saved = tmp_path / "mm3.json"
    gradviz.trace_file(path, granularity="scalar").render(saved)
    size = saved.stat().st_size
    nodes = -(-size * 7 // 1000)  # 7 B of memory per byte of JSON read, 1000 B per node, rounded up
    low = [sys.executable, "-m", "gradviz", "render", "mm3.json", "-f", "dot", "--max-graph-nodes"]
    code, err, _, _ = measured(low + [str(nodes - 1)], tmp_path)
    assert (code, err) == (2, f"gradviz: error: mm3.json: reading this {size / 1e3:.0f} kB graph would take about "
                              f"{size * 7 / 1e3:.0f} kB of memory, as much as a graph of {nodes:,} nodes, over "
                              f"--max-graph-nodes {nodes - 1:,}: raise --max-graph-nodes if this machine can hold it\n")
    code, err, _, _ = measured(low + [str(nodes)], tmp_path)
    assert (code, err) == (0, "")
    assert "digraph" in (tmp_path / "out" / "mm3.dot").read_text()


def test_max_graph_nodes_is_in_the_help_of_every_command_that_builds_a_graph():
    from typer.testing import CliRunner

    from gradviz.cli import app
    for command in ("trace", "check", "explain", "render", "gallery"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        text = " ".join(result.output.split())
        assert "--max-graph-nodes N" in text, command
        assert "here now: half the free memory at ~1 kB per node" in text, command


def test_a_loop_at_tensor_granularity_is_counted_node_by_node():
    def forward(x):
        for _ in range(100):
            x = x * 2.0  # a constant node and a product each time, after the leaf
        return x

    line = forward.__code__.co_firstlineno + 2
    with pytest.raises(GraphTooLarge, match=rf"test_budget.py:{line}: mul would add 1 node to the 50 traced so far, "
                                            r"about 51 kB of memory in all, over --max-graph-nodes 50: use a smaller "
                                            r"input \(--max-graph-nodes N sets the limit\)$"):
        gradviz.trace(forward, granularity="tensor", max_graph_nodes=50, x=np.ones(3))


def test_gallery_takes_max_graph_nodes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gradviz.cli import app
    matmul(tmp_path, 20)  # auto: 8,400 scalar nodes are too many, so tensor: A, B and the matmul
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["gallery", ".", "--out-dir", "figs", "--max-graph-nodes", "2"])
    assert isinstance(result.exception, GraphTooLarge)
    assert str(result.exception).startswith(f"mm20.py:{LINE}: matmul would add 1 node to the 2 traced so far")
    result = CliRunner().invoke(app, ["gallery", ".", "--out-dir", "figs", "--max-graph-nodes", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "mm20.svg").exists()


SHAPES = [  # (function, shape of p, shape of q, nodes: the leaves' elements, then each operation's)
    (lambda p, q: p @ q, (3,), (3, 4), 3 + 12 + 12 + 4),  # 12 products, 4 sums
    (lambda p, q: p @ q, (2, 3), (3,), 6 + 3 + 6 + 2),
    (lambda p, q: p @ q, (3,), (3,), 3 + 3 + 3 + 1),
    (lambda p, q: np.matmul(p, q), (5, 2, 3), (3, 4), 30 + 12 + 5 * 2 * 3 * 4 + 5 * 2 * 4),
    (lambda p, q: np.dot(p, q), (2, 3), (3, 4), 6 + 12 + 24 + 8),
    (lambda p, q: np.tanh(p * q + 1.0), (4, 1), (1, 5), 4 + 5 + 20 + 1 + 20 + 20),  # broadcast; one constant
    (lambda p, q: np.sum(p, axis=0) * np.max(q), (4, 3), (2, 2), 12 + 4 + 3 + 1 + 3),
]


@pytest.mark.parametrize("fn, a, b, size", SHAPES)
def test_the_limit_is_exact_each_operation_says_how_many_nodes_it_makes(fn, a, b, size):
    # every node made is kept (nothing here is pruned), so a limit of the graph's size fits and one less does not
    p, q = np.linspace(-1, 1, math.prod(a)).reshape(a), np.linspace(0.5, 2, math.prod(b)).reshape(b)
    assert len(gradviz.trace(fn, granularity="scalar", max_graph_nodes=size, p=p, q=q).nodes) == size
    with pytest.raises(GraphTooLarge):
        gradviz.trace(fn, granularity="scalar", max_graph_nodes=size - 1, p=p, q=q)


def test_render_reads_a_stream_with_no_size_only_up_to_the_limit(tmp_path):
    # /dev/zero never ends: 1,000 nodes' worth of memory is 142,857 bytes of JSON, and one byte more is refused
    code, err, _, rss = measured([sys.executable, "-m", "gradviz", "render", "/dev/zero", "--max-graph-nodes", "1000"],
                                 tmp_path)
    assert (code, err) == (2, "gradviz: error: /dev/zero: it holds more than 143 kB, and reading it would take over "
                              "1.0 MB of memory, as much as a graph of 1,001 nodes, over --max-graph-nodes 1,000: "
                              "raise --max-graph-nodes if this machine can hold it\n")
    assert rss < 500 * MB
