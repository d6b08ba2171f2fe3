"""Plain Python and NumPy idioms a model uses, seen by the tracer: the math module and array creation.

`math.exp(x)` converts x to a Python float before NumPy or gradviz could see it, and `np.zeros(n)` makes an
array Python then writes into with `out[i] = x`, which no protocol lets a traced value intercept. So, for
the duration of a trace only, the names a model's module binds to the math module, to NumPy, or to their
functions (`import math`, `import numpy as np`, `from math import exp`) see stand-ins: the math functions
route a traced argument to the NumPy function with the same derivative (and answer plain numbers as math
does), and NumPy's array creation functions answer arrays a traced value can be written into (`Canvas`
values of the tracer: plain arrays until a traced value is written into them). Everything else of both
modules is the module's own.
"""
from __future__ import annotations

import math
import types
from typing import Any, Callable

import numpy as np


def _traced(args: tuple, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(a, kinds) for a in args)


def math_functions(traced: type) -> dict[Callable, Callable]:
    """math.f → a stand-in that gives the NumPy function's traced result for a traced argument."""

    def scalar(x: Any, name: str) -> Any:
        if isinstance(x, traced) and x.size != 1:
            raise TypeError(f"math.{name}() takes one number, not an array of shape {x.shape}")
        return x

    def one(name: str, ufunc: Callable) -> Callable:
        plain = getattr(math, name)

        def f(x):
            if isinstance(x, traced):
                return ufunc(scalar(x, name).reshape(()))
            return plain(x)
        f.__name__ = name
        return f

    def log(x, base=math.e):
        if not _traced((x, base), (traced,)):
            return math.log(x, base)
        out = np.log(scalar(x, "log").reshape(()) if isinstance(x, traced) else x)
        return out if (not isinstance(base, traced) and base == math.e) else out / np.log(base)

    def pow_(x, y):
        if not _traced((x, y), (traced,)):
            return math.pow(x, y)
        return np.power(x if not isinstance(x, traced) else scalar(x, "pow").reshape(()),
                        y if not isinstance(y, traced) else scalar(y, "pow").reshape(()))

    table = {getattr(math, name): one(name, ufunc) for name, ufunc in [
        ("exp", np.exp), ("log1p", np.log1p), ("sqrt", np.sqrt), ("tanh", np.tanh), ("sin", np.sin),
        ("cos", np.cos), ("fabs", np.abs), ("log2", np.log2), ("log10", np.log10), ("expm1", np.expm1),
    ]}
    table[math.log] = log
    table[math.pow] = pow_
    return table


class _Namespace(types.ModuleType):
    """A module whose names are another module's, except a few stand-ins."""

    def __init__(self, module: types.ModuleType, overrides: dict[str, Any]) -> None:
        super().__init__(module.__name__, module.__doc__)
        self.__dict__.update(overrides)
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def substitutes(glob: dict, replacements: dict[Callable, Callable]) -> dict[str, Any]:
    """The names of a module's globals to rebind during the trace: those bound to a replaced function, and
    those bound to a module (math, numpy) some of whose functions are replaced."""
    by_module: dict[types.ModuleType, dict[str, Any]] = {}
    for original, stand_in in replacements.items():
        module = _home(original)
        if module is not None:
            by_module.setdefault(module, {})[original.__name__] = stand_in
    out: dict[str, Any] = {}
    for name, value in glob.items():
        if isinstance(value, types.ModuleType) and value in by_module:
            out[name] = _Namespace(value, by_module[value])
        elif callable(value) and _hashable(value) and value in replacements:
            out[name] = replacements[value]
    return out


def _home(func: Callable) -> types.ModuleType | None:
    if func in vars(math).values():
        return math
    if getattr(np, getattr(func, "__name__", ""), None) is func:
        return np
    return None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
