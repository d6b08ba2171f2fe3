"""Benchmark: gradviz's tensor-granularity trace + backward of samples/spiral_mlp.py against the same
network's forward + backward written by hand in NumPy (tests/nnfs_backward.py), in one run.

    python bench/spiral.py [--repeat N]

Prints the median CPU time of each over N runs and their ratio (target ≤ 2 at these 300 samples: the NumPy
kernels are the floor). Both compute the same gradients, the data X's included (tests/nnfs_backward.py
computes dX too). The model file is loaded once; what is timed is the trace (the forward pass with every
operation recorded) and the reverse pass, as `gradviz trace` does them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as bench/run.py: BLAS threads would spin on a shared machine

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from gradviz.backward import backward  # noqa: E402
from gradviz.loader import load  # noqa: E402
from gradviz.trace import run  # noqa: E402

from nnfs_backward import forward_backward  # noqa: E402


def median_times(fns: list, repeat: int) -> list[float]:
    """Median CPU time of each function. CPU time, and alternating runs, so that other programs on a
    busy machine do not count."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times, strict=True):
            start = time.process_time()
            fn()
            ts.append(time.process_time() - start)
    return [statistics.median(ts) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    repeat = parser.parse_args().repeat

    model = load(str(ROOT / "samples" / "spiral_mlp.py"))
    m = model.fn.__globals__
    hand_args = (m["X"], m["y"], m["dense1"].weights, m["dense1"].biases, m["dense2"].weights, m["dense2"].biases)

    def gradviz_run():
        return backward(run(model.fn, model.leaves, "tensor", model.state))

    def numpy_run():
        return forward_backward(*hand_args)

    graph, (loss, grads) = gradviz_run(), numpy_run()  # warm up, and check they compute the same thing
    assert np.isclose(graph.output_value, loss)
    assert all(np.allclose(graph.grad(k), g) for k, g in grads.items())

    t_numpy, t_gradviz = median_times([numpy_run, gradviz_run], repeat)
    print(f"spiral_mlp: 300 samples, Dense(2,64) → ReLU → Dense(64,3) → softmax → CCE; median of {repeat} runs")
    print(f"  hand-written NumPy forward + backward: {t_numpy * 1e3:8.3f} ms")
    print(f"  gradviz tensor trace + backward:       {t_gradviz * 1e3:8.3f} ms")
    print(f"  ratio: {t_gradviz / t_numpy:.2f}x (target ≤ 2x)")


if __name__ == "__main__":
    main()
