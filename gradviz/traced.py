"""The traced value type: what a model's code holds in place of an array while it is traced.

NumPy routes its ufuncs and array functions to `Traced.__array_ufunc__` / `__array_function__`, Python routes
+ - * / ** @ to the operator methods, and the ndarray methods (x.sum(), x.reshape(...)) are generated from the
registry in a loop; all of them land in `Tracer.call` with the registry's entry for the NumPy callable.
"""
from __future__ import annotations

import difflib
import math
import operator
from typing import Any, Callable

import numpy as np

from .errors import UnsupportedOperation
from .ops import FUNCTIONS, METHODS, REGISTRY, display_name
from .ops.structural import write


def _no_operator(symbol: str) -> Callable:
    def refuse(self, *args):
        raise UnsupportedOperation(unsupported(f"the Python operator {symbol}"))
    return refuse


class Traced:
    """A value flowing through the model: its NumPy value and where it sits in the graph."""

    __slots__ = ("tracer", "value", "ref", "named", "link", "__weakref__")
    __array_priority__ = 1000.0

    def __init__(self, tracer: Any, value: np.ndarray, ref: Any) -> None:
        self.tracer = tracer
        self.value = value
        # tensor: node id; scalar: array of node ids shaped like value; None: a plain array the model made
        # during the trace (np.zeros…) that no traced value was written into yet (a "canvas")
        self.ref = ref
        self.named = False
        self.link: Any = None  # structural.Link: for a view, the array it views; for an array, its views

    # -- array-like surface ------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)
    dtype = property(lambda self: self.value.dtype)
    T = property(lambda self: self.tracer.call(FUNCTIONS[np.transpose], np.transpose, (self,), {}, "x.T"))

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Traced({self.value!r})"

    def __format__(self, spec: str) -> str:
        return format(self.value.item() if self.value.ndim == 0 else self.value, spec)

    def __bool__(self) -> bool:
        return bool(self.value)

    # Where Python needs a plain number, the value is used and the gradient stops (one warning per line)
    def __float__(self): return float(self.tracer.concrete(self, "float()", store=True))
    def __int__(self): return int(self.tracer.concrete(self, "int()", integer=True))
    def __index__(self): return self.tracer.concrete(self, "an integer", integer=True)
    def __round__(self, n=None): return round(self.tracer.concrete(self, "round()"), n)
    def __floor__(self): return math.floor(self.tracer.concrete(self, "math.floor()"))
    def __ceil__(self): return math.ceil(self.tracer.concrete(self, "math.ceil()"))
    def __trunc__(self): return math.trunc(self.tracer.concrete(self, "math.trunc()"))
    def __floordiv__(self, o): return _whole(self.tracer.concrete(self, "//") // self.tracer.concrete(o, "//"))
    def __rfloordiv__(self, o): return _whole(self.tracer.concrete(o, "//") // self.tracer.concrete(self, "//"))
    def item(self, *args): return self.tracer.concrete(self, "x.item()", array=True).item(*args)

    def tolist(self):
        return [x.tolist() for x in self] if self.ndim > 1 else list(self) if self.ndim == 1 else self

    def __array__(self, dtype=None, copy=None):
        if self.ref is None:
            return self.value if dtype is None else self.value.astype(dtype)
        self.tracer.refuse_store()
        raise UnsupportedOperation("NumPy converted a traced value to a plain array, which would drop its gradient "
                                   "(a plain array's own method does, as in a.dot(x)); write np.dot(a, x) or a @ x")

    def __pos__(self):
        return self

    def __getitem__(self, index):
        return self.tracer.call(FUNCTIONS[operator.getitem], operator.getitem, (self, index), {}, "x[...]")

    def __setitem__(self, index, value):
        write(self.tracer, self, index, value)

    # Python operators with no derivative rule: named, instead of Python's "unsupported operand type"
    __mod__ = __rmod__ = _no_operator("%")
    __divmod__ = __rdivmod__ = _no_operator("divmod()")
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _no_operator("<< and >>")
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _no_operator("& | ^")
    __invert__ = _no_operator("~")

    # comparisons carry no gradient: they answer with plain NumPy values
    def __lt__(self, o): return self.value < plain(o)
    def __le__(self, o): return self.value <= plain(o)
    def __gt__(self, o): return self.value > plain(o)
    def __ge__(self, o): return self.value >= plain(o)
    def __eq__(self, o): return self.value == plain(o)
    def __ne__(self, o): return self.value != plain(o)
    __hash__ = object.__hash__

    def argmax(self, *a, **k): return self.value.argmax(*a, **k)
    def argmin(self, *a, **k): return self.value.argmin(*a, **k)
    def argsort(self, *a, **k): return self.value.argsort(*a, **k)
    def all(self, *a, **k): return self.value.all(*a, **k)
    def any(self, *a, **k): return self.value.any(*a, **k)
    def nonzero(self): return self.value.nonzero()

    # -- NumPy protocols ---------------------------------------------------------------------
    # Tracer.call answers a call on plain arrays only (np.zeros… the model made) with NumPy's own result
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        entry = FUNCTIONS.get(func)
        if entry is not None:
            return self.tracer.call(entry, func, inputs, kwargs)
        if not holds_live((inputs, kwargs)):
            return canvas(self.tracer, func(*plain(inputs), **plain(kwargs)))
        if method == "__call__" and ufunc in NOGRAD_UFUNCS:
            return ufunc(*map(plain, inputs), **kwargs)
        raise UnsupportedOperation(unsupported(f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")))

    def __array_function__(self, func, types, args, kwargs):
        entry = FUNCTIONS.get(func)
        if entry is not None:
            return self.tracer.call(entry, func, args, kwargs)
        if not holds_live((args, kwargs)):
            return canvas(self.tracer, func(*plain(args), **plain(kwargs)))
        if func in NOGRAD_FUNCTIONS:
            return func(*map(plain, args), **kwargs)
        raise UnsupportedOperation(unsupported(display_name(func)))


# Python's operators, as the NumPy functions they mean (reflected: the traced value is the right operand)
_OPERATORS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.divide, "pow": np.power,
              "matmul": np.matmul}
_UNARY = {"neg": np.negative, "abs": np.absolute}


def _operator(func: Callable, reflected: bool) -> Callable:
    entry = FUNCTIONS[func]
    if reflected:
        return lambda self, other: self.tracer.call(entry, func, (other, self), {})
    return lambda self, other: self.tracer.call(entry, func, (self, other), {})


def _method(name: str, entry: Any) -> Callable:
    func = entry.callables[0] if entry.callables else entry.forward

    def method(self, *args, **kwargs):
        if entry.method_args is not None:
            args, kwargs = entry.method_args(self, *args, **kwargs)
        else:
            args = (self,) + args
        return self.tracer.call(entry, func, args, kwargs, f"x.{name}")
    method.__name__ = name
    return method


def _in_place(func: Callable) -> Callable:
    """x += y writes x + y into x, so every name for the array x sees it, as with an ndarray."""
    entry = FUNCTIONS[func]

    def method(self, other):
        self[...] = self.tracer.call(entry, func, (self, other), {})
        return self
    return method


for _name, _func in _OPERATORS.items():
    setattr(Traced, f"__{_name}__", _operator(_func, False))
    setattr(Traced, f"__r{_name}__", _operator(_func, True))
    setattr(Traced, f"__i{_name}__", _in_place(_func))
for _name, _func in _UNARY.items():
    setattr(Traced, f"__{_name}__", lambda self, _e=FUNCTIONS[_func], _f=_func: self.tracer.call(_e, _f, (self,), {}))
for _name, _entry in METHODS.items():
    setattr(Traced, _name, _method(_name, _entry))


# Comparisons and the like carry no gradient: they run on the plain values.
NOGRAD_UFUNCS = {
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.isnan, np.isinf, np.isfinite, np.logical_and, np.logical_or, np.logical_not, np.signbit,
}
NOGRAD_FUNCTIONS = {
    np.argmax, np.argmin, np.argsort, np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal,
    np.count_nonzero, np.nonzero, np.argwhere, np.flatnonzero, np.all, np.any,
}


def plain(x: Any) -> Any:
    """The NumPy value of a traced value; containers of them, element by element."""
    if isinstance(x, Traced):
        return x.value
    if isinstance(x, (list, tuple)) and any(isinstance(v, (Traced, list, tuple, dict)) for v in x):
        return type(x)(plain(v) for v in x)
    if isinstance(x, dict) and any(isinstance(v, (Traced, list, tuple)) for v in x.values()):
        return {k: plain(v) for k, v in x.items()}
    return x


def _whole(q: Any) -> Any:
    """A whole number from // as the int Python would give for int operands (range(n), a slice), which the
    traced values were before they became float leaves; anything else as it is."""
    if np.ndim(q) == 0 and float(q).is_integer():
        return int(q)
    return q


def holds_live(x: Any) -> bool:
    """Does x hold a traced value with a node (not a plain array the model made), also inside containers?"""
    if isinstance(x, Traced):
        return x.ref is not None
    if isinstance(x, (list, tuple)):
        return any(holds_live(v) for v in x)
    if isinstance(x, dict):
        return any(holds_live(v) for v in x.values())
    return False


def canvas(tracer: Any, result: Any) -> Any:
    """A result computed from plain arrays only: a float array stays one the model can write traced values
    into; anything else (a number, a mask, a list of arrays) is NumPy's own."""
    if isinstance(result, np.ndarray) and result.dtype.kind == "f":
        return Traced(tracer, result, None)
    if isinstance(result, list) and all(isinstance(r, np.ndarray) and r.dtype.kind == "f" for r in result):
        return [Traced(tracer, r, None) for r in result]
    return result


def unsupported(what: str) -> str:
    """The one line for a function gradviz cannot differentiate, naming the nearest supported spelling."""
    spellings = [s for entry in REGISTRY for s in entry.spellings()]
    near = difflib.get_close_matches(what, spellings, n=1, cutoff=0.8)
    hint = f" (did you mean {near[0]}?)" if near and near[0] != what else ""
    return f"{what} is not supported on traced values{hint}; `gradviz ops` lists the supported operations"
