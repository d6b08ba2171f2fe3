"""Every shell and Python block of the docs runs, and every number the docs state is what gradviz computes.

Each page is read top to bottom in its own scratch folder holding a copy of samples/, so a block can use a
file an earlier block wrote. What each kind of block means:

- ```console: each `$ CMD` line is run (bash, COLUMNS=100). The lines under it are an excerpt of what it
  prints (stdout and stderr together): each must be found, in order, as a run of whitespace-separated
  tokens of one output line; table borders are ignored and numbers compared as numbers. A command exiting
  non-zero fails, unless the next command is `echo $?`, whose output is then that exit status.
- ```bash: each line is a command, run; its output is not compared.
- ```python title="NAME": written to NAME, a model file the commands after it use.
- ```python: run as a script (`--8<-- "PATH"` lines, pymdownx.snippets includes, are expanded first).
- ```pycon: run as a doctest; one namespace per page.
- A table headed `| | the notes | gradviz |`: in each row, the notes' result (the number or list the cell
  ends with) and the gradviz column must be the same number, and that number must be what gradviz computes for the row's
  quantity (`∂f/∂x`: ∂output/∂x, `∂y/∂w[0]`: an element; any other label: the output) on the model of the
  page's last `gradviz` command, with its --set, --granularity, --params and --const, and it must appear in
  that command's printed output. A number is equal to the computed one up to half a unit of its last digit.
  Every plain-arithmetic step of the notes' working (`15 · 16 · 4`) must come to the same result.

A page that needs an optional package (NEEDS: the PyTorch page needs torch) is skipped where it is absent.
"""
from __future__ import annotations

import doctest
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gradviz import trace_file

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
COLUMNS = "100"  # the terminal width the excerpts in the docs were printed at
# Commands the docs show that this test does not run, and why.
NOT_RUN = {
    "pytest": "it is the test suite this test belongs to",
    "mkdocs build --strict": ".ci/run builds the site",
}
# Pages that need an optional package, and its extra: skipped, saying so, where the package is not installed.
NEEDS = {"howto/pytorch.md": ("torch", "torch")}
PIP_INSTALL = re.compile(r"^pip install [^&]*(&&\s*|$)")  # the tests run in the environment pip install made

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+)\s*(?P<lang>[\w-]*)(?P<attrs>.*)$")
SNIPPET = re.compile(r'^--8<--\s+"(?P<path>[^":]+)(?::(?P<start>\d+):(?P<end>\d+))?"\s*$')
TITLE = re.compile(r'title="(?P<name>[^"]+)"')
BOX = re.compile(r"[\u2500-\u257f]")  # rich's table borders
NUMBER = re.compile(r"^(?P<pre>[\[(]*)(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(?P<post>[\]),;:]*)$")
PARTIAL = re.compile(r"^[∂d][^/]*/\s*[∂d]\s*(?P<leaf>[A-Za-z_][\w.]*)(?:\[(?P<index>[\d, ]+)\])?$")


@dataclass
class Block:
    kind: str  # "code" or "table"
    lang: str
    attrs: str
    lines: list[str]
    line: int  # where the block starts in the page, for messages


def parse(text: str) -> list[Block]:
    """The fenced code blocks and the tables of a Markdown page, in order (also inside admonitions)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            indent, body = len(fence["indent"]), []
            i += 1
            while i < len(lines) and lines[i].strip() != fence["fence"]:
                body.append(lines[i][indent:])
                i += 1
            blocks.append(Block("code", fence["lang"], fence["attrs"], body, i - len(body)))
            i += 1
        elif lines[i].lstrip().startswith("|"):
            start, rows = i, []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append([cell.strip() for cell in lines[i].strip().strip("|").split("|")])
                i += 1
            blocks.append(Block("table", "", "", rows, start + 1))
        else:
            i += 1
    return blocks


def tokens(line: str) -> list[str]:
    return BOX.sub(" ", line.replace("\u2212", "-")).split()


def same_token(want: str, got: str) -> bool:
    w, g = NUMBER.match(want), NUMBER.match(got)
    if w and g:
        return (w["pre"], w["post"]) == (g["pre"], g["post"]) and math.isclose(
            float(w["num"]), float(g["num"]), rel_tol=1e-9, abs_tol=1e-12)
    return want == got


def has_run(line: list[str], want: list[str]) -> bool:
    return any(all(same_token(w, g) for w, g in zip(want, line[k:k + len(want)], strict=True))
               for k in range(len(line) - len(want) + 1))


def missing_line(excerpt: list[str], output: str) -> str | None:
    """The first excerpt line not found (in order) in output, or None when all are there."""
    actual = [tokens(line) for line in output.splitlines()]
    at = 0
    for line in excerpt:
        want = tokens(line)
        if not want or want == ["..."]:
            continue
        found = next((k for k in range(at, len(actual)) if has_run(actual[k], want)), None)
        if found is None:
            return line
        at = found + 1
    return None


def expand_snippets(lines: list[str]) -> str:
    out = []
    for line in lines:
        include = SNIPPET.match(line.strip())
        if include is None:
            out.append(line)
            continue
        text = (ROOT / include["path"]).read_text(encoding="utf-8").splitlines()
        if include["start"]:
            text = text[int(include["start"]) - 1:int(include["end"])]
        out.extend(text)
    return "\n".join(out) + "\n"


def shell_env() -> dict[str, str]:
    # unbuffered, so that stdout and stderr interleave in the order they were written, as on a terminal
    env = dict(os.environ, COLUMNS=COLUMNS, NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("GRADVIZ_DEBUG", None)
    return env


def runnable(command: str) -> str | None:
    """The part of a command line this test runs, or None for a command it leaves to others (NOT_RUN)."""
    command = PIP_INSTALL.sub("", command.strip())
    return None if not command or command in NOT_RUN else command


def run_shell(command: str, cwd: Path) -> tuple[str, int]:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=shell_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    return done.stdout, done.returncode


@dataclass
class LastCommand:
    argv: list[str]
    output: str


class Page:
    def __init__(self, path: Path, cwd: Path):
        self.path, self.cwd = path, cwd
        self.last: LastCommand | None = None
        self.globs: dict = {}

    def where(self, block: Block) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{block.line}"

    def run(self) -> None:
        for block in parse(self.path.read_text(encoding="utf-8")):
            if block.kind == "table":
                self.notes_table(block)
            elif block.lang == "console":
                self.console(block)
            elif block.lang in ("bash", "sh", "shell"):
                for line in block.lines:
                    command = runnable(line) if line.strip() else None
                    if command:
                        output, status = run_shell(command, self.cwd)
                        assert status == 0, f"{self.where(block)}: `{command}` exited {status}:\n{output}"
            elif block.lang == "python":
                self.python(block)
            elif block.lang == "pycon":
                self.pycon(block)

    def console(self, block: Block) -> None:
        steps: list[tuple[str, list[str]]] = []
        for line in block.lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                assert steps, f"{self.where(block)}: output before the first `$ ` command"
                steps[-1][1].append(line)
        status = 0
        for k, (command, excerpt) in enumerate(steps):
            if command.strip() == "echo $?":
                output, status = f"{status}\n", 0
            else:
                to_run = runnable(command)
                if to_run is None:
                    assert not excerpt, f"{self.where(block)}: `{command}` is not run, so it shows no output"
                    continue
                output, status = run_shell(to_run, self.cwd)
                follows = steps[k + 1][0].strip() if k + 1 < len(steps) else ""
                assert status == 0 or follows == "echo $?", (
                    f"{self.where(block)}: `{command}` exited {status}:\n{output}")
                if shlex.split(to_run)[0] == "gradviz":
                    self.last = LastCommand(shlex.split(to_run), output)
            missing = missing_line(excerpt, output)
            assert missing is None, (
                f"{self.where(block)}: `{command}` did not print\n    {missing}\nIt printed:\n{output}")

    def python(self, block: Block) -> None:
        source = expand_snippets(block.lines)
        title = TITLE.search(block.attrs)
        if title:
            (self.cwd / title["name"]).write_text(source, encoding="utf-8")
            return
        done = subprocess.run([sys.executable, "-"], input=source, cwd=self.cwd, env=shell_env(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{self.where(block)}: the block failed:\n{done.stderr}"

    def pycon(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest("\n".join(block.lines) + "\n", self.globs,
                                                   self.where(block), str(self.path), block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        here = os.getcwd()
        os.chdir(self.cwd)
        try:
            runner.run(test, out=report.append, clear_globs=False)
        finally:
            os.chdir(here)
        self.globs = test.globs  # DocTest works on a copy: the page's next block goes on from here
        assert runner.failures == 0, "".join(report)

    def notes_table(self, block: Block) -> None:
        header = block.lines[0]
        if [cell.lower() for cell in header[1:]] != ["the notes", "gradviz"]:
            return
        assert self.last is not None, f"{self.where(block)}: a notes table needs a gradviz command before it"
        graph = self.traced(self.last.argv)
        printed = [float(m["num"]) for t in tokens(self.last.output) if (m := NUMBER.match(t))]
        for row in block.lines[2:]:
            label, notes, stated = (plain(cell) for cell in row)
            where = f"{self.where(block)}: row {label!r}"
            notes_value, stated_value = number(notes), number(stated)
            assert notes_value.shape == stated_value.shape and np.allclose(notes_value, stated_value), (
                f"{where}: the notes say {notes}, gradviz's column {stated}")
            for step in arithmetic_steps(notes):
                assert np.allclose(step, notes_value, rtol=0, atol=half_unit(notes)), (
                    f"{where}: a step of {notes} is {step}, not {notes_value}")
            computed = computed_value(graph, label)
            tolerance = half_unit(stated)
            assert np.shape(computed) == stated_value.shape and np.allclose(
                computed, stated_value, rtol=0, atol=tolerance), f"{where}: gradviz computes {computed}, not {stated}"
            for value in np.ravel(stated_value):
                assert any(abs(p - value) <= tolerance for p in printed), (
                    f"{where}: {value} is not in what `{' '.join(self.last.argv)}` printed:\n{self.last.output}")

    def traced(self, argv: list[str]):
        target = argv[2]
        path, _, name = target.partition(":")
        sets, granularity, params, consts = {}, "auto", [], []
        options = iter(argv[3:])
        for option in options:
            if option == "--set":
                key, _, value = next(options).partition("=")
                sets[key] = value
            elif option in ("-g", "--granularity"):
                granularity = next(options)
            elif option == "--params":
                params.append(next(options))
            elif option == "--const":
                consts.append(next(options))
        return trace_file(self.cwd / path, name or "forward", granularity, None, sets, params or None,
                          tuple(consts))


def plain(cell: str) -> str:
    return cell.replace("**", "").replace("`", "").replace("\u2212", "-").strip()


TRAILING_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$")


def result(cell: str) -> str:
    """The number or (nested) list a cell ends with: `6y = 6 · 2 = 12` → `12`, `… = [1, -2, 3]` → the list."""
    text = cell.rstrip()
    if text.endswith("]"):
        depth = 0
        for k in range(len(text) - 1, -1, -1):
            depth += {"]": 1, "[": -1}.get(text[k], 0)
            if depth == 0:
                return text[k:]
    found = TRAILING_NUMBER.search(text)
    assert found, f"{cell!r} ends with no number"
    return found[0]


def number(cell: str) -> np.ndarray:
    return np.asarray(json.loads(result(cell)), dtype=float)


def half_unit(cell: str) -> float:
    """Half a unit of the last digit written: 0.0967 stands for anything that rounds to it."""
    decimals = max((len(d) for d in re.findall(r"\.(\d+)", result(cell))), default=0)
    return 0.5 * 10.0 ** -decimals if decimals else 1e-9


SUPERSCRIPTS = str.maketrans({"²": "**2", "³": "**3", "⁴": "**4", "⁵": "**5", "·": "*", "×": "*", "−": "-"})
ARITHMETIC = re.compile(r"^[\d\s.+\-*/()\[\],]+$")


def arithmetic_steps(cell: str) -> list[np.ndarray]:
    """The values of the `=`-separated parts of a notes cell that are plain arithmetic (`15 · 16 · 4`):
    each must equal the cell's result, so the notes' working is checked too, not only its end."""
    steps = []
    for part in cell.split("="):
        text = part.translate(SUPERSCRIPTS).strip()
        if text and ARITHMETIC.match(text) and re.search(r"\d", text):
            steps.append(np.asarray(eval(text, {"__builtins__": {}}), dtype=float))  # digits and operators only
    return steps


def computed_value(graph, label: str) -> np.ndarray:
    for node in range(len(graph.nodes)):
        if graph.label(node) == label:
            return np.asarray(graph.nodes[node].value, dtype=float)
    partial = PARTIAL.match(label)
    if partial is None:
        return np.asarray(graph.output_value, dtype=float)
    grad = graph.grad(partial["leaf"])
    if partial["index"]:
        grad = grad[tuple(int(i) for i in partial["index"].split(","))]
    return np.asarray(grad, dtype=float)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_page_runs_and_its_numbers_hold(page: Path, tmp_path: Path) -> None:
    need = NEEDS.get(page.relative_to(DOCS).as_posix())
    if need is not None and importlib.util.find_spec(need[0]) is None:
        pytest.skip(f'{need[0]} is not installed (pip install "gradviz[{need[1]}]")')
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    Page(page, tmp_path).run()


def test_readme_commands_are_the_getting_started_ones() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = (DOCS / "index.md").read_text(encoding="utf-8")
    for command in ('pip install . && gradviz trace samples/neuron.py', 'pip install -e ".[test]" && pytest'):
        assert command in readme and f"$ {command}" in start, command


def test_tutorial_pages_each_check_numbers() -> None:
    """A tutorial step without a notes table would assert nothing the text says."""
    for page in sorted((DOCS / "tutorial").glob("*.md")):
        if page.name == "index.md":
            continue
        tables = [b for b in parse(page.read_text(encoding="utf-8")) if b.kind == "table"]
        assert any([c.lower() for c in t.lines[0][1:]] == ["the notes", "gradviz"] for t in tables), page.name


# Figures the docs show besides the gallery's (which tests/test_dot.py covers), and the command that draws each.
FIGURES = {
    "howto/spiral_collapsed.svg": "gradviz trace samples/spiral_mlp.py --collapse --rankdir TB --no-table -o {out}",
}


def svg_texts(data: bytes) -> list[str]:
    return sorted("".join(t.itertext()) for t in ET.fromstring(data).iter("{http://www.w3.org/2000/svg}text"))


@pytest.mark.parametrize("figure", sorted(FIGURES))
def test_docs_figure_is_what_its_command_draws(figure: str, tmp_path: Path) -> None:
    """Text compared, not bytes: the embedded and the system Graphviz lay out differently."""
    fresh = tmp_path / "fresh.svg"
    output, status = run_shell(FIGURES[figure].format(out=fresh), ROOT)
    assert status == 0, output
    assert svg_texts((DOCS / figure).read_bytes()) == svg_texts(fresh.read_bytes()), (
        f"docs/{figure} is stale: run {FIGURES[figure].format(out='docs/' + figure)}")


# The runner's own rules, on small inputs whose answer is known.

def test_excerpt_matching_compares_numbers_and_ignores_borders() -> None:
    output = "│ x    │     1 │           960 │\n│ y │ 2.50 │ −1 │\n"
    assert missing_line(["│ x │ 1 │ 960 │", "y 2.5 -1"], output) is None
    assert missing_line(["x 1 961"], output) == "x 1 961"
    assert missing_line(["y 2.5 -1", "x 1 960"], output) == "x 1 960"  # order matters
    assert missing_line(["x 9"], "x 960") == "x 9"  # a token is a whole number, not a prefix


def test_notes_arithmetic_steps() -> None:
    assert [float(s) for s in arithmetic_steps("15 · (2 · 1²)⁴ · 4 · 1 = 15 · 16 · 4 = 960")] == [960, 960, 960]
    assert [float(s) for s in arithmetic_steps("9x²z = 9 · 1 · 3 = 27")] == [27, 27]  # 9x²z is not arithmetic
    assert arithmetic_steps("max(4, −1) = 4")[0] == 4
    assert float(arithmetic_steps("(0.659 − 1) / 3 = −0.1137")[0]) == pytest.approx(-0.11367, abs=1e-5)


def test_notes_cell_numbers() -> None:
    assert number("9x²z = 9 · 1 · 3 = 27") == 27
    assert number("x > y, so 1") == 1
    assert number("w = [-3, -1, 2]").tolist() == [-3, -1, 2]
    assert number("M·Wᵀ = [[-0.5, 1.5], [-1, 2]]").tolist() == [[-0.5, 1.5], [-1, 2]]
    assert number("1e-7") == 1e-7
    assert half_unit("0.0967") == pytest.approx(5e-5)
    assert half_unit("15 · 16 · 4 = 960") == 1e-9


def test_commands_page_lists_every_command_and_option() -> None:
    """The commands page is made by docs_hooks.py from the typer app: every command and option is on it."""
    import importlib.util

    import typer.main

    from gradviz.cli import app

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.on_page_markdown("# Commands\n\n<!-- gradviz: commands -->\n", None, {"docs_dir": str(DOCS)}, None)
    assert "<!--" not in page
    for name, command in typer.main.get_command(app).commands.items():
        assert f"## `gradviz {name}`" in page, name
        for param in command.params:
            for option in param.opts if param.param_type_name == "option" else []:
                assert option in page, f"gradviz {name} {option}"
    assert "OUT_DIR/&lt;model-stem&gt;" in page  # help text in angle brackets stays text, not an HTML tag


@pytest.mark.parametrize(("markdown", "message"), [
    ("```python\nraise SystemExit(3)\n```\n", "the block failed"),
    ("```console\n$ gradviz trace samples/sum.py\nGradient (output = 6)\n```\n", "did not print"),
    ("```console\n$ gradviz trace missing.py\n```\n", "exited 2"),
    ("```console\n$ gradviz trace samples/sum.py\n```\n\n| | the notes | gradviz |\n|---|---|---|\n"
     "| ∂f/∂x | 1 + 1 = 2 | 2 |\n", "gradviz computes 1.0, not 2"),
    ("```pycon\n>>> 1 + 1\n3\n```\n", "Expected"),
])
def test_runner_fails_a_page_that_is_wrong(markdown: str, message: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    page = tmp_path / "page.md"
    page.write_text(markdown, encoding="utf-8")
    with pytest.raises(AssertionError, match=re.escape(message)):
        Page(page, tmp_path).run()
