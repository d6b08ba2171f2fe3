"""Backprop in steps: the order in which backward completes each node's gradient.

Backward visits the edges in reverse creation order; a node's gradient is complete once every edge leaving
it (every use of its value) has passed its chain back. Each step is one completed node, the edges its
gradient came from, and how many edges backward had visited by then, which is all a view needs to draw
the state of the graph at that moment.
"""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph


@dataclass(frozen=True)
class Step:
    node: int  # the node whose gradient was just completed
    edges: tuple[int, ...]  # indexes (into graph.edges) of the edges whose chains sum to its gradient
    visited: int  # how many edges backward had visited: graph.edges[len - visited:] are done


def backward_steps(graph: Graph) -> list[Step]:
    """The output first (its gradient is the seed), then each node as its last outgoing edge is visited.
    Constants are left out: their gradient is computed but never used."""
    outgoing: list[list[int]] = [[] for _ in graph.nodes]
    for i, e in enumerate(graph.edges):
        outgoing[e.src].append(i)
    remaining = [len(o) for o in outgoing]
    steps = [Step(i, (), 0) for i in dict.fromkeys(graph.output_ids()) if not remaining[i]]
    n = len(graph.edges)
    for visited, i in enumerate(range(n - 1, -1, -1), 1):
        src = graph.edges[i].src
        remaining[src] -= 1
        if not remaining[src] and graph.nodes[src].kind != "const":
            steps.append(Step(src, tuple(outgoing[src]), visited))
    return steps
