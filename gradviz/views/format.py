"""Numbers and arrays as short text, the same in every view."""
from __future__ import annotations

from typing import Any

import numpy as np

FULL_ARRAY = 8  # arrays with at most this many elements are shown in full


def number(v: Any) -> str:
    """A number as a person would write it: 6, -3, 0.5, 1e-07, nan."""
    v = float(v)
    if v == 0:
        return "0"
    return f"{v:.4g}"


def value(v: Any) -> str:
    """A scalar, a small array in full, or a large array by shape and norm."""
    if v is None:
        return "—"
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return number(arr)
    if arr.size <= FULL_ARRAY:
        return _nested(arr)
    return f"{shape(arr.shape)} ‖·‖={number(np.linalg.norm(arr))}"


def _nested(arr: np.ndarray) -> str:
    if arr.ndim == 1:
        return "[" + ", ".join(number(x) for x in arr) + "]"
    return "[" + ", ".join(_nested(row) for row in arr) + "]"


def shape(s: tuple[int, ...]) -> str:
    return "(" + ",".join(str(n) for n in s) + ")" if s else "scalar"


def finite(v: Any) -> bool:
    return v is None or bool(np.all(np.isfinite(np.asarray(v, dtype=float))))


def printable(text: str) -> str:
    """text with control characters written out (\\n, \\x1b), so a label from a stranger's JSON can
    neither break a table row nor send escape sequences to the terminal."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
