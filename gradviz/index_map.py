"""Where each output element of an operation that only moves elements comes from.

concatenate, stack, tile, roll, pad, triu, take, indexing, a write into an array... each is fully described
by one map: output element → the input element it is a copy of, or "none" (a constant the call filled in,
such as pad's zeros). The map is learnt by running the very same NumPy call on arrays of element numbers
instead of the values: the traced inputs are numbered one after another (the first input's elements
1…n₁, the next n₁+1…, in C order). A second run with every number moved up by the total count tells
copies from constants: a copied element moves by exactly that much, a constant filled in by the call (or
taken from a plain array among its arguments) does not move at all.

With the map, scalar granularity picks the input elements' nodes (a copy adds no node); tensor granularity
has one vector-Jacobian product for all of them (a scatter-add of the output gradient onto the input
elements, so an element copied twice, as by repeated fancy indices, adds up both) and one Jacobian-vector
product (a gather of the input tangent).
"""
from __future__ import annotations

import math
from itertools import accumulate
from typing import Any, Callable

import numpy as np

CONSTANT = -1  # in a source map: the element is a constant the call made, not a copy of an input element


def outputs(result: Any) -> list[np.ndarray]:
    """A NumPy call's result as a list of arrays (split and array_split return several)."""
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def sources(call: Callable[[list[np.ndarray]], Any], shapes: list[tuple[int, ...]],
            copies_only: bool = False) -> list[np.ndarray]:
    """For each output of call: an int array shaped like it, holding for each element the position of the
    input element it copies in the concatenation of the inputs' flattened elements, or CONSTANT.

    call(arrays) runs the NumPy call with its traced inputs replaced by `arrays` (one per shape). With
    copies_only (the call can only copy, as indexing one array), one run is enough."""
    sizes = [math.prod(s) for s in shapes]
    total = sum(sizes)
    starts = list(accumulate(sizes, initial=0))[:-1]
    # float numbers (exact below 2⁵³): a call may write NaN, inf or 0.5 among them, as into the values
    numbered = [np.arange(start + 1, start + n + 1, dtype=float).reshape(shape)
                for start, n, shape in zip(starts, sizes, shapes, strict=True)]
    first = outputs(call(numbered))
    if copies_only:
        return [np.asarray(m).astype(np.int64) - 1 for m in first]
    moved = outputs(call([m + total for m in numbered]))
    maps = []
    for a, b in zip(first, moved, strict=True):
        a = np.asarray(a)
        copied = (np.asarray(b) - a) == total
        maps.append(np.where(copied, a, 0).astype(np.int64) - 1)
    return maps


def scatter(g: np.ndarray, source: np.ndarray, start: int, shape: tuple[int, ...]) -> np.ndarray:
    """The vector-Jacobian product for one input: each output element's gradient added onto the input
    element it copies (np.bincount is NumPy's fastest scatter-add, the same sum as np.add.at)."""
    size = int(np.prod(shape, dtype=np.int64))
    src = source.ravel()
    g = np.broadcast_to(np.asarray(g, dtype=float), source.shape).ravel()
    mine = (src >= start) & (src < start + size)
    return np.bincount(src[mine] - start, weights=g[mine], minlength=size).reshape(shape)


def gather(t: np.ndarray, source: np.ndarray, start: int) -> np.ndarray:
    """The Jacobian-vector product for one input: each output element takes the tangent of the input element
    it copies; elements copied from the other inputs, or constants, take 0."""
    flat = np.asarray(t, dtype=float).ravel()
    local = source - start
    mine = (local >= 0) & (local < flat.size)
    return np.where(mine, flat[np.where(mine, local, 0)], 0.0)
