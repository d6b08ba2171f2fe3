"""Writing what the tool makes: each format as bytes, written atomically (a temporary file, then rename)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import GradvizError
from .graph import Graph

# make(graph, rankdir, wrt, collapse) -> (bytes, renderer): renderer names the Graphviz that drew a figure,
# else None; collapse draws layers as single nodes (the DOT figures)
Make = Callable[[Graph, str, "str | None", bool], "tuple[bytes, str | None]"]


@dataclass(frozen=True)
class Format:
    ext: str
    make: Make
    figure: bool  # drawn by a Graphviz renderer, which this machine may lack


def _json(graph: Graph, rankdir: str, wrt: str | None, collapse: bool) -> tuple[bytes, None]:
    return graph.to_json().encode("utf-8"), None


def _dot(graph: Graph, rankdir: str, wrt: str | None, collapse: bool) -> tuple[bytes, None]:
    from .views.dot import to_dot
    return to_dot(graph, rankdir, wrt, collapse).encode("utf-8"), None


def _mermaid(graph: Graph, rankdir: str, wrt: str | None, collapse: bool) -> tuple[bytes, None]:
    from .views.mermaid import to_mermaid
    return to_mermaid(graph, rankdir, wrt).encode("utf-8"), None


def _figure(fmt: str) -> Make:
    def make(graph: Graph, rankdir: str, wrt: str | None, collapse: bool) -> tuple[bytes, str | None]:
        from .views.dot import to_dot
        from .views.render import render
        return render(to_dot(graph, rankdir, wrt, collapse), fmt)
    return make


FORMATS: dict[str, Format] = {
    "svg": Format("svg", _figure("svg"), True),
    "png": Format("png", _figure("png"), True),
    "pdf": Format("pdf", _figure("pdf"), True),
    "dot": Format("dot", _dot, False),
    "mermaid": Format("md", _mermaid, False),  # Markdown holding a mermaid block, which GitHub draws
    "json": Format("json", _json, False),
}


def parse_formats(text: str) -> list[str]:
    """`svg,png,json` -> ["svg", "png", "json"], each known, each once."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise GradvizError(f"--format {text}: choose one or more of {', '.join(FORMATS)}, e.g. --format svg,png")
    return list(dict.fromkeys(names))


def format_for(path: Path) -> str:
    """The format a file name asks for: graph.svg -> svg, graph.md -> mermaid."""
    ext = path.suffix.lower().lstrip(".")
    for name, f in FORMATS.items():
        if f.ext == ext:
            return name
    raise GradvizError(f"{path}: cannot tell the format from the extension; use one of "
                       f"{', '.join('.' + f.ext for f in FORMATS.values())} or pass format=")


def write(graph: Graph, fmt: str, path: Path, rankdir: str = "LR", wrt: str | None = None,
          collapse: bool = False) -> str | None:
    """Make fmt and write it to path atomically; returns the renderer that drew a figure, else None."""
    data, renderer = FORMATS[fmt].make(graph, rankdir, wrt, collapse)
    write_atomic(path, data)
    return renderer


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
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise GradvizError(f"cannot write {path}: {exc.strerror}")
        raise


def _mode(path: Path) -> int:
    """The permissions a plain open() would give (mkstemp makes files private): the old file's, else umask's."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
