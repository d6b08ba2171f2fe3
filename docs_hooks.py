"""MkDocs hook: the reference pages that gradviz itself prints are made at build time, from the code.

A page holds a marker comment where the text goes; the hook replaces it with what the installed gradviz
says, so `--help`, `gradviz ops` and the site never disagree and there is no generated file to keep fresh.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
COVERAGE = "numpy-coverage.md"  # written by the NumPy coverage generator; linked only when it exists


def _run(*args: str, columns: int = 100) -> str:
    env = dict(os.environ, COLUMNS=str(columns), NO_COLOR="1", TERM="dumb")
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def _commands() -> str:
    # typer's own Markdown generator (`typer gradviz.cli utils docs`), run on the typer app in gradviz/cli.py
    text = _run("-m", "typer", "gradviz.cli", "utils", "docs", "--name", "gradviz", "--title", "Commands")
    return _literal_angles(text.split("\n", 1)[1])  # the page keeps its own title and introduction


def _literal_angles(markdown: str) -> str:
    """Help texts say `OUT_DIR/<model-stem>.<ext>`: outside code, Markdown would take <model-stem> for HTML."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            parts = line.split("`")
            parts[::2] = [part.replace("<", "&lt;").replace(">", "&gt;") for part in parts[::2]]
            line = "`".join(parts)
        out.append(line)
    return "\n".join(out) + "\n"


def _operations() -> str:
    # wide enough that no rule wraps; the page's code blocks hold about 120 columns
    return "```text\n" + _run("-m", "gradviz", "ops", columns=120).rstrip() + "\n```\n"


def _coverage(config) -> str:
    if (Path(config["docs_dir"]) / COVERAGE).exists():
        return f"Which NumPy functions and methods are covered, and which are refused: [NumPy coverage](../{COVERAGE})."
    return ""


MARKERS = {
    "<!-- gradviz: commands -->": lambda config: _commands(),
    "<!-- gradviz: ops -->": lambda config: _operations(),
    "<!-- gradviz: numpy coverage -->": _coverage,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make(config))
    return markdown
