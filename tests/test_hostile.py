"""Hostile input: every mistake a user can make gets one clear line and an exit code, and nothing is lost.

Each test writes a model (or a JSON file) into tmp_path, runs the CLI in-process from there, and asserts the
exact message on stderr, the exit code (2 for a user's mistake) and that no traceback was printed. A few run
through a real `python -m gradviz` process, as a user would.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import gradviz
from gradviz import cli
from gradviz.graph import Graph
from gradviz.output import MARK, mark, written_by_gradviz
from gradviz.views.table import print_tables

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(*args) -> (exit code, stdout, stderr) of `gradviz *args`, run in-process from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_debug", False)

    def go(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["gradviz", *args])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        code = exc.value.code
        return (0 if code is None else code), out, err
    return go


def model(tmp_path: Path, source: str, name: str = "m.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def error(run, *args: str) -> str:
    """The one error line of a run that must fail with exit code 2."""
    code, out, err = run(*args)
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.startswith("gradviz: error: "), err
    return err[len("gradviz: error: "):].rstrip("\n")


# -- the model file ----------------------------------------------------------------------------------

def test_missing_model_file(run):
    assert error(run, "trace", "nope.py") == "no such model file: nope.py"


def test_unreadable_model_file(run, tmp_path, monkeypatch):
    path = model(tmp_path, "def forward(x=1.0):\n    return x\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the read fail as it would for a user
        def denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        monkeypatch.setattr(Path, "read_bytes", denied)
    assert error(run, "trace", "m.py") == "cannot read m.py: Permission denied"


def test_model_path_is_a_folder(run, tmp_path):
    (tmp_path / "models").mkdir()
    assert error(run, "trace", "models") == "models is a folder, not a model file"


def test_model_is_not_text(run, tmp_path):
    (tmp_path / "m.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    assert error(run, "trace", "m.py") == "m.py is not a Python file (it is not UTF-8 text)"


def test_model_is_a_saved_graph(run, tmp_path):
    (tmp_path / "g.json").write_text("{}")
    assert error(run, "trace", "g.json") == "g.json is a saved graph, not a model: draw it with `gradviz render g.json`"


def test_syntax_error_names_the_line(run, tmp_path):
    model(tmp_path, "def forward(x=1.0):\n    return x +\n")
    assert error(run, "trace", "m.py").startswith("m.py:2: SyntaxError: ")


def test_import_error_inside_the_model(run, tmp_path):
    model(tmp_path, "import gradviz_no_such_module\ndef forward(x=1.0):\n    return x\n")
    assert error(run, "trace", "m.py") == "m.py:1: ModuleNotFoundError: No module named 'gradviz_no_such_module'"


def test_model_that_raises_at_import(run, tmp_path):
    model(tmp_path, "x = 1.0\nraise RuntimeError('bad\\nconfig')\n")
    assert error(run, "trace", "m.py") == "m.py:2: RuntimeError: bad config"


def test_model_that_calls_sys_exit(run, tmp_path):
    model(tmp_path, "import sys\ndef forward(x=1.0):\n    sys.exit(0)\n")
    assert error(run, "trace", "m.py") == "m.py:3: the model called sys.exit(0)"


# -- FILE:NAME and the function's parameters ---------------------------------------------------------

def test_no_such_function(run, tmp_path):
    model(tmp_path, "def forward(x=1.0):\n    return x\ndef loss(x=1.0):\n    return x\n")
    assert error(run, "trace", "m.py:predict") == "m.py has no function 'predict' (it defines: forward, loss)"


def test_name_is_not_callable(run, tmp_path):
    model(tmp_path, "forward = 3\n")
    assert error(run, "trace", "m.py") == "m.py: 'forward' is not a function (it is an int)"


def test_function_with_only_star_args(run, tmp_path):
    model(tmp_path, "def forward(*args, **kwargs):\n    return args[0]\n")
    assert error(run, "trace", "m.py") == ("m.py: forward has no parameters and the model keeps no float arrays: "
                                           "there is nothing to differentiate with respect to")


def test_leaf_without_value(run, tmp_path):
    model(tmp_path, "def forward(x, y=2.0):\n    return x * y\n")
    assert error(run, "trace", "m.py") == ("m.py: leaf 'x' has no value: give forward's parameter a default, "
                                           "define a global x = ..., or pass --set x=VALUE")


# -- --set -------------------------------------------------------------------------------------------

W3 = "import numpy as np\nw = np.array([1.0, 2.0, 3.0])\ndef forward(w):\n    return np.sum(w * w)\n"


def test_set_unknown_name(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--set", "v=1") == "--set v: forward has no parameter 'v' (leaves: w)"


def test_set_without_equals(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--set", "w") == (
        "--set w: expected NAME=VALUE, e.g. --set x=2 or --set w='[1, 2]'")


def test_set_bad_number(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--set", "w=1,2,3") == "--set w=1,2,3: not a number or a JSON list"


def test_set_ragged_json(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--set", "w=[[1, 2], [3]]") == (
        "--set w=[[1, 2], [3]]: leaf 'w' is not a number or a rectangular list of numbers")


def test_set_wrong_shape(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--set", "w=[1, 2]") == "--set w: shape [2] does not match the model's [3]"


def test_set_that_fits_is_used(run, tmp_path):
    model(tmp_path, W3)
    code, _, err = run("trace", "m.py", "--no-table", "--set", "w=[1, -2, 0.5]", "-f", "json", "-o", "g.json")
    assert (code, err) == (0, "")
    graph = Graph.from_json((tmp_path / "g.json").read_bytes())
    np.testing.assert_array_equal(graph.grad("w"), [2.0, -4.0, 1.0])  # ∂Σw²/∂w = 2w


# -- what the model returns ----------------------------------------------------------------------------

@pytest.mark.parametrize("returned, described", [("None", "None"), ("'loss'", "a str"), ("{'y': x}", "a dict")])
def test_non_numeric_return(run, tmp_path, returned, described):
    model(tmp_path, f"def forward(x=1.0):\n    y = x * 2\n    return {returned}\n")
    assert error(run, "trace", "m.py") == (f"m.py:3: forward returned {described}; "
                                           f"it must return a number or an array")


def test_return_not_connected_to_any_leaf_warns_and_draws_zero_gradients(run, tmp_path):
    model(tmp_path, "def forward(x=2.0, y=3.0):\n    z = x * y\n    return 7.0\n")
    code, out, err = run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json")
    assert code == 0
    assert err == ("gradviz: warning: the output does not depend on any leaf: the function returned a constant: "
                   "the traced path took a branch that returns a value computed without x, y (as `if x > 0: "
                   "return x` does for x ≤ 0); every gradient is 0\n")
    saved = Graph.from_json((tmp_path / "g.json").read_bytes()).to_dict()
    leaves = {n["label"]: n["grad"] for n in saved["nodes"] if n["kind"] == "leaf"}
    assert leaves == {"x": 0.0, "y": 0.0}
    assert [n["value"] for n in saved["nodes"] if n["id"] == saved["output"]] == [7.0]


# -- inside the model -----------------------------------------------------------------------------------

def test_unsupported_numpy_function(run, tmp_path):
    model(tmp_path, "import numpy as np\ndef forward(x=1.0):\n    return np.spacing(x)\n")
    assert error(run, "trace", "m.py") == (
        "m.py:3: np.spacing is not supported on traced values; `gradviz ops` lists the supported operations")


def test_unsupported_numpy_array_function(run, tmp_path):
    model(tmp_path, "import numpy as np\ndef forward(x=[1.0, 2.0]):\n    y = x * 2\n    return np.nancumsum(y)\n")
    assert error(run, "trace", "m.py") == (
        "m.py:4: np.nancumsum is not supported on traced values (did you mean np.nansum?); "
        "`gradviz ops` lists the supported operations")


@pytest.mark.parametrize("expr, symbol", [("x % 2", "%"), ("x & 1", "& | ^")])
def test_unsupported_python_operation(run, tmp_path, expr, symbol):
    model(tmp_path, f"def forward(x=3.0):\n    y = x * 2\n    return {expr}\n")
    assert error(run, "trace", "m.py") == (
        f"m.py:3: the Python operator {symbol} is not supported on traced values; "
        f"`gradviz ops` lists the supported operations")


@pytest.mark.parametrize("expr, how", [("x // 2", "//"), ("round(x)", "round()")])
def test_python_operations_that_need_a_number_cut_the_gradient_with_a_warning(run, tmp_path, expr, how):
    model(tmp_path, f"def forward(x=3.0):\n    y = x * 2\n    return y + {expr}\n")
    code, out, err = run("trace", "m.py", "--no-table", "-o", str(tmp_path / "g.json"))
    assert code == 0
    assert f"gradviz: warning: m.py:3: {how} of x: used as a plain number, so no gradient flows back through it" in err


def test_assignment_into_a_traced_array_is_an_operation(tmp_path):
    import gradviz
    model(tmp_path, "def forward(x=[1.0, 2.0]):\n    x[0] = 5.0\n    return x * 3\n")
    for granularity in ("scalar", "tensor"):
        graph = gradviz.trace_file(tmp_path / "m.py", granularity=granularity)
        assert graph.output_value.tolist() == [15.0, 6.0]
        assert graph.grad("x").tolist() == [0.0, 3.0]  # x[0] was overwritten by a constant


def test_code_that_raises(run, tmp_path):
    model(tmp_path, "def helper(v):\n    raise ValueError('negative input')\n"
                    "def forward(x=1.0):\n    return helper(x)\n")
    assert error(run, "trace", "m.py") == "m.py:2: ValueError: negative input"


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_mismatched_shapes_inside_the_model(run, tmp_path, granularity):
    model(tmp_path, "import numpy as np\nx = np.ones(2)\ny = np.ones(3)\n"
                    "def forward(x, y):\n    z = x + y\n    return z\n")
    assert error(run, "trace", "m.py", "-g", granularity) == (
        "m.py:5: ValueError: operands could not be broadcast together with shapes (2,) (3,)")


def test_mismatched_matmul_inside_the_model(run, tmp_path):
    model(tmp_path, "import numpy as np\nW = np.ones((2, 3))\nx = np.ones(2)\n"
                    "def forward(W, x):\n    return W @ x\n")
    message = error(run, "trace", "m.py", "-g", "tensor")
    assert message.startswith("m.py:5: ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0")


def test_model_in_a_file_name_with_markup_and_spaces(run, tmp_path):
    model(tmp_path, "def forward(x=1.0):\n    return x +\n", name="[bold]my <model> & co.py")
    assert error(run, "trace", "[bold]my <model> & co.py").startswith("[bold]my <model> & co.py:2: SyntaxError: ")


# -- options -----------------------------------------------------------------------------------------

def test_unknown_format(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "--format", "xml")== (
        "--format xml: choose one or more of svg, png, pdf, dot, mermaid, json, html (e.g. --format svg,png), or none")


def test_unknown_granularity(run, tmp_path):
    model(tmp_path, W3)
    assert error(run, "trace", "m.py", "-g", "fine") == "granularity must be scalar, tensor or auto, not 'fine'"


def test_seed_grad_of_the_wrong_shape(run, tmp_path):
    model(tmp_path, "import numpy as np\ndef forward(x=[1.0, 2.0]):\n    return x * 3\n")
    assert error(run, "trace", "m.py", "--seed-grad", "[1, 2, 3]") == (
        "seed gradient of shape (3,) does not fit the output's shape (2,)")


def test_unknown_option_is_a_usage_error(run):
    code, out, err = run("trace", "m.py", "--colour")
    assert code == 2
    assert "No such option: --colour" in err


# -- writing files -----------------------------------------------------------------------------------

NEURON = (REPO / "samples" / "neuron.py").read_text()


def test_output_folder_is_created(run, tmp_path):
    model(tmp_path, NEURON)
    code, out, err = run("trace", "m.py", "--no-table", "-f", "json", "-o", "figs/deep/n.json")
    assert (code, err) == (0, "")
    assert out == "wrote figs/deep/n.json\n"
    assert Graph.from_json((tmp_path / "figs/deep/n.json").read_bytes()).output_value == 6.0


def test_output_that_cannot_be_written(run, tmp_path):
    model(tmp_path, NEURON)
    (tmp_path / "notes.txt").write_text("keep me")
    assert error(run, "trace", "m.py", "--no-table", "-f", "json", "-o", "notes.txt/n.json") == (
        "cannot write notes.txt/n.json: notes.txt is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_output_in_a_read_only_folder(run, tmp_path):
    model(tmp_path, NEURON)
    (tmp_path / "ro").mkdir(mode=0o500)
    assert error(run, "trace", "m.py", "--no-table", "-f", "json", "-o", "ro/g.json") == (
        "cannot write ro/g.json: Permission denied")
    assert list((tmp_path / "ro").iterdir()) == []


def test_output_path_is_a_folder(run, tmp_path):
    model(tmp_path, NEURON)
    (tmp_path / "figs").mkdir()
    assert error(run, "trace", "m.py", "--no-table", "-f", "json", "-o", "figs") == "cannot write figs: it is a folder"


def test_never_overwrites_a_file_gradviz_did_not_write(run, tmp_path):
    model(tmp_path, NEURON)
    (tmp_path / "g.json").write_text('{"mine": true}')
    assert error(run, "trace", "m.py", "--no-table", "-f", "json", "-o", "g.json") == (
        "g.json exists and was not written by gradviz; use --force to overwrite it")
    assert (tmp_path / "g.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "m.py"]  # no temporary file left behind
    code, _, err = run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json", "--force")
    assert (code, err) == (0, "")
    assert json.loads((tmp_path / "g.json").read_text())["schema"] == "gradviz/graph@2"


def test_overwrites_its_own_file_and_touches_nothing_else(run, tmp_path):
    model(tmp_path, NEURON)
    assert run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json")[0] == 0
    model(tmp_path, NEURON.replace("b = 1.0", "b = 2.0"))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name != "g.json"}
    assert run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json")[0] == 0
    assert Graph.from_json((tmp_path / "g.json").read_bytes()).output_value == 7.0
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name != "g.json"} == before
    assert oct((tmp_path / "g.json").stat().st_mode & 0o777) != oct(0o600)  # a normal file, not mkstemp's private one


@pytest.mark.parametrize("fmt, data", [
    ("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n'),
    ("dot", b"digraph G { a -> b }\n"),
    ("mermaid", b"flowchart LR\n  a --> b\n"),
    ("png", None),
    ("pdf", b"%PDF-1.4\n%%EOF\n"),
])
def test_every_format_carries_the_mark(tmp_path, fmt, data):
    data = data or tiny_png()
    path = tmp_path / f"g.{fmt}"
    path.write_bytes(data)
    assert not written_by_gradviz(path)
    marked = mark(fmt, data)
    path.write_bytes(marked)
    assert written_by_gradviz(path)
    if fmt == "svg":
        import xml.etree.ElementTree as ET
        assert ET.fromstring(marked).tag == "{http://www.w3.org/2000/svg}svg"  # still well-formed XML
    if fmt == "png":
        chunks = png_chunks(marked)
        assert [c[0] for c in chunks] == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
        assert chunks[1][1] == b"Software\0" + MARK


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00\x80"))
            + _chunk(b"IEND", b""))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, body) of every chunk, checking each length and CRC as a PNG reader does."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        assert struct.unpack(">I", data[at + 8 + n:at + 12 + n])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + n
    return chunks


# -- flagged, not failing -------------------------------------------------------------------------------

NAN_MODEL = "import numpy as np\ndef forward(x=0.0, y=2.0):\n    z = np.log(x)\n    return z * y\n"


def test_nan_and_inf_are_a_warning_not_an_error(run, tmp_path):
    model(tmp_path, NAN_MODEL)
    code, out, err = run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json")
    assert code == 0
    # z = log 0 = -inf; z*y = -inf; ∂/∂x = y/x = inf; ∂/∂y = z = -inf; ∂/∂z = y = 2 is finite
    assert err == ("gradviz: warning: NaN or inf in 4 values or gradients: gradient of x is inf; "
                   "gradient of y is -inf; value of z is -inf (and 1 more)\n")
    saved = Graph.from_json((tmp_path / "g.json").read_bytes()).to_dict()
    assert {n["label"]: n["grad"] for n in saved["nodes"] if n["kind"] == "leaf"} == {"x": "inf", "y": "-inf"}


def test_strict_makes_a_warning_exit_3(run, tmp_path):
    model(tmp_path, NAN_MODEL)
    code, _, err = run("trace", "m.py", "--no-table", "--strict")
    assert code == 3
    assert err.startswith("gradviz: warning: NaN or inf in 4 values or gradients")


def test_non_differentiable_point_is_flagged_with_its_convention(run, tmp_path):
    model(tmp_path, "def forward(x=0.0):\n    r = max(x, 0)\n    return r\n")
    code, out, err = run("trace", "m.py", "--no-table", "-f", "json", "-o", "g.json")
    assert code == 0
    assert err == ("gradviz: warning: not differentiable at r (∂max(x,y)/∂x = 1 if x > y else 0): a tie, or "
                   "exactly at a kink, where the rule gives 0, so the local partial there is taken as 0\n")
    saved = Graph.from_json((tmp_path / "g.json").read_bytes()).to_dict()
    assert [n["label"] for n in saved["nodes"] if n["nondiff"]] == ["r"]
    assert [n["grad"] for n in saved["nodes"] if n["label"] == "x"] == [0.0]


def test_a_row_max_tie_quotes_the_rule_of_max_not_relu(run, tmp_path):
    model(tmp_path, "import numpy as np\ndef forward(x=np.array([[1.0, 2.0, 2.0]])):\n"
                    "    return np.sum(x - np.max(x, axis=1, keepdims=True))\n")
    code, out, err = run("trace", "m.py", "--granularity", "tensor", "--no-table", "-f", "none")
    assert code == 0
    assert "(∂max(x₁…xₙ)/∂xᵢ = 1 if xᵢ is the largest else 0)" in err and "max(x,y)" not in err


# -- gradviz's own failures ---------------------------------------------------------------------------

def test_internal_error_is_one_line_and_exit_1(run, tmp_path, monkeypatch):
    model(tmp_path, NEURON)
    monkeypatch.setattr(gradviz.graph.Graph, "warnings", lambda self: 1 / 0)
    code, _, err = run("trace", "m.py", "--no-table")
    assert code == 1
    assert err == ("gradviz: internal error: ZeroDivisionError: division by zero "
                   "(run with --debug for the traceback)\n")


def test_debug_shows_the_traceback_of_an_internal_error(tmp_path, monkeypatch):
    model(tmp_path, NEURON)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gradviz.graph.Graph, "warnings", lambda self: 1 / 0)
    monkeypatch.setattr(sys, "argv", ["gradviz", "--debug", "trace", "m.py", "--no-table"])
    with pytest.raises(ZeroDivisionError):
        cli.main()


# -- render: a saved graph is data only ------------------------------------------------------------------

def saved_neuron(tmp_path: Path) -> dict:
    return gradviz.trace_file(REPO / "samples" / "neuron.py", granularity="scalar").to_dict()


def test_render_round_trips_a_saved_graph(run, tmp_path):
    d = saved_neuron(tmp_path)
    (tmp_path / "n.json").write_text(json.dumps(d))
    code, out, err = run("render", "n.json", "-f", "json", "-o", "again.json")
    assert (code, out, err) == (0, "wrote again.json\n", "")
    assert Graph.from_json((tmp_path / "again.json").read_bytes()).to_dict() == d


def test_render_runs_no_code(run, tmp_path):
    """A JSON naming a model file that would leave a trace if it ran: render reads it as data only."""
    model(tmp_path, "open('ran', 'w').write('x')\ndef forward(x=1.0):\n    return x\n", name="evil.py")
    d = saved_neuron(tmp_path)
    d["source"] = "evil.py:forward"
    d["nodes"][0]["label"] = "__import__('os').system('touch ran')"
    (tmp_path / "n.json").write_text(json.dumps(d))
    assert run("render", "n.json", "-f", "json", "-o", "out.json")[0] == 0
    assert not (tmp_path / "ran").exists()
    saved = Graph.from_json((tmp_path / "out.json").read_bytes()).to_dict()
    assert saved["nodes"][0]["label"] == "__import__('os').system('touch ran')"


def bad_graph(change) -> str:
    d = gradviz.trace(lambda x, y: x * y + x, granularity="scalar", x=2.0, y=3.0).to_dict()
    change(d)
    return json.dumps(d)


@pytest.mark.parametrize("text, message", [
    ("", "g.json:1: not valid JSON: Expecting value"),
    ("{\"schema\": ", "g.json:1: not valid JSON: Expecting value"),
    ("[1, 2]", "g.json: not a gradviz graph (expected a JSON object)"),
    ('{"schema": "other/thing@1"}',
     "g.json: not a gradviz graph (schema 'other/thing@1', expected 'gradviz/graph@2' or 'gradviz/graph@1')"),
    ("[" * 100_000 + "]" * 100_000, "g.json: not a gradviz graph (nested too deeply)"),
    (bad_graph(lambda d: d.update(granularity="fine")),
     "g.json: granularity: expected 'scalar' or 'tensor', not 'fine'"),
    (bad_graph(lambda d: d.update(nodes={})), "g.json: nodes/edges: expected two lists"),
    (bad_graph(lambda d: d["nodes"][1].pop("value")), "g.json: nodes[1].value: missing"),
    (bad_graph(lambda d: d["nodes"][1].update(value="1e3")),
     "g.json: nodes[1].value: expected a number or a rectangular list of numbers"),
    (bad_graph(lambda d: d["nodes"][1].update(value=[1.0, 2.0], shape=[2])),
     "g.json: nodes[1].value: expected a number (the graph is split into scalars)"),
    (bad_graph(lambda d: d["nodes"][1].update(shape=[-1])), "g.json: nodes[1].shape: expected a list of sizes"),
    (bad_graph(lambda d: d["nodes"][1].update(label={"a": 1})), "g.json: nodes[1].label: unexpected dict {'a': 1}"),
    (bad_graph(lambda d: d["nodes"][1].update(kind="evil")),
     "g.json: nodes[1].kind: expected 'leaf', 'const' or 'op', not 'evil'"),
    (bad_graph(lambda d: d["nodes"][1].update(id="n0")), "g.json: nodes[1]: id 'n0' is used twice"),
    (bad_graph(lambda d: d["edges"][0].update(src="n99")), "g.json: edges[0]: no node with id 'n99'"),
    (bad_graph(lambda d: d["edges"][0].update(src=d["edges"][0]["dst"])),
     "g.json: edges[0]: edges must run from an earlier node to a later one, grouped by their dst in node order, "
     "as gradviz writes them"),
    (bad_graph(lambda d: d["edges"][0].update(arg=True)), "g.json: edges[0].arg: unexpected bool True"),
    (bad_graph(lambda d: d.update(output="n77")), "g.json: output: no node with id 'n77'"),
    (bad_graph(lambda d: d.update(output=[["n0"], []])),
     "g.json: output: expected a node id or a rectangular list of node ids"),
])
def test_render_of_a_malformed_json(run, tmp_path, text, message):
    (tmp_path / "g.json").write_text(text)
    assert error(run, "render", "g.json") == message
    assert not (tmp_path / "out").exists()


def test_render_of_a_missing_file(run):
    assert error(run, "render", "gone.json") == "no such file: gone.json"


def test_render_of_a_folder(run, tmp_path):
    (tmp_path / "saved").mkdir()
    assert error(run, "render", "saved") == "saved is a folder, not a saved graph"


def test_render_of_binary_data(run, tmp_path):
    (tmp_path / "g.json").write_bytes(b"\xff\xfe\x00{")
    assert error(run, "render", "g.json") == "g.json: not a gradviz graph (it is not UTF-8 text)"


def test_render_warns_about_what_the_saved_graph_holds(run, tmp_path):
    (tmp_path / "g.json").write_text(bad_graph(lambda d: d["nodes"][0].update(grad="nan")))
    code, out, err = run("render", "g.json", "-f", "json", "-o", "again.json", "--strict")
    assert code == 3
    assert err == "gradviz: warning: NaN or inf in 1 values or gradients: gradient of x is nan\n"


# -- labels are shown literally ----------------------------------------------------------------------

HOSTILE = '<b>x</b> & "q" {a|b}\n[bold]loud[/bold] \x1b[31mred'


def test_hostile_labels_survive_json_and_show_literally_in_tables(run, tmp_path):
    d = saved_neuron(tmp_path)
    d["nodes"][0]["label"] = HOSTILE
    first = d["edges"][0]
    first["rule"] = "[red]∂[/red] <i>"
    # an operation this version does not know (a newer gradviz saved it): its rule text is shown as saved
    next(n for n in d["nodes"] if n["id"] == first["dst"])["op"] = "[b]op[/b]"
    (tmp_path / "g.json").write_text(json.dumps(d))
    assert run("render", "g.json", "-f", "json", "-o", "again.json")[0] == 0
    graph = Graph.from_json((tmp_path / "again.json").read_bytes())
    assert graph.label(0) == HOSTILE and graph.rule(graph.edges[0]) == "[red]∂[/red] <i>"
    console = Console(record=True, width=300, force_terminal=False)
    print_tables(graph, console)
    text = console.export_text()
    assert '<b>x</b> & "q" {a|b}\\n[bold]loud[/bold] \\x1b[31mred' in text
    assert "[red]∂[/red] <i>" in text and "[b]op[/b]" in text
    assert "\x1b" not in text


def test_error_messages_stay_on_one_line(run, tmp_path):
    assert error(run, "trace", "a\nb\x1b[2J.py") == "no such model file: a\\nb\\x1b[2J.py"


# -- a real process: Ctrl-C, and errors without a traceback ---------------------------------------------

def gradviz_process(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.Popen([sys.executable, "-m", "gradviz", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_process_syntax_error(tmp_path):
    model(tmp_path, "def forward(x=1.0):\n    return x +\n")
    p = gradviz_process("trace", "m.py", cwd=tmp_path)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert err.startswith("gradviz: error: m.py:2: SyntaxError: ") and err.count("\n") == 1


def test_process_leaf_without_value(tmp_path):
    model(tmp_path, "def forward(x):\n    return x\n")
    p = gradviz_process("trace", "m.py", cwd=tmp_path)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out) == (2, "")
    assert err == ("gradviz: error: m.py: leaf 'x' has no value: give forward's parameter a default, "
                   "define a global x = ..., or pass --set x=VALUE\n")


def test_ctrl_c_during_a_trace_exits_130_and_leaves_no_file(tmp_path):
    model(tmp_path, "import pathlib\ndef forward(x=1.0):\n    pathlib.Path('started').touch()\n"
                    "    while True:\n        x = x * 1.0\n")
    p = gradviz_process("trace", "m.py", "-f", "json", "-o", "out/g.json", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert err == "gradviz: interrupted\n"
    assert not (tmp_path / "out").exists()


def test_render_draws_the_figure_trace_drew(run, tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET
    monkeypatch.setenv("GRADVIZ_RENDERER", "embedded")
    model(tmp_path, NEURON)
    assert run("trace", "m.py", "--no-table", "-f", "svg,json", "--wrt", "w")[0] == 0
    (tmp_path / "out" / "m.svg").rename(tmp_path / "traced.svg")
    code, out, err = run("render", "out/m.json", "--wrt", "w")
    assert (code, out, err) == (0, "wrote out/m.svg\n", "")

    def texts(name: str) -> list[str]:
        root = ET.parse(tmp_path / name).getroot()
        return sorted("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert texts("out/m.svg") == texts("traced.svg")
    assert "∂(x[0]*w[0])/∂w[0] = x[0] = 1" in texts("out/m.svg")


def test_a_module_the_model_imports_leaves_no_cache_behind(run, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    model(tmp_path, "def double(v):\n    return v * 2\n", name="gradviz_test_helper.py")
    model(tmp_path, "from gradviz_test_helper import double\ndef forward(x=1.5):\n    return double(x)\n")
    code, out, err = run("trace", "m.py", "-f", "none")
    assert (code, err) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradviz_test_helper.py", "m.py"]


def test_format_none_writes_nothing(run, tmp_path):
    model(tmp_path, NEURON)
    assert run("trace", "m.py", "--no-table", "-f", "none") == (0, "", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]
