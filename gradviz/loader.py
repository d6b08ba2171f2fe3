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
from typing import Any, Callable, Iterable

import numpy as np

from .errors import ModelError
from .trace import State, _describe, _display, _message, where

MAX_DEPTH = 3  # steps from a global to a parameter: model.layers[1].W is three

_IMPORTS_TORCH = re.compile(r"^[ \t]*(?:import[ \t]+(?:[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*,[ \t]*)*torch\b"
                            r"|from[ \t]+torch\b)", re.M)


INSTALL_TORCH = 'pip install "gradviz[torch]"'


def require_torch(path: Path) -> None:
    """A model that uses PyTorch, where torch is not installed: one line saying how to install it."""
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        raise ModelError(f"{path} uses PyTorch, which is not installed here: {INSTALL_TORCH}")


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
    state = find_state(fn, leaves, constants, params, consts)
    settle_integers(fn, leaves, state)
    return Model(path, name, fn, leaves, state)


def load_module(path: Path) -> types.ModuleType:
    if not path.exists():
        raise ModelError(f"no such model file: {path}")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a model file")
    try:
        source = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a Python file (it is not UTF-8 text)") from None
    if _IMPORTS_TORCH.search(source):  # before running it: one line on how to install, not a traceback
        require_torch(path)
    filename = str(path.resolve())
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ModelError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from exc
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
        raise ModelError(f"--set {name}={text}: not a number or a JSON list") from None
    return as_leaf_value(name, raw, f"--set {name}={text}")


def as_leaf_value(name: str, raw: Any, origin: str) -> np.ndarray:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (str, dict)):
        raise ModelError(f"{origin}: leaf {name!r} needs a number or a list of numbers")
    try:
        value = np.array(raw, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"{origin}: leaf {name!r} is not a number or a rectangular list of numbers") from None
    return value


def leaf_values(fn: Callable, overrides: dict[str, np.ndarray],
                path: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each parameter of fn is a leaf: its value from an override, else its default, else a global, as
    float64 (settle_integers then keeps integer arrays used as indices constant). Returns (leaves,
    constants): constants starts empty (find_state adds --const names, settle_integers class targets)."""
    where_ = f"{path}: " if path else ""
    values, constants = {}, {}
    for name, default in parameter_defaults(fn, overrides):
        if name in overrides:
            value = overrides[name]
            if default is not EMPTY and np.shape(default) != value.shape:
                raise ModelError(f"--set {name}: shape {list(value.shape)} does not match the model's "
                                 f"{list(np.shape(default))}")
        elif default is EMPTY:
            raise no_value(where_, fn, name)
        else:
            value = as_leaf_value(name, default, f"{where_}{fn.__name__}")
        values[name] = value
    return values, constants


EMPTY = inspect.Parameter.empty


def parameter_defaults(fn: Callable, overrides: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """fn's named parameters, each with its value when not overridden: its default, else the global of that
    name, else EMPTY. An override that names no parameter is an error."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ModelError(f"--set {unknown[0]}: {fn.__name__} has no parameter {unknown[0]!r} "
                         f"(leaves: {', '.join(names)})")
    return [(p.name, p.default if p.default is not EMPTY else fn.__globals__.get(p.name, EMPTY)) for p in params]


def no_value(where_: str, fn: Callable, name: str) -> ModelError:
    return ModelError(f"{where_}leaf {name!r} has no value: give {fn.__name__}'s parameter a default, "
                      f"define a global {name} = ..., or pass --set {name}=VALUE")


def settle_integers(fn: Callable, leaves: dict[str, np.ndarray], state: State,
                    overridden: Iterable[str] = ()) -> None:
    """Parameters the model gives as integers (`x = np.array([1, -2, 3])`, `b = 1`: what a learner types
    first) stay leaves, as float64, with one note on stderr naming them; an integer array the function uses as an
    index (class targets, `probs[range(n), y]`) is a constant, as the model gave it. Which arrays are indices
    is found by calling the function once on plain values: NumPy refuses to index with floats. overridden:
    the names trace() was given values for: those are the caller's, not the model's."""
    given = {}
    for name, default in parameter_defaults(fn):
        if name in leaves and name not in overridden and default is not EMPTY and _integer(default):
            given[name] = np.asarray(default)
    arrays = [n for n in given if given[n].ndim and np.array_equal(leaves[n], np.round(leaves[n]))]
    indices: list[str] = []
    if arrays:
        with state.placed({}):  # the model's objects are left as they were (placed restores their attributes)
            if _index_error(fn, leaves, state.constants, given, arrays):
                indices = [n for n in arrays if _index_error(fn, leaves, state.constants, given, [n])]
    for name in indices:
        state.constants[name] = leaves.pop(name).astype(given[name].dtype)
    floats = [n for n in given if n not in indices]
    if floats:
        _note(f"{', '.join(floats)}: integer values taken as float64")


def _index_error(fn: Callable, leaves: dict[str, np.ndarray], constants: dict[str, Any],
                 given: dict[str, np.ndarray], as_float: list[str]) -> bool:
    """Does fn, called on plain values with the arrays as_float as floats and the other integer arrays as
    the model gave them, fail because an array used as an index holds floats?"""
    args = dict(constants)
    args.update((n, v if n in as_float or n not in given else v.astype(given[n].dtype)) for n, v in leaves.items())
    try:
        fn(**args)
    except IndexError as exc:  # "arrays used as indices must be of integer (or boolean) type", not a range error
        return "integer" in str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:  # the trace reports the model's own failures, with file:line
        return False
    return False


def find_state(fn: Callable, leaves: dict[str, np.ndarray], constants: dict[str, np.ndarray],
               params: list[str] | None = None, consts: list[str] | tuple[str, ...] = ()) -> State:
    """Find the parameters the model keeps outside fn's signature, named by where they live.

    Float arrays in module globals, on the model's objects (instances of classes defined in the model
    file or beside it) and in dicts and lists, up to MAX_DEPTH steps from a global, are candidates:
    `dense1.weights`, `net.params['W1']`, `model.layers[1].W`, `params['b2']`. A list of objects (a list of
    layers) costs no step. The tracer makes each a leaf and drops those that take no part in the output.
    params (exact names or globs) picks among every numeric value in those places instead, so it can narrow
    the set or widen it to numbers and integer arrays; consts pins names (found ones or fn's parameters)
    as constants: it moves them from leaves to constants.
    """
    glob = fn.__globals__
    state = State(constants=constants)
    places: dict[str, tuple[Any, Any]] = {}
    seen: set[int] = set()

    def visit(name: str, value: Any, depth: int) -> None:
        if id(value) in seen:
            return
        if isinstance(value, list) and value and _own_object(value[0], fn):
            seen.add(id(value))  # a list of layers: each is named by its index, and costs no step
            for i, item in enumerate(value):
                visit(f"{name}[{i}]", item, depth)
            return
        if depth == 0:
            return
        if isinstance(value, dict):
            items = [(k, v) for k, v in value.items() if isinstance(k, (str, int))]
            entries = [(f"{name}[{k!r}]", value, k, v) for k, v in items]
        elif isinstance(value, list):
            if not all(isinstance(v, (np.ndarray, dict, list)) for v in value):
                return  # a list of numbers is data, not a container of parameters
            entries = [(f"{name}[{i}]", value, i, v) for i, v in enumerate(value)]
        elif _own_object(value, fn):
            seen.add(id(value))
            state.objects[id(value)] = name
            state.files.add(getattr(sys.modules.get(type(value).__module__), "__file__", None) or "")
            ns = vars(value)
            entries = [(f"{name}.{attr}", ns, attr, v) for attr, v in ns.items()]
            # restored after the call: a method may store traced values on its object (self.output = …). A dict
            # or list is not: it may be anything's (a registry, a cache), and its entries that are leaves
            # get their own values back anyway
            state.namespaces.append(ns)
        else:
            return
        seen.add(id(value))
        for child, container, key, v in entries:
            if _numeric(v):
                places[child] = (container, key)
            else:
                visit(child, v, depth - 1)

    for g, v in list(glob.items()):
        if not g.startswith("__") and g not in leaves and g not in constants and not isinstance(v, _CODE):
            places[g] = (glob, g)
            visit(g, v, MAX_DEPTH)

    pool = {n: p for n, p in places.items() if (_numeric(p[0][p[1]]) if params else _float_array(p[0][p[1]]))}
    for pattern in params or ():
        if not any(_matches(n, pattern) for n in pool):
            raise ModelError(f"--params {pattern}: matches nothing the model keeps; it keeps: "
                             f"{', '.join(pool) or 'no numbers or arrays'}")
    chosen = [n for n in pool if not params or any(_matches(n, pattern) for pattern in params)]
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
    if not leaves and not state.params:
        raise ModelError(f"{_where(fn)}{fn.__name__} has no parameters and the model keeps no float arrays: "
                         f"there is nothing to differentiate with respect to")
    return state


# what a module's globals mostly are, and never a parameter or an object holding one: skipped at once
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.ModuleType, type)


def _matches(name: str, pattern: str) -> bool:
    """A --params pattern: the name itself, or a glob whose brackets are either literal, as in a name
    (net.params['W*']), or a set of characters (blocks[[]1].*)."""
    literal = "".join("[[]" if c == "[" else "[]]" if c == "]" else c for c in pattern)
    return name == pattern or fnmatchcase(name, literal) or fnmatchcase(name, pattern)


def _where(fn: Callable) -> str:
    return f"{_display(fn.__code__.co_filename)}: "


def _own_object(value: Any, fn: Callable) -> bool:
    """An instance of a class defined in fn's module or in a file beside it (not a library's object)."""
    cls = type(value)
    if isinstance(value, (type, types.ModuleType)) or not isinstance(getattr(value, "__dict__", None), dict):
        return False
    if cls.__module__ == fn.__module__:
        return True
    module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return module_file is not None and os.path.dirname(module_file) == os.path.dirname(fn.__code__.co_filename)


def _integer(value: Any) -> bool:
    """An int, an integer NumPy scalar or array, or a list of ints (not bool: True is no number to learn)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
    return arr is not None and arr.dtype.kind in "iu"


def _note(message: str) -> None:
    sys.stderr.write(f"gradviz: note: {message}\n")


def _float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _numeric(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
