"""Plain Python and NumPy idioms a model uses, seen by the tracer: the math module and array creation.

`math.exp(x)` converts x to a Python float before NumPy or gradviz could see it, and `np.zeros(n)` makes an
array Python then writes into with `out[i] = x`, which no protocol lets a traced value intercept. So, for
the duration of a trace only, the names a model's module binds to the math module, to NumPy, or to their
functions (`import math`, `import numpy as np`, `from math import exp`) see stand-ins: the math functions
route a traced argument to the NumPy function with the same derivative (and answer plain numbers as math
does); NumPy's array creation functions answer arrays a traced value can be written into (traced values
with no node, plain arrays until a traced value is written into them: ops/structural.py); np.array and
np.asarray of traced values record an array of their nodes. Everything else of both modules is the
module's own.
"""
from __future__ import annotations

import functools
import math
import types
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

_tracers: list = []  # the trace now running: the stand-ins are made once and find it here


@functools.cache
def stand_ins() -> dict[Callable, Callable]:
    """math's functions and NumPy's array creation, as the model sees them during a trace."""
    from .ops import FUNCTIONS, OPS
    from .ops.elementwise import erf
    from .ops.structural import MATH
    from .traced import Traced, holds_live, plain

    def number(x: Any, name: str) -> Any:
        if x.size != 1:
            raise TypeError(f"math.{name}() takes one number, not an array of shape {x.shape}")
        return x.reshape(())

    def one(name: str, ufunc: Callable) -> Callable:
        own = getattr(math, name)

        def f(x, /):
            return ufunc(number(x, name)) if isinstance(x, Traced) else own(x)
        f.__name__ = name
        return f

    def log(x, base=math.e, /):
        if not isinstance(x, Traced) and not isinstance(base, Traced):
            return math.log(x, base)
        out = np.log(number(x, "log") if isinstance(x, Traced) else x)
        if isinstance(base, Traced):
            return out / np.log(number(base, "log"))
        return out if base == math.e else out / math.log(base)

    def pow_(x, y, /):
        if not isinstance(x, Traced) and not isinstance(y, Traced):
            return math.pow(x, y)
        return np.power(number(x, "pow") if isinstance(x, Traced) else float(x),
                        number(y, "pow") if isinstance(y, Traced) else float(y))

    table: dict[Callable, Callable] = {getattr(math, name): one(name, ufunc) for name, ufunc in MATH.items()}
    table[math.erf] = one("erf", erf)
    table[math.log] = log
    table[math.pow] = pow_

    def made(func: Callable) -> Callable:
        """A creation function: a float result is a canvas, an array traced values can be written into.
        Only a traced fill value (np.full(n, x)) carries a gradient: it is written into the canvas."""
        fill_at = 1 if func in (np.full, np.full_like) else None

        def f(*args, **kwargs):
            out = func(*plain(args), **plain(kwargs))
            if out.dtype.kind != "f":
                return out
            made = Traced(_tracers[-1], out, None)
            fill = kwargs.get("fill_value", args[fill_at] if fill_at is not None and len(args) > fill_at else None)
            if holds_live(fill):
                made[...] = fill
            return made
        f.__name__ = func.__name__
        return f

    for func in (np.zeros, np.ones, np.empty, np.full, np.zeros_like, np.ones_like, np.empty_like, np.full_like):
        table[func] = made(func)

    def array(func: Callable) -> Callable:
        """np.array([a, b]) calls no protocol a traced value could answer: the stand-in records it. Of one
        traced array, np.asarray is that array and np.array a copy of it (the same nodes)."""
        def f(*args, **kwargs):
            if len(args) == 1 and not kwargs and isinstance(args[0], Traced):
                return args[0] if func is np.asarray else args[0].tracer.call(FUNCTIONS[np.copy], np.copy, args, {})
            if holds_live(args[:1]):
                return _tracers[-1].call(OPS[func.__name__], func, args, kwargs)
            return func(*args, **kwargs)
        f.__name__ = func.__name__
        return f

    table[np.array] = array(np.array)
    table[np.asarray] = array(np.asarray)

    def lists(func: Callable) -> Callable:
        """np.sum([a, b]), np.exp([a, b]): NumPy looks for a traced value only in the argument itself, not
        inside a list, and would convert the list; the stand-in makes the list an array of their nodes."""
        def f(*args, **kwargs):
            for a in args:  # a loop, not any(): this runs for every NumPy call of the model
                if isinstance(a, (list, tuple)) and holds_live(a):
                    args = tuple(table[np.array](a) if isinstance(a, (list, tuple)) and holds_live(a) else a
                                 for a in args)
                    break
            return func(*args, **kwargs)
        return _Ufunc(func, f) if isinstance(func, np.ufunc) else functools.wraps(func)(f)

    # the functions that take arrays, not sequences of arrays (np.concatenate's list is looked into)
    for func, entry in FUNCTIONS.items():
        if func not in table and getattr(np, getattr(func, "__name__", ""), None) is func and not (
                entry.kind is not None and entry.kind.name == "structural"):
            table[func] = lists(func)
    return table


class _Ufunc:
    """A ufunc whose calls go through a stand-in; its methods (np.add.reduce, np.maximum.outer) are its own."""

    def __init__(self, ufunc: np.ufunc, call: Callable) -> None:
        self._ufunc, self._call = ufunc, call
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ufunc, name)


class _Namespace(types.ModuleType):
    """A module whose names are another module's, except a few stand-ins."""

    def __init__(self, module: types.ModuleType, overrides: dict[str, Any]) -> None:
        super().__init__(module.__name__, module.__doc__)
        self.__dict__.update(overrides)
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@functools.cache
def _modules() -> dict[types.ModuleType, _Namespace]:
    """math and numpy as the model sees them: the module with its replaced functions swapped."""
    by_module: dict[types.ModuleType, dict[str, Any]] = {}
    for original, stand_in in stand_ins().items():
        module = _home(original)
        if module is not None:
            by_module.setdefault(module, {})[original.__name__] = stand_in
    return {module: _Namespace(module, names) for module, names in by_module.items()}


def substitutes(glob: dict) -> dict[str, Any]:
    """The names of a module's globals to rebind during the trace: those bound to a replaced function, and
    those bound to a module (math, numpy) some of whose functions are replaced."""
    replacements, modules = stand_ins(), _modules()
    out: dict[str, Any] = {}
    for name, value in glob.items():
        if isinstance(value, types.ModuleType):
            if value in modules:
                out[name] = modules[value]
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


@contextmanager
def rebound(namespaces: list[dict], builtins: dict[str, Any], tracer: Any) -> Iterator[None]:
    """For the duration of tracer's trace: in each namespace (a module's globals) the builtins named in
    `builtins`, and every name bound to a replaced function or to its module, see the stand-ins;
    afterwards each name is bound as before."""
    saved = []
    _tracers.append(tracer)
    try:
        for glob in namespaces:
            new = {**builtins, **substitutes(glob)}
            saved.append((glob, {k: glob[k] for k in new if k in glob}, list(new)))
            glob.update(new)
        yield
    finally:
        _tracers.pop()
        for glob, old, names in saved:
            for k in names:
                if k in old:
                    glob[k] = old[k]
                else:
                    glob.pop(k, None)
