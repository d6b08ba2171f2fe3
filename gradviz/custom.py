"""Your own operations: a plain NumPy function with the derivative you wrote, as one row of ops.OPS.

    @custom_op(rule="σ(x)·(1−σ(x))", partials=lambda x, out: out * (1 - out))
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

Inside a trace, a call with a traced argument becomes one elementwise node (op "sigmoid"): the body runs on
the plain values and `partials(*inputs, out)` gives the local partial for each input. Outside a trace the
function is the plain function. `gradviz check` compares the written partials with finite differences.
"""
from __future__ import annotations

import functools
import inspect
import os
from typing import Callable, Sequence

from .errors import GradvizError
from .ops import OPS, Entry, register
from .ops.kinds import ELEMENTWISE


def is_custom(op: str | None) -> bool:
    """Is this operation one a model defined with @custom_op?"""
    entry = OPS.get(op) if op is not None else None
    return entry is not None and entry.custom


def custom_op(rule: str | Sequence[str], partials: Callable) -> Callable[[Callable], Callable]:
    """Register the decorated function as an elementwise operation with the local partials you wrote.

    rule: the derivative as text, one per input; a formula ("1 if x >= 0 else 0") becomes
          "∂f(x)/∂x = formula", a full equation ("∂f(x)/∂x = …") is kept as written.
    partials: (*inputs, out) -> the local partial for the one input, or a tuple with one per input.
    """
    def register_op(fn: Callable) -> Callable:
        name = fn.__name__
        params = tuple(p.name for p in inspect.signature(fn).parameters.values())
        if name in OPS and not OPS[name].custom:
            raise GradvizError(f"custom_op {name}: the name is taken by a built-in operation; rename the function")
        rules = (rule,) if isinstance(rule, str) else tuple(rule)
        if len(rules) != len(params):
            raise GradvizError(f"custom_op {name}: give one rule per input ({', '.join(params)}), "
                               f"not {len(rules)}")
        call = f"{name}({','.join(params)})"
        rules = tuple(r if r.lstrip().startswith("∂") else f"∂{call}/∂{p} = {r}"
                      for r, p in zip(rules, params, strict=True))

        def local(*args):
            got = partials(*args)
            got = got if isinstance(got, tuple) else (got,)
            if len(got) != len(params):
                raise GradvizError(f"custom_op {name}: partials returned {len(got)} values for {len(params)} inputs")
            return got

        label = f"{name}(" + ",".join(f"{{{i}}}" for i in range(len(params))) + ")"
        where = os.path.basename(inspect.getsourcefile(fn) or "?")
        entry = register(Entry(name, "your own (@custom_op)", rules, ELEMENTWISE,
                               syntax=(f"{call}, custom_op in {where}",), label=label, operands=params, forward=fn,
                               partials=local, variables=params, custom=True))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from .traced import Traced
            bound = inspect.signature(fn).bind(*args, **kwargs)
            bound.apply_defaults()
            values = tuple(bound.arguments[p] for p in params)
            traced = next((v for v in values if isinstance(v, Traced)), None)
            if traced is None:
                return fn(*values)
            # the graph's nodes name their op: a later @custom_op of the same name (another model loaded in this
            # process, a notebook cell run again) must not answer for this one
            if OPS.get(name) is not entry:
                register(entry)
            return traced.tracer.call(entry, fn, values, {}, name)
        return wrapper
    return register_op
