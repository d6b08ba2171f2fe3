"""Node, Edge, Graph: the traced DAG and its JSON form. Pure data: no NumPy dispatch, no rendering.

Nodes are stored in creation order, which is a topological order (an operation is recorded after its
inputs), and each node's incoming edges are stored contiguously, starting at `first_edge`. Backward is
therefore one pass over the edges in reverse, and a node's inputs are a slice of the edge list.
"""
from __future__ import annotations

import gc
import json
import math
import re
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import GradvizError
from .ops import OPS

SCHEMA = "gradviz/graph@2"
SCHEMA_V1 = "gradviz/graph@1"  # one object per node and edge, every field named: still read, and to_dict's form
# @2: a node or an edge is a list of these fields, its id its place in "nodes"; "rule" indexes "rules",
# "cluster" indexes "clusters" ([object name, call number])
NODE_FIELDS = ("kind", "label", "op", "shape", "value", "grad", "nondiff", "cluster")
EDGE_FIELDS = ("rule", "src", "dst", "local", "upstream", "chain")
_LABEL_WIDTH = 40  # an expression label longer than this is written one operation deep


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


class LazyEdge(Edge):
    """A tensor edge whose local partial is computed when something first reads it: backward needs it only as
    computed (a number, a mask: `partial.raw(arg)`), an edge from a constant never, and the array shaped like
    the result is as large as the result. `partial(arg)` computes that array; the slot `local` stays unset
    until then, so reading it lands in __getattr__ once and is a plain slot read afterwards. While `partial`
    is set, backward reads the partial from it: the local is not to be assigned before that."""

    __slots__ = ("partial",)

    def __init__(self, src: int, dst: int, arg: int, partial: Any) -> None:
        self.src = src
        self.dst = dst
        self.arg = arg
        self.partial = partial
        self.upstream = None
        self.chain = None
        self.tangent = None

    def __getattr__(self, name: str) -> Any:
        if name != "local":
            raise AttributeError(name)
        self.local = local = self.partial(self.arg)
        self.partial = None
        return local


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

    def _rule_texts(self) -> list[str]:
        """rule(e) for every edge, each (operation, argument) looked up once."""
        nodes, cache = self.nodes, {}
        texts = []
        for e in self.edges:
            key = (nodes[e.dst].op, e.arg)
            text = cache.get(key)
            if text is None:
                text = cache[key] = self.rule(e)
            texts.append(text)
        return texts

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
            label = self._labels[node_id] = self._output_label(node_id) or self._short_expression(node_id)
        return label

    def _output_label(self, node_id: int) -> str | None:
        """An output never bound to a name is called after the function that returned it (`forward`, and
        `forward[0]`, `forward[1]`, … for the elements of an array output split into scalars)."""
        function = self.source.rpartition(":")[2].rpartition(".")[2]  # a method or a nested function: its own name
        if self.output is None or not function.isidentifier():  # a lambda: its expression says more
            return None
        if not isinstance(self.output, np.ndarray):
            return function if int(self.output) == node_id else None
        where = np.argwhere(self.output == node_id)
        if not len(where):
            return None
        return function + ("[" + ",".join(str(int(i)) for i in where[0]) + "]" if self.output.ndim else "")

    def _short_expression(self, node_id: int) -> str:
        """The expression two operations deep, else one deep (its inputs' names whole, up to twice as long),
        else cut after an operator, so a name is never cut in the middle."""
        text = self._expression(node_id, 2)
        if len(text) <= _LABEL_WIDTH:
            return text
        text = self._expression(node_id, 1)
        if len(text) <= 2 * _LABEL_WIDTH:
            return text
        cut = max(text.rfind(c, 0, 2 * _LABEL_WIDTH) for c in "+-*/@,(")
        return text[:cut + 1] + "…" if cut > 0 else text

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
            run = _slice(parts)
            if run is not None:  # max(x[0,0],x[0,1],x[0,2]) is max(x[0,0:3])
                text = f"{op.name}({run})"
            else:
                shown = parts[:3] + (["…"] if len(parts) > 3 else [])
                text = "+".join(shown) if op.name == "sum" else f"{op.name}({','.join(shown)})"
        else:
            idx = node.ctx[1].get("idx", "…") if node.ctx else "…"
            text = op.label.format(*parts, idx=idx)
        return text

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The graph as plain data, one dict per node and edge with every field named (schema @1): the form
        scripts and tests inspect. to_json writes the same information in the leaner schema @2."""
        d = {
            "schema": SCHEMA_V1,
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
            for item, obj in zip(d["nodes"] + d["edges"], self.nodes + self.edges, strict=True):
                item["tangent"] = _num(obj.tangent)
        return d

    def to_json(self) -> str:
        """The graph as JSON text (schema @2): one node or edge per line, so it reads and diffs well."""
        return self.to_json_bytes().decode("utf-8")

    def to_json_bytes(self) -> bytes:
        """to_json's text encoded as UTF-8, as a file holds it: made as bytes, never as one str (a million
        nodes are 150 MB of text)."""
        import orjson

        collecting = gc.isenabled()
        gc.disable()  # millions of new tuples, none of them garbage: the collector would only slow this down
        try:
            nodes, edges = self.nodes, self.edges
            forward = self.wrt is not None
            rules: dict[str, int] = {}
            edge_rules = [rules.setdefault(text, len(rules)) for text in self._rule_texts()]
            # each row's first field carries the newline before it, as an orjson Fragment (JSON text written
            # as it is): one orjson call then writes many rows, one per line; few distinct first fields
            starts: dict[Any, Any] = {}

            def start(v: Any) -> Any:
                frag = starts.get(v)
                if frag is None:
                    frag = starts[v] = orjson.Fragment(b"\n  " + orjson.dumps(v))
                return frag

            def node_rows(part: list[Node]) -> list[tuple]:
                cols = [[start(n.kind) for n in part], [self.label(n.id) for n in part], [n.op for n in part],
                        [[] if type(n.value) is float else list(n.shape) for n in part],
                        _nums([n.value for n in part]), _nums([n.grad for n in part]),
                        [bool(n.nondiff) for n in part], [n.cluster for n in part]]
                if forward:
                    cols.append(_nums([n.tangent for n in part]))
                return list(zip(*cols, strict=True))

            def edge_rows(part: list[Edge], rule_ids: list[int]) -> list[tuple]:
                cols = [[start(i) for i in rule_ids], [e.src for e in part], [e.dst for e in part],
                        _nums([e.local for e in part]), _nums([e.upstream for e in part]),
                        _nums([e.chain for e in part])]
                if forward:
                    cols.append(_nums([e.tangent for e in part]))
                return list(zip(*cols, strict=True))

            # a chunk at a time, so the rows' tuples never exist for the whole graph at once
            node_parts = [orjson.dumps(node_rows(nodes[i:i + _CHUNK]))[1:-1] for i in range(0, len(nodes), _CHUNK)]
            edge_parts = [orjson.dumps(edge_rows(edges[i:i + _CHUNK], edge_rules[i:i + _CHUNK]))[1:-1]
                          for i in range(0, len(edges), _CHUNK)]
        finally:
            if collecting:
                gc.enable()
        head = {"schema": SCHEMA, "granularity": self.granularity, "source": self.source,
                "output": _ids_json2(self.output)}
        if forward:
            head["wrt"] = self.wrt
        head["rules"] = list(rules)
        head["clusters"] = [list(c) for c in self.clusters]
        head["node_fields"], head["edge_fields"] = _fields(forward)
        dump_text = json.JSONEncoder(ensure_ascii=False).encode
        lines = ["{"] + [f" {dump_text(k)}: {dump_text(v)}," for k, v in head.items()]
        return b"".join([("\n".join(lines) + '\n "nodes": [').encode("utf-8"), b",".join(node_parts),
                         b'],\n "edges": [', b",".join(edge_parts), b"]\n}\n"])

    @classmethod
    def from_json(cls, text: str | bytes, origin: str = "JSON") -> "Graph":
        """A graph saved by to_json (schema @2, or @1 of earlier versions), read back as data only (no model
        code, no derivative is recomputed).

        Anything that is not such a graph raises SavedGraphError naming origin and what is wrong."""
        import orjson

        collecting = gc.isenabled()
        gc.disable()  # millions of new lists and objects, none of them garbage (see to_json)
        try:
            graph = _SavedGraph.load_v2_pieces(text, origin)
            if graph is not None:
                return graph
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                data = _json_error(text, origin)  # the standard library's words, with the line number
            return cls.from_dict(data, origin)
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def from_dict(cls, data: Any, origin: str = "JSON") -> "Graph":
        """The inverse of to_dict (or of to_json's data, schema @2), validating every field (see from_json)."""
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            return _SavedGraph.load_v2(data, origin)
        return _SavedGraph.load(data, origin)

    def warnings(self) -> list[str]:
        """One line for each thing a reader of this graph should know: NaN or inf, a point where a derivative
        does not exist, an output that depends on no leaf."""
        out = []
        nodes = self.nodes
        bad = [] if _floats_finite([n.value for n in nodes]) and _floats_finite([n.grad for n in nodes]) else [
            f"{what} of {self.label(n.id)} is {_first_bad(v)}"
            for n in nodes for what, v in (("value", n.value), ("gradient", n.grad)) if not _finite(v)]
        if bad:
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            out.append(f"NaN or inf in {len(bad)} values or gradients: {'; '.join(bad[:3])}{more}")
        nondiff = self.nondiff_rules()
        if nondiff:
            at = "; ".join(f"{', '.join(labels[:3])}{f' (and {len(labels) - 3} more)' if len(labels) > 3 else ''}"
                           f" ({rule})" for rule, labels in nondiff.items())
            out.append(f"not differentiable at {at}: a tie, or exactly at a kink, where the rule gives 0, "
                       f"so the local partial there is taken as 0")
        why = self.no_leaf_reason()
        if why:
            out.append(why)
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

    def nondiff_rules(self) -> dict[str, list[str]]:
        """The rule of each operation where the derivative does not exist somewhere (the one that gave the
        0 there: `∂max(x,y)/∂y = 1 if y > x else 0` for a ReLU at 0), with the labels of those nodes."""
        rules: dict[str, list[str]] = {}
        for n in self.nodes:
            if n.nondiff:
                edges = [e for e in self.in_edges(n.id) if self.nodes[e.src].kind != "const"]
                rule = self.rule(edges[0]) if edges else str(n.op)
                rules.setdefault(rule, []).append(self.label(n.id))
        return rules

    def no_leaf_reason(self) -> str | None:
        """One line saying why no gradient reaches a leaf, when none does."""
        if not self.leaves or self._output_reaches_a_leaf():
            return None
        names = ", ".join(self.leaves)
        if all(self.nodes[i].kind == "const" for i in self.output_ids()):
            why = ("the function returned a constant: the traced path took a branch that returns a value "
                   f"computed without {names} (as `if x > 0: return x` does for x ≤ 0)")
        else:
            why = f"the output is computed from constants only, none of {names} takes part"
        return f"the output does not depend on any leaf: {why}; every gradient is 0"

    def _output_reaches_a_leaf(self) -> bool:
        feeds = self.feeding(self.output_ids())
        return any(feeds[n.id] for n in self.nodes if n.kind == "leaf")

    # -- figures, for users: the one import upwards (gradviz.output, inside these methods; see the layer
    # contract in pyproject.toml), so the data model never depends on a view
    def render(self, path: str | Path, format: str | None = None, rankdir: str | None = None,
               wrt: str | None = None, collapse: bool = False, force: bool = False) -> Path:
        """Write the graph to path as svg, png, pdf, dot, mermaid, json or html (the interactive explorer)
        (default: from the extension);
        collapse draws each layer (a method call of an object) as one node. An existing file that gradviz
        did not write is kept (an error), unless force."""
        from .output import format_for, write

        path = Path(path)
        write(self, format or format_for(path), path, rankdir, wrt, collapse, force)
        return path

    def _repr_html_(self) -> str:
        """Jupyter shows a Graph as the explorer (where the notebook runs scripts; else _repr_svg_)."""
        from .output import repr_html

        return repr_html(self)

    def _repr_svg_(self) -> str:
        """Jupyter shows a Graph as its figure where scripts do not run."""
        from .output import FORMATS

        return FORMATS["svg"].make(self, "LR", None, False)[0].decode("utf-8")

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


_ELEMENT = re.compile(r"(.+)\[(\d+(?:,\d+)*)\]")


def _slice(parts: list[str]) -> str | None:
    """`x[0:3]` or `x[1,0:3]` when the parts are consecutive elements of one array along one axis, else None."""
    found = [_ELEMENT.fullmatch(p) for p in parts]
    if not all(found) or len({m.group(1) for m in found}) != 1:
        return None
    idx = [[int(i) for i in m.group(2).split(",")] for m in found]
    if len({len(i) for i in idx}) != 1:
        return None
    moving = [d for d in range(len(idx[0])) if len({i[d] for i in idx}) > 1]
    if len(moving) != 1:
        return None
    axis = moving[0]
    start = idx[0][axis]
    if [i[axis] for i in idx] != list(range(start, start + len(idx))):
        return None
    spots = [str(i) for i in idx[0]]
    spots[axis] = f"{start}:{start + len(idx)}"
    return f"{found[0].group(1)}[{','.join(spots)}]"


_NAMED_CONSTANTS = {math.e: "e", math.pi: "π"}  # math.e ** x reads e^x·ln e, as a textbook writes it


def _const_label(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:  # enough digits that 1 - 1e-7 does not read as 1
        v = float(arr.ravel()[0])
        return _NAMED_CONSTANTS.get(v) or f"{v:.10g}"
    return f"const{list(arr.shape)}"


def _fields(forward: bool) -> tuple[list[str], list[str]]:
    """The fields of a node row and of an edge row (schema @2); after forward mode, each ends with its tangent."""
    extra = ("tangent",) if forward else ()
    return list(NODE_FIELDS + extra), list(EDGE_FIELDS + extra)


def _ids_json(ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return np.vectorize(lambda i: f"n{i}", otypes=[object])(ref).tolist() if ref.ndim else f"n{int(ref)}"
    return None if ref is None else f"n{int(ref)}"


def _ids_json2(ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return ref.tolist()
    return None if ref is None else int(ref)


def _nums(values: list) -> list:
    """_num of each value; a column of finite floats (every value of a scalar graph, as a rule) as it is."""
    # a sum that is not finite: a nan or inf in the column (or an overflow): then look at each value
    if set(map(type, values)) <= _FLOAT and math.isfinite(sum(values)):
        return values
    return [_num(v) for v in values]


def _json_error(text: str | bytes, origin: str) -> Any:
    """Why the text is not JSON, in the standard library's words (orjson's are terser); or its data, where
    only orjson refused it (it has a lower nesting limit)."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise SavedGraphError(f"{origin}: not a gradviz graph (it is not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SavedGraphError(f"{origin}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except RecursionError:
        raise SavedGraphError(f"{origin}: not a gradviz graph (nested too deeply)") from None


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


def _floats_finite(values: list) -> bool:
    """Every value a finite float or None (a constant's gradient): a scalar graph's values, checked at once.
    False also where that cannot be told at once (arrays): then each value is looked at."""
    types = set(map(type, values))
    if types <= _FLOAT:
        return math.isfinite(sum(values))  # a nan or an inf makes the sum one (so may an overflow: looked at)
    return types <= _FLOAT_OR_NONE and math.isfinite(sum(v for v in values if v is not None))


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

    def _rule_texts(self) -> list[str]:
        return self._rules

    @classmethod
    def _start(cls, data: Any, origin: str, schema: str) -> tuple["_SavedGraph", Any, list, list]:
        """The fields both schemas share, checked; the graph to fill, fail, and the node and edge lists."""
        def fail(where: str, what: str) -> SavedGraphError:
            return SavedGraphError(f"{origin}: {where}: {what}")

        if not isinstance(data, dict):
            raise SavedGraphError(f"{origin}: not a gradviz graph (expected a JSON object)")
        if data.get("schema") != schema:
            raise SavedGraphError(f"{origin}: not a gradviz graph (schema {_short(data.get('schema'))}, "
                                  f"expected {SCHEMA!r} or {SCHEMA_V1!r})")
        granularity = data.get("granularity")
        if granularity not in ("scalar", "tensor"):
            raise fail("granularity", f"expected 'scalar' or 'tensor', not {_short(granularity)}")
        graph = cls(granularity)
        graph.source = _field(data, "source", str, "", fail, "")
        graph.wrt = _field(data, "wrt", (str, type(None)), None, fail, "")  # saved after forward mode
        nodes, edges = data.get("nodes"), data.get("edges")
        if not isinstance(nodes, list) or not isinstance(edges, list):
            raise fail("nodes/edges", "expected two lists")
        return graph, fail, nodes, edges

    @classmethod
    def _start_v2(cls, data: Any, origin: str) -> tuple["_SavedGraph", Any, list, list, list[str]]:
        """_start, and the fields of schema @2 before its rows, checked: the graph to fill, fail, the node and
        edge lists, the rules."""
        graph, fail, nodes, edges = cls._start(data, origin, SCHEMA)
        for key, expected in zip(("node_fields", "edge_fields"), _fields(graph.wrt is not None), strict=True):
            if data.get(key) != expected:
                raise fail(key, f"expected {expected}")
        rules = _field(data, "rules", list, None, fail, "")
        for i, text in enumerate(rules):
            if not isinstance(text, str):
                raise fail(f"rules[{i}]", f"unexpected {type(text).__name__} {_short(text)}")
        clusters = _field(data, "clusters", list, None, fail, "")
        for i, c in enumerate(clusters):
            if not (isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and type(c[1]) is int and c[1] >= 0):
                raise fail(f"clusters[{i}]", "expected [an object's name, a call count]")
        graph.clusters = [tuple(c) for c in clusters]
        return graph, fail, nodes, edges, rules

    @classmethod
    def load_v2(cls, data: Any, origin: str) -> "Graph":
        """Schema @2. A scalar graph's columns are checked in bulk (a million nodes); where that finds
        anything unusual, and at tensor granularity, each row is checked on its own, which names the field."""
        graph, fail, nodes, edges, rules = cls._start_v2(data, origin)
        if not (graph.granularity == "scalar" and _bulk_load(graph, _slices(nodes), _slices(edges), rules)):
            _rows_load(graph, nodes, edges, rules, fail)
        return graph._end_v2(data, fail)

    @classmethod
    def load_v2_pieces(cls, text: str | bytes, origin: str) -> "Graph | None":
        """A scalar graph of schema @2 as to_json lays it out, its rows as gradviz writes them, read a piece of
        rows at a time: each piece parsed, checked and made into nodes or edges while its objects are in the
        CPU cache, then let go, so the next reuses its memory (the whole document parsed at once is a million
        lists in fresh memory, and orjson's own buffer for it). None for any other text, and where anything
        is unusual: from_json then reads the text whole."""
        import orjson

        if not text.startswith(_FIRST_LINE if isinstance(text, bytes) else _FIRST_LINE.decode()):
            return None  # not laid out by to_json (an @1 file, say), seen before any look further
        if isinstance(text, str):
            try:
                text = text.encode("utf-8")
            except UnicodeEncodeError:
                return None
        start = text.find(_NODES_AT)
        between = text.find(_EDGES_AT, start + len(_NODES_AT)) if start >= 0 else -1
        end = text.rfind(b"]")
        if between < 0 or end < between + len(_EDGES_AT):
            return None
        # the document without its rows: "nodes" and "edges" hold 0, then 1; where a key of either name
        # elsewhere in it would win (or the text is not JSON), the two parses do not show 0 and 1
        head, tail = text[:start], text[end + 1:]
        try:
            zero, one = (orjson.loads(b"%s\n \"nodes\": %s,\n \"edges\": %s%s" % (head, mark, mark, tail))
                         for mark in (b"0", b"1"))
        except orjson.JSONDecodeError:
            return None
        marks = [(d.get("nodes"), d.get("edges")) if isinstance(d, dict) else None for d in (zero, one)]
        if marks != [(0, 0), (1, 1)] or zero.get("schema") != SCHEMA or zero.get("granularity") != "scalar":
            return None
        zero["nodes"] = zero["edges"] = []  # their rows are read from the text below
        graph, fail, _, _, rules = cls._start_v2(zero, origin)
        if not _bulk_load(graph, _pieces(text, start + len(_NODES_AT), between),
                          _pieces(text, between + len(_EDGES_AT), end), rules):
            return None
        return graph._end_v2(zero, fail)

    def _end_v2(self, data: dict, fail: Any) -> "Graph":
        self.output = _output_v2(data.get("output"), len(self.nodes), self.granularity, fail)
        self.leaves = _leaves(self)
        return self

    @classmethod
    def load(cls, data: Any, origin: str) -> "Graph":
        """Schema @1: one object per node and edge, ids as strings."""
        graph, fail, nodes, edges = cls._start(data, origin, SCHEMA_V1)
        granularity = graph.granularity
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
            kind, op, shape, value, grad = _node_fields(raw, where, granularity, fail)
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
        graph.output = _output(data.get("output"), index, granularity, fail)
        graph.leaves = _leaves(graph)
        return graph


_CHUNK = 2048  # rows written by one orjson call: few enough that their nodes stay in the CPU cache
_PIECE = 1 << 15  # bytes of rows read by one orjson call (about 450 rows): their objects stay in the CPU cache
# in to_json's text: its first line, what comes before the node rows, and between them and the edge rows
_FIRST_LINE, _NODES_AT, _EDGES_AT = b'{\n "schema": "%s",\n' % SCHEMA.encode(), b'\n "nodes": [', b'],\n "edges": ['
_FLOAT = {float}
_FLOAT_OR_NONE = {float, type(None)}


def _bulk_load(graph: "_SavedGraph", node_chunks: Iterable[Any], edge_chunks: Iterable[Any], rules: list[str]) -> bool:
    """Fill a scalar graph from rows that are all as gradviz writes them, a chunk of rows at a time (the
    objects of a chunk are still in the CPU cache for the next look at them); False, with the graph to be
    refilled, at the first thing unusual (a chunk that is not a list of rows included): then each row is
    checked on its own."""
    forward = graph.wrt is not None
    node_width, edge_width = len(NODE_FIELDS) + forward, len(EDGE_FIELDS) + forward
    graph.edges, graph._rules, dst_parts = [], [], []
    last_dst, run_start = -1, 0  # the dst of the edge before, and the place of its dst's first edge
    for rows in edge_chunks:
        cols = _bulk_edges(rows, edge_width, len(rules), last_dst)
        if cols is None:
            return False
        rule_ids, srcs, dsts, local, upstream, chain_ = cols[:6]
        d = np.array(dsts, dtype=np.int64)
        k0 = len(graph.edges)
        place = np.arange(k0, k0 + len(d))
        first = np.empty(len(d), dtype=bool)  # an edge that is its dst's first
        first[0] = d[0] != last_dst
        first[1:] = d[1:] != d[:-1]
        start = np.maximum.accumulate(np.where(first, place, -1))
        start[start < 0] = run_start
        part = list(map(_SavedEdge, srcs, dsts, (place - start).tolist(), local, place.tolist()))
        for e, up, c in zip(part, upstream, chain_, strict=True):
            e.upstream, e.chain = up, c
        if forward:
            for e, t in zip(part, cols[6], strict=True):
                e.tangent = t
        graph.edges.extend(part)
        graph._rules.extend([rules[i] for i in rule_ids])
        dst_parts.append(d)
        last_dst, run_start = int(d[-1]), int(start[-1])
    dst = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
    graph.nodes, graph._labels = [], []
    for rows in node_chunks:
        cols = _bulk_nodes(rows, node_width, len(graph.clusters))
        if cols is None:
            return False
        kinds, labels, ops, _, values, grads, nondiffs, clusters = cols[:8]
        names = [label if kind == "leaf" else None for label, kind in zip(labels, kinds, strict=True)]
        i0, k = len(graph.nodes), len(kinds)
        firsts = np.searchsorted(dst, np.arange(i0, i0 + k)).tolist()
        part = list(map(Node, range(i0, i0 + k), names, kinds, ops, values, nondiffs, firsts, repeat(None, k),
                        clusters))
        for node, g in zip(part, grads, strict=True):
            node.grad = g
        if forward:
            for node, t in zip(part, cols[8], strict=True):
                node.tangent = t
        graph.nodes.extend(part)
        graph._labels.extend(labels)
    return last_dst < len(graph.nodes)  # edges run to later nodes (checked above): the last dst is the largest


def _slices(rows: list) -> Iterator[list]:
    return (rows[i:i + _CHUNK] for i in range(0, len(rows), _CHUNK))


def _pieces(text: bytes, start: int, end: int) -> Iterator[list | None]:
    """The rows in text[start:end] (JSON values and the commas between them), parsed about _PIECE bytes at a
    time, each piece cut where to_json ends one row and begins the next ("],[" and a newline). A piece is
    None where it is not a JSON list, as it is not when that cut falls inside a row or a string: every piece
    a list of rows, none empty (_bulk_load sees to that), the rows are exactly those of the whole."""
    import orjson

    while start < end:
        cut = text.find(b"],[\n", start + _PIECE, end)
        stop = end if cut < 0 else cut + 1
        try:
            rows = orjson.loads(b"[%s]" % text[start:stop])
        except orjson.JSONDecodeError:
            rows = None
        yield rows
        start = stop + 1


def _rows_load(graph: "_SavedGraph", nodes: list, edges: list, rules: list[str], fail: Any) -> None:
    """Fill the graph from rows checked one by one (schema @2): the first thing wrong raises, naming its field."""
    node_fields, edge_fields = _fields(graph.wrt is not None)
    cols = _node_rows(nodes, node_fields, graph.granularity, len(graph.clusters), fail)
    kinds, labels, ops, _, values, grads, nondiffs, node_clusters = cols[:8]
    ecols = _edge_rows(edges, edge_fields, cols[3], len(rules), graph.granularity, fail)
    rule_ids, srcs, dsts, local, upstream, chain_ = ecols[:6]
    n, m = len(nodes), len(edges)
    dst = np.array(dsts, dtype=np.int64)
    firsts = np.searchsorted(dst, np.arange(n)).tolist()
    args = (np.arange(m) - np.asarray(firsts, dtype=np.int64)[dst]).tolist() if m else []
    names = [label if kind == "leaf" else None for label, kind in zip(labels, kinds, strict=True)]
    graph.nodes = list(map(Node, range(n), names, kinds, ops, values, nondiffs, firsts, repeat(None, n),
                           node_clusters))
    for node, g in zip(graph.nodes, grads, strict=True):
        node.grad = g
    graph.edges = list(map(_SavedEdge, srcs, dsts, args, local, range(m)))
    for e, up, c in zip(graph.edges, upstream, chain_, strict=True):
        e.upstream, e.chain = up, c
    if len(node_fields) > len(NODE_FIELDS):
        for obj, t in zip(graph.nodes + graph.edges, chain(cols[8], ecols[6]), strict=True):
            obj.tangent = t
    graph._labels = labels
    graph._rules = [rules[i] for i in rule_ids]


def _bulk_nodes(rows: Any, width: int, n_clusters: int) -> list | None:
    """The columns of a scalar graph's node rows (a list, not empty) when every field is as gradviz writes
    it, else None."""
    if not rows or not all(type(r) is list and len(r) == width for r in rows):
        return None
    cols = [list(c) for c in zip(*rows, strict=True)]
    kinds, labels, ops, shapes, values, grads, nondiffs, clusters = cols[:8]
    consts = kinds.count("const")
    if not (set(map(type, labels)) <= {str} and kinds.count("op") + kinds.count("leaf") + consts == len(kinds)
            and set(map(type, ops)) <= {str, type(None)} and shapes.count([]) == len(shapes)
            and set(map(type, values)) <= _FLOAT and set(map(type, nondiffs)) <= {bool}):
        return None
    grad_types = set(map(type, grads))
    if not (grad_types <= _FLOAT or (grad_types <= _FLOAT_OR_NONE and grads.count(None) <= consts
                                     and all(g is not None or k == "const"
                                             for g, k in zip(grads, kinds, strict=True)))):
        return None
    cluster_ids = [c for c in clusters if c is not None]
    if not (set(map(type, cluster_ids)) <= {int} and all(0 <= c < n_clusters for c in cluster_ids)):
        return None
    if width > 8 and not set(map(type, cols[8])) <= _FLOAT_OR_NONE:
        return None
    return cols


def _bulk_edges(rows: Any, width: int, n_rules: int, last_dst: int) -> list | None:
    """The columns of a scalar graph's edge rows (a list, not empty) when every field is as gradviz writes it
    (after an edge into last_dst), else None."""
    if not rows or not all(type(r) is list and len(r) == width for r in rows):
        return None
    cols = [list(c) for c in zip(*rows, strict=True)]
    rule_ids, srcs, dsts = cols[:3]
    if not (set(map(type, srcs)) <= {int} and set(map(type, dsts)) <= {int} and set(map(type, rule_ids)) <= {int}
            and all(set(map(type, c)) <= _FLOAT_OR_NONE for c in cols[3:])):
        return None
    try:
        s, d, r = (np.array(c, dtype=np.int64) for c in (srcs, dsts, rule_ids))
    except OverflowError:  # a number past 64 bits (orjson reads up to 2**64 - 1): each row checked names it
        return None
    if not ((s >= 0).all() and (s < d).all() and (np.diff(d) >= 0).all() and d[0] >= last_dst
            and (r >= 0).all() and (r < n_rules).all()):
        return None
    return cols


def _node_fields(row: dict, where: str, granularity: str, fail: Any) -> tuple:
    """A node's kind, op, shape, value and grad, checked (both schemas name these fields alike)."""
    kind = _field(row, "kind", str, None, fail, where)
    if kind not in ("leaf", "const", "op"):
        raise fail(f"{where}.kind", f"expected 'leaf', 'const' or 'op', not {_short(kind)}")
    op = _field(row, "op", (str, type(None)), None, fail, where)
    shape = _field(row, "shape", list, None, fail, where)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise fail(f"{where}.shape", "expected a list of sizes")
    value = _array(row.get("value"), shape, granularity, fail, f"{where}.value")
    grad = _array(row.get("grad"), shape, granularity, fail, f"{where}.grad", optional=kind == "const")
    return kind, op, shape, value, grad


def _node_rows(rows: list, fields: list, granularity: str, n_clusters: int, fail: Any) -> list:
    """Node rows checked one by one (schema @2), as columns; the first thing wrong raises, naming its field."""
    cols: list[list] = [[] for _ in fields]
    for i, raw in enumerate(rows):
        where = f"nodes[{i}]"
        if not isinstance(raw, list) or len(raw) != len(fields):
            raise fail(where, f"expected a list of {len(fields)} fields: {', '.join(fields)}")
        row = dict(zip(fields, raw, strict=True))
        label = _field(row, "label", str, None, fail, where)
        kind, op, shape, value, grad = _node_fields(row, where, granularity, fail)
        nondiff = _field(row, "nondiff", bool, None, fail, where)
        cluster = _field(row, "cluster", (int, type(None)), None, fail, where)
        if isinstance(cluster, bool) or cluster is not None and not 0 <= cluster < n_clusters:
            raise fail(f"{where}.cluster", f"expected an index into clusters, not {cluster}")
        item = [kind, label, op, shape, value, grad, nondiff, cluster]
        if len(fields) > 8:
            item.append(_array(row["tangent"], shape, granularity, fail, f"{where}.tangent", optional=True))
        for col, v in zip(cols, item, strict=True):
            col.append(v)
    return cols


def _edge_rows(rows: list, fields: list, shapes: list, n_rules: int, granularity: str, fail: Any) -> list:
    """Edge rows checked one by one (schema @2), as columns; the first thing wrong raises, naming its field."""
    cols: list[list] = [[] for _ in fields]
    last_dst = -1
    for k, raw in enumerate(rows):
        where = f"edges[{k}]"
        if not isinstance(raw, list) or len(raw) != len(fields):
            raise fail(where, f"expected a list of {len(fields)} fields: {', '.join(fields)}")
        row = dict(zip(fields, raw, strict=True))
        s, d = (_field(row, key, int, None, fail, where) for key in ("src", "dst"))
        for v in (s, d):
            if not 0 <= v < len(shapes):
                raise fail(where, f"no node {v}")
        if not s < d or d < last_dst:
            raise fail(where, "edges must run from an earlier node to a later one, grouped by their dst "
                              "in node order, as gradviz writes them")
        last_dst = d
        rule = _field(row, "rule", int, None, fail, where)
        if not 0 <= rule < n_rules:
            raise fail(f"{where}.rule", f"expected an index into rules, not {rule}")
        item = [rule, s, d, _array(row["local"], None, granularity, fail, f"{where}.local", optional=True),
                _array(row["upstream"], shapes[d], granularity, fail, f"{where}.upstream", optional=True),
                _array(row["chain"], shapes[s], granularity, fail, f"{where}.chain", optional=True)]
        if len(fields) > 6:
            item.append(_array(row["tangent"], shapes[d], granularity, fail, f"{where}.tangent", optional=True))
        for col, v in zip(cols, item, strict=True):
            col.append(v)
    return cols


def _output_v2(raw: Any, n: int, granularity: str, fail: Any) -> Any:
    if type(raw) is int:
        if not 0 <= raw < n:
            raise fail("output", f"no node {raw}")
        return raw
    if granularity == "tensor":
        raise fail("output", "expected a node id (one node holds the whole output at tensor granularity)")
    try:
        ids = np.array(raw, dtype=object)
        if not ids.size or ids.dtype != object or any(type(i) is not int or not 0 <= i < n for i in ids.ravel()):
            raise ValueError
    except (TypeError, ValueError, RecursionError):
        raise fail("output", "expected a node id or a rectangular list of node ids") from None
    return ids.astype(np.int64)


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
        raise fail(where, "expected a number or a rectangular list of numbers") from None
    if shape is not None and list(values.shape) != shape:
        raise fail(where, f"shape {list(values.shape)} does not match the node's shape {shape}")
    if granularity == "scalar":
        if values.ndim:
            raise fail(where, "expected a number (the graph is split into scalars)")
        return float(values)
    return values


def _output(raw: Any, index: dict[str, int], granularity: str, fail: Any) -> Any:
    if isinstance(raw, str):
        if raw not in index:
            raise fail("output", f"no node with id {_short(raw)}")
        return index[raw]
    if granularity == "tensor":
        raise fail("output", "expected a node id (one node holds the whole output at tensor granularity)")
    try:
        ids = np.array(raw, dtype=object)
        if not ids.size or ids.dtype != object or any(not isinstance(i, str) or i not in index for i in ids.ravel()):
            raise ValueError
    except (TypeError, ValueError, RecursionError):
        raise fail("output", "expected a node id or a rectangular list of node ids") from None
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
        base, bracket, rest = n.name.rpartition("[")  # net.params['W1'][1,0]: the last bracket is the index
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
