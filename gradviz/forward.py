"""Forward mode over a finished Graph: ∂node/∂input for every node, for one input number.

One pass forwards through the edges in creation order (every edge into a node comes after its source
was finished): tangent(dst) = Σ local × tangent(src) over the incoming edges. Reverse mode gives the
gradient of one output with respect to every input in one pass; forward mode gives the derivative of every
node with respect to one input per pass. Both read the same local partials from the same edges.
"""
from __future__ import annotations

import numpy as np

from .errors import GradvizError
from .graph import Graph
from .inputs import inputs
from .ops import OPS


def forward_mode(graph: Graph, wrt: str) -> Graph:
    """Fill node.tangent = ∂node/∂wrt and edge.tangent = local × tangent(src); wrt names one input number."""
    chosen = inputs(graph, wrt)
    if len(chosen) != 1:
        first = chosen[0].label if chosen else f"{wrt}[0]"
        raise GradvizError(f"--wrt {wrt}: forward mode makes one pass per input number, and {wrt} has "
                           f"{len(chosen)}; name one, e.g. --wrt {first}")
    (x,) = chosen
    nodes = graph.nodes
    scalar = graph.granularity == "scalar"
    for n in nodes:  # a constant is not differentiated (as in backward): no tangent
        n.tangent = None if n.kind == "const" else 0.0 if scalar else np.zeros(np.shape(n.value))
    start = x.node(graph)
    if scalar:
        nodes[start].tangent = 1.0
    else:
        nodes[start].tangent[x.index] = 1.0
    # A node that does not depend on the input has tangent exactly 0, whatever its local partial, which
    # may be NaN (∂(a**b)/∂b = a**b·ln a for a < 0): NaN × 0 must not leak into the result.
    depends = [False] * len(nodes)
    depends[start] = True
    for e in graph.edges:
        if not depends[e.src]:
            e.tangent = (None if nodes[e.src].kind == "const" else 0.0 if scalar
                         else np.zeros(np.shape(nodes[e.dst].value)))
            continue
        depends[e.dst] = True
        src, dst = nodes[e.src], nodes[e.dst]
        e.tangent = t = e.local * src.tangent if scalar else _tensor_tangent(graph, e, src.tangent)
        dst.tangent = dst.tangent + t
    graph.wrt = x.label
    return graph


def _tensor_tangent(graph: Graph, e, t: np.ndarray) -> np.ndarray:
    """local × tangent of the input for one tensor edge: the Jacobian-vector product, shaped like the result."""
    dst = graph.nodes[e.dst]
    entry = OPS[dst.op]
    return entry.kind.tangent(entry, e.arg, e.local, t, dst.ctx, dst.value)


def output_tangent(graph: Graph) -> float:
    """∂output/∂wrt after forward_mode; for an array output, summed over its elements (backward's seed of ones)."""
    if graph.granularity == "scalar":
        return float(sum(graph.nodes[i].tangent for i in graph.output_ids()))
    return float(np.sum(graph.nodes[graph.output].tangent))
