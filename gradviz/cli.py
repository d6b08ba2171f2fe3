"""The command line: one small function per command; parses, calls, prints. No maths here."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import GradvizError

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
) -> None:
    """Trace a model file, run backprop, and show every edge's local partial and chain product.

    Example: gradviz trace samples/neuron.py --granularity scalar --format json
    """
    from . import trace_file
    from .loader import parse_value, split_target
    from .output import FORMATS, write_atomic

    path, name = split_target(target)
    seed = parse_value("--seed-grad", seed_grad) if seed_grad is not None else None
    if format_ is not None and format_ not in FORMATS:
        raise GradvizError(f"--format {format_}: choose one of {', '.join(FORMATS)}")
    graph = trace_file(path, name, granularity, seed, _sets(set_))
    out = Console(highlight=False)
    if not no_table:
        from .views.table import print_tables
        print_tables(graph, out)
    if format_ is not None:
        dest = output or Path("out") / f"{path.stem}.{format_}"
        write_atomic(dest, FORMATS[format_](graph))
        out.print(f"wrote {dest}", markup=False)


@app.command()
def ops() -> None:
    """List every supported operation with its local-partial rule (generated from the table of operations).

    Example: gradviz ops
    """
    from .views.ops_table import ops_table
    Console(highlight=False).print(ops_table())


def main() -> None:
    try:
        app()
    except GradvizError as exc:
        err.print(f"gradviz: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("gradviz: interrupted", markup=False)
        sys.exit(130)
