"""gradviz check: backward's gradients against central finite differences."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gradviz.check import check
from gradviz.loader import load

from conftest import SAMPLES, run_cli

SIGMOID = """
    \"\"\"A sigmoid neuron with the sigmoid written as a custom operation.\"\"\"
    import numpy as np
    from gradviz import custom_op

    @custom_op(rule="σ(x)·(1−σ(x))", partials=lambda x, out: {partial})
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    x = np.array([1.0, -2.0, 3.0])
    w = np.array([-0.3, -0.1, 0.2])
    b = 0.1

    def forward(x, w, b):
        z = np.dot(x, w) + b
        return sigmoid(z)
"""


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_sample_passes(path, granularity):
    m = load(str(path))
    report = check(m.fn, m.leaves, granularity, state=m.state)
    assert report.passed
    kept = {name: np.asarray(places[0][0][places[0][1]]).size for name, places in m.state.params.items()}
    assert len(report.inputs) == sum(v.size for v in m.leaves.values()) + sum(kept.values())
    # spiral_mlp's samples at r = 0 are the point (0, 0), where a hidden unit's pre-activation is its bias,
    # exactly 0: a ReLU at its kink, a warning; everywhere else backward and finite differences agree
    ok = [c for c in report.inputs if c.status == "ok"]
    assert len(ok) == len(report.inputs) or (path.name == "spiral_mlp.py" and
                                             {c.status for c in report.inputs} == {"ok", "nondiff"})
    assert all(c.rel_err < 1e-6 for c in ok if abs(c.analytic) > 1e-3)  # tiny ones are held by atol


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_cli_exits_0_on_every_sample(path):
    out = run_cli("check", path, "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["passed"] is True


def test_cli_exit_0_and_table():
    out = run_cli("check", SAMPLES / "product.py")
    assert out.returncode == 0, out.stderr
    # f = x·y at x = 2, y = 3: ∂f/∂x = 3, ∂f/∂y = 2
    lines = out.stdout.splitlines()
    body = lines[lines.index(next(line for line in lines if line.startswith("input"))) + 1:]
    rows = {line.split()[0]: line.split()[1] for line in body if line.split()[-1:] == ["ok"]}
    assert rows == {"x": "3", "y": "2"}
    assert "✓ all 2 gradients agree" in out.stdout


def test_right_custom_derivative_passes(model):
    out = run_cli("check", model(SIGMOID.replace("{partial}", "out * (1 - out)")), "--format", "json")
    assert out.returncode == 0, out.stdout
    data = json.loads(out.stdout)
    assert data["passed"] is True
    assert [(o["op"], o["input"], o["status"]) for o in data["ops"]] == [("sigmoid", "x", "ok")]


def test_wrong_custom_derivative_fails_naming_op_and_input(model):
    path = model(SIGMOID.replace("{partial}", "out * (1 + out)"))
    out = run_cli("check", path)
    assert out.returncode == 1
    # z = x·w + b = -0.3 + 0.2 + 0.6 + 0.1 = 0.6, σ = 0.64566; written σ(1+σ) = 1.06253, true σ(1−σ) = 0.22878
    assert "✗ sigmoid: the written ∂sigmoid/∂x is wrong: it gives 1.06253 at x=0.6, but the function's slope " \
           "there is 0.228784" in " ".join(out.stdout.split())
    data = json.loads(run_cli("check", path, "--format", "json").stdout)
    assert data["passed"] is False
    assert {c["status"] for c in data["inputs"]} == {"mismatch"}
    (op,) = data["ops"]
    assert (op["op"], op["input"], op["status"]) == ("sigmoid", "x", "mismatch")
    assert op["analytic"] == pytest.approx(1.062528372, rel=1e-9)
    assert op["numeric"] == pytest.approx(0.2287842404, rel=1e-8)


def test_wrong_partial_of_second_input_is_named(model):
    path = model("""
        \"\"\"A custom product whose ∂/∂y is written wrong.\"\"\"
        from gradviz import custom_op

        @custom_op(rule=("y", "x + 1"), partials=lambda x, y, out: (y, x + 1))
        def times(x, y):
            return x * y

        def forward(x=2.0, y=5.0):
            return times(x, y)
    """)
    m = load(str(path))
    report = check(m.fn, m.leaves, "scalar")
    assert not report.passed
    assert [(c.op, c.input, c.status) for c in report.ops] == [("times", "x", "ok"), ("times", "y", "mismatch")]
    assert [c.status for c in report.inputs] == ["ok", "mismatch"]  # ∂/∂x = y = 5 right; ∂/∂y = 3 ≠ 2


def test_kink_warns_but_passes(model):
    # ReLU at exactly 0: backward takes the slope as 0, the centred difference sees (h − 0)/2h = 0.5
    path = model("""
        \"\"\"ReLU at its kink.\"\"\"
        def forward(x=0.0):
            return max(x, 0)
    """)
    m = load(str(path))
    report = check(m.fn, m.leaves, "scalar")
    (c,) = report.inputs
    assert (c.analytic, c.status) == (0.0, "nondiff") and c.numeric == pytest.approx(0.5)
    assert report.passed
    out = run_cli("check", path)
    assert out.returncode == 0 and "not differentiable" in out.stdout


def test_tolerance_options(model):
    # f = x³ at x = 1 with --atol 0 --rtol 1e-14: the finite difference (error ≈ h² = 1e-12) no longer agrees
    path = model("""
        \"\"\"cube\"\"\"
        def forward(x=1.0):
            return x ** 3
    """)
    assert run_cli("check", path).returncode == 0
    assert run_cli("check", path, "--rtol", "1e-14", "--atol", "0").returncode == 1


def test_leaves_the_model_keeps_are_moved_where_it_keeps_them(model):
    path = model("""
        \"\"\"A layer object holding its weights, as the NNFS book writes it.\"\"\"
        import numpy as np

        class Layer:
            def __init__(self):
                self.weights = np.array([0.5, -1.0])

            def forward(self, x):
                self.output = x * self.weights

        layer = Layer()

        def forward(x=2.0):
            layer.forward(x)
            return np.sum(layer.output)
    """)
    # out = x·(w0 + w1): ∂out/∂x = w0 + w1 = -0.5, ∂out/∂w = [x, x] = [2, 2]
    data = json.loads(run_cli("check", path, "--format", "json").stdout)
    assert data["passed"] is True
    got = {c["input"]: c["numeric"] for c in data["inputs"]}
    assert got == pytest.approx({"x": -0.5, "layer.weights[0]": 2.0, "layer.weights[1]": 2.0}, rel=1e-8)
    out = run_cli("explain", path, "--wrt", "layer.weights[1]", "--format", "json")
    assert json.loads(out.stdout)["total"] == 2.0, out.stderr
