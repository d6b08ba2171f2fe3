"""gradviz.loader: what a model file's parameters become."""
from __future__ import annotations

import numpy as np

from gradviz import trace_file
from gradviz.loader import load

from conftest import run_cli

INTEGER_NEURON = """
    import numpy as np
    x = np.array([1, -2, 3])
    w = np.array([-3, -1, 2])
    b = 1

    def forward(x, w, b):
        z = np.dot(x, w) + b
        return np.maximum(z, 0)
"""


def test_integer_parameters_are_float_leaves_with_one_note(model, capsys):
    path = model(INTEGER_NEURON)
    for granularity in ("scalar", "tensor"):
        g = trace_file(path, granularity=granularity)
        # the notes' running example: ∂y/∂x = w, ∂y/∂w = x, ∂y/∂b = 1 (the ReLU is active: x·w + b = 6)
        np.testing.assert_array_equal(g.grad("x"), [-3.0, -1.0, 2.0])
        np.testing.assert_array_equal(g.grad("w"), [1.0, -2.0, 3.0])
        assert g.grad("b") == 1.0
        assert g.leaf_value("x").dtype == np.float64
        assert capsys.readouterr().err == "gradviz: note: x, w, b: integer values taken as float64\n"


def test_the_cli_says_it_once_on_stderr(model):
    r = run_cli("trace", model(INTEGER_NEURON), "--no-table", "-f", "none")
    assert r.returncode == 0
    assert r.stderr == "gradviz: note: x, w, b: integer values taken as float64\n"


def test_integer_class_targets_used_as_indices_stay_constants(model, capsys):
    path = model("""
        import numpy as np
        logits = np.array([[2.0, 1.0], [0.5, 1.5]])
        y = np.array([0, 1])

        def forward(logits, y):
            return np.sum(logits[range(len(logits)), y])
    """)
    g = trace_file(path, granularity="tensor")
    assert list(g.leaves) == ["logits"]
    np.testing.assert_array_equal(g.grad("logits"), [[1.0, 0.0], [0.0, 1.0]])  # picks logits[0,0], logits[1,1]
    assert capsys.readouterr().err == ""


def test_probing_for_indices_leaves_the_models_objects_as_they_were(model):
    path = model("""
        import numpy as np
        class Layer:
            def forward(self, x):
                self.output = x * 2.0
        layer = Layer()
        y = np.array([0, 1])

        def forward(x=np.array([1.0, 2.0]), y=y):
            layer.forward(x)
            return layer.output[y]
    """)
    m = load(str(path))  # calls forward once on plain values to find that y is an index
    assert list(m.leaves) == ["x"] and list(m.state.constants) == ["y"]
    assert not hasattr(m.fn.__globals__["layer"], "output")
