"""The traced value type and the NumPy dispatch that records every operation into a Graph.

A model's leaves are handed to its function as `Traced` values. NumPy routes its ufuncs and array
functions to `Traced.__array_ufunc__` / `__array_function__`, Python routes + - * / ** and friends to the
dunder methods, and each lands in `Tracer.apply`, which looks the operation up in ops.OPS, computes the
forward value and the local partials, and appends a node and its incoming edges.

Two granularities share that path:
- scalar: every array element is its own node; an operation on arrays becomes one scalar node per
  output element, dot/matmul/sum become products and n-ary sums, and indexing only picks elements.
- tensor: one node per NumPy operation, holding whole arrays.
"""
from __future__ import annotations

import builtins
import gc
import operator
import os
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Callable, Iterator

import numpy as np

from .errors import GradvizError, ModelError, UnsupportedOperation
from .graph import Edge, Graph, Node
from .ops import OPS

SCALAR_LIMIT = 300  # "auto" granularity: split into scalars while the graph stays this small


def _untraced(method: Callable) -> Callable:
    """Run one of the tracer's operations with the name tracer (sys.settrace) switched off: it only needs
    the model's own frames, and it would otherwise be called on every frame of gradviz and of NumPy's
    Python wrappers, about half the cost of a trace. Python 3.12+ re-instruments code on each switch,
    so there the operation runs as it is."""
    if sys.version_info >= (3, 12):
        return method

    def wrapper(self, *args, **kwargs):
        trace = sys.gettrace()
        if trace is None:
            return method(self, *args, **kwargs)
        sys.settrace(None)
        try:
            return method(self, *args, **kwargs)
        finally:
            sys.settrace(trace)
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


class _TooLarge(BaseException):
    """Raised inside the model when an "auto" scalar trace outgrows SCALAR_LIMIT; never reaches the user.
    A BaseException so a model's own `except Exception` cannot swallow it."""


_NODE_ID = operator.attrgetter("id")


def _no_operator(symbol: str) -> Callable:
    def refuse(self, *args):
        raise UnsupportedOperation(_unsupported(f"the Python operator {symbol}"))
    return refuse


class Traced:
    """A value flowing through the model: its NumPy value and where it sits in the graph."""

    __slots__ = ("tracer", "value", "ref", "named")
    __array_priority__ = 1000.0

    def __init__(self, tracer: "Tracer", value: np.ndarray, ref: Any) -> None:
        self.tracer = tracer
        self.value = value
        self.ref = ref  # tensor: node id; scalar: array of node ids shaped like value
        self.named = False

    # -- array-like surface ------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)
    dtype = property(lambda self: self.value.dtype)
    T = property(lambda self: self.tracer.transpose(self, None))

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Traced({self.value!r})"

    def __format__(self, spec: str) -> str:
        return format(self.value.item() if self.value.ndim == 0 else self.value, spec)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __float__(self) -> float:
        raise UnsupportedOperation("float() of a traced value drops its gradient; keep it as a NumPy value")

    __int__ = __index__ = __float__

    def __array__(self, dtype=None, copy=None):
        raise UnsupportedOperation("np.array/np.asarray of a traced value is not supported (it would drop its "
                                   "gradient); build arrays from leaves instead")

    # -- Python operators --------------------------------------------------------------------
    def __add__(self, o): return self.tracer.apply("add", (self, o))
    def __radd__(self, o): return self.tracer.apply("add", (o, self))
    def __sub__(self, o): return self.tracer.apply("sub", (self, o))
    def __rsub__(self, o): return self.tracer.apply("sub", (o, self))
    def __mul__(self, o): return self.tracer.apply("mul", (self, o))
    def __rmul__(self, o): return self.tracer.apply("mul", (o, self))
    def __truediv__(self, o): return self.tracer.apply("div", (self, o))
    def __rtruediv__(self, o): return self.tracer.apply("div", (o, self))
    def __pow__(self, o): return self.tracer.apply("pow", (self, o))
    def __rpow__(self, o): return self.tracer.apply("pow", (o, self))
    def __matmul__(self, o): return self.tracer.matmul(self, o)
    def __rmatmul__(self, o): return self.tracer.matmul(o, self)
    def __neg__(self): return self.tracer.apply("neg", (self,))
    def __pos__(self): return self
    def __abs__(self): return self.tracer.apply("abs", (self,))
    def __getitem__(self, index): return self.tracer.getitem(self, index)

    def __setitem__(self, index, value):
        raise UnsupportedOperation("assigning into a traced array (x[i] = ...) is not supported; "
                                   "build a new array instead, e.g. with np.where or sums of terms")

    # Python operators with no derivative rule: named, instead of Python's "unsupported operand type"
    __floordiv__ = __rfloordiv__ = _no_operator("//")
    __mod__ = __rmod__ = _no_operator("%")
    __divmod__ = __rdivmod__ = _no_operator("divmod()")
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _no_operator("<< and >>")
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _no_operator("& | ^")
    __invert__ = _no_operator("~")
    __round__ = __trunc__ = __floor__ = __ceil__ = _no_operator("round()/math.floor()")

    # comparisons carry no gradient: they answer with plain NumPy values
    def __lt__(self, o): return self.value < _plain(o)
    def __le__(self, o): return self.value <= _plain(o)
    def __gt__(self, o): return self.value > _plain(o)
    def __ge__(self, o): return self.value >= _plain(o)
    def __eq__(self, o): return self.value == _plain(o)
    def __ne__(self, o): return self.value != _plain(o)
    __hash__ = object.__hash__

    # -- ndarray methods ---------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return self.tracer.reduce("sum", self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return self.tracer.reduce("mean", self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return self.tracer.reduce("max", self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return self.tracer.reduce("min", self, axis, keepdims)
    def dot(self, o): return self.tracer.matmul(self, o)
    def clip(self, lo, hi): return self.tracer.apply("clip", (self, lo, hi))
    def transpose(self, *axes): return self.tracer.transpose(self, _axes(axes))
    def argmax(self, *a, **k): return self.value.argmax(*a, **k)
    def argmin(self, *a, **k): return self.value.argmin(*a, **k)

    def reshape(self, *shape, order="C"):
        return self.tracer.reshape(self, shape[0] if len(shape) == 1 else shape)

    # -- NumPy protocols ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if kwargs.get("out") is not None:
            raise UnsupportedOperation(f"np.{ufunc.__name__}(..., out=...) writes in place; assign the result instead")
        if method == "__call__":
            if ufunc is np.matmul:
                return self.tracer.matmul(*inputs)
            if ufunc in _UFUNC_OPS:
                return self.tracer.apply(_UFUNC_OPS[ufunc], inputs)
            if ufunc in _NOGRAD_UFUNCS:
                return ufunc(*map(_plain, inputs), **kwargs)
        raise UnsupportedOperation(_unsupported(f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")))

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is not None:
            return handler(self.tracer, *args, **kwargs)
        if func in _NOGRAD_FUNCTIONS:
            return func(*map(_plain, args), **kwargs)
        raise UnsupportedOperation(_unsupported(_numpy_name(func)))


class Tracer:
    """Records operations on Traced values into one Graph."""

    def __init__(self, granularity: str, max_nodes: int | None = None, objects: dict[int, str] | None = None) -> None:
        self.graph = Graph(granularity)
        self.scalar = granularity == "scalar"
        self.max_nodes = max_nodes
        self.objects = objects or {}  # id(object) -> name, for the objects the model keeps at module level
        self.cluster: int | None = None  # the method call now running: new nodes belong to it
        self._calls: list[tuple[Any, Any, int | None]] = []  # (frame, object, cluster to return to)
        self._named: list[Any] = []  # objects made during the trace and named after their class

    # -- nodes ---------------------------------------------------------------------------------
    def _add_nodes(self, kind: str, op: str | None, values: np.ndarray, names: list | None = None,
                   nondiff: Any = None, arity: int = 0) -> np.ndarray:
        """Append one node per element of `values` (scalar) and return their ids, shaped like values.
        The caller then appends `arity` edges per node, in the same order."""
        nodes = self.graph.nodes
        start, first_edge, n = len(nodes), len(self.graph.edges), values.size
        nd = repeat(False, n) if nondiff is None else np.broadcast_to(nondiff, values.shape).ravel().tolist()
        firsts = range(first_edge, first_edge + n * arity, arity) if arity else repeat(first_edge, n)
        nodes.extend(map(Node, range(start, start + n), names or repeat(None, n), repeat(kind, n), repeat(op, n),
                         values.ravel().tolist(), nd, firsts, repeat(None, n), repeat(self.cluster, n)))
        self._check_size()
        return np.arange(start, len(nodes)).reshape(values.shape)

    def _add_node(self, kind: str, op: str | None, value: Any, name: str | None = None,
                  nondiff: bool = False, ctx: Any = None) -> int:
        """Append one node (a tensor, or one scalar); the caller then appends its incoming edges."""
        nodes = self.graph.nodes
        nodes.append(Node(len(nodes), name, kind, op, value, nondiff, len(self.graph.edges), ctx, self.cluster))
        return len(nodes) - 1

    def _check_size(self) -> None:
        if self.max_nodes is not None and len(self.graph.nodes) > self.max_nodes:
            raise _TooLarge

    def leaf(self, name: str, value: np.ndarray) -> Traced:
        if self.scalar:
            names = [name + text for text in _index_texts(value.shape)] if value.ndim else [name]
            ref = self._add_nodes("leaf", None, value, names)
        else:
            ref = self._add_node("leaf", None, value, name)
        self.graph.leaves[name] = ref
        return Traced(self, value, ref)

    def lift(self, x: Any) -> Traced:
        """A Traced value for x: itself, or a new constant node."""
        if isinstance(x, Traced):
            if x.tracer is not self:
                raise UnsupportedOperation("a traced value from another trace was mixed into this one")
            return x
        value = _const_value(x)
        if self.scalar:
            if value.ndim == 0:
                ref = np.array(self._add_node("const", None, value.item()))
                self._check_size()
                return Traced(self, value, ref)
            return Traced(self, value, self._add_nodes("const", None, value))
        return Traced(self, value, self._add_node("const", None, value))

    # -- operations ------------------------------------------------------------------------------
    @_untraced
    def apply(self, name: str, args: tuple) -> Traced:
        """An elementwise operation (broadcasting its inputs)."""
        op = OPS[name]
        xs = [self.lift(a) for a in args]
        vals = [x.value for x in xs]
        with np.errstate(all="ignore"):
            out = np.asarray(op.forward(*vals), dtype=float)
            partials = op.partials(vals, out)
            nondiff = op.nondiff(vals, out) if op.nondiff else None
        if self.scalar and out.ndim == 0:
            # scalars in, one scalar out (a loop over Python numbers): skip the array bookkeeping below
            refs0 = self._ids([int(x.ref) for x in xs])
            if name == "add":
                nid = self._sum_node(out.item(), refs0[0], refs0[1])
            else:
                nid = self._add_node("op", name, out.item(), nondiff=bool(nondiff))
                self.graph.edges.extend(map(Edge, refs0, [nid] * len(xs), range(len(xs)), map(float, partials)))
            self._check_size()
            return Traced(self, out, np.array(nid))
        locs = [_shaped(p, out.shape) for p in partials]
        if not self.scalar:
            ctx = (tuple(vals), {})
            nid = self._add_node("op", name, out, nondiff=nondiff is not None and bool(nondiff.any()), ctx=ctx)
            self.graph.edges.extend(Edge(x.ref, nid, i, loc) for i, (x, loc) in enumerate(zip(xs, locs)))
            return Traced(self, out, nid)
        refs = [np.broadcast_to(x.ref, out.shape).ravel().tolist() for x in xs]
        locs = [loc.ravel().tolist() for loc in locs]
        if name == "add":
            return Traced(self, out, self._scalar_sums(out, refs))
        ids = self._add_nodes("op", name, out, nondiff=nondiff, arity=len(xs))
        if len(xs) > 1:  # node by node, its inputs in order
            refs = [[r for group in zip(*refs) for r in group]]
            locs = [[v for group in zip(*locs) for v in group]]
        self._add_edges(ids, len(xs), refs[0], locs[0])
        return Traced(self, out, ids)

    def _add_edges(self, ids: np.ndarray, arity: int, srcs: list, locs: list) -> None:
        """Scalar granularity: `arity` edges into each of the nodes `ids`, just added; srcs and locs list the
        edges node by node."""
        first = int(ids.flat[0]) if ids.size else 0
        dsts = self._ids(range(first, first + ids.size))
        if arity != 1:
            dsts = list(chain.from_iterable(map(repeat, dsts, repeat(arity, len(dsts)))))
        self.graph.edges.extend(map(Edge, self._ids(srcs), dsts, list(range(arity)) * ids.size, locs))

    def _ids(self, refs: Any) -> list[int]:
        """The nodes' own id objects: edges then share them instead of holding one int object each."""
        return list(map(_NODE_ID, map(self.graph.nodes.__getitem__, refs)))

    @_untraced
    def sum_scalars(self, acc: Traced, items: list) -> Traced:
        """acc + items[0] + items[1] + … on scalars, as the one n-ary node that repeated + would leave (each
        unnamed partial sum opened up, then pruned) but in one step: repeated + copies the growing list of
        terms at every step, which is quadratic in the number of terms."""
        xs = [self.lift(x) for x in items]
        value = acc.value
        with np.errstate(all="ignore"):
            for x in xs:
                value = np.add(value, x.value)
        terms = []
        for x in [acc] + xs:
            terms.extend(self._terms(int(x.ref)))
        nid = self._new_sum(float(value), terms)
        self._check_size()
        return Traced(self, np.asarray(value, dtype=float), np.array(nid))

    def _scalar_sums(self, out: np.ndarray, refs: list) -> np.ndarray:
        """Scalar x + y, elementwise: one sum node per element of out."""
        sum_node = self._sum_node
        ids = [sum_node(v, a, b) for v, a, b in zip(out.ravel().tolist(), refs[0], refs[1])]
        self._check_size()
        return np.array(ids, dtype=np.int64).reshape(out.shape)

    def _sum_node(self, value: float, a: int, b: int) -> int:
        """The node for a + b."""
        return self._new_sum(value, self._terms(a) + self._terms(b))

    def _terms(self, ref: int) -> list[int]:
        """What node `ref` adds to a sum: itself, or, when it is an unnamed sum, its own terms. So a sum of many
        terms is one n-ary node, as a textbook draws the neuron's Σ; the opened partial sum is pruned if unused."""
        n = self.graph.nodes[ref]
        if n.name is None and n.kind == "op" and (n.op == "add" or n.op == "sum"):
            return [e.src for e in self.graph.in_edges(ref)]
        return [n.id]

    def _new_sum(self, value: float, terms: list[int]) -> int:
        nodes, edges = self.graph.nodes, self.graph.edges
        nid = len(nodes)
        nodes.append(Node(nid, None, "op", "add" if len(terms) == 2 else "sum", value, False, len(edges), None,
                          self.cluster))
        edges.extend(map(Edge, terms, [nid] * len(terms), range(len(terms)), [1.0] * len(terms)))
        return nid

    @_untraced
    def reduce(self, name: str, x: Any, axis: Any = None, keepdims: bool = False) -> Traced:
        op = OPS[name]
        x = self.lift(x)
        xs = x.value
        axes = tuple(range(xs.ndim)) if axis is None else _normalize_axes(axis, xs.ndim)
        keep_shape = tuple(1 if i in axes else n for i, n in enumerate(xs.shape))
        out_shape = keep_shape if keepdims else tuple(n for i, n in enumerate(xs.shape) if i not in axes)
        if not self.scalar:
            with np.errstate(all="ignore"):
                out = np.asarray(op.forward(xs, axis=axes, keepdims=True), dtype=float)
                local = np.asarray(op.local(xs, out, axes), dtype=float)
            nondiff = bool(op.nondiff(xs, out, axes).any()) if op.nondiff else False
            value = out.reshape(out_shape)
            nid = self._add_node("op", name, value, nondiff=nondiff, ctx=((xs,), {"keep_shape": keep_shape}))
            self.graph.edges.append(Edge(x.ref, nid, 0, local))
            return Traced(self, value, nid)
        # split into scalars: one n-ary node per output element, over the elements folded into it
        kept = [i for i in range(xs.ndim) if i not in axes]
        order = kept + list(axes)
        n = int(np.prod([xs.shape[i] for i in axes], dtype=int))
        vals = np.transpose(xs, order).reshape(-1, n)
        refs = np.transpose(np.broadcast_to(x.ref, xs.shape), order).reshape(-1, n)
        with np.errstate(all="ignore"):
            out = np.asarray(op.forward(vals, axis=1, keepdims=True), dtype=float)
            local = np.asarray(op.local(vals, out, 1), dtype=float)
        nondiff = op.nondiff(vals, out, 1) if op.nondiff else None
        ids = self._add_nodes("op", name, out[:, 0], nondiff=nondiff, arity=n)
        self._add_edges(ids, n, refs.ravel().tolist(), local.ravel().tolist())
        return Traced(self, out.reshape(out_shape), ids.reshape(out_shape))

    @_untraced
    def matmul(self, a: Any, b: Any) -> Traced:
        a, b = self.lift(a), self.lift(b)
        if a.ndim == 0 or b.ndim == 0:
            return self.apply("mul", (a, b))
        if not self.scalar:
            with np.errstate(all="ignore"):
                out = np.asarray(np.matmul(a.value, b.value), dtype=float)
            op = OPS["matmul"]
            args = (a.value, b.value)
            nid = self._add_node("op", "matmul", out, ctx=(args, {}))
            for i, x in enumerate((a, b)):
                # a scalar result's Jacobian is just its gradient, shaped like the input: show it
                local = op.vjp[i](np.ones(()), args, out, {}) if out.size == 1 else None
                self.graph.edges.append(Edge(x.ref, nid, i, local))
            return Traced(self, out, nid)
        # split into scalars: products a[..i,k]*b[..k,j], then one n-ary sum over k
        a2 = a if a.ndim > 1 else self._view(a, lambda v: v[None, :])
        b2 = b if b.ndim > 1 else self._view(b, lambda v: v[:, None])
        products = self.apply("mul", (self._view(a2, lambda v: v[..., :, :, None]),
                                      self._view(b2, lambda v: v[..., None, :, :])))
        total = self.reduce("sum", products, axis=-2)
        if a.ndim == 1:
            total = self._view(total, lambda v: v[..., 0, :])
        if b.ndim == 1:
            total = self._view(total, lambda v: v[..., 0])
        return total

    def _view(self, x: Traced, pick: Callable) -> Traced:
        """Scalar granularity: rearranged elements are the same nodes, so a view adds none."""
        return Traced(self, np.asarray(pick(x.value)), np.asarray(pick(x.ref)))

    def _structural(self, name: str, x: Any, pick: Callable, params: dict) -> Traced:
        x = self.lift(x)
        if self.scalar:
            return self._view(x, pick)
        value = np.asarray(pick(x.value), dtype=float)
        nid = self._add_node("op", name, value, ctx=((x.value,), params))
        self.graph.edges.append(Edge(x.ref, nid, 0, None))
        return Traced(self, value, nid)

    @_untraced
    def getitem(self, x: Any, index: Any) -> Traced:
        index = _plain_index(index)
        return self._structural("getitem", x, lambda v: v[index], {"index": index, "idx": _index_label(index)})

    @_untraced
    def reshape(self, x: Any, shape: Any) -> Traced:
        return self._structural("reshape", x, lambda v: np.reshape(v, shape), {})

    @_untraced
    def transpose(self, x: Any, axes: Any) -> Traced:
        return self._structural("transpose", x, lambda v: np.transpose(v, axes), {"axes": axes})

    # -- clusters: the method calls of objects --------------------------------------------------
    def enter(self, frame: Any, in_model: bool) -> bool:
        """A function starts: if it is a method of an object (`self` first), its operations form a cluster
        named after the object. A method calling another method of the same object stays in one cluster.
        Objects the model keeps at module level have names; others (in_model only) take the name of the
        caller's variable holding them, else their class name."""
        code = frame.f_code
        # a constructor builds a layer, it does not run it
        if not code.co_argcount or code.co_varnames[0] != "self" or code.co_name == "__init__":
            return False
        obj = frame.f_locals.get("self")
        name = self.objects.get(id(obj))
        if name is None:
            if not in_model:
                return False
            name = self.objects[id(obj)] = self._unknown_name(obj, frame.f_back)
            self._named.append(obj)  # kept alive, so its id is not reused by another object during the trace
        if self._calls and self._calls[-1][1] is obj:
            self._calls.append((frame, obj, self.cluster))
            return True
        clusters = self.graph.clusters
        calls = sum(1 for c in clusters if c[0] == name)
        self._calls.append((frame, obj, self.cluster))
        self.cluster = len(clusters)
        clusters.append((name, calls))
        return True

    def leave(self, frame: Any) -> None:
        if self._calls and self._calls[-1][0] is frame:
            _, obj, self.cluster = self._calls.pop()
            self._name_attributes(obj)

    def _unknown_name(self, obj: Any, caller: Any) -> str:
        held = [var for var, v in (caller.f_locals.items() if caller is not None else ()) if v is obj]
        base = held[0] if held else type(obj).__name__
        taken = set(self.objects.values())
        k = 1
        while (name := base if k == 1 else f"{base}#{k}") in taken:
            k += 1
        return name

    def _name_attributes(self, obj: Any) -> None:
        """Values a method stored on its object (`self.output = ...`) are named after where they live."""
        for attr, v in getattr(obj, "__dict__", {}).items():
            if type(v) is Traced and not v.named and v.tracer is self:
                v.named = True
                self._name(v, f"{self.objects[id(obj)]}.{attr}")

    # -- names -----------------------------------------------------------------------------------
    def name_locals(self, local_vars: dict) -> None:
        """Label values by the variable they were first bound to."""
        for var, v in local_vars.items():
            if type(v) is Traced and not v.named and v.tracer is self:
                v.named = True
                self._name(v, var)

    def _name(self, v: Traced, var: str) -> None:
        nodes = self.graph.nodes
        if not self.scalar or v.ref.ndim == 0:
            node = nodes[int(v.ref)]
            if node.kind == "op" and node.name is None:
                node.name = var
            return
        for i, text in zip(v.ref.ravel().tolist(), _index_texts(v.ref.shape)):
            node = nodes[i]
            if node.kind == "op" and node.name is None:
                node.name = var + text

    # -- finishing -------------------------------------------------------------------------------
    def finish(self, result: Any, optional: tuple[str, ...] = ()) -> Graph:
        """Make `result` the output and drop what does not lead to it. Leaves are kept, except the
        `optional` ones (arrays found in the model's state) that took no part in the result."""
        out = self.lift(result)
        graph = self.graph
        graph.output = out.ref
        needed = graph.feeding(graph.output_ids())
        unused = {name for name in optional if not any(needed[i] for i in np.ravel(graph.leaves[name]).tolist())}
        graph.leaves = {k: v for k, v in graph.leaves.items() if k not in unused}
        for ref in graph.leaves.values():
            for i in np.ravel(ref).tolist():
                needed[i] = True
        keep = [n for n in graph.nodes if needed[n.id]]
        if len(keep) < len(graph.nodes):
            _renumber(graph, keep)
        for e in graph.edges:
            if graph.nodes[e.src].kind == "const":  # a constant is not differentiated: no local, no chain
                e.local = None
        return graph


def _renumber(graph: Graph, keep: list[Node]) -> None:
    # one pass, no per-node lists: a kept node keeps all its incoming edges, and they stay in order
    new_id: list[Any] = [None] * len(graph.nodes)
    for i, n in enumerate(keep):
        new_id[n.id] = i
    first = 0
    for n in keep:
        end = graph.nodes[n.id + 1].first_edge if n.id + 1 < len(graph.nodes) else len(graph.edges)
        n.first_edge, first = first, first + end - n.first_edge
    for n in keep:
        n.id = new_id[n.id]
    edges, kept = graph.edges, 0  # compacted in place: a second edge list would raise the peak memory
    for e in edges:
        dst = new_id[e.dst]
        if dst is not None:
            e.src, e.dst = new_id[e.src], dst
            edges[kept] = e
            kept += 1
    del edges[kept:]
    graph.nodes = keep
    graph.leaves = {k: _remap(v, new_id) for k, v in graph.leaves.items()}
    graph.output = _remap(graph.output, new_id)


def _remap(ref: Any, new_id: list) -> Any:
    if isinstance(ref, np.ndarray):
        return np.array([new_id[i] for i in ref.ravel().tolist()], dtype=np.int64).reshape(ref.shape)
    return new_id[ref]


# -- NumPy entry points ----------------------------------------------------------------------------

_UFUNC_OPS = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div", np.power: "pow",
    np.negative: "neg", np.absolute: "abs", np.square: "square", np.sqrt: "sqrt", np.exp: "exp",
    np.log: "log", np.tanh: "tanh", np.maximum: "maximum", np.minimum: "minimum",
}
# Comparisons and the like carry no gradient: they run on the plain values.
_NOGRAD_UFUNCS = {
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.isnan, np.isinf, np.isfinite, np.sign, np.logical_and, np.logical_or, np.logical_not,
}
_NOGRAD_FUNCTIONS = {
    np.argmax, np.argmin, np.argsort, np.shape, np.ndim, np.size, np.zeros_like, np.ones_like,
    np.empty_like, np.allclose, np.isclose, np.array_equal, np.count_nonzero,
}


def _reduction(name: str) -> Callable:
    def handler(tracer: Tracer, a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if out is not None or kwargs.get("where") is not None:
            raise UnsupportedOperation(f"np.{name}(..., out=/where=) is not supported")
        return tracer.reduce(name, a, axis, bool(keepdims))
    return handler


def _clip(tracer: Tracer, a, a_min=None, a_max=None, out=None, **kwargs):
    lo = kwargs.get("min", a_min)
    hi = kwargs.get("max", a_max)
    return tracer.apply("clip", (a, -np.inf if lo is None else lo, np.inf if hi is None else hi))


_FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _reduction("sum"), np.mean: _reduction("mean"),
    np.max: _reduction("max"), np.amax: _reduction("max"),
    np.min: _reduction("min"), np.amin: _reduction("min"),
    np.dot: lambda t, a, b, out=None: t.matmul(a, b),
    np.clip: _clip,
    np.transpose: lambda t, a, axes=None: t.transpose(a, axes),
    np.reshape: lambda t, a, shape=None, *args, **kw: t.reshape(a, kw.get("newshape", shape)),
}


def _shaped(local: Any, shape: tuple) -> np.ndarray:
    """A local partial as a float array of the result's shape (a broadcast view where it is smaller)."""
    if type(local) is np.ndarray and local.shape == shape and local.dtype == np.float64:
        return local  # already right: skip np.broadcast_to, whose Python frames the name tracer also pays for
    return np.broadcast_to(np.asarray(local, dtype=float), shape)


def _plain(x: Any) -> Any:
    return x.value if isinstance(x, Traced) else x


def _const_value(x: Any) -> np.ndarray:
    try:
        value = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise UnsupportedOperation(f"cannot combine a traced value with {type(x).__name__} {x!r:.40}")
    return value


def _plain_index(index: Any) -> Any:
    """Indices never carry gradient; ranges and lists become arrays so every path indexes alike."""
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, Traced) for i in items):
        raise UnsupportedOperation("indexing with a traced value is not supported; index with integers")
    fixed = tuple(np.asarray(i) if isinstance(i, (range, list)) else i for i in items)
    return fixed if isinstance(index, tuple) else fixed[0]


def _index_texts(shape: tuple) -> list[str]:
    """"[i,j]" for every index of an array of this shape, in C order."""
    texts = [""]
    for n in shape:
        texts = [f"{t},{i}" for t in texts for i in range(n)]
    return [f"[{t[1:]}]" for t in texts]


def _index_label(index: Any) -> str:
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


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise UnsupportedOperation(f"axis {a} is out of bounds for an array of {ndim} dimensions")
    return tuple(sorted(int(a) % ndim for a in axes))


def _axes(axes: tuple) -> Any:
    if not axes or axes == (None,):
        return None
    return tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes


def _numpy_name(func: Callable) -> str:
    module = getattr(func, "__module__", "numpy") or "numpy"
    prefix = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    return f"{prefix}.{getattr(func, '__name__', func)}".replace("np.core.fromnumeric", "np")


def _unsupported(what: str) -> str:
    return f"{what} is not supported on traced values; `gradviz ops` lists the supported operations"


# -- Python built-ins that compare instead of computing --------------------------------------------

def _fold(op: str, builtin: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        items = list(args[0]) if len(args) == 1 and not isinstance(args[0], Traced) else list(args)
        traced = next((x for x in items if isinstance(x, Traced)), None)
        if traced is None or kwargs:
            return builtin(*args, **kwargs)
        acc = items[0]
        for x in items[1:]:
            acc = traced.tracer.apply(op, (acc, x))
        return acc
    wrapper.__name__ = builtin.__name__
    return wrapper


def _traced_sum(iterable, /, start=0):
    items = list(iterable)
    if not any(isinstance(x, Traced) for x in items):
        return builtins.sum(items, start)
    acc = items[0] if (isinstance(start, (int, float)) and start == 0) else start + items[0]
    rest = items[1:]
    if isinstance(acc, Traced) and acc.tracer.scalar and acc.ndim == 0 and all(np.ndim(x) == 0 for x in rest):
        return acc.tracer.sum_scalars(acc, rest)
    for x in rest:
        acc = acc + x
    return acc


BUILTINS = {"max": _fold("maximum", builtins.max), "min": _fold("minimum", builtins.min), "sum": _traced_sum}


# -- running a model ---------------------------------------------------------------------------------

@dataclass
class State:
    """What the model keeps outside its function's parameters, as the loader found it."""

    constants: dict[str, Any] = field(default_factory=dict)  # parameters passed as they are (class targets)
    # leaf name -> the places holding that array: (container, key), a container being a module's globals,
    # an object's __dict__, a dict or a list; each place sees the traced leaf during the call, its own value after
    params: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    objects: dict[int, str] = field(default_factory=dict)  # id(object) -> where it lives, e.g. "dense1"
    namespaces: list[Any] = field(default_factory=list)  # objects' __dict__s, dicts, lists: restored after the call
    files: set[str] = field(default_factory=set)  # source files of those objects' classes

    @contextmanager
    def placed(self, values: dict[str, Any]) -> Iterator[None]:
        """Put each value where the model keeps that leaf, for the duration of a call; afterwards every
        place holds its own value again and the objects' attributes are as they were."""
        snapshots = [(ns, ns.copy()) for ns in self.namespaces]
        swapped = []
        try:
            for name, value in values.items():
                for ns, key in self.params[name]:
                    swapped.append((ns, key, ns[key]))
                    ns[key] = value
            yield
        finally:
            for ns, key, original in reversed(swapped):
                ns[key] = original
            for ns, snapshot in snapshots:
                if isinstance(ns, list):
                    ns[:] = snapshot
                else:
                    ns.clear()
                    ns.update(snapshot)


def run(fn: Callable, leaves: dict[str, np.ndarray], granularity: str = "auto", state: State | None = None) -> Graph:
    """Call fn once on traced leaves and return its graph (forward only; backward fills the gradients)."""
    state = state or State()
    if granularity == "auto":
        try:
            return _run(fn, leaves, "scalar", SCALAR_LIMIT, state)
        except _TooLarge:
            return _run(fn, leaves, "tensor", None, state)
    if granularity not in ("scalar", "tensor"):
        raise GradvizError(f"granularity must be scalar, tensor or auto, not {granularity!r}")
    return _run(fn, leaves, granularity, None, state)


def _run(fn: Callable, leaves: dict[str, np.ndarray], granularity: str, max_nodes: int | None,
         state: State) -> Graph:
    # A trace allocates millions of Node and Edge objects and frees none of them: the cyclic garbage
    # collector would walk them all again and again (half the time of a million-node trace), to find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _trace(fn, leaves, granularity, max_nodes, state)
    finally:
        if collecting:
            gc.enable()


def _trace(fn: Callable, leaves: dict[str, np.ndarray], granularity: str, max_nodes: int | None,
           state: State) -> Graph:
    tracer = Tracer(granularity, max_nodes, dict(state.objects))
    args = {name: tracer.leaf(name, value) for name, value in leaves.items()}
    args.update(state.constants)
    returned_at: list[int] = []
    kept = {name: tracer.leaf(name, np.asarray(places[0][0][places[0][1]], dtype=float))
            for name, places in state.params.items()}
    with state.placed(kept):
        result = _call(fn, args, tracer, fn.__code__.co_filename, state, returned_at)
    if not (isinstance(result, Traced) and result.tracer is tracer) and (
            result is None or isinstance(result, (str, bytes, dict, tuple, list, set)) or not _numeric(result)):
        line = returned_at[-1] if returned_at else fn.__code__.co_firstlineno
        raise ModelError(f"{_display(fn.__code__.co_filename)}:{line}: {fn.__name__} returned {_describe(result)}; "
                         f"it must return a number or an array")
    graph = tracer.finish(result, tuple(state.params))
    if not graph.leaves:
        kept = ", ".join(list(state.params)[:3]) + (", …" if len(state.params) > 3 else "")
        raise ModelError(f"{_display(fn.__code__.co_filename)}:{fn.__code__.co_firstlineno}: {fn.__name__} has no "
                         f"parameters and none of the arrays the model keeps ({kept}) takes part in its output")
    return graph


def _call(fn: Callable, args: dict, tracer: Tracer, filename: str, state: State, returned_at: list[int]) -> Any:
    def local_trace(frame, event, arg):
        if event in ("line", "return"):
            tracer.name_locals(frame.f_locals)
            if event == "return":
                tracer.leave(frame)
                if frame.f_code is fn.__code__:
                    returned_at.append(frame.f_lineno)
        return local_trace

    def method_trace(frame, event, arg):
        if event == "return":
            tracer.leave(frame)
        return method_trace

    def global_trace(frame, event, arg):
        if frame.f_code.co_filename == filename:
            tracer.enter(frame, True)
            return local_trace
        # a method of an object the model keeps, whose class lives in another file
        if frame.f_code.co_filename in state.files and tracer.enter(frame, False):
            frame.f_trace_lines = False
            return method_trace
        return None

    glob = fn.__globals__
    saved = {k: glob[k] for k in BUILTINS if k in glob}
    glob.update(BUILTINS)
    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        return fn(**args)
    except (_TooLarge, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:
        raise ModelError(where(exc, filename) + _message(exc)) from exc
    finally:
        sys.settrace(previous)
        for k in BUILTINS:
            if k in saved:
                glob[k] = saved[k]
            else:
                glob.pop(k, None)


def where(exc: BaseException, filename: str) -> str:
    """"file:line: " of the innermost frame of the model's own file in exc's traceback."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            line = lineno
    return f"{_display(filename)}:{line}: " if line is not None else ""


def _display(filename: str) -> str:
    rel = os.path.relpath(filename)
    return filename if rel.startswith("..") else rel


def _message(exc: BaseException) -> str:
    if isinstance(exc, GradvizError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"the model called sys.exit({exc.code!r})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _numeric(x: Any) -> bool:
    try:
        return np.asarray(x).dtype.kind in "biuf"
    except Exception:
        return False


def _describe(x: Any) -> str:
    if x is None:
        return "None"
    name = type(x).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
