"""The chain rule written out: every path from the output down to one input, and how many there are.

∂output/∂x is the sum, over every path from the output down to x, of the product of the local partials
along it. Paths multiply at every node with several consumers, so they are counted by dynamic programming
(paths(n) = Σ paths(src) over n's incoming edges) and listed lazily, by an explicit-stack depth-first walk
that only enters edges leading to x: listing the first k paths costs k × depth, however many there are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .errors import GradvizError
from .graph import Edge, Graph
from .inputs import Input


@dataclass(frozen=True)
class Path:
    nodes: list[int]  # from an output node down to the input
    locals: list[float]  # local partial of each edge, ∂nodes[i]/∂nodes[i+1]
    edges: list[Edge] = field(default_factory=list)  # the edges taken (x*x has two from x to the product)

    @property
    def product(self) -> float:
        return float(np.prod(self.locals)) if self.locals else 1.0


@dataclass
class Explanation:
    wrt: str
    outputs: list[int]  # output node ids (several for an array output: the gradient sums over them)
    leaf: int
    n_paths: int
    total: float  # ∂output/∂wrt as backward computed it
    paths: Iterator[Path]


def explain(graph: Graph, x: Input) -> Explanation:
    """The paths from the output down to the input number x (a scalar-granularity graph)."""
    if graph.granularity != "scalar":
        raise GradvizError("explaining paths needs a graph split into scalars (granularity scalar)")
    leaf = x.node(graph)
    counts = _count_paths(graph, leaf)
    outputs = graph.output_ids()
    return Explanation(x.label, outputs, leaf, sum(counts[o] for o in outputs), float(graph.nodes[leaf].grad),
                       _walk(graph, outputs, leaf, counts))


def _count_paths(graph: Graph, leaf: int) -> list[int]:
    """counts[n]: how many paths lead from node n down to leaf (Python ints: exact past 2⁶⁴)."""
    counts = [0] * len(graph.nodes)
    counts[leaf] = 1
    for e in graph.edges:
        if counts[e.src]:
            counts[e.dst] += counts[e.src]
    return counts


def _walk(graph: Graph, outputs: list[int], leaf: int, counts: list[int]) -> Iterator[Path]:
    for out in outputs:
        if not counts[out]:
            continue
        if out == leaf:
            yield Path([leaf], [])
            continue
        # stack of (node, iterator over its incoming edges that lead to the leaf); trail: edges taken
        stack = [(out, _leading(graph, out, counts))]
        trail: list[Edge] = []
        while stack:
            edge = next(stack[-1][1], None)
            if edge is None:
                stack.pop()
                if trail:
                    trail.pop()
                continue
            trail.append(edge)
            if edge.src == leaf:
                yield Path([out] + [e.src for e in trail], [float(e.local) for e in trail], list(trail))
                trail.pop()
            else:
                stack.append((edge.src, _leading(graph, edge.src, counts)))


def _leading(graph: Graph, node: int, counts: list[int]) -> Iterator[Edge]:
    return (e for e in graph.in_edges(node) if counts[e.src])
