"""PyTorch models: the autograd graph PyTorch records, read into the same Graph the NumPy tracer builds.

A model file that imports torch is run as it is, once, in float64. Its function's parameters, the
parameters of the nn.Modules it keeps at module level and its global tensors that require grad are the
leaves, named where they live (`x`, `model.0.weight`, `W`). PyTorch records the graph; gradviz only reads it:
- values: every tensor an operation consumes is read as it goes in (a dispatch mode, below autograd), so an
  operation that later writes in place cannot change what an earlier node shows;
- structure: `grad_fn.next_functions`, one node per autograd node, one edge per input;
- chain and upstream: a hook on each autograd node (`Node.register_hook`) receives the gradient PyTorch sends
  to each input (the edge's chain) and the one that reached the node (its upstream); backward runs once;
- op, local partials, rules and ctx: where the autograd node has a NumPy twin (MulBackward0 is np.multiply,
  op `mul`: ∂(x·y)/∂x = y), the node gradviz's own tracer makes for that twin on the same values, so it
  reads exactly as in a NumPy model; else a registry entry `torch.<name>` of kind PyTorchOp (rules as text;
  an elementwise node called on ones gives its derivative; other Jacobians stay unmaterialised, as at
  tensor granularity);
- labels: the model file's variable names, else the name of the module whose call made the value.

torch is imported only here, and this module only for a model that uses torch (loader.uses_torch reads the
file's text): the NumPy path never pays.
"""
from __future__ import annotations

import gc
import inspect
import re
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .budget import Budget, GraphTooLarge, OverBudget
from .errors import GradvizError, ModelError, UnsupportedOperation
from .graph import Edge, Graph, Node
from .loader import load_module, parse_overrides, require_torch
from .ops import OPS, Entry, Kind, register
from .tolerances import ATOL, RTOL

# -- the model ---------------------------------------------------------------------------------------

@dataclass
class TorchModel:
    path: Path
    name: str
    fn: Callable
    leaves: dict[str, Any]  # fn's parameters that are leaves: name -> float64 tensor
    constants: dict[str, Any]  # fn's parameters passed as they are (class targets, modules, flags)
    # leaf name -> the places holding that parameter: (dict, key), the dict being a module's _parameters
    # or the model's globals; each place sees the traced float64 leaf during a call, and its own value after
    params: dict[str, list[tuple[dict, str]]] = field(default_factory=dict)
    modules: dict[int, str] = field(default_factory=dict)  # id(module) -> where it lives, "model.0"
    buffers: list[tuple[dict, str]] = field(default_factory=list)  # floating buffers, run in float64

    @property
    def source(self) -> str:
        return f"{self.path}:{self.name}"

    @contextmanager
    def running(self, values: dict[str, Any]) -> Iterator[None]:
        """For one call: float64 by default, each kept leaf replaced by `values[name]` where the model
        keeps it, floating buffers as float64; everything restored afterwards."""
        import torch
        swapped = []
        dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            for name, value in values.items():
                for ns, key in self.params[name]:
                    swapped.append((ns, key, ns[key]))
                    ns[key] = value
            for ns, key in self.buffers:
                swapped.append((ns, key, ns[key]))
                ns[key] = ns[key].to(torch.float64)
            yield
        finally:
            torch.set_default_dtype(dtype)
            for ns, key, original in reversed(swapped):
                ns[key] = original


def load(path: Path, name: str = "forward", overrides: dict[str, str] | None = None,
         params: list[str] | None = None, consts: tuple[str, ...] | list[str] = ()) -> TorchModel:
    """Run the model file (tensors it makes are float64) and find its leaves."""
    require_torch(path)
    first = "torch" not in sys.modules
    import torch
    if first:
        # importing torch leaves some 300,000 objects that live as long as the process; the next full
        # collection would walk them all (60 ms, a tenth of what a neuron's trace costs after the import)
        # to find nothing. Frozen, the collector skips them; it still collects everything made from here on.
        gc.freeze()
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        module = load_module(path)
    finally:
        torch.set_default_dtype(dtype)
    fn = module.__dict__.get(name)
    if fn is None or not callable(fn):
        found = [k for k, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
        hint = f" (it defines: {', '.join(found)})" if found else ""
        raise ModelError(f"{path} has no function {name!r}{hint}")
    leaves, constants = _parameters(fn, parse_overrides(overrides or {}), path)
    model = TorchModel(path, name, fn, leaves, constants)
    _find_modules(model, params)
    for leaf in consts:
        if leaf in model.leaves:
            model.constants[leaf] = model.leaves.pop(leaf)
        elif model.params.pop(leaf, None) is None:
            known = ", ".join(list(model.leaves) + list(model.params))
            raise ModelError(f"--const {leaf}: no such leaf; leaves: {known}")
    return model


def _parameters(fn: Callable, overrides: dict[str, np.ndarray], path: Path) -> tuple[dict, dict]:
    """fn's parameters: a float tensor or a number is a leaf (float64); anything else (an integer tensor of
    class targets, a module) is passed as it is."""
    import torch

    from .loader import EMPTY, no_value, parameter_defaults
    params = parameter_defaults(fn, overrides)
    leaves, constants = {}, {}
    for name, default in params:
        if name in overrides:
            value = torch.from_numpy(overrides[name])
            if isinstance(default, torch.Tensor) and tuple(default.shape) != tuple(value.shape):
                raise ModelError(f"--set {name}: shape {list(value.shape)} does not match the model's "
                                 f"{list(default.shape)}")
            if isinstance(default, torch.Tensor) and not default.is_floating_point():
                if not torch.equal(value, value.round()):
                    raise ModelError(f"--set {name}: the model's {name} holds integers (class targets)")
                constants[name] = value.to(default.dtype)
                continue
            leaves[name] = value.to(torch.float64)
        elif default is EMPTY:
            raise no_value(f"{path}: ", fn, name)
        elif isinstance(default, torch.Tensor) and default.is_floating_point():
            leaves[name] = default.detach().to(torch.float64)
        elif isinstance(default, (float, int, list)) and not isinstance(default, bool):
            try:
                leaves[name] = torch.tensor(default, dtype=torch.float64)
            except (TypeError, ValueError):
                raise ModelError(f"{path}: leaf {name!r} is not a number or a rectangular list of numbers") \
                    from None
        else:
            constants[name] = default
    if not params:
        raise ModelError(f"{path}: {fn.__name__} has no named parameters; its parameters are the graph's leaves")
    return leaves, constants


def _find_modules(model: TorchModel, patterns: list[str] | None) -> None:
    """The nn.Modules the model keeps in globals: their parameters are leaves named where they live
    (`model.0.weight`; a parameter shared by two layers is one leaf, named by the first), their submodules
    are the figure's clusters. Float tensors in globals that require grad are leaves too.
    patterns (--params, names or globs) narrows the leaves."""
    import torch
    glob = model.fn.__globals__
    found: dict[str, tuple[dict, str]] = {}
    owner: dict[int, str] = {}
    for g, value in list(glob.items()):
        if g.startswith("__") or g in model.leaves or g in model.constants:
            continue
        if isinstance(value, torch.nn.Module):
            for sub_name, sub in value.named_modules(prefix=g):
                model.modules.setdefault(id(sub), sub_name)
                for key, p in sub._parameters.items():
                    if p is not None:
                        name = owner.setdefault(id(p), f"{sub_name}.{key}")
                        if name == f"{sub_name}.{key}":
                            found[name] = (sub._parameters, key)
                        else:
                            model.params.setdefault(name, [found[name]]).append((sub._parameters, key))
                for key, b in sub._buffers.items():
                    if b is not None and b.is_floating_point() and b.dtype != torch.float64:
                        model.buffers.append((sub._buffers, key))
        elif isinstance(value, torch.Tensor) and value.requires_grad and value.is_floating_point():
            found[g] = (glob, g)
    for pattern in patterns or ():
        if not any(fnmatchcase(n, pattern) for n in found):
            raise ModelError(f"--params {pattern}: matches nothing the model keeps; it keeps: "
                             f"{', '.join(found) or 'no parameters'}")
    for name, place in found.items():
        if not patterns or any(fnmatchcase(name, p) for p in patterns):
            model.params.setdefault(name, [place])


# -- the operations: PyTorch's autograd nodes and their NumPy twins ------------------------------------

# autograd node -> the NumPy function it computes (run on gradviz's traced values, it makes the node a
# NumPy model makes), and which of the ATen call's arguments are its inputs: an argument position (a
# tensor or a number), or ("const", number) for a number the call implies. None: the twin's parameters
# are read from the node itself (_replay).
_TWINS: dict[str, tuple[Callable | None, tuple]] = {
    "AddBackward0": (np.add, (0, 1)), "SubBackward0": (np.subtract, (0, 1)), "MulBackward0": (np.multiply, (0, 1)),
    "DivBackward0": (np.divide, (0, 1)), "PowBackward0": (np.power, (0, 1)), "PowBackward1": (np.power, (0, 1)),
    "NegBackward0": (np.negative, (0,)), "AbsBackward0": (np.abs, (0,)), "SqrtBackward0": (np.sqrt, (0,)),
    "ExpBackward0": (np.exp, (0,)), "LogBackward0": (np.log, (0,)), "TanhBackward0": (np.tanh, (0,)),
    "MaximumBackward0": (np.maximum, (0, 1)), "MinimumBackward0": (np.minimum, (0, 1)),
    "ReluBackward0": (np.maximum, (0, ("const", 0.0))),  # relu(x) = max(x, 0), as the study notes write it
    "DotBackward0": (np.dot, (0, 1)), "MmBackward0": (np.matmul, (0, 1)), "MvBackward0": (np.matmul, (0, 1)),
    "RsubBackward0": (np.subtract, (1, 0)), "RsubBackward1": (np.subtract, (1, 0)),  # rsub(x, c) = c − x
    "MaxBackward1": (np.max, (0,)), "MinBackward1": (np.min, (0,)),
    "SumBackward0": (None, (0,)), "SumBackward1": (None, (0,)),
    "MeanBackward0": (None, (0,)), "MeanBackward1": (None, (0,)),
    "TBackward0": (None, (0,)), "PermuteBackward0": (None, (0,)),
    "ViewBackward0": (None, (0,)), "UnsafeViewBackward0": (None, (0,)), "ReshapeAliasBackward0": (None, (0,)),
    "SelectBackward0": (None, (0,)), "SliceBackward0": (None, (0,)),
}


class PyTorchOp(Kind):
    """An autograd node with no NumPy twin (addmm, log_softmax, nll_loss, sigmoid…). PyTorch computed its
    value and, through the hooks, every chain into its inputs: gradviz never derives one, so a view reads
    such an edge as it reads an unmaterialised Jacobian at tensor granularity (rule text, chain, no local),
    except for an elementwise one (`elementwise`), whose local partial PyTorch's own node gives (called on
    an upstream of ones). Its rule texts are written as they are (rule_style None), it makes one node per
    call (not n-ary) and has no bound on rounding noise (bounds False: the tables show PyTorch's numbers)."""

    name = "pytorch"

    def __init__(self, elementwise: bool) -> None:
        self.elementwise = elementwise

    def trace(self, tracer, entry, args):
        raise UnsupportedOperation(f"{entry.name} runs only inside PyTorch")

    def chain(self, entry, arg, local, up, ctx, out):
        raise GradvizError(f"gradviz has no rule to run PyTorch's {entry.name[6:]} backwards; its chains are "
                           f"PyTorch's own")

    def tangent(self, entry, arg, local, t, ctx, out):
        raise GradvizError(f"forward mode does not know PyTorch's {entry.name[6:]}; use reverse mode (the default)")


PYTORCH = PyTorchOp(elementwise=False)
PYTORCH_ELEMENTWISE = PyTorchOp(elementwise=True)

# PyTorch operations with no NumPy twin that gradviz knows by name: rules (one per input), the label of an
# unnamed result, and the kind
_TORCH_OPS: dict[str, tuple[tuple[str, ...], str, PyTorchOp]] = {
    "addmm": (("∂(b + X·M)/∂b = 1, summed over the rows", "∂(b + X·M)/∂X = ·Mᵀ", "∂(b + X·M)/∂M = Xᵀ·"),
              "{0}+{1}@{2}", PYTORCH),
    "log_softmax": (("∂log_softmax(x)ᵢ/∂xⱼ = [i = j] − softmax(x)ⱼ",), "log_softmax({0})", PYTORCH),
    "softmax": (("∂softmax(x)ᵢ/∂xⱼ = softmax(x)ᵢ·([i = j] − softmax(x)ⱼ)",), "softmax({0})", PYTORCH),
    "nll_loss": (("∂nll(L)/∂Lₙ,ⱼ = −(sample n's share of the loss: 1/N in a mean) if j is its class else 0",),
                 "nll({0})", PYTORCH),
    "sigmoid": (("∂σ(x)/∂x = σ(x)·(1 − σ(x))",), "sigmoid({0})", PYTORCH_ELEMENTWISE),
    "leaky_relu": (("∂leaky_relu(x)/∂x = 1 if x > 0 else slope",), "leaky_relu({0})", PYTORCH_ELEMENTWISE),
    "sin": (("∂sin(x)/∂x = cos(x)",), "sin({0})", PYTORCH_ELEMENTWISE),
    "cos": (("∂cos(x)/∂x = −sin(x)",), "cos({0})", PYTORCH_ELEMENTWISE),
    "mse_loss": (("∂mse(x,y)/∂x = 2·(x−y)/n in a mean, 2·(x−y) in a sum",
                  "∂mse(x,y)/∂y = −2·(x−y)/n in a mean, −2·(x−y) in a sum"), "mse({0},{1})", PYTORCH),
}


def _snake(node_name: str) -> str:
    """LogSoftmaxBackward0 -> log_softmax."""
    base = re.sub(r"Backward\d*$", "", node_name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def _torch_op(node_name: str, arity: int) -> str:
    """The registry's entry (op name) for an autograd node with no NumPy twin, registered on first use. It
    answers no NumPy callable, so NumPy models never reach it."""
    base = _snake(node_name)
    name = f"torch.{base}"
    if name not in OPS:
        rules, label, kind = _TORCH_OPS.get(base, ((), "", PYTORCH))
        if len(rules) != arity:
            rules = tuple(f"∂{base}/∂input {i + 1}: computed by PyTorch's {node_name}" for i in range(max(arity, 1)))
            label = f"{base}(" + ",".join(f"{{{i}}}" for i in range(arity)) + ")"
        register(Entry(name, "PyTorch", rules, kind, label=label, note=f"PyTorch's {node_name}"))
    return name


# -- tracing --------------------------------------------------------------------------------------------

@dataclass
class _Call:
    func: Any  # the ATen operation
    args: tuple
    kwargs: dict
    cluster: int | None


class _Recorder:
    """What the forward pass did, read below autograd: each ATen call, and the value of every tensor as an
    operation consumed it (keyed by the autograd node that made it)."""

    def __init__(self, graph: Graph, modules: dict[int, str]) -> None:
        self.graph = graph
        self.modules = modules
        self.outputs: dict[int, tuple[Any, _Call]] = {}  # id(tensor) -> (tensor, the last call that wrote it)
        self.values: dict[Any, np.ndarray] = {}  # grad_fn -> its output's value, as its consumers saw it
        self.made_by: dict[Any, _Call] = {}  # grad_fn -> the ATen call that made it
        self.cluster: int | None = None
        self._stack: list[tuple[Any, int | None]] = []
        self.var_names: dict[Any, str] = {}  # grad_fn -> the model file's variable first bound to it
        self.module_names: dict[Any, str] = {}  # grad_fn -> the module whose call returned it

    def dispatch(self, func: Any, args: tuple, kwargs: dict) -> Any:
        # an input's grad_fn is read now, before an in-place operation re-points it to its own node
        for a in _tensors(args):
            self.seen(a)
        out = func(*args, **kwargs)
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        if _is_tensor(first):  # kept alive here, so no other tensor takes its id
            self.outputs[id(first)] = (first, _Call(func, args, kwargs, self.cluster))
        return out

    def seen(self, t: Any) -> None:
        g = t.grad_fn
        if g is not None and g not in self.values:
            self.values[g] = _numpy(t)
            made = self.outputs.get(id(t))
            if made is not None:
                self.made_by[g] = made[1]

    # clusters: each call of a module the model keeps
    def enter(self, module: Any, args: Any) -> None:
        name = self.modules.get(id(module))
        self._stack.append((module, self.cluster))
        if name is not None:
            clusters = self.graph.clusters
            calls = sum(1 for c in clusters if c[0] == name)
            self.cluster = len(clusters)
            clusters.append((name, calls))

    def leave(self, module: Any, args: Any, output: Any) -> None:
        if self._stack and self._stack[-1][0] is module:
            self.cluster = self._stack.pop()[1]
        name = self.modules.get(id(module))
        if name is not None and _is_tensor(output) and output.grad_fn is not None:
            self.module_names.setdefault(output.grad_fn, name)

    def name_locals(self, local_vars: dict) -> None:
        for var, v in local_vars.items():
            if _is_tensor(v) and v.grad_fn is not None and v.grad_fn not in self.var_names:
                self.var_names[v.grad_fn] = var


def _is_tensor(x: Any) -> bool:
    import torch
    return isinstance(x, torch.Tensor)


def _tensors(args: Any) -> Iterator[Any]:
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _tensors(a)
        elif _is_tensor(a):
            yield a


def _numpy(t: Any) -> np.ndarray:
    return t.detach().to("cpu", dtype=t.dtype if t.is_floating_point() else None).numpy().astype(float, copy=True)


def trace_file(path: Path, name: str = "forward", granularity: str = "auto", seed_grad: Any = None,
               overrides: dict[str, str] | None = None, params: list[str] | None = None,
               consts: tuple[str, ...] = (), max_graph_nodes: int | None = None) -> Graph:
    """gradviz.trace_file for a model that uses torch: the annotated Graph, backward already run."""
    model = load(Path(path), name, overrides, params, consts)
    return trace(model, granularity, seed_grad, max_graph_nodes)


def trace(model: TorchModel, granularity: str = "auto", seed_grad: Any = None,
          max_graph_nodes: int | None = None) -> Graph:
    """The graph PyTorch records, one node per tensor operation (tensor and auto); scalar splits it into
    scalars by replaying it through gradviz's own tracer (see _scalar). max_graph_nodes: as for
    gradviz.trace."""
    if granularity not in ("scalar", "tensor", "auto"):
        raise GradvizError(f"granularity must be scalar, tensor or auto, not {granularity!r}")
    import torch
    graph = Graph("tensor")
    graph.source = model.source
    leaves = {n: v.detach().clone().requires_grad_(True) for n, v in model.leaves.items()}
    kept = {n: places[0][0][places[0][1]].detach().to(torch.float64).requires_grad_(True)
            for n, places in model.params.items()}
    rec = _Recorder(graph, model.modules)
    with model.running(kept), torch.enable_grad():
        out = _call(model, {**leaves, **model.constants}, rec)
    out = _output(model, out)
    rec.seen(out)
    budget = Budget(max_graph_nodes)
    try:
        replays = _build(graph, rec, out, leaves, kept, seed_grad, budget)
    except OverBudget as exc:
        raise GraphTooLarge(f"{graph.source}: {exc.args[0]}", exc.args[1]) from None
    return _scalar(graph, replays, seed_grad, budget) if granularity == "scalar" else graph


def _scalar(graph: Graph, replays: dict[int, Callable], seed_grad: Any, budget: Budget) -> Graph:
    """The tensor graph split into scalars, one node per element, as the NumPy tracer splits a NumPy model:
    each operation's NumPy twin is run again by gradviz's own tracer, on the values PyTorch computed, and
    gradviz's backward runs on the result. PyTorch has no per-element graph to read chains from, so this
    needs every operation to have a twin; the leaves' gradients are PyTorch's (a test holds them equal)."""
    from .backward import backward
    from .trace import Tracer

    tracer = Tracer("scalar", budget=budget)
    tracer.graph.clusters = list(graph.clusters)
    values: dict[int, Any] = {}
    try:
        for n in graph.nodes:
            if n.kind != "op":
                values[n.id] = tracer.leaf(n.name, np.asarray(n.value, dtype=float)) if n.kind == "leaf" else n.value
                continue
            replay = replays.get(n.id)
            if replay is None:
                raise GradvizError(f"splitting into scalars (--granularity scalar, explain) replays each operation "
                                   f"through gradviz's rules, and PyTorch's {n.op[6:]} has none; use "
                                   f"--granularity tensor")
            tracer.cluster = n.cluster
            v = replay(*(values[e.src] for e in graph.in_edges(n.id)))
            if n.name is not None:
                tracer.name_locals({n.name: v})
            values[n.id] = v
        scalar = tracer.finish(values[graph.output])
    except OverBudget as exc:
        raise GraphTooLarge(f"{graph.source}: {exc.args[0]}", exc.args[1]) from None
    scalar.source = graph.source
    return backward(scalar, seed_grad)


def _call(model: TorchModel, args: dict, rec: _Recorder) -> Any:
    """fn(**args), recording the ATen calls, the module calls and the model file's variable names."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
    from torch.utils._python_dispatch import TorchDispatchMode

    from .trace import _message, where

    class Mode(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            # nothing here is compiled: without this, a dispatch mode wraps itself in dynamo's disable, whose
            # first call imports torch._dynamo (and sympy): 1.3 s of CPU, more than the rest of the trace
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return rec.dispatch(func, args, kwargs or {})

    filename = model.fn.__code__.co_filename

    def local_trace(frame, event, arg):
        if event in ("line", "return"):
            rec.name_locals(frame.f_locals)
        return local_trace

    def global_trace(frame, event, arg):
        return local_trace if frame.f_code.co_filename == filename else None

    previous = sys.gettrace()
    with ExitStack() as stack:
        stack.callback(register_module_forward_pre_hook(rec.enter).remove)
        stack.callback(register_module_forward_hook(rec.leave).remove)
        stack.enter_context(Mode())
        sys.settrace(global_trace)
        try:
            return model.fn(**args)
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:
            raise ModelError(where(exc, filename) + _message(exc)) from exc
        finally:
            sys.settrace(previous)


def _output(model: TorchModel, out: Any) -> Any:
    import torch
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out), dtype=torch.float64)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        from .trace import _describe
        what = f"a tensor of {out.dtype}" if isinstance(out, torch.Tensor) else _describe(out)
        raise ModelError(f"{model.path}: {model.name} returned {what}; it must return a float tensor or a number")
    return out


def _build(graph: Graph, rec: _Recorder, out: Any, leaves: dict[str, Any], kept: dict[str, Any],
           seed_grad: Any, budget: Budget) -> dict[int, Callable]:
    """Fill graph from the autograd graph that leads to out, run PyTorch's backward once and annotate every
    edge. Returns each twin node's replay: its NumPy twin as a function of the traced inputs (_scalar)."""
    import torch
    order = _topological(out.grad_fn)
    reached = {id(fn.variable) for fn in order if hasattr(fn, "variable")}
    leaf_tensors = {**leaves, **{n: t for n, t in kept.items() if id(t) in reached}}
    node_of: dict[Any, int] = {}  # grad_fn or id(leaf tensor) -> node id
    for name, t in leaf_tensors.items():
        nid = _add(graph, Node(len(graph.nodes), name, "leaf", None, _numpy(t), False, 0), budget)
        node_of[id(t)] = nid
        graph.leaves[name] = nid
    hooks: dict[Any, tuple] = {}
    pending: list[tuple[int, Any, list]] = []  # (node id, grad_fn, [(edge, next_functions index or None)])
    replays: dict[int, Callable] = {}
    for fn in order:
        if hasattr(fn, "variable"):  # AccumulateGrad: a tensor that requires grad; ours are leaves already
            if id(fn.variable) not in node_of:
                node_of[fn] = _add(graph, Node(len(graph.nodes), None, "const", None, _numpy(fn.variable), False, 0),
                                   budget)
            else:
                node_of[fn] = node_of[id(fn.variable)]
            continue
        for nxt, nr in fn.next_functions:
            if nxt is not None and nr != 0 and not hasattr(nxt, "variable"):
                raise UnsupportedOperation(f"PyTorch's {nxt.name()} returns several tensors that take part; "
                                           f"gradviz draws one value per node")
        nid, wiring, replay = _op_node(graph, rec, fn, rec.made_by.get(fn), node_of, budget)
        node_of[fn] = nid
        if replay is not None:
            replays[nid] = replay
        pending.append((nid, fn, wiring))
        fn.register_hook(_hook(hooks, fn))
    if out.grad_fn is None:
        graph.output = node_of.get(id(out))
        if graph.output is None:
            graph.output = _add(graph, Node(len(graph.nodes), None, "const", None, _numpy(out), False, 0), budget)
    else:
        graph.output = node_of[out.grad_fn]
    out_value = graph.nodes[graph.output].value
    try:
        seed = np.broadcast_to(np.asarray(1.0 if seed_grad is None else seed_grad, dtype=float), out_value.shape)
    except ValueError:
        raise GradvizError(f"seed gradient of shape {np.shape(seed_grad)} does not fit the output's shape "
                           f"{out_value.shape}") from None
    if out.requires_grad:
        # Σ(out · seed) sends exactly `seed` into out's node, and a scalar needs no gradient argument, whose
        # shape check would import sympy (a second) on the first call. retain_graph: an elementwise node
        # without a NumPy twin is called once more, on ones, for its local partial.
        torch.autograd.backward((out * torch.from_numpy(seed.copy())).sum(), retain_graph=True)
    _annotate(graph, pending, hooks, leaf_tensors, seed)
    return replays


def _add(graph: Graph, node: Node, budget: Budget) -> int:
    what = {"leaf": f"the leaf {node.name}", "const": "a constant"}.get(node.kind, f"PyTorch's {node.op}")
    budget.check(len(graph.nodes) + 1, 1, what, False)
    node.first_edge = len(graph.edges)
    graph.nodes.append(node)
    return node.id


def _topological(root: Any) -> list[Any]:
    """The autograd nodes that lead to root, each after every node it reads (depth first, iterative)."""
    if root is None:
        return []
    order, done, stack = [], set(), [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if fn in done:
            continue
        if expanded:
            done.add(fn)
            order.append(fn)
            continue
        stack.append((fn, True))
        for nxt, _ in reversed(fn.next_functions):
            if nxt is not None and nxt not in done:
                stack.append((nxt, False))
    return order


def _hook(store: dict, fn: Any) -> Callable:
    def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
        store[fn] = (tuple(None if g is None else _numpy(g) for g in grad_inputs),
                     None if grad_outputs[0] is None else _numpy(grad_outputs[0]))
    return hook


def _op_node(graph: Graph, rec: _Recorder, fn: Any, call: _Call | None, node_of: dict,
             budget: Budget) -> tuple[int, list, Callable | None]:
    """Append the node for one autograd node, its constant inputs first; its edges are appended right
    after it. A node with a NumPy twin is the node gradviz's tracer makes for that twin (op, local
    partials, non-differentiable flag, ctx). Returns (node id, [(edge, index into next_functions or None
    for a constant)], the twin's replay or None)."""
    cluster = call.cluster if call is not None else None
    value = rec.values.get(fn)
    if value is None:
        raise UnsupportedOperation(f"the value computed by PyTorch's {fn.name()} was not seen going into any "
                                   f"operation; return the tensor itself")
    sources = _twin_inputs(fn, call)
    made = None
    if sources is not None:
        args = [_source_value(graph, fn, call, node_of, s) for s in sources]
        replay = _replay(fn, call, args, value)
        made = _replayed(replay, args, value)
    if made is None:
        replay = None
        op = _torch_op(fn.name(), len(fn.next_functions))
        sources = [("edge", k) for k in range(len(fn.next_functions))]
        made = (op, [None] * len(sources), False, None)
    op, locals_, nondiff, ctx = made
    inputs: list[tuple[int, int | None]] = []
    for kind, ref in sources:
        if kind == "edge" and fn.next_functions[ref][0] is not None:
            inputs.append((node_of[fn.next_functions[ref][0]], ref))
            continue
        const = _source_value(graph, fn, call, node_of, (kind, ref))
        inputs.append((_add(graph, Node(len(graph.nodes), None, "const", None, const, False, 0, cluster=cluster),
                            budget), None))
    name = rec.var_names.get(fn) or rec.module_names.get(fn)
    nid = _add(graph, Node(len(graph.nodes), name, "op", op, value, nondiff, 0, ctx, cluster), budget)
    wiring = []
    for arg, (src, k) in enumerate(inputs):
        # a constant is not differentiated: no local, no chain
        edge = Edge(src, nid, arg, None if graph.nodes[src].kind == "const" else locals_[arg])
        graph.edges.append(edge)
        wiring.append((edge, k))
    return nid, wiring, replay


def _twin_inputs(fn: Any, call: _Call | None) -> list | None:
    """[("edge", next_functions index) | ("const", value) | ("arg", position)] for an autograd node with a
    NumPy twin, or None. Tensor arguments of the ATen call are next_functions in order; numbers are
    constants."""
    entry = _TWINS.get(fn.name())
    if entry is None or call is None:
        return None
    positions = entry[1]
    alpha = call.kwargs.get("alpha", call.args[2] if fn.name()[:3] in ("Add", "Sub") and len(call.args) > 2 else 1)
    if alpha != 1 or call.kwargs.get("rounding_mode") is not None:
        return None
    schema = call.func._schema.arguments
    tensor_slots = [i for i, a in enumerate(schema) if str(a.type).startswith("Tensor")]
    if len(tensor_slots) != len(fn.next_functions):
        return None
    sources: list = []
    for p in positions:
        if isinstance(p, tuple):
            sources.append(("const", np.asarray(p[1], dtype=float)))
        elif p in tensor_slots:
            sources.append(("edge", tensor_slots.index(p)))
        elif p < len(call.args):
            sources.append(("const", np.asarray(call.args[p], dtype=float)))
        else:
            return None
    return sources


def _source_value(graph: Graph, fn: Any, call: _Call | None, node_of: dict, source: tuple) -> np.ndarray:
    kind, ref = source
    if kind == "const":
        return ref
    nxt = fn.next_functions[ref][0]
    if nxt is not None:
        return graph.nodes[node_of[nxt]].value
    return _constant(fn, call, ref)


def _replay(fn: Any, call: _Call, args: list, out: np.ndarray) -> Callable:
    """The node's NumPy twin as a function of its inputs, its parameters (axes, shape, index) read from the
    autograd node, its ATen call and the shapes."""
    name = fn.name()
    twin = _TWINS[name][0]
    if twin is not None:
        return twin
    x = args[0]
    if name.startswith(("Sum", "Mean")):
        axes, keep = _reduced_axes(x, out), np.ndim(out) == np.ndim(x) and np.ndim(x) > 0
        reduce = np.sum if name.startswith("Sum") else np.mean
        return lambda v: reduce(v, axis=axes, keepdims=keep)
    if name in ("TBackward0", "PermuteBackward0"):
        axes = _axes(x, fn)
        return lambda v: np.transpose(v, axes)
    if name.startswith("Select") or name.startswith("Slice"):
        index = _index(call, np.ndim(x), np.shape(x))
        return lambda v: v[index]
    shape = np.shape(out)
    return lambda v: np.reshape(v, shape)


def _replayed(replay: Callable, args: list, out: np.ndarray) -> tuple | None:
    """(op, local per input, nondiff, ctx) of the node gradviz's own tracer makes for replay(*args) at tensor
    granularity, so a twin reads exactly as in a NumPy model; None if the twin does not make one node from
    these inputs with PyTorch's value (then the node stays PyTorch's own)."""
    from .trace import Tracer
    from .traced import Traced

    tracer = Tracer("tensor")
    xs = [tracer.leaf(f"_{i}", np.asarray(a, dtype=float)) for i, a in enumerate(args)]
    with np.errstate(all="ignore"):
        result = replay(*xs)
    nodes = tracer.graph.nodes
    if not isinstance(result, Traced) or result.ref != len(nodes) - 1 or len(nodes) != len(xs) + 1:
        return None
    node = nodes[-1]
    edges = tracer.graph.in_edges(node.id)
    if [e.src for e in edges] != list(range(len(xs))) or np.shape(node.value) != np.shape(out) \
            or not np.allclose(node.value, out, rtol=1e-9, atol=1e-12, equal_nan=True):
        return None
    return node.op, [e.local for e in edges], node.nondiff, node.ctx


def _constant(fn: Any, call: _Call | None, k: int) -> np.ndarray:
    """The value of input k of an autograd node that takes no gradient there (a tensor that does not
    require grad, or a number), read from the ATen call."""
    if call is not None:
        schema = call.func._schema.arguments
        slots = [i for i, a in enumerate(schema) if str(a.type).startswith("Tensor")]
        if len(slots) == len(fn.next_functions) and slots[k] < len(call.args):
            value = call.args[slots[k]]
            if not isinstance(value, (list, tuple)) and value is not None:
                return _numpy(value) if _is_tensor(value) else np.asarray(value, dtype=float)
    raise UnsupportedOperation(f"cannot tell which value goes into input {k + 1} of PyTorch's {fn.name()}")


def _annotate(graph: Graph, pending: list, hooks: dict, leaf_tensors: dict, seed: np.ndarray) -> None:
    """Gradients, upstreams and chains from PyTorch's hooks; the local partial of an elementwise node
    without a twin from PyTorch's own node."""
    nodes = graph.nodes
    for n in nodes:
        n.grad = None if n.kind == "const" else np.zeros(np.shape(n.value))
    for name, t in leaf_tensors.items():
        if t.grad is not None:
            nodes[graph.leaves[name]].grad = _numpy(t.grad)
    for nid, fn, wiring in pending:
        grad_inputs, upstream = hooks.get(fn, ((None,) * len(fn.next_functions), None))
        node = nodes[nid]
        node.grad = np.zeros(np.shape(node.value)) if upstream is None else upstream.reshape(np.shape(node.value))
        for edge, k in wiring:
            edge.upstream = node.grad
            src = nodes[edge.src]
            if k is not None and src.kind != "const":
                chain = grad_inputs[k]
                edge.chain = np.zeros(np.shape(src.value)) if chain is None else chain.reshape(np.shape(src.value))
        kind = OPS[node.op].kind
        if isinstance(kind, PyTorchOp):
            node.ctx = (tuple(nodes[e.src].value for e, _ in wiring), {})
            edge = wiring[0][0] if wiring else None
            if kind.elementwise and edge is not None and nodes[edge.src].kind != "const" \
                    and np.shape(nodes[edge.src].value) == np.shape(node.value):
                local = fn(_ones_like(node.value))  # the node's own derivative formula, on an upstream of ones
                edge.local = _numpy(local[0] if isinstance(local, tuple) else local)
    if nodes[graph.output].kind != "const":
        nodes[graph.output].grad = seed.copy()


def _ones_like(value: np.ndarray) -> Any:
    import torch
    return torch.ones(np.shape(value), dtype=torch.float64)


def _reduced_axes(x: np.ndarray, out: np.ndarray) -> tuple[int, ...]:
    """The axes a sum or mean folded: all of them for a number; else those whose size is gone."""
    if np.ndim(out) == 0:
        return tuple(range(np.ndim(x)))
    shape, kept = list(np.shape(x)), list(np.shape(out))
    if len(kept) == len(shape):  # keepdim
        return tuple(i for i, (a, b) in enumerate(zip(shape, kept, strict=True)) if a != b)
    axes, j = [], 0
    for i, n in enumerate(shape):
        if j < len(kept) and kept[j] == n:
            j += 1
        else:
            axes.append(i)
    return tuple(axes)


def _index(call: _Call, ndim: int, shape: tuple) -> tuple:
    """x[...] as NumPy writes it, from ATen's select(x, dim, i) or slice(x, dim, start, end, step)."""
    args = list(call.args) + [None] * 5
    names = ("self", "dim", "start", "end", "step") if "slice" in str(call.func) else ("self", "dim", "index")
    given = {k: call.kwargs.get(k, args[i]) for i, k in enumerate(names)}
    dim = int(given["dim"] or 0) % max(ndim, 1)
    if "index" in given:
        part: Any = int(given["index"])
    else:
        start, end, step = given["start"], given["end"], given["step"]
        part = slice(None if not start else int(start), None if end is None or end >= shape[dim] else int(end),
                     None if step in (None, 1) else int(step))
    return (slice(None),) * dim + (part,)


def _axes(x: np.ndarray, fn: Any) -> Any:
    """A permutation's axes (PermuteBackward0 keeps them); None for a matrix's .T."""
    dims = getattr(fn, "_saved_dims", None)
    return None if dims is None else tuple(int(d) % max(np.ndim(x), 1) for d in dims)


# -- gradient check -------------------------------------------------------------------------------------

def check(model: TorchModel, granularity: str = "auto", rtol: float = RTOL, atol: float = ATOL,
          max_graph_nodes: int | None = None) -> Any:
    """gradviz check for a PyTorch model: every leaf element's gradient (from PyTorch's backward) against
    central finite differences of the model run on plain float64 tensors."""
    import torch

    from .check import compare
    from .trace import _message, where

    graph = trace(model, granularity, None, max_graph_nodes)
    base = {n: v.clone() for n, v in model.leaves.items()}
    kept = {n: places[0][0][places[0][1]].detach().to(torch.float64) for n, places in model.params.items()}

    def evaluate(leaf: str, value: np.ndarray) -> float:
        args = {**base, **model.constants}
        params = dict(kept)
        (args if leaf in base else params)[leaf] = torch.from_numpy(value)
        try:
            with model.running(params), torch.no_grad():
                out = model.fn(**args)
            return float(torch.as_tensor(out, dtype=torch.float64).sum())
        except Exception as exc:
            raise ModelError(where(exc, model.fn.__code__.co_filename) + _message(exc)) from exc

    return compare(graph, evaluate, rtol, atol)

