"""The traced value type: what a model's code holds in place of an array while it is traced.

NumPy routes its ufuncs and array functions to `Traced.__array_ufunc__` / `__array_function__`, Python routes
+ - * / ** @ to the operator methods, and the ndarray methods (x.sum(), x.reshape(...)) are generated from the
registry in a loop; all of them land in `Tracer.call` with the registry's entry for the NumPy callable.
"""
from __future__ import annotations

import difflib
import operator
from typing import Any, Callable

import numpy as np

from .errors import UnsupportedOperation
from .ops import FUNCTIONS, METHODS, REGISTRY, display_name


def _no_operator(symbol: str) -> Callable:
    def refuse(self, *args):
        raise UnsupportedOperation(unsupported(f"the Python operator {symbol}"))
    return refuse


class Traced:
    """A value flowing through the model: its NumPy value and where it sits in the graph."""

    __slots__ = ("tracer", "value", "ref", "named")
    __array_priority__ = 1000.0

    def __init__(self, tracer: Any, value: np.ndarray, ref: Any) -> None:
        self.tracer = tracer
        self.value = value
        self.ref = ref  # tensor: node id; scalar: array of node ids shaped like value
        self.named = False

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

    def __float__(self) -> float:
        raise UnsupportedOperation("float() of a traced value drops its gradient; keep it as a NumPy value")

    __int__ = __index__ = __float__

    def __array__(self, dtype=None, copy=None):
        raise UnsupportedOperation("np.array/np.asarray of a traced value is not supported (it would drop its "
                                   "gradient); build arrays from leaves instead")

    def __pos__(self):
        return self

    def __getitem__(self, index):
        return self.tracer.call(FUNCTIONS[operator.getitem], operator.getitem, (self, index), {}, "x[...]")

    def __setitem__(self, index, value):
        raise UnsupportedOperation("assigning into a traced array (x[i] = ...) is not supported; "
                                   "build a new array instead, e.g. with np.where or sums of terms")

    # Python operators with no derivative rule: named, instead of Python's "unsupported operand type"
    __floordiv__ = __rfloordiv__ = _no_operator("//")
    __mod__ = __rmod__ = _no_operator("%")
    __divmod__ = __rdivmod__ = _no_operator("divmod()")
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _no_operator("<< and >>")
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _no_operator("& | ^")
    __invert__ = _no_operator("~")
    __round__ = __trunc__ = __floor__ = __ceil__ = _no_operator("round()/math.floor()")

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
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        entry = FUNCTIONS.get(func)
        if entry is not None:
            return self.tracer.call(entry, func, inputs, kwargs)
        if method == "__call__" and ufunc in NOGRAD_UFUNCS:
            return ufunc(*map(plain, inputs), **kwargs)
        raise UnsupportedOperation(unsupported(f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")))

    def __array_function__(self, func, types, args, kwargs):
        entry = FUNCTIONS.get(func)
        if entry is not None:
            return self.tracer.call(entry, func, args, kwargs)
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
    func = entry.callables[0] if entry.callables else None

    def method(self, *args, **kwargs):
        if entry.method_args is not None:
            args, kwargs = entry.method_args(self, *args, **kwargs)
        else:
            args = (self,) + args
        return self.tracer.call(entry, func, args, kwargs, f"x.{name}")
    method.__name__ = name
    return method


for _name, _func in _OPERATORS.items():
    setattr(Traced, f"__{_name}__", _operator(_func, False))
    setattr(Traced, f"__r{_name}__", _operator(_func, True))
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
    np.argmax, np.argmin, np.argsort, np.shape, np.ndim, np.size, np.zeros_like, np.ones_like,
    np.empty_like, np.allclose, np.isclose, np.array_equal, np.count_nonzero, np.nonzero, np.argwhere,
    np.flatnonzero,
}


def plain(x: Any) -> Any:
    """The NumPy value of a traced value; containers of them, element by element."""
    if isinstance(x, Traced):
        return x.value
    if isinstance(x, (list, tuple)) and any(isinstance(v, (Traced, list, tuple)) for v in x):
        return type(x)(plain(v) for v in x)
    return x


def unsupported(what: str) -> str:
    """The one line for a function gradviz cannot differentiate, naming the nearest supported spelling."""
    spellings = [s for entry in REGISTRY for s in entry.spellings()]
    near = difflib.get_close_matches(what, spellings, n=1, cutoff=0.8)
    hint = f" (did you mean {near[0]}?)" if near and near[0] != what else ""
    return f"{what} is not supported on traced values{hint}; `gradviz ops` lists the supported operations"
