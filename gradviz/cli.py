"""The command line: one small function per command; parses, calls, prints. No maths here.

No `from __future__ import annotations` here: typer reads every command's annotations at each start, and
as strings each one is compiled and evaluated (1.5 ms more of every command's start)."""

import atexit
import gc
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import typer
from rich.console import Console

from .budget import GraphTooLarge, default_max_nodes
from .errors import GradvizError
from .tolerances import ATOL, RTOL

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


# a figure with more nodes is drawn smaller (views/clusters.fit): dot takes ~0.5 s for 500, 20 s for 2000
MAX_NODES = 500


@contextmanager
def _status(text: str) -> Iterator[None]:
    """A spinner on stderr while a long phase runs, on a terminal only: nothing when piped."""
    if err.is_terminal:
        with err.status(text, spinner="dots"):
            yield
    else:
        yield


def _max_graph_nodes(what: str = "stop with an error, before spending the memory, when the graph would get more "
                                   "nodes than this (a scalar matmul (n,k)@(k,m) makes n·m·k + n·m)") -> Any:
    """--max-graph-nodes, for every command that builds a graph; --help shows what the default is here now."""
    return typer.Option(None, "--max-graph-nodes", metavar="N", min=1, help=what,
                        show_default=f"{default_max_nodes():,} here now: half the free memory at ~1 kB per node")


@contextmanager
def _model_code() -> Iterator[None]:
    """While the model's code runs: a module it imports must not leave a __pycache__ in the user's folder.
    gradviz's own modules, imported afterwards, keep their cached bytecode (30 ms a run without it)."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = saved


# Exit status when a figure format cannot be drawn on this machine (PNG or PDF without a system Graphviz):
# every other format asked for was still written; also a warning under --strict. 2 stays "the input is wrong".
EXIT_NOT_RENDERED = 3
FORCE_HELP = "overwrite an existing output file that gradviz did not write"
OPEN_HELP = "open the explorer page written (--format html, --steps) in the default web browser"
RANKDIR_HELP = ("figure direction: LR (left to right) or TB (top to bottom); default LR, or TB when LR would be "
                "over 3:1 wide past 2,000 px")


@app.command()
def trace(
    target: str = typer.Argument(..., metavar="MODEL.py[:NAME]",
                                 help="model file, and the function to trace (default: forward)"),
    granularity: str = typer.Option("auto", "--granularity", "-g",
                                    help="scalar: one node per array element; tensor: one node per NumPy operation; "
                                         "auto: scalar up to 300 nodes"),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="override a leaf's value: a number or a JSON list (repeatable)"),
    seed_grad: Optional[str] = typer.Option(None, "--seed-grad", metavar="VALUE",
                                            help="gradient to start backward from (default 1, ones for an array "
                                                 "output)"),
    no_table: bool = typer.Option(False, "--no-table", help="do not print the forward, backward and gradient tables"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]",
                                help="what to write: svg, png, pdf, dot, mermaid (a Markdown file), json, html (the "
                                     "interactive explorer), or none; several as svg,png,json. PNG and PDF need the "
                                     "Graphviz dot program: without it they are skipped with exit status 3 and the "
                                     "rest is written"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="file to write, when one format is asked (default: "
                                               "OUT_DIR/<model-stem>.<ext>)"),
    out_dir: Path = typer.Option(Path("out"), "--out-dir", help="folder for the files written"),
    rankdir: Optional[str] = typer.Option(None, "--rankdir", help=RANKDIR_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", metavar="NAME",
                                      help="the leaf of interest: the figure highlights every path from the output "
                                           "to it; with --mode forward, the input number (b, w[0]) to differentiate "
                                           "with respect to"),
    mode: str = typer.Option("reverse", "--mode",
                             help="reverse: backprop (∂output/∂every node); forward: ∂every node/∂--wrt, in one pass "
                                  "forwards"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    params: List[str] = typer.Option([], "--params", metavar="NAME|GLOB",
                                     help="which values the model keeps (in globals, on its objects) are leaves, "
                                          "e.g. 'dense*.weights' (repeatable; default: every float array that takes "
                                          "part)"),
    const: List[str] = typer.Option([], "--const", metavar="NAME",
                                    help="pin a leaf as a constant: a parameter of the function or a value the model "
                                         "keeps (repeatable)"),
    collapse: bool = typer.Option(False, "--collapse",
                                  help="draw each layer (the operations of one method call of an object) as one node"),
    max_nodes: int = typer.Option(MAX_NODES, "--max-nodes", metavar="N", min=2,
                                  help="a figure with more nodes is drawn at tensor granularity, collapsed, or cut "
                                       "to the N nodes nearest the output, with a note"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    strict: bool = typer.Option(False, "--strict",
                                help="exit with status 3 if there is a warning (NaN or inf, a point where a "
                                     "derivative does not exist, an output that depends on no leaf)"),
    steps: bool = typer.Option(False, "--steps",
                               help="also write OUT_DIR/<model-stem>-steps.html: the explorer opened on backprop's "
                                    "first step; the arrow keys step through the order in which backward completes "
                                    "each gradient"),
    open_: bool = typer.Option(False, "--open", help=OPEN_HELP),
    max_graph_nodes: Optional[int] = _max_graph_nodes(),
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
    _check_mode(mode, wrt)
    _check_open(open_, formats, steps)
    sets = _sets(set_)
    with _status(f"tracing {target}"), _model_code():
        graph = trace_file(path, name, granularity, seed, sets, params or None, tuple(const), max_graph_nodes)
    highlight = wrt
    if mode == "forward":
        from .forward import forward_mode
        forward_mode(graph, wrt)
        if graph.granularity == "tensor":  # w[0] is no node of its own: the figure highlights the leaf w
            from .inputs import inputs
            highlight = inputs(graph, wrt)[0].leaf
    if highlight is not None:
        from .views.dot import wrt_edges
        wrt_edges(graph, highlight)  # an unknown name is an input error, found before anything is written
    out = Console(highlight=False)
    if not no_table and mode == "forward":
        _print_forward(graph, out)
    elif not no_table:
        from .views.table import print_tables
        print_tables(graph, out)
    def retrace_as_tensors():
        with _model_code():
            return trace_file(path, name, "tensor", seed, sets, params or None, tuple(const), max_graph_nodes)

    figure, collapse, highlight = _fit(graph, formats, max_nodes, collapse, highlight, retrace_as_tensors)
    with _status("drawing"):
        skipped, pages = _write(graph, formats, path.stem, output, out_dir, rankdir, highlight, verbose, out, force,
                                figure=figure, collapse=collapse)
    if steps:
        from .output import write_steps
        dest = out_dir / f"{path.stem}-steps.html"
        with _status("drawing the steps"):
            renderer = write_steps(figure, dest, rankdir, collapse, force)
        out.print(f"wrote {dest}" + (f" ({renderer})" if verbose else ""), markup=False, emoji=False)
        pages.append(dest)
    if open_:
        _open(pages)
    _report(graph, strict, skipped)


@app.command()
def render(
    saved: Path = typer.Argument(..., metavar="GRAPH.json", help="a graph saved by `gradviz trace --format json`"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]", help="what to write, as for trace"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="file to write, when one format is asked (default: "
                                               "OUT_DIR/<json-stem>.<ext>)"),
    out_dir: Path = typer.Option(Path("out"), "--out-dir", help="folder for the files written"),
    rankdir: Optional[str] = typer.Option(None, "--rankdir", help=RANKDIR_HELP),
    wrt: Optional[str] = typer.Option(None, "--wrt", metavar="NAME",
                                      help="the leaf of interest: the figure highlights every path from the output "
                                           "to it"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    max_nodes: int = typer.Option(MAX_NODES, "--max-nodes", metavar="N", min=2,
                                  help="a figure with more nodes is cut to the N nodes nearest the output, with a "
                                       "note"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    strict: bool = typer.Option(False, "--strict", help="exit with status 3 if the saved graph has a warning"),
    open_: bool = typer.Option(False, "--open", help=OPEN_HELP),
    max_graph_nodes: Optional[int] = _max_graph_nodes("refuse, before reading it, a saved graph whose reading "
                                                      "would take the memory of more nodes than this"),
) -> None:
    """Draw a saved graph again without running any code: the JSON file is read as data only.

    Example: gradviz render out/neuron.json --format svg,png
    """
    from .budget import Budget
    from .graph import Graph, SavedGraphError
    from .output import parse_formats

    formats = parse_formats(format_)
    if output is not None and len(formats) > 1:
        raise GradvizError(f"-o names one file but --format asks for {len(formats)}: use --out-dir instead")
    rankdir = _rankdir(rankdir)
    _check_open(open_, formats, False)
    if saved.is_dir():
        raise SavedGraphError(f"{saved} is a folder, not a saved graph")
    try:
        text = Budget(max_graph_nodes).read(saved)  # a graph too large to read is refused before it is read
    except FileNotFoundError:
        raise SavedGraphError(f"no such file: {saved}") from None
    except OSError as exc:
        raise SavedGraphError(f"cannot read {saved}: {exc.strerror}") from exc
    graph = Graph.from_json(text, str(saved))
    if wrt is not None:
        from .views.dot import wrt_edges
        wrt_edges(graph, wrt)
    out = Console(highlight=False)
    # a saved graph cannot be traced again at tensor granularity: too large, it is collapsed or cut
    figure, collapse, wrt = _fit(graph, formats, max_nodes, False, wrt, lambda: graph)
    skipped, pages = _write(graph, formats, saved.stem, output, out_dir, rankdir, wrt, verbose, out, force,
                            figure=figure, collapse=collapse)
    if open_:
        _open(pages)
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
    if wrt is not None and figure is not graph and wrt not in figure.leaves:
        # a smaller figure: highlight the leaf an element (w[0]) belongs to, if the figure has it
        wrt = next((leaf for leaf in sorted(figure.leaves, key=len, reverse=True) if wrt.startswith(leaf + "[")), None)
    return figure, collapse, wrt


@app.command()
def gallery(
    folder: Path = typer.Argument(Path("samples"), help="folder of model files; each *.py is traced with its defaults"),
    out_dir: Path = typer.Option(Path("docs/gallery"), "--out-dir", help="folder for the figures"),
    format_: str = typer.Option("svg", "--format", "-f", metavar="FMT[,FMT...]",
                                help="what to write for each model (as for trace)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which Graphviz renderer drew each figure"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    max_graph_nodes: Optional[int] = _max_graph_nodes(),
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
        graph = trace_file(model, max_graph_nodes=max_graph_nodes)
        failed |= _write(graph, formats, model.stem, None, out_dir, "LR", None, verbose, out, force)[0]
    if failed:
        raise typer.Exit(EXIT_NOT_RENDERED)


def _rankdir(text: str | None) -> str | None:
    if text is None:
        return None
    if text.upper() not in ("LR", "TB"):
        raise GradvizError(f"--rankdir {text}: choose LR (left to right) or TB (top to bottom)")
    return text.upper()


def _write(graph, formats: list[str], stem: str, output: Optional[Path], out_dir: Path, rankdir: Optional[str],
           wrt: Optional[str], verbose: bool, out: Console, force: bool, figure=None,
           collapse: bool = False) -> tuple[bool, list[Path]]:
    """Write each format; a figure this machine cannot draw is reported in one line and the rest still written.
    JSON holds `graph`; the drawn formats show `figure` (default: graph), collapsed or not.

    Returns whether one was skipped (the command then ends with EXIT_NOT_RENDERED), and the explorer pages
    written (for --open).
    """
    from .errors import RenderError
    from .output import FORMATS, write

    skipped: dict[str, list[str]] = {}  # one message per cause: "PNG and PDF need ...", not one per format
    pages = []
    for fmt in formats:
        dest = output or out_dir / f"{stem}.{FORMATS[fmt].ext}"
        try:
            drawn = graph if fmt == "json" or figure is None else figure
            renderer = write(drawn, fmt, dest, rankdir, wrt, collapse, force)
        except RenderError as exc:
            skipped.setdefault(str(exc).replace(fmt.upper(), "\0"), []).append(fmt.upper())
            continue
        out.print(f"wrote {dest}" + (f" ({renderer})" if verbose and renderer else ""), markup=False, emoji=False)
        if fmt == "html":
            pages.append(dest)
    for cause, names in skipped.items():
        text = cause.replace("\0", " and ".join(names))
        if len(names) > 1:
            text = text.replace(" needs ", " need ", 1)
        _say(f"not written: {text}")
    return bool(skipped), pages


def _check_open(open_: bool, formats: list[str], steps: bool) -> None:
    if open_ and "html" not in formats and not steps:
        raise GradvizError("--open opens the explorer page: add --format html (or --steps)")


def _open(pages: list[Path]) -> None:
    import webbrowser

    for page in pages:
        if not webbrowser.open(page.resolve().as_uri()):
            _say(f"no web browser could be started: open {page} yourself")


def _check_mode(mode: str, wrt: str | None) -> None:
    if mode not in ("reverse", "forward"):
        raise GradvizError(f"--mode {mode}: choose reverse or forward")
    if mode == "forward" and wrt is None:
        raise GradvizError("--mode forward needs --wrt NAME: the input number to differentiate with respect to")


def _print_forward(graph, out: Console) -> None:
    from .forward import output_tangent
    from .inputs import inputs
    from .views.explain import forward_summary, forward_tables
    x = inputs(graph, graph.wrt)[0]
    out.print(forward_tables(graph),
              forward_summary(graph, output_tangent(graph), float(graph.grad(x.leaf)[x.index])))


def _report(graph, strict: bool, skipped: bool) -> None:
    """Each warning as one line on stderr; a figure not drawn, or under --strict a warning, ends with status 3."""
    warnings = graph.warnings()
    for w in warnings:
        _say(f"warning: {w}")
    if skipped or (strict and warnings):
        raise typer.Exit(EXIT_NOT_RENDERED)


@app.command()
def check(
    target: str = typer.Argument(..., metavar="MODEL.py[:NAME]",
                                 help="model file, and the function to check (default: forward)"),
    granularity: str = typer.Option("auto", "--granularity", "-g",
                                    help="granularity of the traced graph whose gradients are checked: scalar, "
                                         "tensor or auto"),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="override a leaf's value: a number or a JSON list (repeatable)"),
    rtol: float = typer.Option(RTOL, "--rtol", help="relative tolerance"),
    atol: float = typer.Option(ATOL, "--atol", help="absolute tolerance"),
    format_: str = typer.Option("text", "--format", "-f",
                                help="text: tables; json: the comparison for machines, on stdout"),
    max_graph_nodes: Optional[int] = _max_graph_nodes(),
) -> None:
    """Check every gradient against central finite differences; exit 1 when one disagrees.

    Each leaf element is moved by ±h (h = 1e-6·max(1, |x|)) and the model re-run on plain values. Operations
    you wrote with @custom_op are checked on their own too, so a wrong derivative is named by op and input.

    Example: gradviz check samples/neuron.py
    """
    from .check import check as run_check
    from .loader import load, split_target, uses_torch
    from .views.check_table import check_json, check_tables

    if format_ not in ("text", "json"):
        raise GradvizError(f"--format {format_}: choose text or json")
    path, name = split_target(target)
    if uses_torch(path):
        from .torch_trace import check as check_torch, load as load_torch
        report = check_torch(load_torch(path, name, _sets(set_)), granularity, rtol, atol, max_graph_nodes)
    else:
        model = load(target, _sets(set_))
        report = run_check(model.fn, model.leaves, granularity, rtol, atol, model.state, max_graph_nodes)
    if format_ == "json":
        sys.stdout.write(check_json(report))
    else:
        Console(highlight=False).print(check_tables(report))
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def explain(
    target: str = typer.Argument(..., metavar="MODEL.py[:NAME]",
                                 help="model file, and the function to explain (default: forward)"),
    wrt: str = typer.Option(..., "--wrt", metavar="NAME",
                            help="the input: a scalar leaf (b), an element (w[0]), or an array leaf (w: every "
                                 "element)"),
    mode: str = typer.Option("reverse", "--mode",
                             help="reverse: the paths from the output down to NAME; forward: ∂node/∂NAME for every "
                                  "node"),
    max_paths: int = typer.Option(20, "--max-paths", min=0, help="list at most this many paths (all are counted)"),
    latex: bool = typer.Option(False, "--latex", help="print a LaTeX align block instead of text"),
    format_: str = typer.Option("text", "--format", "-f",
                                help="text, or json: {wrt, total, n_paths, paths: [{labels, locals, product}]}"),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="override a leaf's value: a number or a JSON list (repeatable)"),
    max_graph_nodes: Optional[int] = _max_graph_nodes(),
) -> None:
    """Write the chain rule out for one input: every path from the output down to it, as the product of its
    local partials, and their sum, which is the gradient. The graph is split into scalars, one number per node.

    Example: gradviz explain samples/neuron.py --wrt w[0]
    """
    from . import trace_file
    from .inputs import inputs
    from .loader import split_target
    from .paths import explain as explain_paths
    from .views.explain import explain_json, explain_latex, explain_text

    if format_ not in ("text", "json"):
        raise GradvizError(f"--format {format_}: choose text or json")
    _check_mode(mode, wrt)
    path, name = split_target(target)
    try:
        graph = trace_file(path, name, "scalar", None, _sets(set_), max_graph_nodes=max_graph_nodes)
    except GraphTooLarge as exc:
        exc.todo = ("explain splits every array into numbers: give it a smaller input (--set), or see the "
                    "gradients with gradviz trace --granularity tensor (--max-graph-nodes N sets the limit)")
        raise
    out = Console(highlight=False)
    if mode == "forward":
        if latex or format_ == "json":
            raise GradvizError("--mode forward prints tables; for JSON use gradviz trace MODEL --mode forward "
                               "--wrt NAME --format json")
        from .forward import forward_mode
        _print_forward(forward_mode(graph, wrt), out)
        return
    chosen = inputs(graph, wrt)
    exs = [explain_paths(graph, x) for x in chosen]
    if format_ == "json":
        sys.stdout.write(explain_json(graph, exs, max_paths, element="[" in wrt or chosen[0].index == ()))
    elif latex:
        sys.stdout.write("\n".join(explain_latex(graph, ex, max_paths) for ex in exs))
    else:
        for ex in exs:
            out.print(explain_text(graph, ex, max_paths))


@app.command()
def ops(
    target: Optional[str] = typer.Argument(None, metavar="[MODEL.py]",
                                           help="also list the operations this model defines with @custom_op"),
    markdown: bool = typer.Option(False, "--markdown", help="print the table as Markdown (docs/numpy-coverage.md)"),
) -> None:
    """List every supported operation with its local-partial rule (generated from the table of operations).

    Example: gradviz ops samples/neuron.py
    """
    from .views.ops_table import ops_markdown, ops_table
    if target is not None:
        from .loader import load_module, split_target
        load_module(split_target(target)[0])
    if markdown:
        sys.stdout.write(ops_markdown())
        return
    Console(highlight=False).print(ops_table())


def main() -> None:
    """The console script. Exit status: 0 done, 1 a gradviz bug, 2 a user's mistake, 3 a figure not drawn
    or a warning under --strict, 130 interrupted."""
    # At exit CPython's garbage collector walks every object numpy, rich and typer made, only to free memory
    # the process is about to hand back: 20 ms, a sixth of `gradviz trace`. Frozen, they are left to the OS;
    # files are closed and output flushed as before (nothing of gradviz waits for a collection to do that).
    atexit.register(gc.freeze)
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
