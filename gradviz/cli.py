"""The command line: one small function per command; parses, calls, prints. No maths here."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

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


@app.command()
def trace(
    target: str = typer.Argument(..., metavar="MODEL.py[:NAME]", help="model file, and the function to trace (default: forward)"),
    granularity: str = typer.Option("auto", "--granularity", "-g", help="scalar: one node per array element; tensor: one node per NumPy operation; auto: scalar up to 300 nodes"),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE", help="override a leaf's value: a number or a JSON list (repeatable)"),
    seed_grad: Optional[str] = typer.Option(None, "--seed-grad", metavar="VALUE", help="gradient to start backward from (default 1, ones for an array output)"),
    no_table: bool = typer.Option(False, "--no-table", help="do not print the forward, backward and gradient tables"),
    format_: Optional[str] = typer.Option(None, "--format", "-f", help="also write the graph in this format: json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="file to write (default: out/<model-stem>.<format>)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file that gradviz did not write"),
    strict: bool = typer.Option(False, "--strict", help="exit with code 3 if there is a warning (NaN or inf, a point "
                                                       "where a derivative does not exist, an output that depends on no leaf)"),
) -> None:
    """Trace a model file, run backprop, and show every edge's local partial and chain product.

    Example: gradviz trace samples/neuron.py --granularity scalar --format json

    This runs the model file's code, as `python MODEL.py` would.
    """
    from . import trace_file
    from .loader import parse_value, split_target

    path, name = split_target(target)
    if path.suffix == ".json":
        raise GradvizError(f"{path} is a saved graph, not a model: draw it with `gradviz render {path}`")
    seed = parse_value("--seed-grad", seed_grad) if seed_grad is not None else None
    _check_format(format_)
    graph = trace_file(path, name, granularity, seed, _sets(set_))
    out = Console(highlight=False)
    if not no_table:
        from .views.table import print_tables
        print_tables(graph, out)
    if format_ is not None:
        _write(graph, format_, output or Path("out") / f"{path.stem}.{format_}", force, out)
    _report(graph, strict)


@app.command()
def render(
    saved: Path = typer.Argument(..., metavar="GRAPH.json", help="a graph saved by `gradviz trace --format json`"),
    format_: str = typer.Option("json", "--format", "-f", help="the format to write: json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="file to write (default: out/<json-stem>.<format>)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing output file that gradviz did not write"),
    strict: bool = typer.Option(False, "--strict", help="exit with code 3 if the saved graph has a warning"),
) -> None:
    """Draw a saved graph again, without running any model code: the JSON file is read as data only.

    Example: gradviz render out/neuron.json --format json -o out/neuron-copy.json
    """
    from .graph import Graph, SavedGraphError

    _check_format(format_)
    if saved.is_dir():
        raise SavedGraphError(f"{saved} is a folder, not a saved graph")
    try:
        text = saved.read_bytes()
    except FileNotFoundError:
        raise SavedGraphError(f"no such file: {saved}")
    except OSError as exc:
        raise SavedGraphError(f"cannot read {saved}: {exc.strerror}")
    graph = Graph.from_json(text, str(saved))
    out = Console(highlight=False)
    _write(graph, format_, output or Path("out") / f"{saved.stem}.{format_}", force, out)
    _report(graph, strict)


def _check_format(format_: Optional[str]) -> None:
    from .output import FORMATS
    if format_ is not None and format_ not in FORMATS:
        raise GradvizError(f"--format {format_}: choose one of {', '.join(FORMATS)}")


def _write(graph, format_: str, dest: Path, force: bool, out: Console) -> None:
    from .output import FORMATS, write_output
    write_output(dest, format_, FORMATS[format_](graph), force)
    out.print(f"wrote {dest}", markup=False)


def _report(graph, strict: bool) -> None:
    """Each warning as one line on stderr; under --strict any warning makes the exit code 3."""
    warnings = graph.warnings()
    for w in warnings:
        _warn(w)
    if strict and warnings:
        raise typer.Exit(3)


@app.command()
def ops() -> None:
    """List every supported operation with its local-partial rule (generated from the table of operations).

    Example: gradviz ops
    """
    from .views.ops_table import ops_table
    Console(highlight=False).print(ops_table())


def main() -> None:
    """The console script. Exit codes: 0 done, 1 a gradviz bug, 2 a user's mistake, 3 a warning under
    --strict, 130 interrupted."""
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
    # typer turns Ctrl-C inside a command into exit code 130, and no command of ours returns that code
    if code == 130:
        _fail("interrupted", 130)
    sys.exit(code or 0)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"gradviz: {_one_line(message)}\n")
    sys.exit(code)


def _warn(message: str) -> None:
    sys.stderr.write(f"gradviz: warning: {_one_line(message)}\n")


def _one_line(text: str) -> str:
    """text on one line, control characters written out (a file name may hold a newline or an escape)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
