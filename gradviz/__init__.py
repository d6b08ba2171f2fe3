"""gradviz: see how a gradient is made. Trace a NumPy function, differentiate it in reverse mode, and
annotate every edge with its local partial derivative and its chain-rule product."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .backward import backward
from .custom import custom_op
from .errors import GradvizError
from .graph import Graph
from .loader import find_state, leaf_values, load, uses_torch
from .trace import run

__all__ = ["trace", "trace_file", "custom_op", "Graph", "GradvizError"]
__version__ = "0.1.0"


def trace(fn: Callable, granularity: str = "auto", seed_grad: Any = None, params: list[str] | None = None,
          consts: tuple[str, ...] = (), **leaf_values_: Any) -> Graph:
    """Trace fn once on its leaves, run backward, and return the annotated Graph.

    Each parameter of fn is a leaf; its value comes from leaf_values_, else the parameter's default,
    else a global of the same name. Float arrays the model keeps in globals or on its objects that take
    part are leaves too, named by where they live ("dense1.weights"); params (names or globs) picks them
    instead, consts pins names as constants. Example: `trace(f, x=2.0, y=3.0).grad("x")`.
    """
    from .loader import as_leaf_value
    values, constants = leaf_values(fn, {k: as_leaf_value(k, v, "trace()") for k, v in leaf_values_.items()})
    graph = run(fn, values, granularity, find_state(fn, values, constants, params, consts))
    graph.source = getattr(fn, "__qualname__", "")
    return backward(graph, seed_grad)


def trace_file(path: str | Path, name: str = "forward", granularity: str = "auto", seed_grad: Any = None,
               overrides: dict[str, str] | None = None, params: list[str] | None = None,
               consts: tuple[str, ...] = ()) -> Graph:
    """Load a model file and trace its function NAME (default `forward`); overrides are --set NAME=VALUE
    texts; params and consts as for trace()."""
    if uses_torch(Path(path)):
        from .torch_trace import trace_file as trace_torch_file
        return trace_torch_file(Path(path), name, granularity, seed_grad, overrides, params, consts)
    model = load(f"{path}:{name}", overrides, params, consts)
    graph = run(model.fn, model.leaves, granularity, model.state)
    graph.source = model.source
    return backward(graph, seed_grad)
