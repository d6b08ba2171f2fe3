"""THE table of operations: what each computes, its local partial for each input, and that rule as text.

Every derivative gradviz knows lives here. The tracer looks operations up in OPS by the NumPy function,
ufunc or Python operator the model used; backward and every view read the rule text from the same row,
so `gradviz ops`, the tables and the figures print the same words.

Kinds of operation:
- elementwise: broadcasting inputs; `partials(args, out)` gives ∂out/∂arg elementwise, shaped like out.
- reduce: one array folded over an axis (and, split into scalars, an n-ary node); `local(xs, out, axis)`
  gives ∂out/∂x for every element of xs, shaped like xs (`out` keeps its reduced axis).
- linalg: dot and matmul. Split into scalars they become products and n-ary sums; as tensors the local
  Jacobian stays unmaterialised: `vjp` gives the chain directly (reverse mode), `jvp` the tangent an input's
  tangent causes in the result (forward mode).
- shape: indexing, reshape, transpose. Split into scalars they only pick elements (no node); as tensors
  `vjp` routes the gradient back to where each element came from, and `jvp` moves a tangent along with it.

Convention at a point where the derivative does not exist (a max or min tie, ReLU or abs at exactly 0,
clip at a bound): the local partial is 0, as in the study notes' "d max(x, 0)/dx = 1 if x > 0, else 0",
and the node is flagged non-differentiable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Op:
    name: str
    kind: str  # "elementwise" | "reduce" | "linalg" | "shape"
    rules: tuple[str, ...]  # one per argument; the last one repeats for n-ary operations
    label: str  # expression label for a value never bound to a name; {0}, {1}: input labels
    syntax: tuple[str, ...]  # how a model writes it, for `gradviz ops`
    forward: Callable
    partials: Callable | None = None  # elementwise: (args, out) -> local per arg
    local: Callable | None = None  # reduce: (xs, out, axis) -> local shaped like xs
    nondiff: Callable | None = None  # (args, out) -> bool mask where the derivative does not exist
    vjp: tuple[Callable, ...] = field(default=())  # linalg/shape: (g, args, out, params) -> chain per arg
    jvp: tuple[Callable, ...] = field(default=())  # linalg/shape: (t, args, out, params) -> ∂out along t, per arg
    variables: tuple[str, ...] = ()  # the inputs' names in the rules when not the kind's x, y (custom ops)

    def rule(self, arg: int) -> str:
        return self.rules[min(arg, len(self.rules) - 1)]


def unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum a gradient shaped like a broadcast result back to the shape of the input that was broadcast."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if kept:
        g = g.sum(axis=kept, keepdims=True)
    return g.reshape(shape)


def _ties(xs: Array, out: Array, axis) -> Array:
    """Where more than one input reaches the max (or min): the derivative does not exist there."""
    return np.sum(xs == out, axis=axis) > 1


def _extreme_local(xs: Array, out: Array, axis) -> Array:
    hit = xs == out
    unique = np.sum(hit, axis=axis, keepdims=True) == 1
    return (hit & unique).astype(float)


def _pow_exponent(a: Array, b: Array, out: Array) -> Array:
    # ∂(a**b)/∂b = a**b · ln a exists only for a > 0 (and is 0 in the limit a → 0 with b > 0).
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, out * np.log(safe), np.where((a == 0) & (b > 0), 0.0, np.nan))


def _clip_nondiff(args, out):
    x, lo, hi = args
    return (x == lo) | (x == hi)


def _promote(a: Array, b: Array, g: Array):
    """View 1-D operands of dot/matmul as matrices, as NumPy does, so one VJP formula covers every case."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
    return a2, b2, np.reshape(g, out_shape)


def _matmul_vjp_a(g, args, out, params):
    a, b = args
    a2, b2, g2 = _promote(a, b, g)
    return unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)


def _matmul_vjp_b(g, args, out, params):
    a, b = args
    a2, b2, g2 = _promote(a, b, g)
    return unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)


def _getitem_vjp(g, args, out, params):
    (x,) = args
    z = np.zeros_like(x)
    np.add.at(z, params["index"], g)
    return z


def _reshape_vjp(g, args, out, params):
    return np.reshape(g, args[0].shape)


def _transpose_vjp(g, args, out, params):
    axes = params["axes"]
    return np.transpose(g, None if axes is None else np.argsort(axes))


def _ew(name, rules, label, syntax, forward, partials, nondiff=None) -> Op:
    return Op(name, "elementwise", rules, label, syntax, forward, partials=partials, nondiff=nondiff)


def _red(name, rule, label, syntax, forward, local, nondiff=None) -> Op:
    return Op(name, "reduce", (rule,), label, syntax, forward, local=local, nondiff=nondiff)


OPS: dict[str, Op] = {op.name: op for op in [
    _ew("add", ("∂(x+y)/∂x = 1", "∂(x+y)/∂y = 1"), "{0}+{1}", ("x + y", "np.add"),
        np.add, lambda a, out: (1.0, 1.0)),
    _ew("sub", ("∂(x−y)/∂x = 1", "∂(x−y)/∂y = −1"), "{0}-{1}", ("x - y", "np.subtract"),
        np.subtract, lambda a, out: (1.0, -1.0)),
    _ew("mul", ("∂(x·y)/∂x = y", "∂(x·y)/∂y = x"), "{0}*{1}", ("x * y", "np.multiply"),
        np.multiply, lambda a, out: (a[1], a[0])),
    _ew("div", ("∂(x/y)/∂x = 1/y", "∂(x/y)/∂y = −x/y²"), "{0}/{1}", ("x / y", "np.divide"),
        np.divide, lambda a, out: (1.0 / a[1], -a[0] / (a[1] * a[1]))),
    _ew("pow", ("∂(x^y)/∂x = y·x^(y−1)", "∂(x^y)/∂y = x^y·ln x"), "{0}**{1}", ("x ** y", "np.power"),
        np.power, lambda a, out: (a[1] * np.power(a[0], a[1] - 1.0), _pow_exponent(a[0], a[1], out))),
    _ew("neg", ("∂(−x)/∂x = −1",), "-{0}", ("-x", "np.negative"),
        np.negative, lambda a, out: (-1.0,)),
    _ew("abs", ("∂|x|/∂x = sign(x)",), "abs({0})", ("abs(x)", "np.abs"),
        np.abs, lambda a, out: (np.sign(a[0]),), lambda a, out: a[0] == 0),
    _ew("square", ("∂(x²)/∂x = 2·x",), "square({0})", ("np.square",),
        np.square, lambda a, out: (2.0 * a[0],)),
    _ew("sqrt", ("∂√x/∂x = 1/(2·√x)",), "sqrt({0})", ("np.sqrt",),
        np.sqrt, lambda a, out: (0.5 / out,)),
    _ew("exp", ("∂exp(x)/∂x = exp(x)",), "exp({0})", ("np.exp",),
        np.exp, lambda a, out: (out,)),
    _ew("log", ("∂log(x)/∂x = 1/x",), "log({0})", ("np.log",),
        np.log, lambda a, out: (1.0 / a[0],)),
    _ew("tanh", ("∂tanh(x)/∂x = 1 − tanh(x)²",), "tanh({0})", ("np.tanh",),
        np.tanh, lambda a, out: (1.0 - out * out,)),
    _ew("maximum", ("∂max(x,y)/∂x = 1 if x > y else 0", "∂max(x,y)/∂y = 1 if y > x else 0"),
        "max({0},{1})", ("max(x, y)", "np.maximum"),
        np.maximum, lambda a, out: ((a[0] > a[1]) * 1.0, (a[1] > a[0]) * 1.0), lambda a, out: a[0] == a[1]),
    _ew("minimum", ("∂min(x,y)/∂x = 1 if x < y else 0", "∂min(x,y)/∂y = 1 if y < x else 0"),
        "min({0},{1})", ("min(x, y)", "np.minimum"),
        np.minimum, lambda a, out: ((a[0] < a[1]) * 1.0, (a[1] < a[0]) * 1.0), lambda a, out: a[0] == a[1]),
    _ew("clip", ("∂clip(x,lo,hi)/∂x = 1 if lo < x < hi else 0",
                 "∂clip(x,lo,hi)/∂lo = 1 if x < lo else 0", "∂clip(x,lo,hi)/∂hi = 1 if x > hi else 0"),
        "clip({0})", ("np.clip", "x.clip"),
        lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        lambda a, out: (((a[0] > a[1]) & (a[0] < a[2])) * 1.0, (a[0] < a[1]) * 1.0, (a[0] > a[2]) * 1.0),
        _clip_nondiff),
    _red("sum", "∂(Σᵢ xᵢ)/∂xᵢ = 1", "sum({0})", ("sum(xs)", "np.sum", "x.sum", "x + y + … (split into scalars)"),
         np.sum, lambda xs, out, axis: np.ones_like(xs)),
    _red("mean", "∂(Σᵢ xᵢ/n)/∂xᵢ = 1/n", "mean({0})", ("np.mean", "x.mean"),
         np.mean, lambda xs, out, axis: np.full_like(xs, out.size / xs.size)),
    _red("max", "∂max(x₁…xₙ)/∂xᵢ = 1 if xᵢ is the largest else 0", "max({0})", ("np.max", "x.max"),
         np.max, _extreme_local, _ties),
    _red("min", "∂min(x₁…xₙ)/∂xᵢ = 1 if xᵢ is the smallest else 0", "min({0})", ("np.min", "x.min"),
         np.min, _extreme_local, _ties),
    Op("matmul", "linalg", ("∂(X·W)/∂X = ·Wᵀ", "∂(X·W)/∂W = Xᵀ·"), "{0}@{1}", ("X @ W", "np.matmul", "np.dot"),
       np.matmul, vjp=(_matmul_vjp_a, _matmul_vjp_b),
       jvp=(lambda t, args, out, params: np.matmul(t, args[1]), lambda t, args, out, params: np.matmul(args[0], t))),
    Op("getitem", "shape", ("∂x[i]/∂x[j] = 1 if j = i else 0",), "{0}[{idx}]", ("x[i]", "x[1:3]", "x[rows, cols]"),
       lambda x, index: x[index], vjp=(_getitem_vjp,), jvp=(lambda t, args, out, params: t[params["index"]],)),
    Op("reshape", "shape", ("∂reshape(x)/∂x = 1 per element",), "{0}.reshape", ("np.reshape", "x.reshape"),
       np.reshape, vjp=(_reshape_vjp,), jvp=(lambda t, args, out, params: np.reshape(t, np.shape(out)),)),
    Op("transpose", "shape", ("∂xᵀ/∂x = 1 per element",), "{0}.T", ("x.T", "np.transpose"),
       np.transpose, vjp=(_transpose_vjp,), jvp=(lambda t, args, out, params: np.transpose(t, params["axes"]),)),
]}
