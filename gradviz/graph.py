"""Node, Edge, Graph: the traced DAG and its JSON form. Pure data: no NumPy dispatch, no rendering.

Nodes are stored in creation order, which is a topological order (an operation is recorded after its
inputs), and each node's incoming edges are stored contiguously, starting at `first_edge`. Backward is
therefore one pass over the edges in reverse, and a node's inputs are a slice of the edge list.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

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
        if op.kind == "reduce" and len(parts) > 1:  # an n-ary node: the inputs joined by the operation
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
                 "shape": list(n.shape), "value": _num(n.value), "grad": _num(n.grad),
                 "nondiff": bool(n.nondiff),
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
        d = self.to_dict()
        head = {k: v for k, v in d.items() if k not in ("nodes", "edges")}
        dump = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
        lines = ["{"] + [f" {dump(k)}: {dump(v)}," for k, v in head.items()]
        for key in ("nodes", "edges"):
            items = ",\n".join(f"  {dump(item)}" for item in d[key])
            lines.append(f' "{key}": [\n{items}\n ]' + ("," if key == "nodes" else ""))
        return "\n".join(lines) + "\n}\n"

    # -- figures: the views are imported here only, so the data model never depends on them ----------
    def render(self, path: str | Path, format: str | None = None, rankdir: str = "LR",
               wrt: str | None = None, collapse: bool = False) -> Path:
        """Write the graph to path as svg, png, pdf, dot, mermaid or json (default: from the extension);
        collapse draws each layer (a method call of an object) as one node."""
        from .output import format_for, write

        path = Path(path)
        write(self, format or format_for(path), path, rankdir, wrt, collapse)
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
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else str(v)
    if np.isfinite(arr).all():
        return arr.tolist()
    return np.vectorize(lambda v: v if math.isfinite(v) else str(v), otypes=[object])(arr).tolist()
