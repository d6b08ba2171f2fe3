"""Elementwise operations: one line each, `ew(numpy function, rule, local partial, test point)`.

The rule is written as the learner reads it: a formula ("1/(1+x)") becomes "∂log1p(x)/∂x = 1/(1+x)"; a full
equation starting with ∂ is kept as written. partials(*inputs, out) gives the local partial for each input
(a tuple when there are several), elementwise and broadcast like the result. Convention where the
derivative does not exist (a tie, a kink, a jump): the local partial is 0 and `nondiff` flags the node.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .kinds import ADDITION, ELEMENTWISE, Kind
from .registry import FUNCTIONS, Entry, numpy_signature, register

ARITH, EXPLOG, TRIG, HYPER, EXTREMA, STEPS = ("arithmetic", "exponents and logarithms", "trigonometric",
                                             "hyperbolic", "comparison and clipping",
                                             "rounding and sign (zero derivative)")


def ew(func: Callable, rules: str | tuple[str, ...], partials: Callable, at: tuple | None = None, *,
       name: str | None = None, label: str | None = None, nondiff: Callable | None = None, family: str = "",
       methods: tuple[str, ...] = (), syntax: tuple[str, ...] = (), zero: bool = False, note: str = "",
       kind: Kind = ELEMENTWISE, also: tuple[Callable, ...] = (), operands: tuple[str, ...] | None = None,
       options: tuple[str, ...] = (), spec: Callable | None = None, forward: Callable | None = None,
       variables: tuple[str, ...] | None = None, examples: tuple = ()) -> Entry:
    """Register one elementwise operation. `partials`: (*inputs, out) -> the local partial of each input (a tuple
    when several), or a tuple of such functions, one per input (a mask of where the partial is 1 may be
    bool: backward multiplies by it as it is, the graph keeps it as floats). `at`: a point inside its domain
    and away from its kinks, one number per input, where the registry's own test compares the partials with
    finite differences."""
    name = name or func.__name__
    each = ()
    if isinstance(partials, tuple):  # one function per input
        each = partials
        partials = lambda *inputs: tuple(f(*inputs) for f in each)  # noqa: E731
    params = list(numpy_signature(func).parameters.values())
    operands = operands or tuple(p.name for p in params if p.kind is p.POSITIONAL_ONLY) or (params[0].name,)
    variables = variables or (("x",) if len(operands) == 1 else ("x", "y", "z")[:len(operands)])
    call = f"{name}({','.join(variables)})"
    rules = (rules,) if isinstance(rules, str) else rules
    rules = tuple(r if r.lstrip().startswith("∂") else f"∂{call}/∂{v} = {r}"
                  for r, v in zip(rules, variables, strict=True))
    label = label or f"{name}(" + ",".join(f"{{{i}}}" for i in range(len(variables))) + ")"
    at = at or (0.7, -0.4, 1.3)[:len(variables)]
    examples = examples or ((tuple(np.array([a, a + 0.25]) for a in at), {}),)
    return register(Entry(name, family or _section[0], rules, kind, (func,) + also, methods, syntax, label,
                          operands, options, forward or func, partials, each=each, nondiff=nondiff, spec=spec,
                          variables=variables, zero=zero, note=note, examples=examples))


def erf(x, /):
    """The error function elementwise: what math.erf(x) means on a traced value (NumPy has no erf, so no
    protocol routes it: a traced x is sent to its entry here)."""
    from ..traced import Traced
    if isinstance(x, Traced):
        return x.tracer.call(FUNCTIONS[erf], erf, (x,), {})
    return np.vectorize(math.erf, otypes=[float])(x)


_section = [ARITH]  # the family of the lines that follow


def section(family: str) -> None:
    _section[0] = family


def _pow_exponent(x, y, out):
    # ∂(x**y)/∂y = x**y · ln x exists only for x > 0 (and is 0 in the limit x → 0 with y > 0).
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, out * np.log(safe), np.where((x == 0) & (y > 0), 0.0, np.nan))


def _tie(x, y, out):
    return x == y


def _integers(x, out):  # floor, ceil, trunc jump at every integer
    return x == np.round(x)


def _halves(x, out):  # round jumps halfway between integers
    return np.abs(x - np.floor(x) - 0.5) == 0


def _clip_spec(a, a_min=None, a_max=None, min=None, max=None):
    lo = min if a_min is None else a_min
    hi = max if a_max is None else a_max
    return [a, -np.inf if lo is None else lo, np.inf if hi is None else hi], {}


def _round_spec(a, decimals=0):
    return [a], {"decimals": decimals}


def _where_spec(condition, x=None, y=None):
    if x is None or y is None:
        raise ValueError("np.where(condition) without x and y gives indices, not values: give x and y")
    from ..traced import plain
    return [np.asarray(plain(condition), dtype=bool), x, y], {}


# -- arithmetic ---------------------------------------------------------------------------------------------
ew(np.add, ("∂(x+y)/∂x = 1", "∂(x+y)/∂y = 1"), lambda x, y, out: (1.0, 1.0), label="{0}+{1}", syntax=("x + y",),
   kind=ADDITION)
ew(np.subtract, ("∂(x−y)/∂x = 1", "∂(x−y)/∂y = −1"), lambda x, y, out: (1.0, -1.0), name="sub", label="{0}-{1}",
   syntax=("x - y",))
ew(np.multiply, ("∂(x·y)/∂x = y", "∂(x·y)/∂y = x"), lambda x, y, out: (y, x), name="mul", label="{0}*{1}",
   syntax=("x * y",))
ew(np.divide, ("∂(x/y)/∂x = 1/y", "∂(x/y)/∂y = −x/y²"), lambda x, y, out: (1.0 / y, -x / (y * y)), name="div",
   label="{0}/{1}", syntax=("x / y",), at=(1.5, -2.0))
ew(np.power, ("∂(x^y)/∂x = y·x^(y−1)", "∂(x^y)/∂y = x^y·ln x"),
   lambda x, y, out: (y * np.power(x, y - 1.0), _pow_exponent(x, y, out)), name="pow", label="{0}**{1}",
   syntax=("x ** y",), at=(1.5, 2.5))
ew(np.float_power, ("∂(x^y)/∂x = y·x^(y−1)", "∂(x^y)/∂y = x^y·ln x"),
   lambda x, y, out: (y * np.power(x, y - 1.0), _pow_exponent(x, y, out)), label="{0}**{1}", at=(1.5, 2.5))
ew(np.negative, "∂(−x)/∂x = −1", lambda x, out: -1.0, name="neg", label="-{0}", syntax=("-x",))
ew(np.positive, "∂(+x)/∂x = 1", lambda x, out: 1.0, label="+{0}", syntax=("+x",))
ew(np.absolute, "∂|x|/∂x = sign(x)", lambda x, out: np.sign(x), name="abs", label="abs({0})",
   nondiff=lambda x, out: x == 0, syntax=("abs(x)",), also=(np.fabs,))
ew(np.square, "∂(x²)/∂x = 2·x", lambda x, out: 2.0 * x)
ew(np.sqrt, "∂√x/∂x = 1/(2·√x)", lambda x, out: 0.5 / out, at=(2.0,))
ew(np.cbrt, "∂∛x/∂x = 1/(3·∛x²)", lambda x, out: 1.0 / (3.0 * out * out), at=(2.0,))
ew(np.reciprocal, "∂(1/x)/∂x = −1/x²", lambda x, out: -out * out, at=(2.0,))
ew(np.remainder, ("1", "−floor(x/y)"), lambda x, y, out: (1.0, -np.floor(x / y)), at=(5.3, 2.0),
   nondiff=lambda x, y, out: out == 0)
ew(np.copysign, ("sign(x)·sign(y)", "0"), lambda x, y, out: (np.sign(x) * np.copysign(1.0, y), 0.0),
   nondiff=lambda x, y, out: x == 0)
ew(np.fmod, ("1", "−trunc(x/y)"), lambda x, y, out: (1.0, -np.trunc(x / y)), at=(5.3, 2.0),
   nondiff=lambda x, y, out: out == 0)

# -- exponents and logarithms -------------------------------------------------------------------------------
section(EXPLOG)
ew(np.exp, "∂exp(x)/∂x = exp(x)", lambda x, out: out)
ew(np.exp2, "2ˣ·ln 2", lambda x, out: out * np.log(2.0))
ew(np.expm1, "exp(x)", lambda x, out: out + 1.0)
ew(np.log, "∂log(x)/∂x = 1/x", lambda x, out: 1.0 / x, at=(2.0,))
ew(np.log2, "1/(x·ln 2)", lambda x, out: 1.0 / (x * np.log(2.0)), at=(2.0,))
ew(np.log10, "1/(x·ln 10)", lambda x, out: 1.0 / (x * np.log(10.0)), at=(2.0,))
ew(np.log1p, "1/(1+x)", lambda x, out: 1.0 / (1.0 + x))
ew(np.logaddexp, ("exp(x)/(exp(x)+exp(y))", "exp(y)/(exp(x)+exp(y))"),
   lambda x, y, out: (np.exp(x - out), np.exp(y - out)))
ew(np.logaddexp2, ("2ˣ/(2ˣ+2ʸ)", "2ʸ/(2ˣ+2ʸ)"), lambda x, y, out: (np.exp2(x - out), np.exp2(y - out)))

# -- trigonometric ------------------------------------------------------------------------------------------
section(TRIG)
ew(np.sin, "cos(x)", lambda x, out: np.cos(x))
ew(np.cos, "−sin(x)", lambda x, out: -np.sin(x))
ew(np.tan, "1 + tan(x)²", lambda x, out: 1.0 + out * out)
ew(np.arcsin, "1/√(1−x²)", lambda x, out: 1.0 / np.sqrt(1.0 - x * x), at=(0.3,))
ew(np.arccos, "−1/√(1−x²)", lambda x, out: -1.0 / np.sqrt(1.0 - x * x), at=(0.3,))
ew(np.arctan, "1/(1+x²)", lambda x, out: 1.0 / (1.0 + x * x))
ew(np.arctan2, ("x/(x²+y²)", "−y/(x²+y²)"),
   lambda y, x, out: (x / (x * x + y * y), -y / (x * x + y * y)), variables=("y", "x"),
   at=(0.7, -0.4))
ew(np.hypot, ("x/hypot(x,y)", "y/hypot(x,y)"), lambda x, y, out: (x / out, y / out))
ew(np.deg2rad, "π/180", lambda x, out: np.pi / 180.0, also=(np.radians,))
ew(np.rad2deg, "180/π", lambda x, out: 180.0 / np.pi, also=(np.degrees,))
ew(np.sinc, "(cos(πx) − sinc(x))/x",
   lambda x, out: np.where(x == 0, 0.0, (np.cos(np.pi * x) - out) / np.where(x == 0, 1.0, x)))

# -- hyperbolic ---------------------------------------------------------------------------------------------
section(HYPER)
ew(np.tanh, "∂tanh(x)/∂x = 1 − tanh(x)²", lambda x, out: 1.0 - out * out)
ew(erf, "2/√π·exp(−x²)", lambda x, out: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), syntax=("math.erf",))
ew(np.sinh, "cosh(x)", lambda x, out: np.cosh(x))
ew(np.cosh, "sinh(x)", lambda x, out: np.sinh(x))
ew(np.arcsinh, "1/√(x²+1)", lambda x, out: 1.0 / np.sqrt(x * x + 1.0))
ew(np.arccosh, "1/√(x²−1)", lambda x, out: 1.0 / np.sqrt(x * x - 1.0), at=(1.5,))
ew(np.arctanh, "1/(1−x²)", lambda x, out: 1.0 / (1.0 - x * x), at=(0.3,))

# -- comparison and clipping --------------------------------------------------------------------------------
section(EXTREMA)
ew(np.maximum, ("∂max(x,y)/∂x = 1 if x > y else 0", "∂max(x,y)/∂y = 1 if y > x else 0"),
   (lambda x, y, out: x > y, lambda x, y, out: y > x), nondiff=_tie, label="max({0},{1})", syntax=("max(x, y)",),
   at=(1.0, 3.0))
ew(np.minimum, ("∂min(x,y)/∂x = 1 if x < y else 0", "∂min(x,y)/∂y = 1 if y < x else 0"),
   (lambda x, y, out: x < y, lambda x, y, out: y < x), nondiff=_tie, label="min({0},{1})", syntax=("min(x, y)",),
   at=(1.0, 3.0))
ew(np.fmax, ("1 if x > y or y is nan else 0", "1 if y > x or x is nan else 0"),
   (lambda x, y, out: (x > y) | np.isnan(y), lambda x, y, out: (y > x) | np.isnan(x)), nondiff=_tie,
   at=(1.0, 3.0))
ew(np.fmin, ("1 if x < y or y is nan else 0", "1 if y < x or x is nan else 0"),
   (lambda x, y, out: (x < y) | np.isnan(y), lambda x, y, out: (y < x) | np.isnan(x)), nondiff=_tie,
   at=(1.0, 3.0))
ew(np.clip, ("∂clip(x,lo,hi)/∂x = 1 if lo < x < hi else 0", "∂clip(x,lo,hi)/∂lo = 1 if x < lo else 0",
             "∂clip(x,lo,hi)/∂hi = 1 if x > hi else 0"),
   (lambda x, lo, hi, out: (x > lo) & (x < hi), lambda x, lo, hi, out: x < lo, lambda x, lo, hi, out: x > hi),
   nondiff=lambda x, lo, hi, out: (x == lo) | (x == hi), label="clip({0})", methods=("clip",),
   forward=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), operands=("a",),
   options=("a_min", "a_max", "min", "max"), spec=_clip_spec, variables=("x", "lo", "hi"), at=(0.5, 0.0, 1.0))
ew(np.nan_to_num, "1 where x is finite, else 0 (a replaced NaN or inf is a constant)",
   lambda x, out: np.isfinite(x) * 1.0,
   forward=lambda x, nan=0.0, posinf=None, neginf=None: np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf),
   options=("nan", "posinf", "neginf"), spec=lambda x, nan=0.0, posinf=None, neginf=None: (
       [x], {"nan": nan, "posinf": posinf, "neginf": neginf}))
ew(np.where, ("∂where(c,x,y)/∂c = 0 (the condition is a constant)", "∂where(c,x,y)/∂x = 1 where c else 0",
              "∂where(c,x,y)/∂y = 0 where c else 1"),
   lambda c, x, y, out: (0.0, c * 1.0, 1.0 - c), label="where({0},{1},{2})", spec=_where_spec,
   variables=("c", "x", "y"), examples=(((np.array([True, False]), np.array([0.5, 2.0]), np.array([-0.4, 1.5])), {}),
                                        ((np.array([[True], [False]]), np.array([0.5, 2.0]), 3.0), {})))

# -- rounding and sign: the derivative is 0 wherever it exists ------------------------------------------------
section(STEPS)
_Z = dict(zero=True, note="zero derivative: the gradient stops here (flagged at the jumps)")
ew(np.sign, "0 (flagged at x = 0)", lambda x, out: 0.0, nondiff=lambda x, out: x == 0, **_Z)
ew(np.floor, "0 (flagged at integers)", lambda x, out: 0.0, nondiff=_integers, **_Z)
ew(np.ceil, "0 (flagged at integers)", lambda x, out: 0.0, nondiff=_integers, **_Z)
ew(np.trunc, "0 (flagged at integers)", lambda x, out: 0.0, nondiff=_integers, also=(np.fix,), **_Z)
ew(np.rint, "0 (flagged halfway between integers)", lambda x, out: 0.0, nondiff=_halves, **_Z)
ew(np.round, "0 (flagged halfway between steps)", lambda x, out: 0.0,
   forward=lambda a, decimals=0: np.round(a, decimals),
   nondiff=lambda x, out: _halves(x, out), operands=("a",), options=("decimals",), spec=_round_spec,
   methods=("round",), also=(np.around,), **_Z)
ew(np.heaviside, ("0 (flagged at x = 0)", "1 where x = 0 else 0"), lambda x, y, out: (0.0, (x == 0) * 1.0),
   nondiff=lambda x, y, out: x == 0, **_Z)
