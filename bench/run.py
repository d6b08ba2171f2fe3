"""Every speed comparison of gradviz against its peers, side by side in one run: `python bench/run.py`.

Peers come from `pip install -e ".[bench]"` (micrograd, matplotlib); PyTorch and torchviz are optional
and their rows say "skipped" when they are absent. Prints one table of medians and ratios, writes the
scaling plot (bench/scaling.png) and, with --readme, puts the table into bench/README.md.

1. CLI: `gradviz trace samples/neuron.py` as a whole process, against the bare cost of its imports (as
   the issue defined it, and strictly: only the libraries it imports now, exiting as it does) and against
   micrograd and torchviz drawing the same neuron.
2. Engine at scale: the scalar graph of an MLP 16→32→32→1 over 20 samples, traced and differentiated,
   against micrograd's forward + backward of the same network, weights and data.
3. Scaling: chains and wide sums of 10³…10⁶ nodes: time and peak memory per node.
4. Tensor granularity: the spiral MLP against hand-written NumPy and PyTorch CPU autograd.
5. Big graphs: JSON (schema @2) written and read, the 300,000-operation chain through the CLI to JSON,
   and a million-node graph traced, differentiated and saved, with its peak memory.
6. PyTorch front end: `gradviz trace samples/pytorch/neuron.py` as a whole process against torchviz drawing the
   same neuron, both importing torch.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

# One BLAS thread, as PyTorch gets one below: on a shared 2-core machine BLAS threads spin waiting for each
# other, and CPU time (what is measured here) then counts the spinning. Set before NumPy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import gradviz  # noqa: E402
from gradviz.graph import Edge, Node  # noqa: E402

ROWS: list[tuple[str, ...]] = []  # (what, measured, compared with, ratio, target, verdict)


# -- measuring ---------------------------------------------------------------------------------------

def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU time of fn: on a machine shared with other jobs, the time other programs hold the CPU
    would otherwise count (wall time here was up to three times the CPU time under load)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def alternating_times(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median CPU time of each function, run in turns (one of each, then again): a burst of load on the shared
    machine then slows all of them alike, and each runs with the others' garbage as the last thing in memory."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes allocated while fn runs, and fn's result (kept alive until the peak is read)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def process_times(commands: dict[str, tuple[list[str], dict | None]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median CPU time (user + system, the process and its children) and median wall time of each command.
    The commands take turns, round after round, so that a burst of load on a shared machine slows all of
    them alike and the ratios stay meaningful."""
    def once(argv, env):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall
    for argv, env in commands.values():
        once(argv, env)  # warm the OS file cache and the .pyc files: a learner runs the command again and again
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, env) in commands.items():
            times[name].append(once(argv, env))
    return {name: (statistics.median(c for c, _ in t), statistics.median(w for _, w in t)) for name, t in times.items()}


def installed(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def row(what: str, measured: str, against: str = "", ratio: str = "", target: str = "", verdict: str = "") -> None:
    ROWS.append((what, measured, against, ratio, target, verdict))
    print(f"  {what:<46} {measured:>12}  {against:<30} {ratio:>7}  {target:<10} {verdict}", flush=True)


def section(title: str) -> None:
    ROWS.append((f"**{title}**", "", "", "", "", ""))
    print(f"\n{title}", flush=True)


def secs(t: float) -> str:
    return f"{t:.3f} s" if t >= 0.01 else f"{t * 1e3:.2f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# -- 1. the CLI on a teaching graph ----------------------------------------------------------------

def bench_cli(repeat: int) -> None:
    from gradviz.output import FORMATS
    fmt = "svg" if "svg" in FORMATS else "json"
    section(f"1. CLI, whole process: gradviz trace samples/neuron.py (tables + {fmt}), CPU time, median of {repeat}")
    py = sys.executable
    exe = Path(py).with_name("gradviz")
    gradviz_cmd = [str(exe)] if exe.exists() else [py, "-m", "gradviz"]
    tmp = Path(tempfile.mkdtemp(prefix="gradviz-bench-"))
    # as a learner's machine runs it: Python's bytecode cache on (a sandbox may switch it off)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "100"
    try:
        # the floor as the issue defines it: importing numpy, rich, typer and graphviz (what gradviz imported then),
        # exiting as Python does; and a strict one: only what `gradviz trace` imports now (it runs dot itself, no
        # graphviz package), in a process that exits as gradviz does (gc.freeze at exit skips the last
        # collection of the libraries' objects, 20 ms)
        commands = {"floor": ([py, "-c", "pass"], env),
                    "imports": ([py, "-c", "import numpy, rich.console, rich.table, typer, graphviz"], env),
                    "strict": ([py, "-c", "import atexit, gc, numpy, rich.console, typer; atexit.register(gc.freeze)"],
                               env),
                    "help": (gradviz_cmd + ["--help"], env)}
        if installed("micrograd") and shutil.which("dot"):
            commands["micrograd"] = ([py, str(BENCH / "peers" / "micrograd_neuron.py"), str(tmp / "m.svg")], env)
        if installed("torch") and installed("torchviz") and shutil.which("dot"):
            commands["torchviz"] = ([py, str(BENCH / "peers" / "torchviz_neuron.py"), str(tmp / "t.svg")], env)
        renderers = ["system", "embedded"] if shutil.which("dot") else ["embedded"]
        for renderer in renderers:
            cmd = gradviz_cmd + ["trace", "samples/neuron.py", "--format", fmt, "-o", str(tmp / f"neuron.{fmt}")]
            commands[renderer] = (cmd, dict(env, GRADVIZ_RENDERER=renderer))
        if shutil.which("dot"):  # what the system renderer pays on its own: one dot process for this figure
            subprocess.run(gradviz_cmd + ["trace", "samples/neuron.py", "--no-table", "-f", "dot", "-o",
                                          str(tmp / "neuron.dot")], check=True, env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            commands["dot"] = (["dot", "-Tsvg", str(tmp / "neuron.dot"), "-o", str(tmp / "dot.svg")], env)
        times = process_times(commands, repeat)
        t = {name: cpu for name, (cpu, _) in times.items()}
        wall = {name: w for name, (_, w) in times.items()}

        def against(name: str) -> str:
            return f"vs imports {secs(t['imports'])}; wall {secs(wall[name])}, {wall[name] / wall['imports']:.2f}x"
        row("python -c pass", secs(t["floor"]), f"wall {secs(wall['floor'])}")
        row("import numpy, rich, typer, graphviz", secs(t["imports"]), f"wall {secs(wall['imports'])}", "",
            "the floor")
        row("import numpy, rich, typer; exit with gc.freeze", secs(t["strict"]), f"wall {secs(wall['strict'])}", "",
            "the strict floor")
        row("gradviz --help (imports no NumPy)", secs(t["help"]), against("help"), f"{t['help'] / t['imports']:.2f}x")
        for peer, what in (("micrograd", "micrograd + graphviz, svg (peer)"),
                           ("torchviz", "torch + torchviz, svg (peer)")):
            if peer in t:
                row(what, secs(t[peer]), against(peer), f"{t[peer] / t['imports']:.2f}x")
            else:
                row(what, "skipped", "not installed (or no system dot)")
        if "dot" in t:
            row("dot -Tsvg of the neuron alone", secs(t["dot"]), f"wall {secs(wall['dot'])}", "", "",
                "what the system renderer adds")
        for renderer in renderers:
            ratio, strict = t[renderer] / t["imports"], t[renderer] / t["strict"]
            row(f"gradviz trace, {renderer} renderer", secs(t[renderer]), against(renderer),
                f"{ratio:.2f}x", "<= 1.3x the floor", verdict(ratio <= 1.3))
            row("  the same, against the strict floor", "", f"vs {secs(t['strict'])}", f"{strict:.2f}x",
                "<= 1.3x", verdict(strict <= 1.3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- 6. the PyTorch front end against torchviz -------------------------------------------------------

def bench_torch(repeat: int) -> None:
    section(f"6. PyTorch model, whole process: gradviz trace samples/pytorch/neuron.py (tables + svg) against "
            f"torchviz drawing the same neuron (peers/torchviz_neuron.py), median of {repeat}")
    if not (installed("torch") and installed("torchviz") and shutil.which("dot")):
        row("gradviz trace samples/pytorch/neuron.py", "skipped", "needs torch, torchviz and system dot")
        return
    import compileall

    # torch and torchviz run from the bytecode pip compiled when installing them; an editable gradviz under
    # PYTHONDONTWRITEBYTECODE would compile its own modules on every run: compile them once, as pip does
    compileall.compile_dir(str(ROOT / "gradviz"), quiet=1)
    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="gradviz-bench-"))
    try:
        commands = {
            "import torch": ([py, "-c", "import torch"], None),
            "torchviz": ([py, str(BENCH / "peers" / "torchviz_neuron.py"), str(tmp / "t.svg")], None),
            "gradviz": ([py, "-m", "gradviz", "trace", "samples/pytorch/neuron.py", "-o", str(tmp / "g.svg")],
                        dict(os.environ, COLUMNS="100", GRADVIZ_RENDERER="system")),
        }
        times = process_times(commands, repeat)
        t = {name: cpu for name, (cpu, _) in times.items()}  # CPU time, as section 1; wall time beside it
        wall = {name: w for name, (_, w) in times.items()}
        row("python -c 'import torch'", secs(t["import torch"]), f"wall {secs(wall['import torch'])}")
        row("torch + torchviz, svg (peer)", secs(t["torchviz"]), f"wall {secs(wall['torchviz'])}")
        row("gradviz trace samples/pytorch/neuron.py, svg", secs(t["gradviz"]),
            f"vs torchviz {secs(t['torchviz'])}; wall {secs(wall['gradviz'])}, "
            f"{wall['gradviz'] / wall['torchviz']:.2f}x",
            f"{t['gradviz'] / t['torchviz']:.2f}x", "not slower", verdict(t["gradviz"] <= t["torchviz"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- 2. the engine at scale: an MLP split into scalars ---------------------------------------------

def mlp_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "X": rng.normal(size=(20, 16)), "Y": rng.normal(size=20),
        "W1": rng.normal(size=(16, 32)) * 0.25, "b1": rng.normal(size=32) * 0.1,
        "W2": rng.normal(size=(32, 32)) * 0.18, "b2": rng.normal(size=32) * 0.1,
        "W3": rng.normal(size=(32, 1)) * 0.18, "b3": rng.normal(size=1) * 0.1,
    }


MLP = mlp_data()
X, Y = MLP["X"], MLP["Y"]


def mlp_numpy(W1, b1, W2, b2, W3, b3):
    """The MLP as a learner writes it in NumPy: ReLU layers and a sum-of-squares loss."""
    h1 = np.maximum(X @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    out = h2 @ W3 + b3
    d = out[:, 0] - Y
    return np.sum(d * d)


def mlp_gradviz():
    params = {k: v for k, v in MLP.items() if k not in ("X", "Y")}
    return gradviz.trace(mlp_numpy, granularity="scalar", **params)


def mlp_micrograd():
    """micrograd's own nn.MLP with the same weights, on the same data; returns (loss, model)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP as MicroMLP
    model = MicroMLP(16, [32, 32, 1])
    for layer, (W, b) in zip(model.layers, [("W1", "b1"), ("W2", "b2"), ("W3", "b3")], strict=True):
        for j, neuron in enumerate(layer.neurons):
            for i, wi in enumerate(neuron.w):
                wi.data = float(MLP[W][i, j])
            neuron.b.data = float(MLP[b][j])
    loss = Value(0.0)
    for x, y in zip(X.tolist(), Y.tolist(), strict=True):
        d = model(x) - y
        loss = loss + d * d
    loss.backward()
    return loss, model


def micrograd_nodes(root) -> int:
    seen, stack = set(), [root]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(v._prev)
    return len(seen)


def bench_mlp(repeat: int) -> None:
    section("2. Engine at scale: scalar MLP 16-32-32-1 over 20 samples, trace + backward, CPU time, "
            f"median of {repeat}")
    graph = mlp_gradviz()
    nodes, edges = len(graph.nodes), len(graph.edges)
    if not installed("micrograd"):
        t = median_time(mlp_gradviz, repeat)
        row(f"gradviz ({nodes:,} nodes, {edges:,} edges)", secs(t), "micrograd not installed: skipped")
        return
    loss, model = mlp_micrograd()
    np.testing.assert_allclose(graph.output_value, loss.data, rtol=1e-9)  # the same computation, or no race
    np.testing.assert_allclose(graph.grad("W1")[3, 5], model.layers[0].neurons[5].w[3].grad, rtol=1e-9, atol=1e-12)
    m_nodes = micrograd_nodes(loss)
    t_m = median_time(mlp_micrograd, repeat)
    t_g = median_time(mlp_gradviz, repeat)
    row(f"micrograd forward + backward ({m_nodes:,} Values)", secs(t_m))
    row(f"gradviz trace + backward ({nodes:,} nodes, {edges:,} edges)", secs(t_g), f"vs micrograd {secs(t_m)}",
        f"{t_g / t_m:.2f}x", "<= 1.5x", verdict(t_g <= 1.5 * t_m))
    peak_m, _ = peak_bytes(mlp_micrograd)
    peak_g, _ = peak_bytes(mlp_gradviz)
    row("micrograd peak memory, whole graph", f"{peak_m / 2**20:.1f} MiB")
    row("gradviz peak memory, whole graph", f"{peak_g / 2**20:.1f} MiB", f"vs micrograd {peak_m / 2**20:.1f} MiB",
        f"{peak_g / peak_m:.2f}x")
    row("micrograd peak memory per Value", f"{peak_m / m_nodes:,.0f} B")
    row("gradviz peak memory per node", f"{peak_g / nodes:,.0f} B", f"vs micrograd {peak_m / m_nodes:,.0f} B",
        f"{(peak_g / nodes) / (peak_m / m_nodes):.2f}x", "< 1x", verdict(peak_g / nodes < peak_m / m_nodes))


# -- 3. scaling: chains and wide sums ----------------------------------------------------------------

def chain_model(n: int) -> Callable:
    def forward(x):
        for _ in range(n):
            x = np.tanh(x)
        return x
    return forward


def wide_sum(x):
    return np.sum(x)


def bench_scaling(sizes: list[int], plot: Path | None) -> None:
    section("3. Scaling: trace + backward, JSON written and read, CPU time per node; "
            "peak memory per node (10^3 -> 10^6)")
    results: dict[str, list[tuple[int, float, float, float, float]]] = {"chain": [], "wide sum": []}
    for n in sizes:
        repeat = 5 if n <= 10_000 else 3 if n <= 100_000 else 1
        # JSON is quick next to the trace: more runs per median, and never one alone (a single run of a noisy
        # machine set the 10^6 end of the JSON ratios, five runs of about 2 ms each the 10^3 end)
        json_repeat = 21 if n <= 10_000 else 5 if n <= 100_000 else 3
        cases = {
            "chain": (lambda n=n: gradviz.trace(chain_model(n - 1), granularity="scalar", x=0.5)),
            "wide sum": (lambda n=n: gradviz.trace(wide_sum, granularity="scalar", x=np.linspace(-1, 1, n - 1))),
        }
        for kind, fn in cases.items():
            peak, graph = peak_bytes(fn)
            nodes, edges = len(graph.nodes), len(graph.edges)
            text = graph.to_json_bytes()  # once untimed, as the trace above ran once untimed under tracemalloc
            t_write = median_time(graph.to_json_bytes, json_repeat)
            del graph
            gradviz.Graph.from_json(text)
            t_read = median_time(lambda text=text: gradviz.Graph.from_json(text), json_repeat)
            del text
            t = median_time(fn, repeat)
            results[kind].append((nodes, t / nodes, peak / nodes, t_write / nodes, t_read / nodes))
            row(f"{kind}: {nodes:,} nodes, {edges:,} edges", f"{t / nodes * 1e6:.2f} us/node",
                f"{peak / nodes:,.0f} B/node; JSON write {t_write / nodes * 1e6:.2f}, "
                f"read {t_read / nodes * 1e6:.2f} us/node",
                f"{peak / (nodes + edges):,.0f} B per node+edge")
    names = ("time per node", "memory per node", "JSON write per node", "JSON read per node")
    for kind, points in results.items():
        if len(points) > 1:
            span = f"{points[0][0]:,} -> {points[-1][0]:,}"
            for k, name in enumerate(names, start=1):
                ratio = points[-1][k] / points[0][k]  # below 1 where the fixed cost of a trace spread thinner
                row(f"{kind}: {name}, {span}", f"{ratio:.2f}x", "", "", "grows <= 1.5x", verdict(ratio <= 1.5))
    node, edge = Node(0, None, "op", "add", 0.5, False, 0), Edge(0, 1, 0, 0.5)
    row("one Node object (slots, without its float)", f"{sys.getsizeof(node)} B")
    row("one Edge object (slots, without its 3 floats)", f"{sys.getsizeof(edge)} B", "a float is 24 B")
    if plot is not None:
        draw(results, plot)


def draw(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_t, ax_j, ax_m) = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    for kind, points in results.items():
        n = [p[0] for p in points]
        ax_t.plot(n, [p[1] * 1e6 for p in points], marker="o", label=kind)
        ax_m.plot(n, [p[2] for p in points], marker="o", label=kind)
        ax_j.plot(n, [p[3] * 1e6 for p in points], marker="o", label=f"{kind}: write")
        ax_j.plot(n, [p[4] * 1e6 for p in points], marker="s", linestyle="--", label=f"{kind}: read")
    for ax, ylabel in ((ax_t, "trace + backward, µs per node"), (ax_j, "JSON (@2), µs per node"),
                       (ax_m, "peak memory, bytes per node")):
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("nodes in the graph")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("gradviz at scalar granularity: cost per node stays flat as the graph grows")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


# -- 4. tensor granularity: the spiral MLP ------------------------------------------------------------

def spiral_data(points: int = 100, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The spiral data set of the study notes: `points` 2-D points per class on interleaved arms."""
    rng = np.random.default_rng(0)
    X = np.zeros((points * classes, 2))
    y = np.zeros(points * classes, dtype=int)
    for c in range(classes):
        i = range(points * c, points * (c + 1))
        r = np.linspace(0.0, 1, points)
        t = np.linspace(c * 4, (c + 1) * 4, points) + rng.normal(size=points) * 0.2
        X[i] = np.c_[r * np.sin(t * 2.5), r * np.cos(t * 2.5)]
        y[i] = c
    return X, y


_rng = np.random.default_rng(1)
SPIRAL = {"W1": 0.1 * _rng.normal(size=(2, 64)), "b1": np.zeros(64),
          "W2": 0.1 * _rng.normal(size=(64, 3)), "b2": np.zeros(3)}


def spiral_numpy(X, y, W1, b1, W2, b2):
    """Hand-written forward and backward of the same network: the floor a tracer is measured against."""
    z1 = X @ W1 + b1
    hidden = np.maximum(0, z1)
    logits = hidden @ W2 + b2
    exp_values = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    probabilities = exp_values / np.sum(exp_values, axis=1, keepdims=True)
    n = len(y)
    loss = np.mean(-np.log(probabilities[np.arange(n), y]))
    dlogits = probabilities.copy()
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    dW2, db2 = hidden.T @ dlogits, dlogits.sum(axis=0)
    dz1 = (dlogits @ W2.T) * (z1 > 0)
    return loss, {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": dW2, "b2": db2}


def spiral_torch(X, y):
    import torch
    p = {k: torch.tensor(v, requires_grad=True) for k, v in SPIRAL.items()}
    x, t = torch.from_numpy(X), torch.from_numpy(y)
    logits = torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = torch.nn.functional.cross_entropy(logits, t)
    loss.backward()
    return loss, p


def bench_spiral(repeat: int) -> None:
    section("4. Tensor granularity: spiral MLP 2-64-3, softmax cross-entropy, trace + backward, CPU time, "
            f"median of {repeat}, runs alternating")
    sys.path.insert(0, str(BENCH / "models"))
    import spiral  # the network as a model file, as a user writes one: its globals are the model's
    if installed("torch"):
        import torch
        torch.set_num_threads(1)
    else:
        row("PyTorch CPU autograd", "skipped", "torch not installed")
    # the spiral of the study notes (300 points), then ten times the data: fixed costs per operation weigh less.
    # X is the data: a constant (the CLI's --const), so gradviz computes the gradients the hand-written code
    # computes, and none for the points
    for points in (100, 1000):
        spiral.X, spiral.y = spiral_data(points)

        def traced():
            return gradviz.trace(spiral.forward, granularity="tensor", consts=("X",), **SPIRAL)

        def by_hand():
            return spiral_numpy(spiral.X, spiral.y, **SPIRAL)

        def by_torch():
            return spiral_torch(spiral.X, spiral.y)

        graph = traced()
        loss, grads = by_hand()
        np.testing.assert_allclose(graph.output_value, loss, rtol=1e-12)
        for k, g in grads.items():
            np.testing.assert_allclose(graph.grad(k), g, rtol=1e-9, atol=1e-15)
        fns = {"numpy": by_hand, "gradviz": traced}
        if installed("torch"):
            t_loss, t_p = by_torch()
            np.testing.assert_allclose(t_loss.item(), loss, rtol=1e-12)
            np.testing.assert_allclose(t_p["W1"].grad.numpy(), grads["W1"], rtol=1e-9, atol=1e-15)
            fns["torch"] = by_torch
        t = alternating_times(fns, repeat)
        n = 3 * points
        row(f"{n:,} points: hand-written NumPy", secs(t["numpy"]))
        target = 2.0 if n < 1000 else 1.5
        row(f"{n:,} points: gradviz ({len(graph.nodes)} nodes)", secs(t["gradviz"]), f"vs NumPy {secs(t['numpy'])}",
            f"{t['gradviz'] / t['numpy']:.2f}x", f"<= {target}x", verdict(t["gradviz"] <= target * t["numpy"]))
        if "torch" in t:
            row(f"{n:,} points: PyTorch CPU autograd, 1 thread", secs(t["torch"]), "",
                f"{t['gradviz'] / t['torch']:.2f}x", "", "gradviz / torch")


# -- 5. big graphs: JSON and the CLI -----------------------------------------------------------------

BIG = """
import resource, sys, time
import numpy as np
import gradviz

def forward(x):
    for _ in range({n}):
        x = np.tanh(x)
    return x

def peak_rss():
    # VmHWM: this process's own peak (Linux keeps ru_maxrss across exec, so there it can be the parent's)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

start, start_wall = time.process_time(), time.perf_counter()
graph = gradviz.trace(forward, granularity="scalar", x=0.5)
graph.render(sys.argv[1], "json")
print(time.process_time() - start, time.perf_counter() - start_wall, peak_rss(), len(graph.nodes))
"""


def bench_big(repeat: int) -> None:
    section("5. Big graphs: JSON (schema @2) and the CLI, a chain of np.tanh on a scalar, CPU time, "
            f"median of {repeat}")
    import json as stdlib_json
    graph = gradviz.trace(chain_model(300_000), granularity="scalar", x=0.5)
    items = len(graph.nodes) + len(graph.edges)
    text = graph.to_json_bytes()  # once untimed, as for @1 below
    t_write = median_time(graph.to_json_bytes, repeat)
    gradviz.Graph.from_json(text)
    t_read = median_time(lambda text=text: gradviz.Graph.from_json(text), repeat)
    size = len(text)
    # the schema before: @1, written as gradviz wrote it (json, one object per node and edge), read by from_json
    text1 = stdlib_json.dumps(graph.to_dict(), ensure_ascii=False)
    t_write1 = median_time(lambda graph=graph: stdlib_json.dumps(graph.to_dict(), ensure_ascii=False), 1)
    gradviz.Graph.from_json(text1)
    t_read1 = median_time(lambda text1=text1: gradviz.Graph.from_json(text1), 1)
    size1 = len(text1.encode("utf-8"))
    del text1
    label = f"300,000-op chain ({len(graph.nodes):,} nodes + {len(graph.edges):,} edges)"
    row(f"{label}: to_json", secs(t_write), f"vs @1 {secs(t_write1)}", f"{t_write / t_write1:.2f}x")
    row("  written: nodes + edges per second", f"{items / t_write:,.0f}", "", f"{items / t_write / 300_000:.2f}x",
        ">= 300,000/s", verdict(items / t_write >= 300_000))
    row(f"{label}: Graph.from_json", secs(t_read), f"vs @1 {secs(t_read1)}", f"{t_read / t_read1:.2f}x")
    row("  read: nodes + edges per second", f"{items / t_read:,.0f}", "", f"{items / t_read / 300_000:.2f}x",
        ">= 300,000/s", verdict(items / t_read >= 300_000))
    row("  file size", f"{size / 1e6:.1f} MB", f"vs @1 {size1 / 1e6:.1f} MB", f"{size / size1:.2f}x",
        "<= 60 MB", verdict(size <= 60e6))
    del graph, text
    tmp = Path(tempfile.mkdtemp(prefix="gradviz-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        py = sys.executable
        exe = Path(py).with_name("gradviz")
        cmd = ([str(exe)] if exe.exists() else [py, "-m", "gradviz"]) + [
            "trace", "bench/models/chain_300k.py", "-g", "scalar", "--no-table", "-f", "json",
            "-o", str(tmp / "c.json")]
        t, t_wall = process_times({"cli": (cmd, env)}, repeat)["cli"]
        row("gradviz trace chain_300k.py -g scalar -f json", secs(t), f"whole process; wall {secs(t_wall)}",
            f"{t / 5:.2f}x of target", "<= 5 s", verdict(t <= 5))
        script = tmp / "big.py"
        script.write_text(BIG.format(n=999_999))
        out = subprocess.run([py, str(script), str(tmp / "big.json")], check=True, capture_output=True, text=True,
                             env=dict(env, PYTHONPATH=str(ROOT)), cwd=ROOT).stdout.split()
        seconds, seconds_wall, rss, nodes = float(out[0]), float(out[1]), int(out[2]), int(out[3])
        size = (tmp / "big.json").stat().st_size / 1e6
        row(f"{nodes:,} nodes: trace + backward + save JSON", secs(seconds),
            f"{size:.0f} MB; wall {secs(seconds_wall)}",
            f"{seconds / 15:.2f}x of target", "<= 15 s", verdict(seconds <= 15))
        row(f"{nodes:,} nodes: peak memory (max RSS)", f"{rss / 2**30:.2f} GiB", "the whole process",
            f"{rss / (1.5 * 2**30):.2f}x of target", "<= 1.5 GiB", verdict(rss <= 1.5 * 2**30))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the run ---------------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, NumPy {np.__version__}; load average {load:.1f} at start")


def markdown() -> str:
    lines = ["| benchmark | measured | compared with | ratio | target | |", "|---|--:|---|--:|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in ROWS]
    return "\n".join(lines)


def update_readme(path: Path, command: str, info: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = "<!-- results -->", "<!-- /results -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    block = f"{start}\nMachine: {info}.\n\nCommand: `{command}`\n\n{markdown()}\n{end}"
    path.write_text(head + block + tail, encoding="utf-8")
    print(f"wrote the table into {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["cli", "mlp", "scaling", "spiral", "big", "torch"], action="append",
                        help="run only these sections (repeatable)")
    parser.add_argument("--max-nodes", type=int, default=1_000_000, help="largest graph of the scaling section")
    parser.add_argument("--repeat", type=int, default=5, help="runs per median (CLI and MLP sections)")
    parser.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    only = set(args.only or ["cli", "mlp", "scaling", "spiral", "big", "torch"])
    info = machine()
    print(f"Machine: {info}")
    sizes = [n for n in (1_000, 10_000, 100_000, 1_000_000) if n <= args.max_nodes]
    if "cli" in only:
        bench_cli(args.repeat)
    if "mlp" in only:
        bench_mlp(args.repeat)
    if "scaling" in only:
        bench_scaling(sizes, BENCH / "scaling.png")
    if "spiral" in only:
        bench_spiral(max(args.repeat, 200))
    if "big" in only:
        bench_big(3)
    if "torch" in only:
        bench_torch(args.repeat)
    if args.readme:
        update_readme(BENCH / "README.md", " ".join(["python bench/run.py"] + sys.argv[1:]), info)


if __name__ == "__main__":
    main()
