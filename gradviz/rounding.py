"""How large the terms were that were added up to make each gradient, chain and tangent.

A gradient is a sum of chains, and a chain at tensor granularity can itself be a sum (a matmul, a
broadcast summed back); when positive and negative terms cancel, the float result is not 0 but rounding
noise (7.6e-18 where the exact value is 0). Noise is only recognisable against the size of what was
summed: the same backward pass made with every number replaced by its magnitude (|seed|, |local|, sums
of magnitudes) gives that size for every element. The views compare each number with it
(views/format.py decides what counts as noise); the numbers themselves, and the JSON, stay exact.

Computed on demand, once per graph (and once per forward-mode pass), so a trace that only writes JSON
never pays for it.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Graph
from .ops import OPS

# operations whose VJP and JVP are linear in the gradient and need only the magnitudes of the inputs to
# bound the terms they add: the same call on magnitudes gives the magnitude of every term summed


@dataclass
class Magnitudes:
    """Per node and per edge, the size of the terms each number was summed from (None: not differentiated)."""

    value: list[Any]  # node id -> magnitude behind node.value (the terms of a sum: x·0.1 + x·0.2 − x·0.3)
    grad: list[Any]  # node id -> magnitude behind node.grad
    chain: list[Any]  # edge index -> magnitude behind edge.chain
    tangent: list[Any] | None = None  # forward mode: node id -> magnitude behind node.tangent
    share: list[Any] | None = None  # forward mode: edge index -> magnitude behind edge.tangent

    def output_value(self, graph: Graph) -> Any:
        """The magnitude behind graph.output_value, shaped like it."""
        return _gather(self.value, graph.output)

    def leaf(self, graph: Graph, name: str) -> Any:
        """The magnitude behind graph.grad(name), shaped like it."""
        return _gather(self.grad, graph.leaves[name])


def _gather(per_node: list[Any], ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return np.array([per_node[i] for i in ref.ravel().tolist()], dtype=float).reshape(ref.shape)
    return per_node[int(ref)]


_cache: "weakref.WeakKeyDictionary[Graph, tuple[str | None, Magnitudes]]" = weakref.WeakKeyDictionary()


def magnitudes(graph: Graph) -> Magnitudes:
    """The magnitudes behind the graph's gradients (and tangents, after forward mode), computed once."""
    cached = _cache.get(graph)
    if cached is not None and cached[0] == graph.wrt:
        return cached[1]
    m = _reverse(graph)
    m.value = _values(graph)
    if graph.wrt is not None:
        m.tangent, m.share = _forward(graph)
    _cache[graph] = (graph.wrt, m)
    return m


def _reverse(graph: Graph) -> Magnitudes:
    nodes, edges = graph.nodes, graph.edges
    scalar = graph.granularity == "scalar"
    zero = (lambda n: 0.0) if scalar else (lambda n: np.zeros(np.shape(n.grad)))
    grad: list[Any] = [None if n.kind == "const" or n.grad is None else zero(n) for n in nodes]
    chain: list[Any] = [None] * len(edges)
    seeds = _seeds(graph)
    for i, s in seeds.items():
        grad[i] = s if grad[i] is None else grad[i] + s
    for k in range(len(edges) - 1, -1, -1):
        e = edges[k]
        if e.chain is None:
            continue
        up = grad[e.dst]
        if scalar:  # plain floats: this loop runs once per edge of graphs of millions
            try:
                c = abs(e.local) * up
            except TypeError:  # a saved graph may say less than backward knew (no local, no upstream)
                c = abs(float(e.chain))
        else:
            c = _tensor_chain(graph, e, up if up is not None else np.abs(np.asarray(e.upstream, dtype=float)))
        chain[k] = c
        if grad[e.src] is not None:  # None: a step-by-step snapshot where src is not finished yet
            grad[e.src] += c
    return Magnitudes([], grad, chain)


def _seeds(graph: Graph) -> dict[int, Any]:
    """|∂output/∂output| for each output node: the seed backward started from, read off the output's grad
    before any chain was added (the output feeds nothing, or its own chains are added below)."""
    seeds: dict[int, Any] = {}
    out_ids = graph.output_ids()
    fed = {e.src for e in graph.edges if e.chain is not None}
    for i in out_ids:
        n = graph.nodes[i]
        if n.grad is None:
            continue
        if i in fed:  # an output that also feeds another output: its seed is what remains beyond its chains
            chains = [np.asarray(e.chain, dtype=float) for e in graph.edges if e.src == i and e.chain is not None]
            outgoing = sum(chains, np.zeros(np.shape(n.grad)))
            seeds[i] = np.abs(np.asarray(n.grad, dtype=float) - outgoing)
        else:
            seeds[i] = np.abs(np.asarray(n.grad, dtype=float))
        if graph.granularity == "scalar":
            seeds[i] = float(seeds[i])
    return seeds


def _tensor_chain(graph: Graph, e: Any, up: np.ndarray) -> np.ndarray:
    """The VJP of one tensor edge with every factor taken as its magnitude."""
    bounded = _bounded(graph, e)
    if bounded is None:
        return _carried(e.chain, e.upstream, up)
    entry, local, ctx, out = bounded
    return np.abs(entry.kind.chain(entry, e.arg, local, up, ctx, out))


def _bounded(graph: Graph, e: Any) -> tuple | None:
    """The edge's operation with its local partial, inputs and result as magnitudes, when its kind's chain and
    tangent on magnitudes bound the size of the terms it sums (Kind.bounds); else None."""
    dst = graph.nodes[e.dst]
    entry = OPS.get(dst.op) if dst.op else None
    if entry is None or entry.kind is None or not entry.kind.bounds or dst.ctx is None:
        return None
    if e.local is None and entry.kind.uses_local:
        return None
    args, params = dst.ctx
    local = None if e.local is None else np.abs(e.local)
    return entry, local, (tuple(np.abs(a) for a in args), params), np.abs(dst.value)


def _carried(result: Any, through: Any, size: Any) -> np.ndarray:
    """For an operation without a magnitude rule (or a graph read from JSON): the result's own size, scaled
    by how much larger the terms behind its input were than that input, so noise passed in stays noise."""
    result = np.abs(np.asarray(result, dtype=float))
    norm = float(np.linalg.norm(np.ravel(through))) if through is not None else 0.0
    ratio = float(np.linalg.norm(np.ravel(size))) / norm if norm else 1.0
    return result * max(1.0, ratio)


def _values(graph: Graph) -> list[Any]:
    """The forward pass with every factor taken as its magnitude: a leaf's or a constant's is its own size,
    an operation's the sum over its inputs of |local| × theirs (first order: a sum adds its terms' sizes, a
    product scales them). Where no such rule exists (a saved graph's unknown operation), the value's own size."""
    nodes = graph.nodes
    scalar = graph.granularity == "scalar"
    size: list[Any] = [None] * len(nodes)
    own = set()  # operations without a rule here: their value's own size
    for e in graph.edges:  # in creation order: every input is finished before its result
        src = nodes[e.src]
        if src.kind == "const" or e.dst in own:
            continue
        t = size[e.src]
        if t is None:  # a leaf, or an operation whose inputs a cut figure left out
            t = abs(src.value) if scalar else np.abs(np.asarray(src.value, dtype=float))
        if scalar:
            share = None if e.local is None else abs(e.local) * t
            finite = share is not None and math.isfinite(share)
        else:
            share = _tensor_tangent(graph, e, t)
            finite = share is not None and bool(np.all(np.isfinite(share)))
        if not finite:
            own.add(e.dst)
            continue
        size[e.dst] = share if size[e.dst] is None else size[e.dst] + share
    for n in nodes:
        if n.id in own or size[n.id] is None:
            size[n.id] = abs(n.value) if scalar else np.abs(np.asarray(n.value, dtype=float))
    return size


def _forward(graph: Graph) -> tuple[list[Any], list[Any]]:
    """Forward mode's tangents with every factor taken as its magnitude (the tangent of wrt is 1)."""
    nodes, edges = graph.nodes, graph.edges
    scalar = graph.granularity == "scalar"
    tangent: list[Any] = [None if n.tangent is None else np.zeros(np.shape(n.tangent)) for n in nodes]
    share: list[Any] = [None] * len(edges)
    into = {e.dst for e in edges if e.tangent is not None}
    for n in nodes:  # the input itself: its tangent is the 1 it started from
        if n.tangent is not None and n.id not in into:
            tangent[n.id] = np.abs(np.asarray(n.tangent, dtype=float))
    for k, e in enumerate(edges):
        if e.tangent is None or tangent[e.src] is None:
            continue
        t = tangent[e.src]
        if scalar:
            s = abs(float(e.local)) * float(t)
        else:
            s = _tensor_tangent(graph, e, t)
            if s is None:
                s = _carried(e.tangent, graph.nodes[e.src].tangent, t)
        share[k] = s
        tangent[e.dst] = tangent[e.dst] + s
    if scalar:
        tangent = [None if t is None else float(t) for t in tangent]
    return tangent, share


def _tensor_tangent(graph: Graph, e: Any, t: np.ndarray) -> np.ndarray | None:
    """The JVP of one tensor edge with every factor taken as its magnitude; None without a rule for it."""
    bounded = _bounded(graph, e)
    if bounded is None:
        return None
    entry, local, ctx, out = bounded
    return np.abs(entry.kind.tangent(entry, e.arg, local, t, ctx, out))
