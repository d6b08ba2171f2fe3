"""Operations that only move elements: indexing, reshape, transpose, sort.

Split into scalars they add no node (the result's elements are the input's nodes, rearranged); as tensors
one node whose VJP routes the gradient back to where each element came from, and whose JVP moves a
tangent along with the elements.
"""
from __future__ import annotations

import operator

import numpy as np

from ..errors import UnsupportedOperation
from .kinds import STRUCTURAL
from .registry import Entry, register

FAMILY = "moving elements"


def _plain_index(index):
    """Indices never carry gradient; ranges and lists become arrays so every path indexes alike."""
    from ..traced import Traced
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, Traced) for i in items):
        raise UnsupportedOperation("indexing with a traced value is not supported; index with integers")
    fixed = tuple(np.asarray(i) if isinstance(i, (range, list)) else i for i in items)
    return fixed if isinstance(index, tuple) else fixed[0]


def _index_label(index) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for i in items:
        if isinstance(i, slice):
            parts.append(":".join("" if v is None else str(v) for v in (i.start, i.stop))
                         + ("" if i.step is None else f":{i.step}"))
        elif isinstance(i, (int, np.integer)):
            parts.append(str(int(i)))
        else:
            parts.append("…")
    return ",".join(parts)


def _getitem_spec(a, b):
    index = _plain_index(b)
    return a, {"index": index, "idx": _index_label(index)}


def _getitem_vjp(g, args, out, params):
    (x,) = args
    z = np.zeros_like(x)
    np.add.at(z, params["index"], g)
    return z


def _transpose_vjp(g, args, out, params):
    axes = params["axes"]
    return np.transpose(g, None if axes is None else np.argsort(axes))


def _method_axes(self, *axes):
    if not axes or axes == (None,):
        return (self, None), {}
    return (self, tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes), {}


def _sort_spec(a, axis=-1, kind=None, stable=None):
    from ..traced import plain
    value = plain(a)
    flat = axis is None
    perm = np.argsort(np.ravel(value) if flat else value, axis=-1 if flat else axis, kind="stable")
    return a, {"perm": perm, "axis": axis}


def _sorted(v, p):
    return np.take_along_axis(np.ravel(v) if p["axis"] is None else v, p["perm"], axis=-1 if p["axis"] is None else p["axis"])


def _sort_vjp(g, args, out, params):
    (x,) = args
    z = np.zeros(x.size if params["axis"] is None else x.shape)
    np.put_along_axis(z, params["perm"], g, axis=-1 if params["axis"] is None else params["axis"])
    return z.reshape(x.shape)


def _structural(name, rule, label, forward, vjp, jvp, **kw) -> Entry:
    return register(Entry(name, FAMILY, (rule,), STRUCTURAL, label=label, operands=("a",), forward=forward,
                          vjp=(vjp,), jvp=(jvp,), **kw))


_structural("getitem", "∂x[i]/∂x[j] = 1 if j = i else 0", "{0}[{idx}]", lambda v, p: v[p["index"]], _getitem_vjp,
            lambda t, args, out, p: t[p["index"]], callables=(operator.getitem,), options=("b",),
            syntax=("x[i]", "x[1:3]", "x[rows, cols]"), spec=_getitem_spec,
            examples=(((np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), (slice(None), [0, 2, 0])), {}),))
_structural("reshape", "∂reshape(x)/∂x = 1 per element", "{0}.reshape", lambda v, p: np.reshape(v, p["shape"]),
            lambda g, args, out, p: np.reshape(g, args[0].shape), lambda t, args, out, p: np.reshape(t, np.shape(out)),
            callables=(np.reshape,), methods=("reshape",), options=("shape",),
            spec=lambda a, shape: (a, {"shape": shape}),
            method_args=lambda self, *shape, **kw: ((self, shape[0] if len(shape) == 1 else shape), kw),
            examples=(((np.arange(6.0), (3, 2)), {}),))
_structural("transpose", "∂xᵀ/∂x = 1 per element", "{0}.T", lambda v, p: np.transpose(v, p["axes"]), _transpose_vjp,
            lambda t, args, out, p: np.transpose(t, p["axes"]), callables=(np.transpose,), methods=("transpose",),
            syntax=("x.T",), options=("axes",), spec=lambda a, axes=None: (a, {"axes": None if axes is None else tuple(axes)}),
            method_args=_method_axes, examples=(((np.arange(6.0).reshape(2, 3),), {}),))
_structural("sort", "∂sort(x)ₖ/∂xᵢ = 1 if xᵢ lands at k else 0", "sort({0})", _sorted, _sort_vjp,
            lambda t, args, out, p: _sorted(t, p), callables=(np.sort,), options=("axis", "kind", "stable"),
            spec=_sort_spec, note="the gradient is routed back through the permutation; kind= and stable= "
            "change only the order of ties, whose values are equal",
            examples=(((np.array([[0.3, -1.2, 2.5], [1.1, 0.4, -0.6]]),), {"axis": 0}),))
