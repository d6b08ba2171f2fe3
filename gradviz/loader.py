"""Model file → (function, leaf values). Runs the user's module; turns its failures into one-line errors."""
from __future__ import annotations

import inspect
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ModelError
from .trace import where, _describe, _message


@dataclass
class Model:
    path: Path
    name: str
    fn: Callable
    leaves: dict[str, np.ndarray]

    @property
    def source(self) -> str:
        return f"{self.path}:{self.name}"


def split_target(target: str) -> tuple[Path, str]:
    """"model.py" or "model.py:NAME" → (path, function name)."""
    path, sep, name = target.rpartition(":")
    if sep and name.isidentifier() and not Path(target).exists():
        return Path(path), name
    return Path(target), "forward"


def load(target: str, overrides: dict[str, str] | None = None) -> Model:
    path, name = split_target(target)
    module = load_module(path)
    fn = module.__dict__.get(name)
    if fn is None:
        found = [k for k, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__]
        hint = f" (it defines: {', '.join(found)})" if found else ""
        raise ModelError(f"{path} has no function {name!r}{hint}")
    if not callable(fn):
        raise ModelError(f"{path}: {name!r} is not a function (it is {_describe(fn)})")
    return Model(path, name, fn, leaf_values(fn, parse_overrides(overrides or {}), path))


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


def leaf_values(fn: Callable, overrides: dict[str, np.ndarray], path: Path | None = None) -> dict[str, np.ndarray]:
    """Each parameter of fn is a leaf: its value from an override, else its default, else a global."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    where_ = f"{path}: " if path else ""
    if not params:
        raise ModelError(f"{where_}{fn.__name__} has no named parameters; its parameters are the graph's leaves")
    names = [p.name for p in params]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ModelError(f"--set {unknown[0]}: {fn.__name__} has no parameter {unknown[0]!r} (leaves: {', '.join(names)})")
    values = {}
    for p in params:
        default = p.default if p.default is not p.empty else fn.__globals__.get(p.name, p.empty)
        if p.name in overrides:
            value = overrides[p.name]
            if default is not p.empty and np.shape(default) != value.shape:
                raise ModelError(f"--set {p.name}: shape {list(value.shape)} does not match the model's "
                                 f"{list(np.shape(default))}")
        elif default is p.empty:
            raise ModelError(f"{where_}leaf {p.name!r} has no value: give {fn.__name__}'s parameter a default, "
                             f"define a global {p.name} = ..., or pass --set {p.name}=VALUE")
        else:
            value = as_leaf_value(p.name, default, f"{where_}{fn.__name__}")
        values[p.name] = value
    return values
