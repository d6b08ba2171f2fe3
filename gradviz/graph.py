"""Node, Edge, Graph: the traced DAG and its JSON form. Pure data: no NumPy dispatch, no rendering.

Nodes are stored in creation order, which is a topological order (an operation is recorded after its
inputs), and each node's incoming edges are stored contiguously, starting at `first_edge`. Backward is
therefore one pass over the edges in reverse, and a node's inputs are a slice of the edge list.
"""
from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import GradvizError
from .ops import OPS

SCHEMA = "gradviz/graph@1"


class Node:
    """A value in the graph: a leaf (a parameter of the model), a constant, or the result of an operation."""

    __slots__ = ("id", "name", "kind", "op", "value", "grad", "nondiff", "first_edge", "ctx", "cluster", "tangent")

    def __init__(self, id: int, name: str | None, kind: str, op: str | None, value: Any,
                 nondiff: bool, first_edge: int, ctx: Any = None, cluster: int | None = None) -> None:
        self.id = id
        self.name = name  # the variable it was bound to, or None (then its label is an expression)
        self.kind = kind  # "leaf" | "const" | "op"
        self.op = op
        self.value = value  # float at scalar granularity, ndarray at tensor granularity
        self.grad: Any = 0.0  # ∂output/∂node, filled by backward
        self.nondiff = nondiff
        self.first_edge = first_edge
        self.ctx = ctx  # tensor granularity: (input values, params) that backward's VJPs need
        self.cluster = cluster  # index into Graph.clusters: the method call of an object that computed it
        self.tangent: Any = None  # ∂node/∂graph.wrt, filled by forward mode

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)


class Edge:
    """input → result. local: ∂result/∂input; upstream: ∂output/∂result; chain: upstream × local."""

    __slots__ = ("src", "dst", "arg", "local", "upstream", "chain", "tangent")

    def __init__(self, src: int, dst: int, arg: int, local: Any) -> None:
        self.src = src
        self.dst = dst
        self.arg = arg
        # None from a constant (not differentiated; chain stays None too), or where the local Jacobian is
        # left unmaterialised (tensor dot, indexing: chain is then the vector-Jacobian product)
        self.local = local
        self.upstream: Any = None
        self.chain: Any = None
        self.tangent: Any = None  # forward mode: local × tangent of src, this edge's share of dst's tangent


class Graph:
    def __init__(self, granularity: str) -> None:
        self.granularity = granularity
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.leaves: dict[str, Any] = {}  # name -> node id (tensor) or array of node ids (scalar)
        self.output: Any = None  # node id, or an array of node ids for an array output split into scalars
        self.source = ""  # what was traced, e.g. "samples/neuron.py:forward"
        # one entry per method call of an object: (the object's name, e.g. "dense1"; which call of it, from 0)
        self.clusters: list[tuple[str, int]] = []
        self.wrt: str | None = None  # the input forward mode differentiated with respect to, e.g. "w[0]"
        self._labels: dict[int, str] = {}

    # -- structure --------------------------------------------------------------------------------
    def in_edges(self, node_id: int) -> list[Edge]:
        end = self.nodes[node_id + 1].first_edge if node_id + 1 < len(self.nodes) else len(self.edges)
        return self.edges[self.nodes[node_id].first_edge:end]

    def feeding(self, targets: Any) -> list[bool]:
        """For each node: does a path lead from it to one of the nodes `targets` (each target feeds itself)?
        One sweep over the edges in reverse, as backward makes."""
        feeds = [False] * len(self.nodes)
        for i in targets:
            feeds[i] = True
        for e in reversed(self.edges):
            if feeds[e.dst]:
                feeds[e.src] = True
        return feeds

    def output_ids(self) -> list[int]:
        return np.ravel(self.output).astype(int).tolist()

    def cluster_of(self, node_id: int) -> tuple[str, int] | None:
        """(object name, call number) of the method call that computed the node, or None."""
        c = self.nodes[node_id].cluster
        return None if c is None else self.clusters[c]

    def rule(self, edge: Edge) -> str:
        return OPS[self.nodes[edge.dst].op].rule(edge.arg)

    # -- values for people ------------------------------------------------------------------------
    @property
    def output_value(self) -> Any:
        return self._gather(self.output, "value")

    def grad(self, leaf: str) -> np.ndarray:
        """∂output/∂leaf, shaped like the leaf."""
        return np.asarray(self._gather(self._leaf(leaf), "grad"), dtype=float)

    def leaf_value(self, leaf: str) -> np.ndarray:
        return np.asarray(self._gather(self._leaf(leaf), "value"), dtype=float)

    def _leaf(self, name: str) -> Any:
        name = name if name in self.leaves else name.replace('"', "'")  # params["W1"] as Python prints it
        if name not in self.leaves:
            raise KeyError(f"no leaf named {name!r}; leaves: {', '.join(self.leaves)}")
        return self.leaves[name]

    def _gather(self, ref: Any, attr: str) -> Any:
        if isinstance(ref, np.ndarray):
            flat = [getattr(self.nodes[i], attr) for i in ref.ravel().tolist()]
            out = np.array(flat, dtype=float).reshape(ref.shape)
            return float(out) if out.ndim == 0 else out
        value = getattr(self.nodes[int(ref)], attr)
        return float(value) if np.ndim(value) == 0 else np.asarray(value)

    def label(self, node_id: int) -> str:
        node = self.nodes[node_id]
        if node.name is not None:
            return node.name
        label = self._labels.get(node_id)
        if label is None:
            label = self._labels[node_id] = self._expression(node_id, depth=2)
        return label

    def _expression(self, node_id: int, depth: int) -> str:
        """A short label built from the inputs' labels, for a value never bound to a variable."""
        node = self.nodes[node_id]
        if node.name is not None:
            return node.name
        if node.kind == "const":
            return _const_label(node.value)
        if depth == 0:
            return "…"
        op = OPS[node.op]
        parts = []
        for e in self.in_edges(node_id):
            part = self._expression(e.src, depth - 1)
            if self.nodes[e.src].name is None and self.nodes[e.src].kind == "op" and any(c in part for c in "+-*/@ "):
                part = f"({part})"
            parts.append(part)
        if op.kind.nary and len(parts) > 1:  # an n-ary node: the inputs joined by the operation
            shown = parts[:3] + (["…"] if len(parts) > 3 else [])
            text = "+".join(shown) if op.name == "sum" else f"{op.name}({','.join(shown)})"
        else:
            idx = node.ctx[1].get("idx", "…") if node.ctx else "…"
            text = op.label.format(*parts, idx=idx)
        return text if len(text) <= 28 else text[:27] + "…"

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {
            "schema": SCHEMA,
            "granularity": self.granularity,
            "source": self.source,
            "output": _ids_json(self.output),
            "nodes": [
                {"id": f"n{n.id}", "label": self.label(n.id), "kind": n.kind, "op": n.op,
                 "shape": [] if type(n.value) is float else list(n.shape), "value": _num(n.value),
                 "grad": _num(n.grad), "nondiff": bool(n.nondiff),
                 "cluster": None if n.cluster is None else self.clusters[n.cluster][0],
                 "call": None if n.cluster is None else self.clusters[n.cluster][1]}
                for n in self.nodes
            ],
            "edges": [
                {"src": f"n{e.src}", "dst": f"n{e.dst}", "arg": e.arg, "rule": self.rule(e),
                 "local": _num(e.local), "upstream": _num(e.upstream), "chain": _num(e.chain)}
                for e in self.edges
            ],
        }
        if self.wrt is not None:  # forward mode ran: ∂node/∂wrt on every node, each edge's share on edges
            d["wrt"] = self.wrt
            for item, obj in zip(d["nodes"] + d["edges"], self.nodes + self.edges):
                item["tangent"] = _num(obj.tangent)
        return d

    def to_json(self) -> str:
        """The graph as JSON text: one node or edge per line, so it reads and diffs well."""
        collecting = gc.isenabled()
        gc.disable()  # millions of new dicts, none of them garbage: the collector would only slow this down
        try:
            d = self.to_dict()
        finally:
            if collecting:
                gc.enable()
        head = {k: v for k, v in d.items() if k not in ("nodes", "edges")}
        dump = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps would build an encoder per item
        lines = ["{"] + [f" {dump(k)}: {dump(v)}," for k, v in head.items()]
        for key in ("nodes", "edges"):
            items = ",\n".join(f"  {dump(item)}" for item in d[key])
            lines.append(f' "{key}": [\n{items}\n ]' + ("," if key == "nodes" else ""))
        return "\n".join(lines) + "\n}\n"

    @classmethod
    def from_json(cls, text: str | bytes, origin: str = "JSON") -> "Graph":
        """A graph saved by to_json, read back as data only (no model code, no derivative is recomputed).

        Anything that is not such a graph raises SavedGraphError naming origin and what is wrong."""
        try:
            data = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except UnicodeDecodeError:
            raise SavedGraphError(f"{origin}: not a gradviz graph (it is not UTF-8 text)")
        except json.JSONDecodeError as exc:
            raise SavedGraphError(f"{origin}:{exc.lineno}: not valid JSON: {exc.msg}")
        except RecursionError:
            raise SavedGraphError(f"{origin}: not a gradviz graph (nested too deeply)")
        return cls.from_dict(data, origin)

    @classmethod
    def from_dict(cls, data: Any, origin: str = "JSON") -> "Graph":
        """The inverse of to_dict, validating every field (see from_json)."""
        return _SavedGraph.load(data, origin)

    def warnings(self) -> list[str]:
        """One line for each thing a reader of this graph should know: NaN or inf, a point where a derivative
        does not exist, an output that depends on no leaf."""
        out = []
        bad = [f"{what} of {self.label(n.id)} is {_first_bad(v)}"
               for n in self.nodes for what, v in (("value", n.value), ("gradient", n.grad)) if not _finite(v)]
        if bad:
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            out.append(f"NaN or inf in {len(bad)} values or gradients: {'; '.join(bad[:3])}{more}")
        nondiff = [self.label(n.id) for n in self.nodes if n.nondiff]
        if nondiff:
            more = f" (and {len(nondiff) - 3} more)" if len(nondiff) > 3 else ""
            out.append(f"not differentiable at {', '.join(nondiff[:3])}{more} (a tie, or exactly at a kink): "
                       f"the local partial there is taken as 0, as d max(x, 0)/dx = 0 at x = 0")
        if self.leaves and not self._output_reaches_a_leaf():
            out.append(f"the output does not depend on any leaf ({', '.join(self.leaves)}): every gradient is 0")
        cuts: dict[str, list[str]] = {}  # a "cut" node is named "float() at model.py:12"
        for n in self.nodes:
            if n.op == "cut":
                how, _, where = self.label(n.id).rpartition(" at ")
                cuts.setdefault(where, []).append(f"{how} of {self.label(self.in_edges(n.id)[0].src)}")
        for where, whats in cuts.items():
            whats = list(dict.fromkeys(whats))
            more = f" (and {len(whats) - 2} more)" if len(whats) > 2 else ""
            out.append(f"{where}: {', '.join(whats[:2])}{more}: used as a plain number, so no gradient flows "
                       f"back through it (the figure marks the cut)")
        return out

    def _output_reaches_a_leaf(self) -> bool:
        feeds = self.feeding(self.output_ids())
        return any(feeds[n.id] for n in self.nodes if n.kind == "leaf")

    # -- figures: the views are imported here only, so the data model never depends on them ----------
    def render(self, path: str | Path, format: str | None = None, rankdir: str = "LR",
               wrt: str | None = None, collapse: bool = False, force: bool = False) -> Path:
        """Write the graph to path as svg, png, pdf, dot, mermaid or json (default: from the extension);
        collapse draws each layer (a method call of an object) as one node. An existing file that gradviz
        did not write is kept (an error), unless force."""
        from .output import format_for, write

        path = Path(path)
        write(self, format or format_for(path), path, rankdir, wrt, collapse, force)
        return path

    def _repr_svg_(self) -> str:
        """Jupyter shows a Graph as its figure."""
        from .views.dot import to_dot
        from .views.render import render

        return render(to_dot(self), "svg")[0].decode("utf-8")

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def _const_label(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:  # enough digits that 1 - 1e-7 does not read as 1
        return f"{float(arr.ravel()[0]):.10g}"
    return f"const{list(arr.shape)}"


def _ids_json(ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return np.vectorize(lambda i: f"n{i}", otypes=[object])(ref).tolist() if ref.ndim else f"n{int(ref)}"
    return None if ref is None else f"n{int(ref)}"


def _num(value: Any) -> Any:
    """A number or nested list for JSON; NaN and ±inf become the strings "nan", "inf", "-inf"."""
    if value is None:
        return None
    if type(value) is float:  # every value at scalar granularity: skip NumPy, a million times over
        return value if math.isfinite(value) else str(value)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else str(v)
    if np.isfinite(arr).all():
        return arr.tolist()
    return np.vectorize(lambda v: v if math.isfinite(v) else str(v), otypes=[object])(arr).tolist()


def _finite(v: Any) -> bool:
    if type(v) is float:
        return math.isfinite(v)
    return v is None or bool(np.all(np.isfinite(v)))


def _first_bad(v: Any) -> str:
    arr = np.asarray(v, dtype=float)
    return str(float(arr.ravel()[~np.isfinite(arr.ravel())][0]))


class SavedGraphError(GradvizError):
    """A JSON file that is not a graph gradviz saved."""


_NUMBER_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class _SavedGraph(Graph):
    """A graph read back from JSON: labels and rules are the saved text, values and gradients the saved
    numbers. Nothing is recomputed, so an operation this version does not know is still shown."""

    def __init__(self, granularity: str) -> None:
        super().__init__(granularity)
        self._rules: list[str] = []

    def label(self, node_id: int) -> str:
        return self._labels[node_id]

    def rule(self, edge: Edge) -> str:
        return self._rules[edge.index]

    @classmethod
    def load(cls, data: Any, origin: str) -> "Graph":
        def fail(where: str, what: str) -> SavedGraphError:
            return SavedGraphError(f"{origin}: {where}: {what}")

        if not isinstance(data, dict):
            raise SavedGraphError(f"{origin}: not a gradviz graph (expected a JSON object)")
        if data.get("schema") != SCHEMA:
            raise SavedGraphError(f"{origin}: not a gradviz graph (schema {_short(data.get('schema'))}, "
                                  f"expected {SCHEMA!r})")
        granularity = data.get("granularity")
        if granularity not in ("scalar", "tensor"):
            raise fail("granularity", f"expected 'scalar' or 'tensor', not {_short(granularity)}")
        graph = cls(granularity)
        graph.source = _field(data, "source", str, "", fail, "")
        graph.wrt = _field(data, "wrt", (str, type(None)), None, fail, "")  # saved after forward mode
        nodes, edges = data.get("nodes"), data.get("edges")
        if not isinstance(nodes, list) or not isinstance(edges, list):
            raise fail("nodes/edges", "expected two lists")
        index: dict[str, int] = {}
        clusters: dict[tuple[str, int], int] = {}
        for i, raw in enumerate(nodes):
            where = f"nodes[{i}]"
            if not isinstance(raw, dict):
                raise fail(where, "expected an object")
            nid = _field(raw, "id", str, None, fail, where)
            if nid in index:
                raise fail(where, f"id {_short(nid)} is used twice")
            index[nid] = i
            kind = _field(raw, "kind", str, None, fail, where)
            if kind not in ("leaf", "const", "op"):
                raise fail(f"{where}.kind", f"expected 'leaf', 'const' or 'op', not {_short(kind)}")
            op = _field(raw, "op", (str, type(None)), None, fail, where)
            shape = _field(raw, "shape", list, None, fail, where)
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
                raise fail(f"{where}.shape", "expected a list of sizes")
            value = _array(raw.get("value"), shape, granularity, fail, f"{where}.value")
            grad = _array(raw.get("grad"), shape, granularity, fail, f"{where}.grad", optional=kind == "const")
            nondiff = _field(raw, "nondiff", bool, False, fail, where)
            label = _field(raw, "label", str, None, fail, where)
            cluster = _field(raw, "cluster", (str, type(None)), None, fail, where)
            call = _field(raw, "call", (int, type(None)), None, fail, where)
            if (cluster is None) != (call is None) or isinstance(call, bool) or (call is not None and call < 0):
                raise fail(where, "expected 'cluster' (an object's name) and 'call' (a count) together, or neither")
            if cluster is not None:
                cluster = clusters.setdefault((cluster, call), len(clusters))
            node = Node(i, label if kind == "leaf" else None, kind, op, value, nondiff, 0, cluster=cluster)
            node.grad = grad
            node.tangent = _array(raw.get("tangent"), shape, granularity, fail, f"{where}.tangent", optional=True)
            graph.nodes.append(node)
            graph._labels[i] = label
        last_dst = -1
        for k, raw in enumerate(edges):
            where = f"edges[{k}]"
            if not isinstance(raw, dict):
                raise fail(where, "expected an object")
            src, dst = (_field(raw, key, str, None, fail, where) for key in ("src", "dst"))
            if src not in index or dst not in index:
                raise fail(where, f"no node with id {_short(src if src not in index else dst)}")
            s, d = index[src], index[dst]
            if not s < d or d < last_dst:
                raise fail(where, "edges must run from an earlier node to a later one, grouped by their dst "
                                  "in node order, as gradviz writes them")
            arg = _field(raw, "arg", int, None, fail, where)
            position = k - graph.nodes[d].first_edge if d == last_dst else 0
            if arg != position:
                raise fail(f"{where}.arg", f"expected {position}: the edge's place among its dst's inputs")
            shape_in = list(graph.nodes[s].shape)
            local = _array(raw.get("local"), None, granularity, fail, f"{where}.local", optional=True)
            edge = _SavedEdge(s, d, arg, local, k)
            edge.upstream = _array(raw.get("upstream"), list(graph.nodes[d].shape), granularity, fail,
                                   f"{where}.upstream", optional=True)
            edge.chain = _array(raw.get("chain"), shape_in, granularity, fail, f"{where}.chain", optional=True)
            edge.tangent = _array(raw.get("tangent"), list(graph.nodes[d].shape), granularity, fail,
                                  f"{where}.tangent", optional=True)
            graph._rules.append(_field(raw, "rule", str, None, fail, where))
            graph.edges.append(edge)
            if d != last_dst:
                for j in range(last_dst + 1, d + 1):
                    graph.nodes[j].first_edge = k
                last_dst = d
        for j in range(last_dst + 1, len(graph.nodes)):
            graph.nodes[j].first_edge = len(graph.edges)
        graph.clusters = list(clusters)
        graph.output = _output(data.get("output"), index, fail)
        graph.leaves = _leaves(graph)
        return graph


class _SavedEdge(Edge):
    __slots__ = ("index",)

    def __init__(self, src: int, dst: int, arg: int, local: Any, index: int) -> None:
        super().__init__(src, dst, arg, local)
        self.index = index


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


def _field(raw: dict, key: str, types: Any, default: Any, fail: Any, where: str) -> Any:
    if key not in raw:
        if default is None and types is not None and not (isinstance(types, tuple) and type(None) in types):
            raise fail(where, f"missing {key!r}")
        return default
    v = raw[key]
    if (isinstance(v, bool) and types is int) or not isinstance(v, types):
        raise fail(f"{where}.{key}" if where else key, f"unexpected {type(v).__name__} {_short(v)}")
    return v


def _array(raw: Any, shape: list | None, granularity: str, fail: Any, where: str, optional: bool = False) -> Any:
    """A saved number or nested list (with "nan"/"inf"/"-inf" words) as a float (scalar) or an array."""
    if raw is None:
        if optional:
            return None
        raise fail(where, "missing")

    def number(v: Any) -> float:
        if isinstance(v, str) and v in _NUMBER_WORDS:
            return _NUMBER_WORDS[v]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise ValueError

    try:
        arr = np.array(raw, dtype=object)
        if arr.dtype != object or arr.ndim > 32:
            raise ValueError
        values = np.array([number(v) for v in arr.ravel().tolist()], dtype=float).reshape(arr.shape)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise fail(where, "expected a number or a rectangular list of numbers")
    if shape is not None and list(values.shape) != shape:
        raise fail(where, f"shape {list(values.shape)} does not match the node's shape {shape}")
    if granularity == "scalar":
        if values.ndim:
            raise fail(where, "expected a number (the graph is split into scalars)")
        return float(values)
    return values


def _output(raw: Any, index: dict[str, int], fail: Any) -> Any:
    if isinstance(raw, str):
        if raw not in index:
            raise fail("output", f"no node with id {_short(raw)}")
        return index[raw]
    try:
        ids = np.array(raw, dtype=object)
        if not ids.size or ids.dtype != object or any(not isinstance(i, str) or i not in index for i in ids.ravel()):
            raise ValueError
    except (TypeError, ValueError, RecursionError):
        raise fail("output", "expected a node id or a rectangular list of node ids")
    return np.vectorize(index.__getitem__, otypes=[np.int64])(ids)


def _leaves(graph: Graph) -> dict[str, Any]:
    """Leaf name -> node id; at scalar granularity the elements x[0], x[1], ... regroup into one array."""
    leaves: dict[str, Any] = {}
    if graph.granularity == "tensor":
        for n in graph.nodes:
            if n.kind == "leaf":
                leaves.setdefault(n.name, n.id)
        return leaves
    groups: dict[str, dict[tuple, int]] = {}
    for n in graph.nodes:
        if n.kind != "leaf":
            continue
        base, bracket, rest = n.name.partition("[")
        idx = tuple(int(p) for p in rest[:-1].split(",")) if bracket and _is_index(rest) else None
        if idx is None:
            leaves.setdefault(n.name, n.id)
        else:
            groups.setdefault(base, {})[idx] = n.id
    for base, elems in groups.items():
        shape = tuple(max(i[d] for i in elems) + 1 for d in range(len(next(iter(elems)))))
        if base in leaves or any(len(i) != len(shape) for i in elems) or len(elems) != math.prod(shape):
            for idx, nid in elems.items():
                leaves.setdefault(f"{base}{_index_label(idx)}", nid)
            continue
        ids = np.empty(shape, dtype=np.int64)
        for idx, nid in elems.items():
            ids[idx] = nid
        leaves[base] = ids
    return leaves


def _is_index(rest: str) -> bool:
    return rest.endswith("]") and all(p.isdigit() and p.isascii() for p in rest[:-1].split(","))


def _index_label(idx: tuple) -> str:
    return "[" + ",".join(str(i) for i in idx) + "]"
