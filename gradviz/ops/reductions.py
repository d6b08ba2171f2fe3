"""Reductions and scans: sum, mean, max, min, prod are primitives (one n-ary node per result element when
split into scalars); var, std, average, ptp, nansum, nanmean, diff and norm are derived from primitives, as
JAX derives them, so the figure shows the chain a learner would write by hand.
"""
from __future__ import annotations

import numpy as np

from .kinds import LINEAR, OPAQUE, REDUCE
from .registry import Entry, register

FAMILY, SCANS, NORMS = "reductions", "cumulative and differences", "statistics and norms"
_M = np.array([[0.3, -1.2, 2.5], [1.1, 0.4, -0.6]])
_AXES = (((_M,), {}), ((_M,), {"axis": 0}), ((_M,), {"axis": 1, "keepdims": True}))


def _ties(xs, out, axis):
    """Where more than one input reaches the max (or min): the derivative does not exist there."""
    return np.sum(xs == out, axis=axis) > 1


def _extreme_local(xs, out, axis):
    hit = xs == out
    unique = np.sum(hit, axis=axis, keepdims=True) == 1
    return (hit & unique).astype(float)


def _prod_local(xs, out, axis):
    """Πⱼ≠ᵢ xⱼ for every i, exact where some xⱼ are 0 (out/xᵢ would divide by zero)."""
    zero = xs == 0
    zeros = np.sum(zero, axis=axis, keepdims=True)
    safe = np.where(zero, 1.0, xs)
    others = np.prod(safe, axis=axis, keepdims=True)
    return np.where(zeros == 0, others / safe, np.where((zeros == 1) & zero, others, 0.0))


def reduction(name, rule, label, forward, local, nondiff=None, callables=(), methods=(), syntax=(),
              options=("axis", "keepdims"), examples=_AXES) -> Entry:
    return register(Entry(name, FAMILY, (rule,), REDUCE, callables, methods, syntax, label, ("a",), options,
                          forward, local=local, nondiff=nondiff, examples=examples))


def derived(name, definition, derive, callables=(), methods=(), options=("axis", "keepdims"), note="",
            family=NORMS, examples=_AXES) -> Entry:
    return register(Entry(name, family, (definition,), None, callables, methods, operands=("a",), options=options,
                          derive=derive, note=note, examples=examples))


reduction("sum", "∂(Σᵢ xᵢ)/∂xᵢ = 1", "sum({0})", np.sum, lambda xs, out, axis: 1.0,
          callables=(np.sum,), methods=("sum",), syntax=("sum(xs)", "x + y + … (split into scalars)"))
reduction("mean", "∂(Σᵢ xᵢ/n)/∂xᵢ = 1/n", "mean({0})", np.mean,
          lambda xs, out, axis: out.size / xs.size, callables=(np.mean,), methods=("mean",))
reduction("max", "∂max(x₁…xₙ)/∂xᵢ = 1 if xᵢ is the largest else 0", "max({0})", np.max, _extreme_local, _ties,
          callables=(np.max, np.amax), methods=("max",))
reduction("min", "∂min(x₁…xₙ)/∂xᵢ = 1 if xᵢ is the smallest else 0", "min({0})", np.min, _extreme_local, _ties,
          callables=(np.min, np.amin), methods=("min",))
reduction("prod", "∂(Πⱼ xⱼ)/∂xᵢ = Πⱼ≠ᵢ xⱼ", "prod({0})", np.prod, _prod_local, callables=(np.prod,),
          methods=("prod",))


def _n(x, axis) -> int:
    shape = np.shape(x)
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    return int(np.prod([shape[a] for a in axes]))


def _var(tracer, a, axis=None, ddof=0, keepdims=None):
    x = tracer.lift(a)
    d = x - np.mean(x, axis=axis, keepdims=True)
    v = np.mean(np.square(d), axis=axis, keepdims=bool(keepdims))
    n = _n(x, axis)
    return v if ddof == 0 else v * (n / (n - ddof))


def _std(tracer, a, axis=None, ddof=0, keepdims=None):
    return np.sqrt(_var(tracer, a, axis, ddof, keepdims))


def _average(tracer, a, axis=None, weights=None, keepdims=None):
    x = tracer.lift(a)
    if weights is None:
        return np.mean(x, axis=axis, keepdims=bool(keepdims))
    w = weights
    if np.ndim(w) != x.ndim:  # NumPy: 1-D weights run along the one axis
        shape = [1] * x.ndim
        shape[int(axis) % x.ndim] = np.shape(w)[0]
        w = np.reshape(w, shape)
    keep = bool(keepdims)
    return np.sum(x * w, axis=axis, keepdims=keep) / np.sum(w * np.ones(x.shape), axis=axis, keepdims=keep)


def _ptp(tracer, a, axis=None, keepdims=None):
    x = tracer.lift(a)
    return np.max(x, axis=axis, keepdims=bool(keepdims)) - np.min(x, axis=axis, keepdims=bool(keepdims))


def _nansum(tracer, a, axis=None, keepdims=None):
    x = tracer.lift(a)
    return np.sum(np.where(np.isnan(x.value), 0.0, x), axis=axis, keepdims=bool(keepdims))


def _nanmean(tracer, a, axis=None, keepdims=None):
    x = tracer.lift(a)
    count = np.sum(~np.isnan(x.value), axis=axis, keepdims=bool(keepdims))
    return _nansum(tracer, x, axis, keepdims) / count


def _diff(tracer, a, n=1, axis=-1):
    x = tracer.lift(a)
    axis = int(axis) % x.ndim
    for _ in range(n):
        head = tuple(slice(1, None) if i == axis else slice(None) for i in range(x.ndim))
        tail = tuple(slice(None, -1) if i == axis else slice(None) for i in range(x.ndim))
        x = x[head] - x[tail]
    return x


derived("var", "var(x) = mean(square(x − mean(x))) · n/(n−ddof)", _var, (np.var,), ("var",),
        ("axis", "ddof", "keepdims"), "derived: the learner sees the deviations, their squares and the mean",
        examples=_AXES + (((_M,), {"ddof": 1}),))
derived("std", "std(x) = sqrt(var(x))", _std, (np.std,), ("std",), ("axis", "ddof", "keepdims"),
        "derived: sqrt of var, as JAX derives it", examples=_AXES + (((_M,), {"axis": 1, "ddof": 1}),))
derived("average", "average(x, w) = Σ x·w / Σ w", _average, (np.average,), (), ("axis", "weights", "keepdims"),
        "derived: a weighted sum divided by the sum of the weights",
        examples=(((_M,), {"axis": 1, "weights": np.array([1.0, 2.0, 3.0])}), ((_M,), {"weights": _M * _M})))
derived("ptp", "ptp(x) = max(x) − min(x)", _ptp, (np.ptp,), (), ("axis", "keepdims"),
        "derived: the difference of the two reductions")
derived("nansum", "nansum(x) = sum(where(isnan(x), 0, x))", _nansum, (np.nansum,), (), ("axis", "keepdims"),
        "derived: NaNs become constant zeros, the rest are summed",
        examples=_AXES + (((np.array([1.0, np.nan, 2.0]),), {}),))
derived("nanmean", "nanmean(x) = nansum(x) / count of non-NaN", _nanmean, (np.nanmean,), (), ("axis", "keepdims"),
        "derived: nansum divided by a constant count", examples=_AXES + (((np.array([1.0, np.nan, 2.0]),), {}),))
derived("diff", "diff(x) = x[1:] − x[:-1] (n times)", _diff, (np.diff,), (), ("n", "axis"),
        "derived: slices and one subtraction per step, as JAX derives it", family=SCANS,
        examples=(((_M,), {}), ((_M,), {"axis": 0}), ((np.array([1.0, 4.0, 9.0, 16.0]),), {"n": 2})))


def _cumsum(x, axis=None):
    return np.cumsum(x, axis=axis)


def _cumsum_transpose(g, args, out, params):
    (x,) = args
    axis = params["axis"]
    if axis is None:
        return np.flip(np.cumsum(np.flip(np.ravel(g)))).reshape(np.shape(x))
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


register(Entry("cumsum", SCANS, ("∂(x₀+…+xₖ)/∂xᵢ = 1 for i ≤ k",), LINEAR, (np.cumsum,), ("cumsum",),
               label="cumsum({0})", operands=("a",), options=("axis",), forward=_cumsum, vjp=(_cumsum_transpose,),
               note="linear: its transpose (a reversed cumsum) carries the gradient back",
               examples=(((_M,), {}), ((_M,), {"axis": 1}))))


def _lanes(x, axis):
    """x with the scanned axis last (flattened first when axis is None), and how to put it back."""
    if axis is None:
        return np.ravel(x), (lambda r: r)
    moved = np.moveaxis(x, axis, -1)
    return moved, (lambda r: np.moveaxis(r, -1, axis))


def _cumprod_jacobian(x, axis):
    """J[..., k, i] = ∂out[k]/∂x[i] = Πⱼ≤ₖ,ⱼ≠ᵢ xⱼ for i ≤ k, else 0: exact where some xⱼ are 0."""
    lanes, back = _lanes(x, axis)
    n = lanes.shape[-1]
    before = np.concatenate([np.ones(lanes.shape[:-1] + (1,)), np.cumprod(lanes, axis=-1)[..., :-1]], axis=-1)
    after = np.where(np.arange(n)[None, :] > np.arange(n)[:, None], lanes[..., None, :], 1.0)  # [i, j]: xⱼ if j > i
    between = np.cumprod(after, axis=-1)  # [i, k]: Πᵢ<ⱼ≤ₖ xⱼ
    jac = np.swapaxes(before[..., :, None] * between, -1, -2)  # [k, i]
    return np.where(np.arange(n)[None, :] <= np.arange(n)[:, None], jac, 0.0), lanes, back


def _cumprod_vjp(g, args, out, params):
    jac, lanes, back = _cumprod_jacobian(args[0], params["axis"])
    g_lanes, _ = _lanes(g, None if params["axis"] is None else params["axis"])
    return np.reshape(back(np.einsum("...ki,...k->...i", jac, g_lanes)), np.shape(args[0]))


def _cumprod_jvp(t, args, out, params):
    jac, lanes, back = _cumprod_jacobian(args[0], params["axis"])
    t_lanes, _ = _lanes(t, params["axis"])
    return back(np.einsum("...ki,...i->...k", jac, t_lanes))


def _cumprod_chain(tracer, x, axis=None):
    """Split into scalars, out[k] = out[k−1] · x[k]: the chain of products a learner writes by hand."""
    if axis is None:
        x, axis = np.reshape(x, -1), 0
    axis = int(axis) % x.ndim
    at = [x[tuple(k if i == axis else slice(None) for i in range(x.ndim))] for k in range(x.shape[axis])]
    steps = at[:1]
    for factor in at[1:]:
        steps.append(steps[-1] * factor)
    return tracer.wrap(np.stack([s.value for s in steps], axis), np.stack([s.ref for s in steps], axis))


register(Entry("cumprod", SCANS, ("∂(x₀·…·xₖ)/∂xᵢ = Πⱼ≤ₖ,ⱼ≠ᵢ xⱼ for i ≤ k",), OPAQUE, (np.cumprod,), ("cumprod",),
               label="cumprod({0})", operands=("a",), options=("axis",),
               forward=lambda a, axis=None: np.cumprod(a, axis=axis),
               vjp=(_cumprod_vjp,), jvp=(_cumprod_jvp,), derive=_cumprod_chain,
               note="split into scalars: a chain of products, out[k] = out[k−1]·x[k]; as a tensor one node "
                    "with the exact partials (no division, so zeros are fine)",
               examples=(((_M,), {}), ((_M,), {"axis": 1}), ((np.array([2.0, 0.0, 3.0]),), {}))))


def _median(tracer, a, axis=None, keepdims=None):
    x = tracer.lift(a)
    if axis is None:
        x, axis = np.reshape(x, -1), 0
    axis = int(axis) % x.ndim
    s = np.sort(x, axis=axis)
    n = x.shape[axis]
    middle = slice(n // 2, n // 2 + 1) if n % 2 else slice(n // 2 - 1, n // 2 + 1)
    return np.mean(s[tuple(middle if i == axis else slice(None) for i in range(x.ndim))], axis=axis,
                   keepdims=bool(keepdims))


derived("median", "median(x) = mean of the middle one or two of sort(x)", _median, (np.median,), (),
        ("axis", "keepdims"), "derived: the gradient reaches the middle element(s) through the sort",
        examples=_AXES + (((np.array([3.0, 1.0, 2.0, 5.0]),), {}),))

# The methods of ufuncs that are reductions and scans: np.add.reduce(x) is np.sum(x, axis=0).
_UFUNC_METHODS = [(np.add.reduce, np.sum, "sum"), (np.multiply.reduce, np.prod, "prod"),
                  (np.maximum.reduce, np.max, "max"), (np.minimum.reduce, np.min, "min"),
                  (np.add.accumulate, np.cumsum, "cumsum"), (np.multiply.accumulate, np.cumprod, "cumprod")]
for _method, _func, _name in _UFUNC_METHODS:
    register(Entry(f"{_method.__self__.__name__}.{_method.__name__}", FAMILY, (f"= np.{_name}(x, axis)",),
                   None, (_method,), operands=("array",), options=("axis",),
                   derive=lambda tracer, array, axis=0, _func=_func: _func(tracer.lift(array), axis=axis),
                   note=f"derived: np.{_name} along the axis (default 0)",
                   examples=(((_M,), {}), ((_M,), {"axis": 1}))))


def _outer_of(ufunc):
    def derive(tracer, A, B):
        a, b = tracer.lift(A), tracer.lift(B)
        return ufunc(np.reshape(a, a.shape + (1,) * b.ndim) if b.ndim else a, b)
    return derive


for _ufunc in (np.add, np.subtract, np.multiply):
    register(Entry(f"{_ufunc.__name__}.outer", "products", (f"{_ufunc.__name__}.outer(a, b)[i, j] = "
                                                        f"{_ufunc.__name__}(a[i], b[j])",),
                   None, (_ufunc.outer,), operands=("A", "B"), derive=_outer_of(_ufunc),
                   note="derived: a reshaped to broadcast against b",
                   examples=(((_M[0], _M[1, :2]), {}), ((_M, _M[0]), {}))))
