"""Reverse mode over a finished Graph: fills every edge's upstream and chain, and every node's grad.

Nodes and their incoming edges are stored in a topological order, so one loop over the edges in
reverse visits each result before its inputs: no recursion, no sort, however deep the graph.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import GradvizError
from .graph import Graph
from .ops import OPS


def backward(graph: Graph, seed: Any = None) -> Graph:
    """Differentiate the output with respect to every node. seed: ∂output (default 1, ones for an array)."""
    nodes, edges = graph.nodes, graph.edges
    scalar = graph.granularity == "scalar"
    out_shape = np.shape(graph.output) if scalar else np.shape(nodes[graph.output].value)
    try:
        seeds = np.broadcast_to(np.asarray(1.0 if seed is None else seed, dtype=float), out_shape)
    except ValueError:
        raise GradvizError(f"seed gradient of shape {np.shape(seed)} does not fit the output's shape "
                           f"{out_shape}") from None
    if scalar:
        for n in nodes:
            n.grad = None if n.kind == "const" else 0.0
        for i, s in zip(graph.output_ids(), seeds.ravel().tolist(), strict=True):
            out = nodes[i]
            out.grad = s if out.grad is None else out.grad + s  # an output that is a constant still has ∂out/∂out
        for e in reversed(edges):
            up = nodes[e.dst].grad
            e.upstream = up
            if e.local is None:  # only a constant's edge, at scalar granularity
                continue
            e.chain = c = up * e.local
            nodes[e.src].grad += c
        return graph
    # a node's gradient starts as its first chain (no zeros to add to); nodes no chain reaches get zeros
    for n in nodes:
        n.grad = None
    nodes[graph.output].grad = seeds.copy()
    with np.errstate(all="ignore"):  # a NaN or inf that arises (0 × inf at a pole) is reported by the views
        for e in reversed(edges):
            up = nodes[e.dst].grad
            if up is None:
                up = nodes[e.dst].grad = np.zeros(np.shape(nodes[e.dst].value))
            e.upstream = up
            src = nodes[e.src]
            if src.kind == "const":
                continue
            e.chain = c = _tensor_chain(graph, e, up)
            src.grad = c if src.grad is None else src.grad + c
    for n in nodes:
        if n.grad is None and n.kind != "const":
            n.grad = np.zeros(np.shape(n.value))
    return graph


def _tensor_chain(graph: Graph, e: Any, up: np.ndarray) -> np.ndarray:
    """upstream × local for one tensor edge: the vector-Jacobian product, shaped like the input."""
    dst = graph.nodes[e.dst]
    entry = OPS[dst.op]
    return entry.kind.backward(entry, e, up, dst.ctx, dst.value)
