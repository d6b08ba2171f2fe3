"""Operations that only move elements, one line each: indexing, reshape, concatenate, tile, pad, take…, and
the writes into arrays (x[i] = v, x += y) that models make.

None of them needs a rule of its own. The very same NumPy call, run on element numbers instead of values
(index_map.sources), says where each result element comes from: split into scalars the result is the
input elements' own nodes (and a constant node where the call fills one in, as pad's zeros); as a tensor,
one node whose chain is a scatter-add of the upstream gradient onto the elements it copied (an element
copied twice, as by repeated fancy indices, adds up both) and whose tangent is a gather of the input's.

Writes are operations too: `x[i] = v` makes a new value of x that reads v where it was written and the old
x everywhere else, so the graph stays a DAG however the writes overlap; the Python object x then holds the
new value, so every name for it (an alias, a dict entry) sees the write, as with an ndarray. A value made
by slicing (a NumPy view) remembers which elements of its array it views: a write into it is a write into
that array, and a write into the array reaches the views made of it.

Arrays the model makes with np.zeros, np.ones, np.empty, np.full (and their _like forms) during the trace
are "canvases" (idioms.py hands them out): plain arrays, costing no node, until a traced value is written
into them.
"""
from __future__ import annotations

import inspect
import operator
import weakref
from itertools import accumulate
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOperation
from ..index_map import gather, outputs, scatter, sources
from .kinds import ELEMENTWISE, Kind
from .registry import FUNCTIONS, OPS, Entry, numpy_signature, register

FAMILY, WRITES = "moving elements", "building and writing arrays"
RULE = "∂out[k]/∂in[j] = 1 if out[k] copies in[j], else 0"


class Structural(Kind):
    """An operation that only moves elements: `entry.spec(tracer, **arguments)` gives (call, operands,
    params), call(arrays) being the NumPy call with the operands swapped for arrays. copies_only: the call
    can only copy elements of its one operand (indexing), so one run on element numbers finds the map."""

    name = "structural"
    bounds = True

    def __init__(self, copies_only: bool = False) -> None:
        self.copies_only = copies_only

    def trace(self, tracer, entry, args):
        call, operands, params = entry.spec(tracer, **args)
        return self.move(tracer, entry.name, call, operands, params)

    def move(self, tracer, name: str, call: Callable, operands: list, params: dict | None = None) -> Any:
        """The result of call on the operands' values, recorded: each element a copy of an operand's element
        or a constant the call made. A list when the call returns several arrays."""
        operands = [x if x.link is None else current(x) for x in operands]
        if all(x.ref is None for x in operands):  # only plain arrays moved: a plain result, views stay views
            return canvas_result(tracer, call([x.value for x in operands]), operands, call)
        if self.copies_only and tracer.scalar and len(operands) == 1 and operands[0].ref is not None:
            return self._pick(tracer, call, operands[0])
        with np.errstate(all="ignore"):
            raw = call([x.value for x in operands])
        several = isinstance(raw, (list, tuple))
        values = [np.asarray(v, dtype=float) for v in outputs(raw)]
        maps = sources(call, [x.shape for x in operands], self.copies_only)
        xs = [x if x.ref is not None else tracer.lift(x) for x in operands]
        if tracer.scalar:
            flat = np.concatenate([np.ravel(np.broadcast_to(x.ref, x.shape)) for x in xs]).astype(np.int64)
            refs = []
            for v, m in zip(values, maps, strict=True):
                consts = m < 0
                ref = flat[np.where(consts, 0, m)] if flat.size else np.zeros(m.shape, dtype=np.int64)
                if consts.any():
                    ref[consts] = tracer.lift(v[consts]).ref
                refs.append(ref)
        else:
            tracer.reserve(len(values), name)
            starts = list(accumulate((x.size for x in xs), initial=0))
            args = tuple(x.value for x in xs)
            refs = [tracer.op_node(name, v, [x.ref for x in xs], [None] * len(xs), False,
                                   (args, {**(params or {}), "source": m, "starts": starts}))
                    for v, m in zip(values, maps, strict=True)]
        results = [tracer.wrap(v, r) for v, r in zip(values, refs, strict=True)]
        if len(operands) == 1:
            for out, v, m in zip(results, values, maps, strict=True):
                if np.may_share_memory(v, operands[0].value):  # NumPy made a view: so does the trace
                    _viewing(out, operands[0], m)
        return results if several else results[0]

    def _pick(self, tracer, call: Callable, x) -> Any:
        """Split into scalars, a call that only copies elements of one array picks its nodes with the very
        same call (x[i] in a loop, the commonest operation of all: no element numbers needed)."""
        raw = call([x.value])
        several = isinstance(raw, (list, tuple))
        refs = outputs(call([np.asarray(x.ref)]))
        results = []
        for k, (v, r) in enumerate(zip(outputs(raw), refs, strict=True)):
            out = tracer.wrap(np.asarray(v, dtype=float), r)
            if isinstance(v, np.ndarray) and v.ndim and np.may_share_memory(v, x.value):
                _viewing(out, x, sources(call, [x.shape], True)[k])  # NumPy made a view: so does the trace
            results.append(out)
        return results if several else results[0]

    def chain(self, entry, arg, local, up, ctx, out):
        args, p = ctx
        return scatter(up, p["source"], p["starts"][arg], np.shape(args[arg]))

    def tangent(self, entry, arg, local, t, ctx, out):
        return gather(t, ctx[1]["source"], ctx[1]["starts"][arg])


STRUCTURAL = Structural()
COPIES = Structural(copies_only=True)


# -- replaying a NumPy call on other arrays ------------------------------------------------------------

def replay(func: Callable, operands: tuple[str, ...]) -> Callable:
    """The spec of a NumPy function whose parameters `operands` hold the arrays, or lists of arrays
    (np.concatenate's), that it moves: call(arrays) is func on the same arguments with the traced values
    in them swapped for arrays. A traced value in another argument (a shift, a count) is used as the
    number it holds (tracer.concrete)."""
    sig = numpy_signature(func)

    def spec(tracer, **args):
        found: list = []
        template = {}
        for k, v in args.items():
            if k in operands:
                template[k] = _slot(v, found)
            else:
                value = _whole(tracer.concrete(v, f"{func.__name__}(..., {k}=)"))
                template[k] = lambda arrays, value=value: value

        def call(arrays):
            bound = inspect.BoundArguments(sig, {k: t(arrays) for k, t in template.items()})
            return func(*bound.args, **bound.kwargs)
        return call, found, {}
    return spec


def _whole(value: Any) -> Any:
    """A number given as an option (a pad width, a shift) that is whole, as the int it stood for."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and np.all(np.mod(value, 1) == 0):
        return value.astype(np.int64)
    return value


def _slot(value: Any, found: list) -> Callable:
    from ..traced import Traced
    if isinstance(value, Traced):
        k = len(found)
        found.append(value)
        return lambda arrays: arrays[k]
    if isinstance(value, (list, tuple)) and _holds_traced(value):
        parts = [_slot(v, found) for v in value]
        kind = type(value)
        return lambda arrays: kind(p(arrays) for p in parts)
    return lambda arrays: value


def _holds_traced(value: Any) -> bool:
    from ..traced import Traced
    if isinstance(value, Traced):
        return True
    return isinstance(value, (list, tuple)) and any(_holds_traced(v) for v in value)


def moves(func: Callable, *, name: str | None = None, methods: tuple[str, ...] = (), syntax: tuple[str, ...] = (),
          callables: tuple[Callable, ...] | None = None, kind: Structural = STRUCTURAL, spec: Callable | None = None,
          exclude: tuple[str, ...] = (), method_args: Callable | None = None, note: str = "", family: str = FAMILY,
          operands: tuple[str, ...] | None = None,
          example: tuple = ((np.array([[0.3, -1.2, 2.5], [1.1, 0.4, -0.6]]),), {})) -> Entry:
    """Register one function that only moves elements. Every argument but out=, and dtype= other than
    float64, goes to NumPy as the model gave it, so none is dropped; `exclude` names more that are refused
    unless left at their default. operands: the parameters holding arrays (default: the first)."""
    name = name or func.__name__
    params = list(numpy_signature(func).parameters)
    refused = {"out", "dtype", "subok", "like", "casting", *exclude}
    operands = operands or (params[0],)
    options = tuple(p for p in params if p not in refused and p not in operands)
    return register(Entry(name, family, (RULE,), kind, (func,) if callables is None else callables, methods,
                          syntax, f"{name}({{0}})", operands, options, func, spec=spec or replay(func, operands),
                          method_args=method_args, note=note, examples=(example,)))


# -- indexing ----------------------------------------------------------------------------------------

def plain_index(tracer, index: Any) -> Any:
    """An index as NumPy takes it: ranges and lists become arrays; a traced number in it (x[i] with i
    computed) is used as the integer it holds."""
    if type(index) is int:  # x[i] in a loop, the commonest index of all
        return index
    items = index if isinstance(index, tuple) else (index,)
    fixed = tuple(_index_item(tracer, i) for i in items)
    return fixed if isinstance(index, tuple) else fixed[0]


def _index_item(tracer, i: Any) -> Any:
    from ..traced import Traced
    if isinstance(i, Traced):
        return tracer.concrete(i, "an index", integer=i.value.dtype.kind != "b")
    if isinstance(i, slice):
        return slice(*(tracer.concrete(v, "a slice", integer=True) for v in (i.start, i.stop, i.step)))
    if isinstance(i, (range, list)):
        return np.asarray(tracer.concrete(list(i) if isinstance(i, list) else i, "an index", integer=True))
    return i


def index_label(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for i in items:
        if isinstance(i, slice):
            parts.append(":".join("" if v is None else str(v) for v in (i.start, i.stop))
                         + ("" if i.step is None else f":{i.step}"))
        elif isinstance(i, (int, np.integer)):
            parts.append(str(int(i)))
        elif i is None:
            parts.append("None")
        elif i is Ellipsis:
            parts.append("...")
        else:
            parts.append("…")
    return ",".join(parts)


def _getitem_spec(tracer, a, b):
    index = plain_index(tracer, b)
    return (lambda arrays: arrays[0][index]), [a], {} if tracer.scalar else {"idx": index_label(index)}


def _sort_spec(tracer, a, axis=-1, kind=None, stable=None):
    value = a.value
    flat = axis is None
    perm = np.argsort(np.ravel(value) if flat else value, axis=-1 if flat else axis, kind="stable")
    if flat:
        return (lambda arrays: np.ravel(arrays[0])[perm]), [a], {}
    return (lambda arrays: np.take_along_axis(arrays[0], perm, axis=axis)), [a], {}


def _pad_spec(tracer, array, pad_width, mode="constant", **kwargs):
    if not isinstance(mode, str) or mode not in _PAD_MODES:
        raise UnsupportedOperation(f"np.pad(..., mode={mode!r}) is not supported on traced values (it computes "
                                   f"new values); modes that only copy: {', '.join(_PAD_MODES)}")
    return replay(np.pad, ("array",))(tracer, array=array, pad_width=pad_width, mode=mode, **kwargs)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _reshape_method(self, *shape, **kw):
    return (self, shape[0] if len(shape) == 1 else shape), kw


def _transpose_method(self, *axes):
    if not axes or axes == (None,):
        return (self, None), {}
    return (self, tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes), {}


_M = np.array([[0.3, -1.2, 2.5], [1.1, 0.4, -0.6]])

register(Entry("getitem", FAMILY, (RULE,), COPIES, (operator.getitem,), (), ("x[i]", "x[1:3]", "x[rows, cols]",
               "x[mask]", "x[None]", "x[..., i]"), "{0}[{idx}]", ("a",), ("b",), operator.getitem, spec=_getitem_spec,
               examples=(((_M, (slice(None), [0, 2, 0])), {}), ((_M, _M > 0), {}))))
moves(np.reshape, methods=("reshape",), method_args=_reshape_method, kind=COPIES, exclude=("copy",),
      example=((np.arange(6.0), (3, 2)), {"order": "F"}))
moves(np.transpose, methods=("transpose",), syntax=("x.T",), method_args=_transpose_method, kind=COPIES)
moves(np.ravel, methods=("ravel",), kind=COPIES)
moves(np.ndarray.flatten, name="flatten", methods=("flatten",), callables=(), kind=COPIES)
moves(np.squeeze, methods=("squeeze",), kind=COPIES, example=((_M[None],), {}))
moves(np.expand_dims, kind=COPIES, example=((_M, 1), {}))
moves(np.swapaxes, methods=("swapaxes",), kind=COPIES, example=((_M, 0, 1), {}))
moves(np.moveaxis, kind=COPIES, example=((_M[None], 0, -1), {}))
moves(np.broadcast_to, kind=COPIES, example=((_M[0], (2, 2, 3)), {}))
moves(np.flip, kind=COPIES, example=((_M,), {"axis": 1}))
moves(np.fliplr, kind=COPIES)
moves(np.flipud, kind=COPIES)
moves(np.roll, kind=COPIES, example=((_M, 1), {"axis": 1}))
moves(np.tile, kind=COPIES, example=((_M, (2, 1)), {}))
moves(np.repeat, methods=("repeat",), kind=COPIES, example=((_M, 2), {"axis": 0}))
moves(np.take, methods=("take",), kind=COPIES, exclude=("mode",), example=((_M, [0, 2, 2]), {"axis": 1}))
moves(np.take_along_axis, kind=COPIES, example=((_M, np.array([[0, 0], [2, 1]])), {"axis": 1}))
moves(np.diagonal, methods=("diagonal",), kind=COPIES, example=((np.arange(9.0).reshape(3, 3),), {"offset": 1}))
moves(np.split, kind=COPIES, example=((_M, 3), {"axis": 1}))
moves(np.array_split, kind=COPIES, example=((_M, 2), {"axis": 1}))
moves(np.hsplit, kind=COPIES, example=((_M, 3), {}))
moves(np.vsplit, kind=COPIES, example=((_M, 2), {}))
register(Entry("sort", FAMILY, ("∂sort(x)ₖ/∂xᵢ = 1 if xᵢ lands at k else 0",), COPIES, (np.sort,), (), (),
               "sort({0})", ("a",), ("axis", "kind", "stable"), np.sort, spec=_sort_spec,
               note="the gradient is routed back through the permutation; kind= and stable= change only the order "
                    "of ties, whose values are equal", examples=(((_M,), {"axis": 0}),)))
moves(np.concatenate, example=(([_M, _M[:1]],), {}))
moves(np.stack, example=(([_M, _M],), {"axis": 1}))
moves(np.vstack, example=(([_M, _M[0]],), {}))
moves(np.hstack, example=(([_M, _M],), {}))
moves(np.dstack, example=(([_M, _M],), {}))
moves(np.column_stack, example=(([_M[0], _M[1]],), {}))
moves(np.pad, spec=_pad_spec, note="mode constant (constant_values too), edge, reflect, symmetric, wrap",
      example=((_M, ((1, 0), (0, 2))), {"constant_values": 0.5}))
moves(np.diag, example=((_M[0],), {"k": 1}))
moves(np.triu, example=((np.arange(9.0).reshape(3, 3),), {"k": -1}))
moves(np.tril, example=((np.arange(9.0).reshape(3, 3),), {}))
moves(np.rot90, kind=COPIES, example=((_M,), {"k": 3}))
moves(np.resize, kind=COPIES, example=((_M, (4, 4)), {}))
moves(np.delete, kind=COPIES, example=((_M, [0, 2]), {"axis": 1}))
moves(np.append, operands=("arr", "values"), example=((_M, _M[:1]), {"axis": 0}))
moves(np.insert, operands=("arr", "values"), example=((_M, 1, _M[:, 0]), {"axis": 1}))


# -- arrays built from traced values, copies -----------------------------------------------------------

def _array_spec(tracer, object, order="K", ndmin=0, **_):
    """np.array / np.asarray of a (nested) list of traced numbers and arrays: one array of their nodes."""
    found: list = []
    template = _slot(object, found)
    return (lambda arrays: np.array(template(arrays), dtype=float, order=order or "K", ndmin=ndmin)), found, {}


def _copy(tracer, a, order="K"):
    """A copy holds the same nodes (nothing is computed); it is a new array only for the writes that follow."""
    x = current(a)
    return tracer.wrap(np.array(x.value, order=order), x.ref)


def _astype(tracer, self, dtype, order="K", casting="unsafe", copy=True):
    kind = np.dtype(dtype).kind
    if kind == "f":
        return _copy(tracer, self, order)
    if kind in "iub":
        return tracer.concrete(self, f"x.astype({np.dtype(dtype).name})", integer=kind != "b", array=True)
    raise UnsupportedOperation(f"x.astype({np.dtype(dtype).name}) is not supported on traced values")


register(Entry("array", WRITES, (RULE,), STRUCTURAL, (), (), ("np.array([a, b])", "np.array([[a, b], [c, 1.0]])"),
               "array({0})", ("object",), ("copy", "order", "ndmin"), np.array, spec=_array_spec,
               note="a nested list of traced numbers or arrays becomes one array of their nodes",
               examples=((([_M[0], _M[1]],), {}),)))
register(Entry("asarray", WRITES, (RULE,), STRUCTURAL, (), (), ("np.asarray([a, b])",), "asarray({0})", ("a",),
               ("order", "copy"), np.asarray,
               spec=lambda tracer, a, order=None, copy=None: _array_spec(tracer, a, order),
               examples=((([_M[0], _M[1]],), {}),)))
register(Entry("copy", WRITES, ("copy(x) = x: the same nodes, a new array for the writes that follow",),
               None, (np.copy,), ("copy",), ("x.astype(float)",), operands=("a",), options=("order",),
               derive=_copy, examples=(((_M,), {}),)))
register(Entry("astype", WRITES, ("x.astype(float) = x; to an integer type: its value, the gradient stops",),
               None, (), ("astype",), (), operands=("self",), options=("dtype", "order", "casting", "copy"),
               forward=np.ndarray.astype, derive=_astype, examples=(((_M, float), {}),)))


# -- writes into arrays -------------------------------------------------------------------------------

register(Entry("setitem", WRITES, (RULE,), STRUCTURAL, (), (), ("x[i] = v", "x[mask] = 0", "x += y",
               "x[:, 1:] *= y"), "{0}[{idx}]=", ("a",), (), None,
               note="the new x reads v where it was written and the old x everywhere else"))
register(Entry("view", WRITES, (RULE,), COPIES, (), (), ("v = x[0]; x[0, 1] = 5; v",), "{0}[…]", ("a",), (),
               None, note="a view of an array taken before a write into that array sees the write, as in NumPy"))


class Link:
    """What a traced array knows of views: a view (x[1:], x.T…) knows the array it views (`root`), which
    elements of it, flattened, it shows (`pos`), and that array's count of writes when it was last brought
    up to date (`seen`); an array knows its own count of writes and (weakly) its views."""

    __slots__ = ("root", "pos", "seen", "writes", "views")

    def __init__(self) -> None:
        self.root, self.pos, self.seen, self.writes, self.views = None, None, 0, 0, []


def _link(x) -> Link:
    if x.link is None:
        x.link = Link()
    return x.link


def _root(x):
    return x.link.root if x.link is not None and x.link.root is not None else None


def write(tracer, target, index, value) -> None:
    """x[index] = value, recorded: the Python object x (and the array it views, if it is a view, and the
    other views of that array) hold the new values afterwards."""
    from ..traced import Traced, holds_live, plain
    index = plain_index(tracer, index)
    target = current(target)
    viewed = _root(target)
    root = viewed if viewed is not None else target
    live = holds_live(value)
    if root.ref is None and not live:
        target.value[index] = plain(value)  # NumPy's own write into a plain array (its views see it)
        return
    positions = (target.link.pos if viewed is not None else np.arange(target.size).reshape(target.shape))[index]
    if isinstance(value, (list, tuple)):
        value = tracer.call(OPS["array"], np.array, (value,), {})
    link = _link(root)
    whole = viewed is None and not link.views and positions.shape == target.shape and (
        np.array_equal(positions.ravel(), np.arange(target.size)))
    if whole and isinstance(value, Traced) and value.ref is not None and np.shape(value) == target.shape:
        new = value  # every element replaced (x += y): x now holds y's nodes, and no node is needed
    elif tracer.scalar:  # split into scalars a write adds no node: the written elements are the value's nodes
        old, v = tracer.lift(root), tracer.lift(value)
        values, refs = np.array(old.value, dtype=float), np.array(np.broadcast_to(old.ref, old.shape))
        values.reshape(-1)[positions] = np.broadcast_to(v.value, positions.shape)
        refs.reshape(-1)[positions] = np.broadcast_to(v.ref, positions.shape)
        new = tracer.wrap(values, refs)
    else:
        operands = [root] + ([value] if isinstance(value, Traced) else [])
        fixed = None if isinstance(value, Traced) else np.asarray(plain(value), dtype=float)

        def call(arrays):
            out = np.array(arrays[0], dtype=float, order="C", copy=True)
            out.reshape(-1)[positions] = arrays[1] if fixed is None else fixed
            return out
        new = STRUCTURAL.move(tracer, "setitem", call, operands, {"idx": index_label(index)})
    root.value, root.ref, root.named = new.value, new.ref, False
    link.writes += 1
    alive = [v for v in (r() for r in link.views) if v is not None]
    link.views = [weakref.ref(v) for v in alive]
    for view in alive:
        refresh(tracer, view)


def refresh(tracer, view) -> None:
    """Bring a view up to date with the array it views, written into since."""
    link = view.link
    root, pos = link.root, link.pos
    if tracer.scalar or root.ref is None:
        view.value = root.value.reshape(-1)[pos]
        view.ref = None if root.ref is None else np.asarray(root.ref).reshape(-1)[pos]
    else:
        new = COPIES.move(tracer, "view", lambda arrays: arrays[0].reshape(-1)[pos], [root])
        view.value, view.ref = new.value, new.ref
    view.named = False
    link.seen = root.link.writes


def _viewing(out, x, m: np.ndarray) -> None:
    """out is a NumPy view of x, element k of out being element m[k] of x (flattened)."""
    viewed = _root(x)
    root = viewed if viewed is not None else x
    link = _link(out)
    link.root = root
    link.pos = x.link.pos.reshape(-1)[m] if viewed is not None else m
    link.seen = _link(root).writes
    root.link.views.append(weakref.ref(out))


def current(x):
    """x, brought up to date if it is a view of an array written since."""
    root = _root(x)
    if root is not None and x.link.seen != root.link.writes:
        refresh(x.tracer, x)
    return x


def canvas_result(tracer, raw: Any, operands: list, call: Callable) -> Any:
    """A structural call on plain arrays only: its plain result (a list of them for split), where a view of
    its operand stays a view, as NumPy made it."""
    if not isinstance(raw, (np.ndarray, list, tuple)):
        return raw  # one element of a plain array: NumPy's own scalar
    several = isinstance(raw, (list, tuple))
    results = []
    for k, v in enumerate(outputs(raw)):
        out = tracer.wrap(v, None)
        if len(operands) == 1 and np.may_share_memory(v, operands[0].value):
            _viewing(out, operands[0], sources(call, [operands[0].shape], True)[k])
        results.append(out)
    return results if several else results[0]


# -- plain Python's spellings -------------------------------------------------------------------------

# math.f of a traced value is this NumPy function: idioms.py gives the model's math module these stand-ins,
# and `gradviz ops` lists math.f beside the NumPy spelling (math.erf is an entry of its own)
MATH = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "log2": np.log2, "log10": np.log10,
        "sqrt": np.sqrt, "pow": np.power, "fabs": np.absolute, "sin": np.sin, "cos": np.cos, "tan": np.tan,
        "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh}
for _name, _func in MATH.items():
    _by = FUNCTIONS[_func]
    _by.syntax = _by.syntax + (f"math.{_name}",)


# -- a value leaving the graph ------------------------------------------------------------------------

CUT = register(Entry("cut", WRITES, ("∂(x taken as a number)/∂x = 0: the gradient stops here",), ELEMENTWISE,
                     (), (), ("float(x)", "int(x)", "x.item()", "range(n)", "x[i:j] with traced i, j", "x // y"),
                     "{0} taken as a number", ("x",), (), lambda x: x, lambda x, out: 0.0,
                     variables=("x",), zero=True,
                     note="where Python needs a plain number, the traced value gives its value "
                          "and its gradient stops; one warning names the file:line"))
