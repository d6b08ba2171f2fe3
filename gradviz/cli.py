"""The command line: one small function per command; parses, calls, prints. No maths here."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import typer
from rich.console import Console

from .errors import GradvizError

# usage errors (a missing argument, an unknown option): typer's own class since it vendors click
_UsageError = getattr(typer, "TyperException", None) or __import__("click").ClickException

app = typer.Typer(
    help="See how a gradient is made: trace a NumPy function, run backprop, and annotate every edge with "
         "its local partial derivative and its chain-rule product.\n\n"
         "Example: gradviz trace samples/neuron.py",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False)
_debug = False


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", envvar="GRADVIZ_DEBUG",
                               help="show the traceback of an internal error (a gradviz bug)"),
) -> None:
    global _debug
    _debug = debug


def _sets(items: List[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise GradvizError(f"--set {item}: expected NAME=VALUE, e.g. --set x=2 or --set w='[1, 2]'")
        out[name.strip()] = value
    return out


MAX_NODES = 500  # a figure with more nodes is drawn smaller (views/clusters.fit): dot takes ~0.5 s for 500, 20 s for 2000


@contextmanager
def _status(text: str) -> Iterator[None]:
    """A spinner on stderr while a long phase runs, on a terminal only: nothing when piped."""
    if err.is_terminal:
        with err.status(text, spinner="dots"):
            yield
    else:
        yield


# Exit status when a figure format cannot be drawn on this machine (PNG or PDF without a system Graphviz):
# every other format asked for was still written; also a warning under --strict. 2 stays "the input is wrong".
EXIT_NOT_RENDERED = 3
FORCE_HELP = "overwrite an existing output file that gradviz did not write"


@app.command()
def trace(
    target: str = typer.Argument(..., metavar="MODEL.py[:NAME]", help="model file, and the function to trace (default: forward)"),
    granularity: str = typer.Option("auto", "--granularity", "-g", help="scalar: one node per array element; tensor: one node per NumPy operation; auto: scalar up to 300 nodes"),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE", help="override a leaf's value: a number or a JSON list (repeatable)"),
    seed_grad: Optional[str] = typer.Option(None, "--seed-grad", metavar="VALUE", help="gradient to start backward from (default 1, ones for an array output)"),
    no_table: bool = typer.Option(False, "--no-table", help="do not print the forward, backward and gradient tables"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]", help="what to write: svg, png, pdf, dot, mermaid (a Markdown file), json, or none; several as svg,png,json. PNG and PDF need the Graphviz dot program: without it they are skipped with exit status 3 and the rest is written"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="file to write, when one format is asked (default: OUT_DIR/<model-stem>.<ext>)"),
    out_dir: Path = typer.Option(Path("out"), "--out-dir", help="folder for the files written"),
    rankdir: str = typer.Option("LR", "--rankdir", help="figure direction: LR (left to right) or TB (top to bottom)"),
    wrt: Optional[str] = typer.Option(None, "--wrt", metavar="NAME", help="the leaf of interest: the figure highlights every path from the output to it"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    params: List[str] = typer.Option([], "--params", metavar="NAME|GLOB", help="which values the model keeps (in globals, on its objects) are leaves, e.g. 'dense*.weights' (repeatable; default: every float array that takes part)"),
    const: List[str] = typer.Option([], "--const", metavar="NAME", help="pin a leaf as a constant: a parameter of the function or a value the model keeps (repeatable)"),
    collapse: bool = typer.Option(False, "--collapse", help="draw each layer (the operations of one method call of an object) as one node"),
    max_nodes: int = typer.Option(MAX_NODES, "--max-nodes", metavar="N", min=2, help="a figure with more nodes is drawn at tensor granularity, collapsed, or cut to the N nodes nearest the output, with a note"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    strict: bool = typer.Option(False, "--strict", help="exit with status 3 if there is a warning (NaN or inf, a point "
                                                       "where a derivative does not exist, an output that depends on no leaf)"),
) -> None:
    """Trace a model file, run backprop, show every edge's local partial and chain product, and draw the graph.

    Example: gradviz trace samples/neuron.py --format svg,json --wrt w

    This runs the model file's code, as `python MODEL.py` would. --format none writes no file.
    """
    from . import trace_file
    from .loader import parse_value, split_target
    from .output import parse_formats

    path, name = split_target(target)
    if path.suffix == ".json":
        raise GradvizError(f"{path} is a saved graph, not a model: draw it with `gradviz render {path}`")
    seed = parse_value("--seed-grad", seed_grad) if seed_grad is not None else None
    formats = parse_formats(format_)
    if output is not None and len(formats) > 1:
        raise GradvizError(f"-o names one file but --format asks for {len(formats)}: use --out-dir instead")
    rankdir = _rankdir(rankdir)
    sets = _sets(set_)
    sys.dont_write_bytecode = True  # a module the model imports must not leave a __pycache__ in the user's folder
    with _status(f"tracing {target}"):
        graph = trace_file(path, name, granularity, seed, sets, params or None, tuple(const))
    if wrt is not None:
        from .views.dot import wrt_edges
        wrt_edges(graph, wrt)  # an unknown name is an input error, found before anything is written
    out = Console(highlight=False)
    if not no_table:
        from .views.table import print_tables
        print_tables(graph, out)
    figure, collapse, wrt = _fit(graph, formats, max_nodes, collapse, wrt, lambda: trace_file(
        path, name, "tensor", seed, sets, params or None, tuple(const)))
    with _status("drawing"):
        skipped = _write(graph, formats, path.stem, output, out_dir, rankdir, wrt, verbose, out, force,
                         figure=figure, collapse=collapse)
    _report(graph, strict, skipped)


@app.command()
def render(
    saved: Path = typer.Argument(..., metavar="GRAPH.json", help="a graph saved by `gradviz trace --format json`"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]", help="what to write, as for trace"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="file to write, when one format is asked (default: OUT_DIR/<json-stem>.<ext>)"),
    out_dir: Path = typer.Option(Path("out"), "--out-dir", help="folder for the files written"),
    rankdir: str = typer.Option("LR", "--rankdir", help="figure direction: LR (left to right) or TB (top to bottom)"),
    wrt: Optional[str] = typer.Option(None, "--wrt", metavar="NAME", help="the leaf of interest: the figure highlights every path from the output to it"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    max_nodes: int = typer.Option(MAX_NODES, "--max-nodes", metavar="N", min=2, help="a figure with more nodes is cut to the N nodes nearest the output, with a note"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    strict: bool = typer.Option(False, "--strict", help="exit with status 3 if the saved graph has a warning"),
) -> None:
    """Draw a saved graph again without running any code: the JSON file is read as data only.

    Example: gradviz render out/neuron.json --format svg,png
    """
    from .graph import Graph, SavedGraphError
    from .output import parse_formats

    formats = parse_formats(format_)
    if output is not None and len(formats) > 1:
        raise GradvizError(f"-o names one file but --format asks for {len(formats)}: use --out-dir instead")
    rankdir = _rankdir(rankdir)
    if saved.is_dir():
        raise SavedGraphError(f"{saved} is a folder, not a saved graph")
    try:
        text = saved.read_bytes()
    except FileNotFoundError:
        raise SavedGraphError(f"no such file: {saved}")
    except OSError as exc:
        raise SavedGraphError(f"cannot read {saved}: {exc.strerror}")
    graph = Graph.from_json(text, str(saved))
    if wrt is not None:
        from .views.dot import wrt_edges
        wrt_edges(graph, wrt)
    out = Console(highlight=False)
    # a saved graph cannot be traced again at tensor granularity: too large, it is collapsed or cut
    figure, collapse, wrt = _fit(graph, formats, max_nodes, False, wrt, lambda: graph)
    skipped = _write(graph, formats, saved.stem, output, out_dir, rankdir, wrt, verbose, out, force,
                     figure=figure, collapse=collapse)
    _report(graph, strict, skipped)


def _fit(graph, formats: list[str], max_nodes: int, collapse: bool, wrt: Optional[str],
         tensor: Callable[[], Any]) -> tuple[Any, bool, Optional[str]]:
    """(figure, collapse, wrt) to draw: the graph, or a smaller one when it has more than max_nodes nodes."""
    if all(f == "json" for f in formats):
        return graph, collapse, wrt
    from .views.clusters import fit
    with _status("sizing the figure"):
        figure, collapse, note = fit(graph, max_nodes, collapse, tensor)
    if note:
        _say(note)
    if wrt is not None and wrt not in figure.leaves:
        wrt = None  # the leaf is not in the smaller figure: nothing to highlight there
    return figure, collapse, wrt


@app.command()
def gallery(
    folder: Path = typer.Argument(Path("samples"), help="folder of model files; each *.py is traced with its defaults"),
    out_dir: Path = typer.Option(Path("docs/gallery"), "--out-dir", help="folder for the figures"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]", help="what to write for each model (as for trace)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Draw every model of a folder: the figures of the docs, regenerated from the code.

    Example: gradviz gallery samples --out-dir docs/gallery
    """
    from . import trace_file
    from .output import parse_formats

    formats = parse_formats(format_)
    models = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not models:
        raise GradvizError(f"{folder}: no model files (*.py) there")
    out = Console(highlight=False)
    failed = False
    for model in models:
        graph = trace_file(model)
        failed |= _write(graph, formats, model.stem, None, out_dir, "LR", None, verbose, out, force)
    if failed:
        raise typer.Exit(EXIT_NOT_RENDERED)


def _rankdir(text: str) -> str:
    if text.upper() not in ("LR", "TB"):
        raise GradvizError(f"--rankdir {text}: choose LR (left to right) or TB (top to bottom)")
    return text.upper()


def _write(graph, formats: list[str], stem: str, output: Optional[Path], out_dir: Path, rankdir: str,
           wrt: Optional[str], verbose: bool, out: Console, force: bool, figure=None,
           collapse: bool = False) -> bool:
    """Write each format; a figure this machine cannot draw is reported in one line and the rest still written.
    JSON holds `graph`; the drawn formats show `figure` (default: graph), collapsed or not.

    Returns whether one was skipped (the command then ends with EXIT_NOT_RENDERED).
    """
    from .errors import RenderError
    from .output import FORMATS, write

    skipped: dict[str, list[str]] = {}  # one message per cause: "PNG and PDF need ...", not one per format
    for fmt in formats:
        dest = output or out_dir / f"{stem}.{FORMATS[fmt].ext}"
        try:
            drawn = graph if fmt == "json" or figure is None else figure
            renderer = write(drawn, fmt, dest, rankdir, wrt, collapse, force)
        except RenderError as exc:
            skipped.setdefault(str(exc).replace(fmt.upper(), "\0"), []).append(fmt.upper())
            continue
        out.print(f"wrote {dest}" + (f" ({renderer})" if verbose and renderer else ""), markup=False)
    for cause, names in skipped.items():
        text = cause.replace("\0", " and ".join(names))
        if len(names) > 1:
            text = text.replace(" needs ", " need ", 1)
        _say(f"not written: {text}")
    return bool(skipped)


def _report(graph, strict: bool, skipped: bool) -> None:
    """Each warning as one line on stderr; a figure not drawn, or under --strict a warning, ends with status 3."""
    warnings = graph.warnings()
    for w in warnings:
        _say(f"warning: {w}")
    if skipped or (strict and warnings):
        raise typer.Exit(EXIT_NOT_RENDERED)


@app.command()
def ops() -> None:
    """List every supported operation with its local-partial rule (generated from the table of operations).

    Example: gradviz ops
    """
    from .views.ops_table import ops_table
    Console(highlight=False).print(ops_table())


def main() -> None:
    """The console script. Exit status: 0 done, 1 a gradviz bug, 2 a user's mistake, 3 a figure not drawn
    or a warning under --strict, 130 interrupted."""
    try:
        # standalone_mode=False: errors come back here, where each becomes one line on stderr
        code = app(standalone_mode=False)
    except GradvizError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    except _UsageError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if _debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
    # typer turns Ctrl-C inside a command into exit status 130, and no command of ours returns that status
    if code == 130:
        _fail("interrupted", 130)
    sys.exit(code or 0)


def _say(message: str) -> None:
    sys.stderr.write(f"gradviz: {_one_line(message)}\n")


def _fail(message: str, code: int) -> None:
    _say(message)
    sys.exit(code)


def _one_line(text: str) -> str:
    """text on one line, control characters written out (a file name may hold a newline or an escape)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
