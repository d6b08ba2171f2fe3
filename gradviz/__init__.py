"""gradviz: see how a gradient is made. Trace a NumPy function, differentiate it in reverse mode, and
annotate every edge with its local partial derivative and its chain-rule product."""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .budget import GraphTooLarge
from .errors import GradvizError

if TYPE_CHECKING:
    from .custom import custom_op
    from .graph import Graph

__all__ = ["trace", "trace_file", "custom_op", "Graph", "GradvizError", "GraphTooLarge"]
__version__ = "0.1.0"


def trace(fn: Callable, granularity: str = "auto", seed_grad: Any = None, params: list[str] | None = None,
          consts: tuple[str, ...] = (), max_graph_nodes: int | None = None, **leaf_values_: Any) -> Graph:
    """Trace fn once on its leaves, run backward, and return the annotated Graph.

    Each parameter of fn is a leaf; its value comes from leaf_values_, else the parameter's default,
    else a global of the same name. Float arrays the model keeps in globals or on its objects that take
    part are leaves too, named by where they live ("dense1.weights"); params (names or globs) picks them
    instead, consts pins names as constants. A trace that would make more than max_graph_nodes nodes (default:
    what half of the free memory holds) stops before making them, with GraphTooLarge.
    Example: `trace(f, x=2.0, y=3.0).grad("x")`.
    """
    from .backward import backward
    from .loader import as_leaf_value, find_state, leaf_values, settle_integers
    from .trace import run

    values, constants = leaf_values(fn, {k: as_leaf_value(k, v, "trace()") for k, v in leaf_values_.items()})
    state = find_state(fn, values, constants, params, consts)
    settle_integers(fn, values, state, leaf_values_)
    graph = run(fn, values, granularity, state, max_graph_nodes)
    graph.source = getattr(fn, "__qualname__", "")
    return backward(graph, seed_grad)


def trace_file(path: str | Path, name: str = "forward", granularity: str = "auto", seed_grad: Any = None,
               overrides: dict[str, str] | None = None, params: list[str] | None = None,
               consts: tuple[str, ...] = (), max_graph_nodes: int | None = None) -> Graph:
    """Load a model file and trace its function NAME (default `forward`); overrides are --set NAME=VALUE
    texts; params, consts and max_graph_nodes as for trace(). A file that imports torch is traced from the
    graph PyTorch records (gradviz.torch_trace; `pip install "gradviz[torch]"`)."""
    from .backward import backward
    from .loader import load, uses_torch
    from .trace import run

    if uses_torch(Path(path)):
        from .torch_trace import trace_file as trace_torch_file
        return trace_torch_file(Path(path), name, granularity, seed_grad, overrides, params, consts, max_graph_nodes)
    model = load(f"{path}:{name}", overrides, params, consts)
    graph = run(model.fn, model.leaves, granularity, model.state, max_graph_nodes)
    graph.source = model.source
    return backward(graph, seed_grad)


def __getattr__(name: str) -> Any:
    """Graph and custom_op, imported on first use: `gradviz --help` and the like need no NumPy."""
    if name == "Graph":
        from .graph import Graph
        return Graph
    if name == "custom_op":
        from .custom import custom_op
        return custom_op
    raise AttributeError(f"module 'gradviz' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Importing the submodule gradviz.trace binds the package's name `trace` to that module; the name
    stays the function above (the submodule is imported lazily, after the function is defined)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "trace" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
