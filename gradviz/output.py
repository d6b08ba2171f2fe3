"""Writing what the tool makes: each format as bytes, written atomically (a temporary file, then rename)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import GradvizError
from .graph import Graph


def _json(graph: Graph) -> bytes:
    return graph.to_json().encode("utf-8")


FORMATS: dict[str, Callable[[Graph], bytes]] = {"json": _json}


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path so that a reader sees the old file or the whole new one, never a part."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise GradvizError(f"cannot write {path}: {exc.strerror}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise GradvizError(f"cannot write {path}: {exc.strerror}")
        raise
