"""The one registry: each entry is keyed by the NumPy callables (and ndarray methods) it answers.

From the entries follow the ufunc and function dispatch (`FUNCTIONS`), the methods of Traced (generated in
traced.py by a loop over `METHODS`), the rows of `gradviz ops` (`REGISTRY`, grouped by family), each entry's
own test inputs (`examples`), and the rule text the graph's edges print (`OPS`, by the node's op name).

Every call is bound to NumPy's own signature: an argument the entry does not declare in `options` must keep
its default, else the call is refused in one line naming it (`np.sum(..., initial=) is not supported`).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UnsupportedOperation

if TYPE_CHECKING:
    from .kinds import Kind


# NumPy before 2.4 gives no inspect.signature for its ufuncs and C functions, and 2.4 builds them slowly: a
# ufunc's follows from its numbers of inputs and outputs; the C functions gradviz registers are written out, as
# NumPy 2.4 gives them.
_C_SIGNATURES = {
    "concatenate": lambda arrays, /, axis=0, out=None, *, dtype=None, casting="same_kind": None,
    "where": lambda condition, x=None, y=None, /: None,
    "flatten": lambda self, /, order="C": None,  # ndarray's methods
    "astype": lambda self, /, dtype, order="K", casting="unsafe", subok=True, copy=True: None,
    "dot": lambda a, b, out=None: None,
    "inner": lambda a, b, /: None,
    "vdot": lambda a, b, /: None,
    "array": lambda object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None: None,
    "asarray": lambda a, dtype=None, order=None, *, device=None, copy=None, like=None: None,
    "zeros": lambda shape, dtype=None, order="C", *, device=None, like=None: None,
    "empty": lambda shape, dtype=None, order="C", *, device=None, like=None: None,
}
_UFUNC_METHODS = {
    "reduce": lambda array, /, axis=0, dtype=None, out=None, **kwargs: None,
    "accumulate": lambda array, /, axis=0, dtype=None, out=None: None,
    "outer": lambda A, B, /, **kwargs: None,
}


def numpy_signature(func: Callable) -> inspect.Signature:
    """NumPy's own signature of func, on every NumPy the project supports. Ufuncs' and the C functions' are
    built here on every version (NumPy 2.4 parses a C function's from text with tokenize: 4 ms of every
    start; tests/test_registry.py checks they equal NumPy's own where it gives them)."""
    if isinstance(func, np.ufunc):
        return _ufunc_signature(func)
    name = getattr(func, "__name__", "")
    if isinstance(getattr(func, "__self__", None), np.ufunc):  # np.add.reduce
        stand_in = _UFUNC_METHODS.get(name)
    else:
        stand_in = _C_SIGNATURES.get(name) if func is getattr(np, name, None) or func is getattr(
            np.ndarray, name, None) else None
    return inspect.signature(func if stand_in is None else stand_in)


def _ufunc_signature(func: np.ufunc) -> inspect.Signature:
    P = inspect.Parameter
    names = ["x"] if func.nin == 1 else [f"x{i + 1}" for i in range(func.nin)]
    params = [P(n, P.POSITIONAL_ONLY) for n in names]
    params.append(P("out", P.POSITIONAL_OR_KEYWORD, default=None if func.nout == 1 else (None,) * func.nout))
    if func.signature is None:
        keywords = {"where": True}
    else:  # a generalized ufunc (matmul, vecdot): axes instead of where
        keywords = {"axes": np._NoValue, "axis": np._NoValue, "keepdims": False}
    keywords.update(casting="same_kind", order="K", dtype=None, subok=True, signature=None)
    params.extend(P(k, P.KEYWORD_ONLY, default=v) for k, v in keywords.items())
    return inspect.Signature(params)


@dataclass(eq=False)
class Entry:
    """One operation: a primitive (a `kind` that builds nodes) or a derived one (`derive` composes primitives)."""

    name: str  # the op of the nodes it makes (primitives), or the function's name (derived)
    family: str  # the group of `gradviz ops` and docs/numpy-coverage.md
    rules: tuple[str, ...]  # one per input (the last repeats for n-ary nodes); derived: its definition
    kind: "Kind | None" = None  # None: derived from other entries by `derive`
    callables: tuple[Callable, ...] = ()  # the NumPy functions and ufuncs it answers
    methods: tuple[str, ...] = ()  # the ndarray methods it answers
    syntax: tuple[str, ...] = ()  # other spellings, for the table (operators, builtins)
    label: str = ""  # label of an unnamed result; {0}, {1}: input labels
    operands: tuple[str, ...] = ()  # the parameters of the signature that are traced inputs
    options: tuple[str, ...] = ()  # the other parameters it understands; the rest must keep their defaults
    forward: Callable | None = None  # plain NumPy values -> result
    partials: Callable | None = None  # elementwise: (*inputs, out) -> local per input (a tuple when several)
    # elementwise, optional: one (*inputs, out) -> local per input, where each costs a pass over the result (a
    # comparison): a tensor node then computes only the ones read (ReLU's max(0, z) never needs the 0's)
    each: tuple[Callable, ...] = ()
    local: Callable | None = None  # reduce: (xs, out, axis) -> local shaped like xs (a number if the same for all)
    nondiff: Callable | None = None  # where the derivative does not exist (the local there is 0)
    vjp: tuple[Callable, ...] = ()  # (g, args, out, params) -> chain per input, where the kind needs it
    jvp: tuple[Callable, ...] = ()  # (t, args, out, params) -> tangent of the result, per input
    derive: Callable | None = None  # derived: (tracer, **arguments) -> result built from primitives
    spec: Callable | None = None  # contraction: (shapes, **options) -> (input letters, output letters)
    method_args: Callable | None = None  # (self, *args, **kwargs) -> (args, kwargs) of the function's signature
    variables: tuple[str, ...] = ("x", "y")  # the inputs' names in the rules
    note: str = ""  # why derived, or what to know (zero derivative, conventions)
    zero: bool = False  # the derivative is 0 wherever it exists (sign, floor, round)
    examples: tuple[tuple[tuple, dict], ...] = ()  # (args, kwargs) a test calls it with; traced: float arrays
    custom: bool = False  # made by @custom_op
    signatures: dict = field(default_factory=dict, repr=False)  # callable -> NumPy's signature, read once
    plans: dict = field(default_factory=dict, repr=False)  # callable -> how to bind a call without keywords

    def rule(self, arg: int) -> str:
        return self.rules[min(arg, len(self.rules) - 1)]

    def spellings(self) -> list[str]:
        names = []
        for f in self.callables:
            names.append(display_name(f))
            names.extend(f"np.{a}" for a in _aliases().get(id(f), ()) if a != getattr(f, "__name__", a))
        return names + [f"x.{m}" for m in self.methods] + list(self.syntax)

    def signature(self, func: Callable) -> inspect.Signature:
        sig = self.signatures.get(func)
        if sig is None:
            sig = self.signatures[func] = numpy_signature(func)
        return sig

    def bind(self, func: Callable, args: tuple, kwargs: dict, what: str | None = None) -> dict[str, Any]:
        """NumPy's signature of func bound to the call: {parameter: value} for the operands and the options
        (defaults filled in); any other argument given a value that is not its default is refused."""
        # the common calls, x + y, np.exp(x), np.sum(x, axis=1, keepdims=True): operands and options only, bound
        # without inspect (a tenth of its time)
        plan = self.plans.get(func)
        if plan is None:
            plan = self.plans[func] = self._plan(func)
        names, defaults, required, keywords = plan
        if len(args) <= len(names) and (not kwargs or (keywords.issuperset(kwargs)
                                                       and kwargs.keys().isdisjoint(names[:len(args)]))):
            bound = {**defaults, **dict(zip(names, args, strict=False)), **kwargs}
            if required.issubset(bound):
                return bound
        sig = self.signature(func)
        what = what or display_name(func)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise UnsupportedOperation(f"{what}: {exc}") from None
        for name, value in bound.arguments.items():
            param = sig.parameters[name]
            if name in self.operands or name in self.options:
                continue
            if param.kind is param.VAR_KEYWORD:
                for key, v in value.items():
                    if not _harmless(key, v):
                        raise UnsupportedOperation(f"{what}(..., {key}=) is not supported")
            elif param.kind is param.VAR_POSITIONAL:
                if value:
                    raise UnsupportedOperation(f"{what}: more positional arguments than gradviz supports")
            elif not (_is_default(value, param.default) or _harmless(name, value)):
                why = "; it writes in place: assign the result instead" if name == "out" else ""
                raise UnsupportedOperation(f"{what}(..., {name}=) is not supported{why}")
        bound.apply_defaults()
        return {k: _unset(v) for k, v in bound.arguments.items() if k in self.operands or k in self.options}


    def _plan(self, func: Callable) -> tuple[tuple[str, ...], dict[str, Any], set[str], set[str]]:
        """The leading positional parameters that are all operands or options, every operand's and option's
        default, the operands and options without one, and those a call may give by keyword: enough to bind a
        call that gives only operands and options."""
        sig = self.signature(func)
        names = []
        for p in sig.parameters.values():
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or not (
                    p.name in self.operands or p.name in self.options):
                break
            names.append(p.name)
        ours = [p for p in sig.parameters.values() if p.name in self.operands or p.name in self.options]
        defaults = {p.name: _unset(p.default) for p in ours if p.default is not p.empty}
        required = {p.name for p in ours if p.default is p.empty}
        keywords = {p.name for p in ours if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return tuple(names), defaults, required, keywords


@functools.cache
def _aliases() -> dict[int, list[str]]:
    """Other names NumPy gives the same function (np.abs is np.absolute, np.true_divide is np.divide)."""
    names: dict[int, list[str]] = {}
    for name in dir(np):
        if not name.startswith("_"):
            names.setdefault(id(getattr(np, name)), []).append(name)
    return names


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if isinstance(default, (bool, int, float, str)) and type(value) is type(default):
        return value == default
    return False


def _harmless(name: str, value: Any) -> bool:
    """None means "not given"; a dtype of float64 is what gradviz computes in anyway. Anything else would
    change the numbers."""
    if value is None:
        return True
    if name != "dtype":
        return False
    try:
        return np.dtype(value) == np.float64
    except TypeError:
        return False


def _unset(value: Any) -> Any:
    """NumPy's "no value given" marker as None."""
    return None if value is np._NoValue else value


def display_name(func: Callable) -> str:
    owner = getattr(func, "__self__", None)
    if isinstance(owner, np.ufunc):  # np.add.reduce and the other methods of a ufunc
        return f"np.{owner.__name__}.{func.__name__}"
    module = getattr(func, "__module__", None) or "numpy"
    name = getattr(func, "__name__", str(func))
    if isinstance(func, np.ufunc) or module in ("numpy", "numpy._core.fromnumeric", "numpy._core.numeric"):
        return f"np.{name}"
    if module.startswith("numpy.linalg"):
        return f"np.linalg.{name}"
    if module.startswith("numpy"):
        return f"np.{name}"
    return name


REGISTRY: list[Entry] = []  # every entry, in table order
OPS: dict[str, Entry] = {}  # node op name -> entry (primitives; a graph's nodes name their op)
FUNCTIONS: dict[Callable, Entry] = {}  # NumPy callable -> entry
METHODS: dict[str, Entry] = {}  # ndarray method name -> entry


def register(entry: Entry) -> Entry:
    """Add an entry: its callables and methods dispatch to it from now on. A later entry of the same name
    (a @custom_op defined again) replaces the earlier one's row; built-in names are never replaced."""
    old = OPS.get(entry.name) if entry.kind is not None else None
    if old is not None:
        if not (old.custom and entry.custom):
            raise ValueError(f"operation {entry.name!r} registered twice")
        REGISTRY.remove(old)
    REGISTRY.append(entry)
    if entry.kind is not None:
        OPS[entry.name] = entry
    for func in entry.callables:
        FUNCTIONS[func] = entry
    for method in entry.methods:
        METHODS[method] = entry
    return entry


def families() -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for entry in REGISTRY:
        out.setdefault(entry.family, []).append(entry)
    return out
