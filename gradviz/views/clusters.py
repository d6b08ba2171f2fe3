"""Layers as the figures draw them, and graphs cut down to what Graphviz can lay out. Pure data: reads a
finished Graph, computes nothing new.

Each method call of an object (`graph.clusters`, recorded by the tracer) is a block named after the object.
Consecutive calls of one object with the same structure (a layer applied in a loop) fold into one block
drawn once with "× N": its nodes are those of the first call, the other calls' nodes map onto them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..graph import Edge, Graph, Node


@dataclass
class Block:
    name: str  # the object's name, e.g. "dense1"
    calls: list[list[int]] = field(default_factory=list)  # node ids of each folded call, in order

    @property
    def repeat(self) -> int:
        return len(self.calls)

    @property
    def nodes(self) -> list[int]:
        return self.calls[0]


@dataclass
class Plan:
    blocks: list[Block]
    shown: list[int]  # node id -> the node drawn for it (itself, or its twin in a folded block's first call)
    block_of: dict[int, int]  # node id -> index of its block in `blocks`
    call_of: dict[int, int]  # node id -> which folded call of its block it belongs to

    def drawn_edges(self, graph: Graph) -> list[tuple[int, int, int]]:
        """(src, dst, edge index) to draw: folded calls' edges mapped onto the first call, once each; the edges
        that carry a loop from one call to the next are left out (the × N says it)."""
        seen, out = set(), []
        for i, e in enumerate(graph.edges):
            b_src, b_dst = self.block_of.get(e.src), self.block_of.get(e.dst)
            if b_src is not None and b_src == b_dst and self.call_of[e.src] != self.call_of[e.dst]:
                continue
            key = (self.shown[e.src], self.shown[e.dst], e.arg)
            if key not in seen:
                seen.add(key)
                out.append((key[0], key[1], i))
        return out


def plan(graph: Graph) -> Plan:
    members: dict[int, list[int]] = {}
    for n in graph.nodes:
        if n.cluster is not None:
            members.setdefault(n.cluster, []).append(n.id)
    blocks: list[Block] = []
    for c in sorted(members):
        ids, name = members[c], graph.clusters[c][0]
        last = blocks[-1] if blocks else None
        if last is not None and last.name == name and _structure(graph, last.nodes) == _structure(graph, ids):
            last.calls.append(ids)
        else:
            blocks.append(Block(name, [ids]))
    shown = list(range(len(graph.nodes)))
    block_of, call_of = {}, {}
    for b, block in enumerate(blocks):
        for k, ids in enumerate(block.calls):
            for twin, i in zip(block.nodes, ids, strict=True):
                shown[i], block_of[i], call_of[i] = twin, b, k
    return Plan(blocks, shown, block_of, call_of)


def _structure(graph: Graph, ids: list[int]) -> list[tuple]:
    return [(graph.nodes[i].op, graph.nodes[i].shape, len(graph.in_edges(i))) for i in ids]


def drawn_count(graph: Graph, collapse: bool) -> int:
    """How many nodes a figure of the graph has: every shown node, or with collapse one per block."""
    p = plan(graph)
    shown = {p.shown[n.id] for n in graph.nodes}
    if not collapse:
        return len(shown)
    outside = {i for i in shown if i not in p.block_of}
    if graph.granularity == "scalar":  # a collapsed figure draws each leaf array as one node
        leaf_ids = {i for ref in graph.leaves.values() for i in np.ravel(ref).tolist()}
        outside = (outside - leaf_ids) | {f"leaf:{name}" for name in graph.leaves}
    return len(outside) + len(p.blocks)


def tail(graph: Graph, n: int) -> tuple[Graph, int]:
    """About the last n nodes (those nearest the output: nodes are in topological order) as a graph of their
    own. The values they read from before the cut are kept as inputs, labelled "… name", with their values
    and gradients but not their history. Returns (graph, number of nodes left out)."""
    first = max(0, len(graph.nodes) - n)
    kept = set(range(first, len(graph.nodes)))
    boundary = sorted({e.src for i in kept for e in graph.in_edges(i) if e.src < first})
    while boundary and len(kept) + len(boundary) > n and first < len(graph.nodes) - 1:
        kept.discard(first)
        first += 1
        boundary = sorted({e.src for i in kept for e in graph.in_edges(i) if e.src < first})
    order = boundary + sorted(kept)
    new_id = {old: k for k, old in enumerate(order)}
    sub = Graph(graph.granularity)
    sub.source, sub.clusters = graph.source, graph.clusters
    for old_id in order:
        old = graph.nodes[old_id]
        cut = old_id < first
        name = f"… {graph.label(old_id)}" if cut else old.name or graph.label(old_id)
        node = Node(len(sub.nodes), name, old.kind, old.op, old.value, old.nondiff, len(sub.edges), old.ctx,
                    None if cut else old.cluster)
        node.grad = old.grad
        sub.nodes.append(node)
        if cut:
            continue
        for e in graph.in_edges(old_id):
            edge = Edge(new_id[e.src], node.id, e.arg, e.local)
            edge.upstream, edge.chain = e.upstream, e.chain
            sub.edges.append(edge)
    sub.output = (np.vectorize(new_id.get)(graph.output) if isinstance(graph.output, np.ndarray)
                  else new_id[graph.output])
    sub.leaves = {k: np.vectorize(new_id.get)(v) if isinstance(v, np.ndarray) else new_id[v]
                  for k, v in graph.leaves.items() if all(i in new_id for i in np.ravel(v).tolist())}
    return sub, len(graph.nodes) - len(order)


def fit(graph: Graph, max_nodes: int, collapse: bool, tensor: Callable[[], Graph]) -> tuple[Graph, bool, str | None]:
    """What to draw when the figure would have more than max_nodes nodes, which Graphviz cannot lay out in
    reasonable time: (graph to draw, collapse, a one-line note saying what was done, or None).

    In order: the same model at tensor granularity (`tensor()` traces it), the layers collapsed, and last
    the max_nodes nodes nearest the output with everything before them as one node."""
    count = drawn_count(graph, collapse)
    if count <= max_nodes:
        return graph, collapse, None
    said = f"the figure would have {count:,} nodes, more than --max-nodes {max_nodes:,}"
    # a model whose leaves are all plain numbers has the same nodes at tensor granularity: no second trace
    if graph.granularity == "scalar" and any(np.ndim(ref) for ref in graph.leaves.values()):
        graph = tensor()
        count = drawn_count(graph, collapse)
        if count <= max_nodes:
            return graph, collapse, f"{said}: drawn at tensor granularity ({count:,} nodes)"
    if not collapse and graph.clusters:
        count = drawn_count(graph, True)
        if count <= max_nodes:
            return graph, True, f"{said}: layers drawn collapsed ({count:,} nodes)"
    sub, cut = tail(graph, max_nodes)
    return sub, False, (f"{said}: drawn are the {len(sub.nodes):,} nodes nearest the output "
                        f"(the {cut:,} before them are left out)")
