"""Gradient check: the backward engine's gradient against central finite differences, input by input.

For every element x of every leaf, the model runs twice more on plain NumPy values (no tracing), with x
moved by ±h, and (f(x+h) − f(x−h)) / 2h is compared with ∂output/∂x from backward. For an array output f
is the sum of its elements, matching backward's default seed of ones. h = 1e-6·max(1, |x|): small enough
that the truncation error (∝ h²) is negligible, large enough that rounding (∝ 1e-16/h) stays near 1e-10.

Every custom operation is also checked on its own, at each point the model used it, so a wrong written
derivative is named by operation and input rather than only seen in the leaves it reaches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .backward import backward
from .custom import is_custom
from .errors import ModelError
from .graph import Graph
from .inputs import Input
from .ops import OPS
from .tolerances import ATOL, RTOL
from .trace import State, _message, run, where


def step(x: Any) -> Any:
    """The finite-difference step for a value (elementwise for arrays)."""
    return 1e-6 * np.maximum(1.0, np.abs(x))


@dataclass
class Comparison:
    input: str  # a leaf element, "w[0]"; for an operation, the name of its parameter, "x"
    analytic: float
    numeric: float
    status: str  # "ok" | "mismatch" | "nondiff" (a node on the way is not differentiable here: a warning)
    op: str | None = None  # the custom operation whose written partial this is
    at: str = ""  # for an operation: the input values where written and numeric disagree most

    @property
    def abs_err(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def rel_err(self) -> float:
        scale = max(abs(self.analytic), abs(self.numeric))
        return self.abs_err / scale if scale else 0.0


@dataclass
class Report:
    rtol: float
    atol: float
    inputs: list[Comparison] = field(default_factory=list)
    ops: list[Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status != "mismatch" for c in self.inputs + self.ops)


def check(fn: Callable, leaves: dict[str, np.ndarray], granularity: str = "auto",
          rtol: float = RTOL, atol: float = ATOL, state: State | None = None,
          max_graph_nodes: int | None = None) -> Report:
    """Compare every leaf element's gradient, and every custom operation's partials, with finite differences.
    leaves: fn's parameters; state: what the model keeps elsewhere (loader.Model.state), leaves too;
    max_graph_nodes: as for run()."""
    state = state or State()
    graph = backward(run(fn, leaves, granularity, state, max_graph_nodes))
    report = compare(graph, lambda leaf, value: _evaluate(fn, leaves, state, leaf, value), rtol, atol)
    report.ops = _check_custom_ops(graph, rtol, atol)
    return report


def compare(graph: Graph, evaluate: Callable[[str, np.ndarray], float], rtol: float, atol: float) -> Report:
    """Every leaf element's gradient in graph against central finite differences of evaluate(leaf, value):
    the sum of the model's output with that leaf set to value."""
    report = Report(rtol, atol)
    nondiff = _nondiff_inputs(graph)
    for leaf in graph.leaves:
        value, grad = graph.leaf_value(leaf), graph.grad(leaf)
        for idx in np.ndindex(value.shape):
            x = Input(leaf, idx)
            h = float(step(value[idx]))
            up, down = value.copy(), value.copy()
            up[idx] += h
            down[idx] -= h
            numeric = (evaluate(leaf, up) - evaluate(leaf, down)) / (2 * h)
            analytic = float(grad[idx])
            close = _close(analytic, numeric, rtol, atol)
            status = "ok" if close else ("nondiff" if nondiff[x.node(graph)] else "mismatch")
            report.inputs.append(Comparison(x.label, analytic, numeric, status))
    return report


def _close(a: float, n: float, rtol: float, atol: float) -> bool:
    if np.isnan(a) or np.isnan(n):
        return bool(np.isnan(a) and np.isnan(n))
    return abs(a - n) <= atol + rtol * max(abs(a), abs(n))


def _evaluate(fn: Callable, leaves: dict[str, np.ndarray], state: State, leaf: str, value: np.ndarray) -> float:
    """The sum of fn's output on plain values, with `leaf` set to value wherever the model takes it from
    (a parameter of fn, or the globals and objects holding it); the model's objects are restored after."""
    # every array a copy: a model that writes into its arrays (x[0] = 5, self.W -= …) must not change the next run's
    args = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in {**leaves, **state.constants}.items()}
    kept = {name: np.array(places[0][0][places[0][1]]) for name, places in state.params.items()}
    if leaf in leaves:
        args[leaf] = value
    else:
        kept[leaf] = value
    try:
        with state.placed(kept), np.errstate(all="ignore"):
            out = fn(**args)
        return float(np.sum(np.asarray(out, dtype=float)))
    except Exception as exc:
        raise ModelError(where(exc, fn.__code__.co_filename) + _message(exc)) from exc


def _nondiff_inputs(graph: Graph) -> list[bool]:
    """For each node: is some node on a path from it to the output flagged non-differentiable?"""
    return graph.feeding([n.id for n in graph.nodes if n.nondiff])


def _check_custom_ops(graph: Graph, rtol: float, atol: float) -> list[Comparison]:
    """Each custom operation's written partials against finite differences of its body, at the points the
    model used it; one row per (operation, input): the point where they disagree most."""
    worst: dict[tuple[str, int], Comparison] = {}
    for node in graph.nodes:
        if not is_custom(node.op):
            continue
        op = OPS[node.op]
        params = op.variables
        edges = graph.in_edges(node.id)
        args = [np.asarray(graph.nodes[e.src].value, dtype=float) for e in edges]
        for e in edges:
            h = step(args[e.arg])
            up, down = list(args), list(args)
            up[e.arg], down[e.arg] = args[e.arg] + h, args[e.arg] - h
            with np.errstate(all="ignore"):
                numeric = (np.asarray(op.forward(*up)) - np.asarray(op.forward(*down))) / (2 * h)
            shape = np.shape(numeric)
            written = np.broadcast_to(np.asarray(e.local, dtype=float), shape)
            points = [np.broadcast_to(a, shape) for a in args]
            for k in np.ndindex(shape):
                a, n = float(written[k]), float(numeric[k])
                at = ", ".join(f"{p}={float(v[k]):.6g}" for p, v in zip(params, points, strict=True))
                candidate = Comparison(params[e.arg], a, n, "ok" if _close(a, n, rtol, atol) else "mismatch",
                                       node.op, at)
                current = worst.get((node.op, e.arg))
                if current is None or _rank(candidate) > _rank(current):
                    worst[(node.op, e.arg)] = candidate
    return list(worst.values())


def _rank(c: Comparison) -> tuple[bool, float]:
    return c.status == "mismatch", c.abs_err
