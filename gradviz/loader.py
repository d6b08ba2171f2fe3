"""Model file → (function, leaf values). Runs the user's module; turns its failures into one-line errors."""
from __future__ import annotations

import inspect
import json
import os
import re
import sys
import types
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ModelError
from .trace import State, where, _describe, _message

_IMPORTS_TORCH = re.compile(r"^[ \t]*(?:import[ \t]+(?:[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*,[ \t]*)*torch\b"
                            r"|from[ \t]+torch\b)", re.M)


def uses_torch(path: Path) -> bool:
    """Does the model file import torch? Read from its text: a NumPy model imports neither torch nor
    gradviz's PyTorch front end (torch_trace.py), which such a model is traced by."""
    try:
        return _IMPORTS_TORCH.search(path.read_bytes().decode("utf-8", errors="replace")) is not None
    except OSError:
        return False


@dataclass
class Model:
    path: Path
    name: str
    fn: Callable
    leaves: dict[str, np.ndarray]
    state: State = field(default_factory=State)

    @property
    def source(self) -> str:
        return f"{self.path}:{self.name}"


def split_target(target: str) -> tuple[Path, str]:
    """"model.py" or "model.py:NAME" → (path, function name)."""
    path, sep, name = target.rpartition(":")
    if sep and name.isidentifier() and not Path(target).exists():
        return Path(path), name
    return Path(target), "forward"


def load(target: str, overrides: dict[str, str] | None = None, params: list[str] | None = None,
         consts: list[str] | tuple[str, ...] = ()) -> Model:
    path, name = split_target(target)
    module = load_module(path)
    fn = module.__dict__.get(name)
    if fn is None:
        found = [k for k, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
        hint = f" (it defines: {', '.join(found)})" if found else ""
        raise ModelError(f"{path} has no function {name!r}{hint}")
    if not callable(fn):
        raise ModelError(f"{path}: {name!r} is not a function (it is {_describe(fn)})")
    leaves, constants = leaf_values(fn, parse_overrides(overrides or {}), path)
    return Model(path, name, fn, leaves, find_state(fn, leaves, constants, params, consts))


def load_module(path: Path) -> types.ModuleType:
    if not path.exists():
        raise ModelError(f"no such model file: {path}")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a model file")
    try:
        source = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}")
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a Python file (it is not UTF-8 text)")
    if _IMPORTS_TORCH.search(source):  # before running it: one line on how to install, not a traceback
        from .torch_trace import require_torch
        require_torch(path)
    filename = str(path.resolve())
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ModelError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}")
    module = types.ModuleType(f"gradviz_model_{abs(hash(filename))}")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the model may import its neighbours, as `python model.py` would let it
    try:
        exec(code, module.__dict__)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a model that calls sys.exit() is reported, not obeyed
        raise ModelError(where(exc, filename) + _message(exc)) from exc
    return module


def parse_overrides(items: dict[str, str]) -> dict[str, np.ndarray]:
    return {name: parse_value(name, text) for name, text in items.items()}


def parse_value(name: str, text: str) -> np.ndarray:
    """A --set VALUE: a number or a JSON (nested) list of numbers."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ModelError(f"--set {name}={text}: not a number or a JSON list")
    return as_leaf_value(name, raw, f"--set {name}={text}")


def as_leaf_value(name: str, raw: Any, origin: str) -> np.ndarray:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (str, dict)):
        raise ModelError(f"{origin}: leaf {name!r} needs a number or a list of numbers")
    try:
        value = np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"{origin}: leaf {name!r} is not a number or a rectangular list of numbers")
    return value


def leaf_values(fn: Callable, overrides: dict[str, np.ndarray],
                path: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each parameter of fn is a leaf: its value from an override, else its default, else a global.
    A parameter whose value is an integer array (class targets) is a constant: returns (leaves, constants)."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    where_ = f"{path}: " if path else ""
    if not params:
        raise ModelError(f"{where_}{fn.__name__} has no named parameters; its parameters are the graph's leaves")
    names = [p.name for p in params]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ModelError(f"--set {unknown[0]}: {fn.__name__} has no parameter {unknown[0]!r} (leaves: {', '.join(names)})")
    values, constants = {}, {}
    for p in params:
        default = p.default if p.default is not p.empty else fn.__globals__.get(p.name, p.empty)
        integer = isinstance(default, np.ndarray) and default.dtype.kind in "biu"
        if p.name in overrides:
            value = overrides[p.name]
            if default is not p.empty and np.shape(default) != value.shape:
                raise ModelError(f"--set {p.name}: shape {list(value.shape)} does not match the model's "
                                 f"{list(np.shape(default))}")
            if integer:
                if not np.array_equal(value, np.round(value)):
                    raise ModelError(f"--set {p.name}: the model's {p.name} holds integers (class targets)")
                constants[p.name] = value.astype(default.dtype)
                continue
        elif integer:
            constants[p.name] = default
            continue
        elif default is p.empty:
            raise ModelError(f"{where_}leaf {p.name!r} has no value: give {fn.__name__}'s parameter a default, "
                             f"define a global {p.name} = ..., or pass --set {p.name}=VALUE")
        else:
            value = as_leaf_value(p.name, default, f"{where_}{fn.__name__}")
        values[p.name] = value
    return values, constants


def find_state(fn: Callable, leaves: dict[str, np.ndarray], constants: dict[str, np.ndarray],
               params: list[str] | None = None, consts: list[str] | tuple[str, ...] = ()) -> State:
    """Find the parameters the model keeps outside fn's signature, named by where they live.

    Float arrays in module globals and on the model's objects (instances of classes defined in the model
    file or beside it, bound to globals, held in global lists, or one attribute down) are candidates:
    `dense1.weights`. The tracer makes each a leaf and drops those that take no part in the output.
    params (names or globs) picks among every numeric value in those places instead, so it can narrow the
    set or widen it to numbers and integer arrays; consts pins names (found ones or fn's parameters)
    as constants: it moves them from leaves to constants.
    """
    glob = fn.__globals__
    state = State(constants=constants)
    places: dict[str, tuple[dict, str]] = {}

    def visit(name: str, value: Any, depth: int) -> None:
        if isinstance(value, (list, tuple)):
            if value and _own_object(value[0], fn):  # a list of layers, not a long list of data to walk
                for i, item in enumerate(value):
                    visit(f"{name}[{i}]", item, depth)
            return
        if id(value) in state.objects or not _own_object(value, fn):
            return
        state.objects[id(value)] = name
        state.files.add(getattr(sys.modules.get(type(value).__module__), "__file__", None) or "")
        ns = vars(value)
        state.namespaces.append(ns)
        for attr, v in ns.items():
            places[f"{name}.{attr}"] = (ns, attr)
            if depth:
                visit(f"{name}.{attr}", v, depth - 1)

    for g, v in list(glob.items()):
        if not g.startswith("__") and g not in leaves and g not in constants:
            places[g] = (glob, g)
            visit(g, v, 1)

    pool = {n: p for n, p in places.items() if (_numeric(p[0][p[1]]) if params else _float_array(p[0][p[1]]))}
    for pattern in params or ():
        if not any(fnmatchcase(n, pattern) for n in pool):
            raise ModelError(f"--params {pattern}: matches nothing the model keeps; it keeps: "
                             f"{', '.join(pool) or 'no numbers or arrays'}")
    chosen = [n for n in pool if not params or any(fnmatchcase(n, pattern) for pattern in params)]
    for name in consts:
        if name in leaves:
            constants[name] = leaves.pop(name)
        elif name in chosen:
            chosen.remove(name)
        else:
            raise ModelError(f"--const {name}: no such leaf; leaves: {', '.join(list(leaves) + chosen)}")
    by_array: dict[int, str] = {}
    for name in chosen:
        ns, key = pool[name]
        value = ns[key]
        # an array held in two places (tied weights) is one leaf, named by the first place
        owner = by_array.setdefault(id(value), name) if isinstance(value, np.ndarray) else name
        state.params.setdefault(owner, []).append((ns, key))
    return state


def _own_object(value: Any, fn: Callable) -> bool:
    """An instance of a class defined in fn's module or in a file beside it (not a library's object)."""
    cls = type(value)
    if isinstance(value, (type, types.ModuleType)) or not isinstance(getattr(value, "__dict__", None), dict):
        return False
    if cls.__module__ == fn.__module__:
        return True
    module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return module_file is not None and os.path.dirname(module_file) == os.path.dirname(fn.__code__.co_filename)


def _float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _numeric(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
