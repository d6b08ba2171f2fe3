"""Naming one input number: `b` (a scalar leaf), `w[0]`, `W[1,2]` (an element of an array leaf)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import GradvizError
from .graph import Graph

_NAME = re.compile(r"^[A-Za-z_][\w.]*(\[[^\]]*\])*$")


@dataclass(frozen=True)
class Input:
    leaf: str
    index: tuple[int, ...]  # () for a scalar leaf

    @property
    def label(self) -> str:
        return self.leaf + ("[" + ",".join(map(str, self.index)) + "]" if self.index else "")

    def node(self, graph: Graph) -> int:
        """Its node id at scalar granularity (at tensor granularity: the whole leaf's node)."""
        ref = graph.leaves[self.leaf]
        return int(ref[self.index]) if isinstance(ref, np.ndarray) else int(ref)


def inputs(graph: Graph, text: str) -> list[Input]:
    """The input numbers `text` names: one for `b` or `w[0]`, every element for an array leaf `w`.
    Leaf names may hold dots and brackets themselves (`dense1.weights`, `layers[0].weights`): the longest
    leaf name that starts the text is the leaf, and what follows it in brackets is the element."""
    text = text.strip().replace('"', "'")  # a key written params["W1"] names the leaf params['W1']
    for leaf in sorted(graph.leaves, key=len, reverse=True):
        if text == leaf:
            return [Input(leaf, idx) for idx in np.ndindex(graph.leaf_value(leaf).shape)]
        if text.startswith(leaf + "[") and text.endswith("]"):
            return [_element(graph, text, leaf, text[len(leaf) + 1:-1])]
    if not _NAME.match(text):
        raise GradvizError(f"--wrt {text}: expected a leaf name, or an element such as w[0] or W[1,2]")
    raise GradvizError(f"--wrt {text}: no leaf named {text.partition('[')[0]!r} (leaves: {', '.join(graph.leaves)})")


def _element(graph: Graph, text: str, leaf: str, index_text: str) -> Input:
    shape = graph.leaf_value(leaf).shape
    try:
        index = tuple(int(part) for part in index_text.split(","))
    except ValueError:
        raise GradvizError(f"--wrt {text}: an element is named by integers, e.g. {leaf}[0]") from None
    if len(index) != len(shape) or not all(-n <= i < n for i, n in zip(index, shape, strict=True)):
        raise GradvizError(f"--wrt {text}: {leaf} has shape {list(shape)}, so no element {leaf}[{index_text}]")
    return Input(leaf, tuple(i % n for i, n in zip(index, shape, strict=True)))
