"""The Tracer, which records every operation on traced values into a Graph, and running a model.

A model's leaves are handed to its function as `Traced` values (traced.py); every NumPy function, method
and operator on them lands in `Tracer.call` with the registry's entry (ops/), whose kind makes the nodes and
edges through the Tracer's node-building methods below.

Two granularities share that path:
- scalar: every array element is its own node; an operation on arrays becomes one scalar node per
  output element, dot/matmul/sum become products and n-ary sums, and indexing only picks elements.
- tensor: one node per NumPy operation, holding whole arrays.
"""
from __future__ import annotations

import builtins
import dis
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

from . import idioms
from .budget import Budget, GraphTooLarge, OverBudget
from .errors import GradvizError, ModelError, UnsupportedOperation
from .graph import Edge, Graph, LazyEdge, Node
from .ops import Entry
from .ops.structural import CUT, Structural, current
from .traced import Traced, canvas, holds_live, plain

SCALAR_LIMIT = 300  # "auto" granularity: split into scalars while the graph stays this small


def _operation(method: Callable) -> Callable:
    """The hook of the naming machinery (see _Frames): before one of the tracer's operations records a node,
    the model's frames are read, so values bound to variables so far have their names and the new nodes
    join the method call now running. Operations an operation calls (matmul's products and sums) skip it."""
    def wrapper(self, *args, **kwargs):
        frames = self.frames
        if frames is None or frames.busy:
            return method(self, *args, **kwargs)
        frames.see(sys._getframe(1))
        frames.busy = True
        try:
            return method(self, *args, **kwargs)
        finally:
            frames.busy = False
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


class _TooLarge(BaseException):
    """Raised inside the model when an "auto" scalar trace outgrows SCALAR_LIMIT; never reaches the user.
    A BaseException so a model's own `except Exception` cannot swallow it."""


_NODE_ID = operator.attrgetter("id")
_NAMED_ITEMS = 32  # containers up to this size are looked into at every line; a long one would cost a trace dearly


class Tracer:
    """Records operations on Traced values into one Graph."""

    def __init__(self, granularity: str, max_nodes: int | None = None, objects: dict[int, str] | None = None,
                 budget: Budget | None = None) -> None:
        self.graph = Graph(granularity)
        self.scalar = granularity == "scalar"
        self.max_nodes = max_nodes
        self.budget = budget or Budget()
        self.objects = objects or {}  # id(object) -> name, for the objects the model keeps at module level
        self.cluster: int | None = None  # the method call now running: new nodes belong to it
        self._calls: list[tuple[Any, Any, int | None]] = []  # (frame, object, cluster to return to)
        self._named: list[Any] = []  # objects made during the trace and named after their class
        self.frames: _Frames | None = None  # the model's frames, read at each operation (set while it runs)
        self.refusal: str | None = None  # why the trace stopped, where NumPy hides the reason
        self.cuts: list[int] = []  # the "cut" nodes: where a traced value was taken as a plain number
        self._cut: dict[tuple, int] = {}  # (node, file:line, how) -> its cut node, so a loop makes one

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
        return np.arange(start, len(nodes)).reshape(values.shape)

    def _add_node(self, kind: str, op: str | None, value: Any, name: str | None = None,
                  nondiff: bool = False, ctx: Any = None) -> int:
        """Append one node (a tensor, or one scalar); the caller then appends its incoming edges."""
        nodes = self.graph.nodes
        nodes.append(Node(len(nodes), name, kind, op, value, nondiff, len(self.graph.edges), ctx, self.cluster))
        return len(nodes) - 1

    def reserve(self, n: int, what: str | Callable[[], str]) -> None:
        """Every operation calls this with the number of nodes it is about to create, before it computes or
        allocates anything: an "auto" trace that outgrows SCALAR_LIMIT, or a trace that would pass the
        graph-size budget, stops here rather than after the memory is spent."""
        total = len(self.graph.nodes) + n
        if self.max_nodes is not None and total > self.max_nodes:
            raise _TooLarge
        self.budget.check(total, n, what, self.scalar)

    def leaf(self, name: str, value: np.ndarray) -> Traced:
        self.reserve(value.size if self.scalar else 1, f"the leaf {name} {value.shape}")
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
            if x.link is not None:
                current(x)
            if x.ref is not None:
                return x
            x = np.array(x.value, dtype=float)  # a plain array the model made: a constant (a copy: it may change)
        value = _const_value(x)
        n = value.size if self.scalar else 1
        self.reserve(n, "a constant" if n == 1 else f"a constant {value.shape}")
        if self.scalar:
            if value.ndim == 0:
                return Traced(self, value, np.array(self._add_node("const", None, value.item())))
            return Traced(self, value, self._add_nodes("const", None, value))
        return Traced(self, value, self._add_node("const", None, value))

    def wrap(self, value: np.ndarray, ref: Any) -> Traced:
        return Traced(self, value, ref)

    def view(self, x: Traced, pick: Callable) -> Traced:
        """Scalar granularity: rearranged elements are the same nodes, so a view adds none."""
        return Traced(self, np.asarray(pick(x.value)), np.asarray(pick(x.ref)))

    def op_node(self, op: str, value: Any, srcs: list, locals_: list | Callable, nondiff: bool = False,
                ctx: Any = None) -> int:
        """One node (a tensor, or one scalar) with an edge from each of srcs, carrying locals_: one per edge, or
        (tensor granularity) a function of the edge's input number computing it when first read."""
        nid = self._add_node("op", op, value, nondiff=nondiff, ctx=ctx)
        if self.scalar:
            srcs = self._ids(srcs)
        edge, locals_ = (LazyEdge, repeat(locals_)) if callable(locals_) else (Edge, locals_)
        self.graph.edges.extend(map(edge, srcs, [nid] * len(srcs), range(len(srcs)), locals_))
        return nid

    def op_nodes(self, op: str, values: np.ndarray, arity: int, srcs: list, locs: list,
                 nondiff: Any = None) -> np.ndarray:
        """Scalar granularity: one node per element of values, each with `arity` edges; srcs and locs list the
        edges node by node."""
        ids = self._add_nodes("op", op, values, nondiff=nondiff, arity=arity)
        self._add_edges(ids, arity, srcs, locs)
        return ids

    def op_nodes_ragged(self, op: str, values: np.ndarray, counts: list[int], srcs: list, locs: list) -> np.ndarray:
        """Scalar granularity: one node per element of values, node k with counts[k] edges."""
        nodes, edges = self.graph.nodes, self.graph.edges
        start = len(nodes)
        first = 0
        for k, v in enumerate(np.ravel(values).tolist()):
            nodes.append(Node(start + k, None, "op", op, v, False, len(edges), None, self.cluster))
            end = first + counts[k]
            edges.extend(map(Edge, self._ids(srcs[first:end]), [start + k] * counts[k], range(counts[k]),
                             locs[first:end]))
            first = end
        return np.arange(start, len(nodes)).reshape(np.shape(values))

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

    # -- operations ------------------------------------------------------------------------------
    @_operation
    def call(self, entry: Entry, func: Callable, args: tuple, kwargs: dict, what: str | None = None) -> Any:
        """One call of a NumPy function (or method, or operator) on traced values, bound to NumPy's signature
        and made into nodes by the entry's kind (a primitive) or its derivation (composed of primitives)."""
        for a in args:  # the common case first: a traced argument with a node
            if type(a) is Traced and a.ref is not None:
                live = True
                break
        else:
            live = holds_live((args, kwargs))
        if not live and not isinstance(entry.kind, Structural):
            return canvas(self, func(*plain(args), **plain(kwargs)))  # plain arrays only (np.zeros… + 1)
        arguments = entry.bind(func, args, kwargs, what)
        try:
            if entry.kind is None:
                return entry.derive(self, **arguments)
            return entry.kind.trace(self, entry, arguments)
        except (ValueError, TypeError, IndexError, np.linalg.LinAlgError) as exc:
            raise numpy_error(func, args, kwargs, exc) from None

    @_operation
    def sum_scalars(self, acc: Traced, items: list) -> Traced:
        """acc + items[0] + items[1] + … on scalars, as the one n-ary node that repeated + would leave (each
        unnamed partial sum opened up, then pruned) but in one step: repeated + copies the growing list of
        terms at every step, which is quadratic in the number of terms."""
        xs = [self.lift(x) for x in items]
        self.reserve(1, f"a sum of {len(xs) + 1:,} terms")
        value = acc.value
        with np.errstate(all="ignore"):
            for x in xs:
                value = np.add(value, x.value)
        terms = []
        for x in [acc] + xs:
            terms.extend(self._terms(int(x.ref)))
        nid = self._new_sum(float(value), terms)
        return Traced(self, np.asarray(value, dtype=float), np.array(nid))

    def scalar_sums(self, out: np.ndarray, refs: list) -> np.ndarray:
        """Scalar x + y, elementwise: one sum node per element of out."""
        sum_node = self.sum_node
        ids = [sum_node(v, ab) for v, ab in zip(out.ravel().tolist(), zip(refs[0], refs[1], strict=True), strict=True)]
        return np.array(ids, dtype=np.int64).reshape(out.shape)

    def sum_node(self, value: float, srcs: Any) -> int:
        """The node for a + b."""
        a, b = srcs
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

    # -- values taken as plain numbers ------------------------------------------------------------
    def concrete(self, x: Any, how: str, integer: bool = False, store: bool = False, array: bool = False) -> Any:
        """The plain value of x where Python needs a number (float(x), an index, range(n), a slice): a traced
        value gives its value, and its gradient stops there. The place is recorded as a "cut" node (one per
        value and line), which the figure shows and which gives one warning naming the file:line."""
        if isinstance(x, (list, tuple)):
            return type(x)(self.concrete(v, how, integer, store, array) for v in x)
        if isinstance(x, dict):
            return {k: self.concrete(v, how, integer, store, array) for k, v in x.items()}
        if not isinstance(x, Traced):
            return x
        if store:
            self.refuse_store()
        frame = _model_frame()
        where = f"{_display(frame.f_code.co_filename)}:{frame.f_lineno}" if frame else "?"
        value = x.value
        if x.ref is not None:
            self._record_cut(x, how, where)
        if integer:
            if not np.all(np.equal(np.mod(value, 1), 0)):
                raise TypeError(f"{how} needs an integer, and the traced value is {value}")
            value = value.astype(np.int64)
        return value if array or value.ndim else value.item()

    def refuse_store(self) -> None:
        """NumPy asks a traced value for a plain number or array: refuse when that is for `a[i] = x` into a
        plain array (the model's line is storing into a subscript), where the gradient would be lost."""
        frame = _model_frame()
        if frame is not None and dis.opname[frame.f_code.co_code[frame.f_lasti]] == "STORE_SUBSCR":
            # NumPy replaces an exception raised here by its own "setting an array element with a sequence":
            # the trace reports this one instead
            self.refusal = ("writing a traced value into a plain NumPy array (a[i] = x) would drop its gradient: "
                            "make that array with np.zeros, np.empty or np.full (or their _like forms), or build "
                            "it from the traced values with np.array([...])")
            raise UnsupportedOperation(self.refusal)

    def _record_cut(self, x: Traced, how: str, where: str) -> None:
        key = (tuple(np.ravel(x.ref).tolist()), how, where)
        if key in self._cut:
            return
        cut = CUT.kind.apply(self, CUT, [x])
        label = f"{how} at {where}"
        for i in np.ravel(cut.ref).tolist():
            self.graph.nodes[i].name = label
            self.cuts.append(i)
        self._cut[key] = cut.ref

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
            if type(v) is Traced and not v.named and v.tracer is self and v.ref is not None:
                v.named = True
                self._name(v, f"{self.objects[id(obj)]}.{attr}")

    # -- names -----------------------------------------------------------------------------------
    def name_locals(self, local_vars: dict) -> None:
        """Label values by the variable they were first bound to; a value put in a small dict or list held
        by a variable (hs[t] = ..., exp_values.append(...)) by that variable and its key: hs[0], exp_values[1]."""
        for var, v in local_vars.items():
            if type(v) is Traced:
                if not v.named and v.tracer is self and v.ref is not None:
                    v.named = True
                    self._name(v, var)
            elif (type(v) is dict or type(v) is list) and len(v) <= _NAMED_ITEMS:
                for key, item in (v.items() if type(v) is dict else enumerate(v)):
                    if type(item) is Traced and not item.named and item.tracer is self and item.ref is not None:
                        item.named = True
                        self._name(item, f"{var}[{key!r}]")

    def _name(self, v: Traced, var: str) -> None:
        nodes = self.graph.nodes
        if not self.scalar or v.ref.ndim == 0:
            node = nodes[int(v.ref)]
            if node.kind == "op" and node.name is None:
                node.name = var
            return
        for i, text in zip(v.ref.ravel().tolist(), _index_texts(v.ref.shape), strict=True):
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
        needed = graph.feeding(graph.output_ids() + self.cuts)  # a cut is kept: the figure shows where it is
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


# -- values and errors --------------------------------------------------------------------------------------

def _const_value(x: Any) -> np.ndarray:
    try:
        value = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise UnsupportedOperation(f"cannot combine a traced value with {type(x).__name__} {x!r:.40}") from None
    return value


_OWN = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(np.__file__))


def _model_frame() -> Any:
    """The innermost frame of the model's code (not gradviz's, not NumPy's) on the stack now."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_OWN):
        frame = frame.f_back
    return frame


def _index_texts(shape: tuple) -> list[str]:
    """"[i,j]" for every index of an array of this shape, in C order."""
    if not shape:
        return ["[]"]
    heads = ["["]
    for n in shape[:-1]:
        heads = [f"{h}{i}," for h in heads for i in range(n)]
    tails = [f"{i}]" for i in range(shape[-1])]
    # one concatenation per element, the last index's texts made once: a 600×600 leaf's names in 30 ms, not 200
    return [h + t for h in heads for t in tails]


def numpy_error(func: Callable, args: tuple, kwargs: dict, exc: BaseException) -> BaseException:
    """The error NumPy itself gives for this call on the model's own values (the shapes the user wrote, not
    gradviz's internal ones), with a hint where an obvious one exists; `exc` when NumPy has no complaint."""
    try:
        with np.errstate(all="ignore"):
            func(*plain(args), **{k: plain(v) for k, v in kwargs.items()})
    except Exception as own:  # noqa: BLE001  whatever NumPy raises is what the user should read
        text = str(own)
        if (func in (np.dot, np.matmul) and isinstance(own, ValueError) and ("align" in text or "mismatch in its core"
                                                                              in text)
                and all(np.ndim(a) >= 2 for a in plain(args[:2]))):
            return ValueError(f"{text}; hint: the inner dimensions must agree: a transpose of one operand (x.T) is "
                              f"the usual fix")
        return own  # as NumPy raised it: some of its errors cannot be rebuilt from a message alone
    return exc


# -- Python built-ins that compare instead of computing --------------------------------------------

def _fold(op: np.ufunc, builtin: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        items = list(args[0]) if len(args) == 1 and not isinstance(args[0], Traced) else list(args)
        traced = next((x for x in items if isinstance(x, Traced)), None)
        if traced is None or kwargs:
            return builtin(*args, **kwargs)
        acc = items[0]
        for x in items[1:]:
            acc = op(acc, x)
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


BUILTINS = {"max": _fold(np.maximum, builtins.max), "min": _fold(np.minimum, builtins.min), "sum": _traced_sum}


# -- running a model ---------------------------------------------------------------------------------

@dataclass
class State:
    """What the model keeps outside its function's parameters, as the loader found it."""

    constants: dict[str, Any] = field(default_factory=dict)  # parameters passed as they are (class targets)
    # leaf name -> the places holding that array: (container, key), a container being a module's globals,
    # an object's __dict__, a dict or a list; each place sees the traced leaf during the call, its own value after
    params: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    objects: dict[int, str] = field(default_factory=dict)  # id(object) -> where it lives, e.g. "dense1"
    namespaces: list[dict] = field(default_factory=list)  # objects' __dict__s, restored after the call
    files: set[str] = field(default_factory=set)  # source files of those objects' classes

    @contextmanager
    def placed(self, values: dict[str, Any]) -> Iterator[None]:
        """Put each value where the model keeps that leaf, for the duration of a call; afterwards every
        place holds its own value again and the objects' attributes are as they were."""
        snapshots = [(ns, dict(ns)) for ns in self.namespaces]
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
                ns.clear()
                ns.update(snapshot)


def run(fn: Callable, leaves: dict[str, np.ndarray], granularity: str = "auto", state: State | None = None,
        max_graph_nodes: int | None = None) -> Graph:
    """Call fn once on traced leaves and return its graph (forward only; backward fills the gradients).
    max_graph_nodes: the most nodes the graph may reach (default: what half of the free memory holds)."""
    state = state or State()
    budget = Budget(max_graph_nodes)
    if granularity == "auto":
        try:
            return _run(fn, leaves, "scalar", SCALAR_LIMIT, state, budget)
        except _TooLarge:
            return _run(fn, leaves, "tensor", None, state, budget)
    if granularity not in ("scalar", "tensor"):
        raise GradvizError(f"granularity must be scalar, tensor or auto, not {granularity!r}")
    return _run(fn, leaves, granularity, None, state, budget)


def _run(fn: Callable, leaves: dict[str, np.ndarray], granularity: str, max_nodes: int | None,
         state: State, budget: Budget) -> Graph:
    # A trace allocates millions of Node and Edge objects and frees none of them: the cyclic garbage
    # collector would walk them all again and again (half the time of a million-node trace), to find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _trace(fn, leaves, granularity, max_nodes, state, budget)
    except OverBudget as exc:
        filename = fn.__code__.co_filename
        message, todo = exc.args
        refused = GraphTooLarge((where(exc, filename) or f"{_display(filename)}:{fn.__code__.co_firstlineno}: ")
                                + message, todo)
    finally:
        if collecting:
            gc.enable()
    # raised here, once the partial graph is unreachable: its frames are gone with OverBudget's traceback, so
    # it is freed at once instead of left to the garbage collector (a second per million nodes)
    raise refused


def _trace(fn: Callable, leaves: dict[str, np.ndarray], granularity: str, max_nodes: int | None,
           state: State, budget: Budget) -> Graph:
    tracer = Tracer(granularity, max_nodes, dict(state.objects), budget)
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


class _Frames:
    """Names and clusters without a trace function: at each operation (the _operation hook) the stack is read
    from the operation up to the call of the model's function, and compared with the stack seen at the
    operation before. What a line-by-line trace would have done in between is done then, in the same order:
    a frame that has returned since names its last locals and closes its method call (Tracer.leave); the
    frame that kept running names the variables it bound; a frame entered since opens its method call
    (Tracer.enter) and names its locals. Frames are those of the model's file, and methods of the objects
    the model keeps whose classes live in other files (clusters only). A call that starts and returns
    between two operations records nothing and so has nothing to name."""

    def __init__(self, tracer: Tracer, filename: str, files: set[str], stop: Any) -> None:
        self.tracer, self.filename, self.files, self.stop = tracer, filename, files, stop
        self.stack: list[Any] = []  # the frames seen at the last operation, outermost first
        self.busy = False  # inside an operation

    def see(self, frame: Any) -> None:
        filename, files, stop = self.filename, self.files, self.stop
        while frame is not None and frame is not stop and frame.f_code.co_filename not in files \
                and frame.f_code.co_filename != filename:
            frame = frame.f_back
        if self.stack and frame is self.stack[-1]:  # the same innermost frame, so the same frames around it
            if frame.f_code.co_filename == filename:
                self.tracer.name_locals(frame.f_locals)
            return
        stack = []
        while frame is not None and frame is not stop:
            where = frame.f_code.co_filename
            if where == filename or where in files:
                stack.append(frame)
            frame = frame.f_back
        stack.reverse()
        old, same = self.stack, 0
        for a, b in zip(old, stack, strict=False):
            if a is not b:
                break
            same += 1
        self._returned(old[same:])
        tracer = self.tracer
        if same and stack[same - 1].f_code.co_filename == filename:
            tracer.name_locals(stack[same - 1].f_locals)
        for frame in stack[same:]:
            in_model = frame.f_code.co_filename == filename
            tracer.enter(frame, in_model)
            if in_model:
                tracer.name_locals(frame.f_locals)
        self.stack = stack

    def finish(self) -> None:
        """The model's function has returned: so have all the frames seen."""
        self._returned(self.stack)
        self.stack = []

    def _returned(self, frames: list) -> None:
        for frame in reversed(frames):  # innermost first, as they returned
            if frame.f_code.co_filename == self.filename:
                self.tracer.name_locals(frame.f_locals)  # a finished frame keeps its last locals
            self.tracer.leave(frame)


def _call(fn: Callable, args: dict, tracer: Tracer, filename: str, state: State, returned_at: list[int]) -> Any:
    tracer.frames = frames = _Frames(tracer, filename, state.files, sys._getframe())
    with idioms.rebound(_namespaces(fn, state), BUILTINS, tracer):
        try:
            result = fn(**args)
            outer = frames.stack[0] if frames.stack else None
            frames.finish()
            if outer is not None and outer.f_code is fn.__code__:
                returned_at.append(outer.f_lineno)  # a finished frame's line is the one it returned from
            return result
        except (_TooLarge, KeyboardInterrupt):
            raise
        except (Exception, SystemExit) as exc:
            raise ModelError(where(exc, filename) + (tracer.refusal or _message(exc))) from exc
        finally:
            tracer.frames = None


def _namespaces(fn: Callable, state: State) -> list[dict]:
    """The globals of the model's module and of the modules beside it that define its objects' classes."""
    spaces = [fn.__globals__]
    if not state.files - {fn.__code__.co_filename}:
        return spaces
    for module in list(sys.modules.values()):
        space = getattr(module, "__dict__", None)
        if getattr(module, "__file__", None) in state.files and space is not fn.__globals__:
            spaces.append(space)
    return spaces


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
