"""Tracing: what is recorded, how values are labelled, both granularities, and random expressions whose
gradients must match central finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import gradviz


def neuron(x, w, b):
    z = np.dot(x, w) + b
    return np.maximum(z, 0)


NEURON = dict(x=[1.0, -2.0, 3.0], w=[-3.0, -1.0, 2.0], b=1.0)


def test_scalar_neuron_is_the_textbook_picture():
    g = gradviz.trace(neuron, granularity="scalar", **NEURON)
    ops = [(g.label(n.id), n.op) for n in g.nodes if n.kind == "op"]
    assert ops == [("x[0]*w[0]", "mul"), ("x[1]*w[1]", "mul"), ("x[2]*w[2]", "mul"), ("z", "sum"),
                   ("neuron", "maximum")]
    (z,) = [n for n in g.nodes if n.name == "z"]
    assert [g.label(e.src) for e in g.in_edges(z.id)] == ["x[0]*w[0]", "x[1]*w[1]", "x[2]*w[2]", "b"]
    assert [g.label(i) for i, n in enumerate(g.nodes) if n.kind == "leaf"] == [
        "x[0]", "x[1]", "x[2]", "w[0]", "w[1]", "w[2]", "b"]


def test_tensor_neuron_has_one_node_per_numpy_operation_with_shapes():
    g = gradviz.trace(neuron, granularity="tensor", **NEURON)
    assert [(g.label(n.id), n.op, n.shape) for n in g.nodes if n.kind == "op"] == [
        ("x@w", "dot", ()), ("z", "add", ()), ("neuron", "maximum", ())]
    assert g.output_value == 6.0


def test_auto_granularity_splits_small_graphs_and_keeps_large_ones_whole():
    assert gradviz.trace(neuron, **NEURON).granularity == "scalar"

    def layer(X, W):
        return np.sum(np.maximum(X @ W, 0))

    g = gradviz.trace(layer, X=np.ones((20, 10)), W=np.full((10, 5), 0.1))
    assert g.granularity == "tensor"  # 20·10·5 products alone exceed 300 nodes
    np.testing.assert_allclose(g.grad("W"), np.full((10, 5), 20.0))


def test_python_builtins_max_min_sum_abs_are_recorded():
    def f(x, y):
        return max(x, 0) + min(x, y) + sum([x, y, x]) + abs(y)

    g = gradviz.trace(f, x=2.0, y=-3.0)
    # d/dx: 1 (x > 0) + 0 (y is the min) + 2 (x twice in the sum) + 0 = 3; d/dy: 1 + 1 + sign(y) = 1
    assert g.grad("x") == 3.0 and g.grad("y") == 1.0
    assert {"maximum", "minimum", "abs"} <= {n.op for n in g.nodes}


def test_relu_at_zero_takes_zero_and_is_flagged():
    g = gradviz.trace(lambda x: max(x, 0), x=0.0)
    assert g.grad("x") == 0.0
    assert [n.nondiff for n in g.nodes if n.op == "maximum"] == [True]


def test_labels_name_bound_values_and_expressions_for_the_rest():
    def f(a, b):
        s = a + b
        return s * (b + 1.0)

    g = gradviz.trace(f, a=2.0, b=1.0)
    # the returned value, never bound, is called after the function that returned it
    assert sorted(g.label(n.id) for n in g.nodes if n.kind == "op") == ["b+1", "f", "s"]
    assert g.grad("a") == 2.0 and g.grad("b") == 5.0  # (b+1) + (a+b) = 2 + 3


def _double(v):
    return v * 2.0


def _same(v):
    return v


class _Scale:
    def __init__(self):
        self.k = 3.0

    def nothing(self, x):
        return x

    def forward(self, x):
        self.out = x * self.k
        return self.out


def test_names_and_layers_are_read_from_the_frames_at_each_operation():
    """A helper that computes names its parameter (v); one that only passes a value on records nothing, so the
    caller's variable names the value; a method call that computes nothing is not counted as a call."""
    scale = _Scale()

    def f(a):
        d = _double(a + 1.0)
        e = _same(d * a)
        scale.nothing(e)
        y = scale.forward(e)
        return y + 0.5

    g = gradviz.trace(f, granularity="scalar", a=2.0)
    ops = [(g.label(n.id), g.cluster_of(n.id)) for n in g.nodes if n.kind == "op"]
    # the output, last: the function's name
    assert ops == [("v", None), ("d", None), ("e", None), ("scale.out", ("scale", 0)), ("f", None)]
    assert g.clusters == [("scale", 0)]
    assert g.output_value == ((2.0 + 1.0) * 2.0 * 2.0) * 3.0 + 0.5
    assert g.grad("a") == 30.0  # y = 3·2(a+1)·a + 0.5 = 6a² + 6a + 0.5: dy/da = 12a + 6 = 30 at a = 2


def test_scalar_indexing_picks_elements_without_new_nodes_and_tensor_indexing_is_one_node():
    def f(x):
        return x[0] * x[2]

    g = gradviz.trace(f, granularity="scalar", x=[2.0, 3.0, 5.0])
    assert [n.op for n in g.nodes if n.kind == "op"] == ["mul"]
    assert g.grad("x").tolist() == [5.0, 0.0, 2.0]
    g = gradviz.trace(f, granularity="tensor", x=[2.0, 3.0, 5.0])
    assert [g.label(n.id) for n in g.nodes if n.op == "getitem"] == ["x[0]", "x[2]"]
    assert g.grad("x").tolist() == [5.0, 0.0, 2.0]


def test_integer_array_indexing_as_in_categorical_cross_entropy():
    targets = np.array([2, 0])

    def f(p):
        return np.mean(-np.log(p[range(len(p)), targets]))

    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    for granularity in ("scalar", "tensor"):
        g = gradviz.trace(f, granularity=granularity, p=p)
        expected = np.zeros_like(p)
        expected[0, 2], expected[1, 0] = -1 / (2 * 0.5), -1 / (2 * 0.6)
        np.testing.assert_allclose(g.grad("p"), expected)


def test_unsupported_numpy_function_is_named():
    with pytest.raises(gradviz.GradvizError, match=r"np\.linalg\.eigvals is not supported.*gradviz ops"):
        gradviz.trace(lambda A: np.sum(np.linalg.eigvals(A)), A=np.eye(2))
    with pytest.raises(gradviz.GradvizError, match=r"np\.spacing is not supported"):
        gradviz.trace(lambda x: np.spacing(x), x=1.0)


def test_comparisons_and_argmax_carry_no_gradient():
    def f(x):
        mask = x > 0
        return np.sum(x * mask) + np.argmax(x)

    g = gradviz.trace(f, granularity="tensor", x=[1.0, -2.0, 3.0])
    assert g.grad("x").tolist() == [1.0, 0.0, 1.0]
    assert g.output_value == 4.0 + 2.0


def test_float_of_a_traced_value_is_a_marked_cut_not_a_silent_disconnect():
    graph = gradviz.trace(lambda x: x * float(x), x=3.0)
    assert graph.output_value == 9.0
    assert graph.grad("x") == 3.0  # float(x) is the constant 3 from there on: ∂(x·3)/∂x
    (warning,) = graph.warnings()
    assert "float() of x: used as a plain number, so no gradient flows back through it" in warning
    assert [n.op for n in graph.nodes].count("cut") == 1


# -- random expressions against finite differences --------------------------------------------------

# Each step combines earlier values (so subexpressions are shared and x*x-style reuse happens).
UNARY = {
    "neg": lambda a: -a,
    "tanh": np.tanh,
    "exp_tanh": lambda a: np.exp(np.tanh(a)),
    "log1p_sq": lambda a: np.log(a * a + 1.0),
    "sqrt1p_sq": lambda a: np.sqrt(a * a + 1.0),
    "square": np.square,
    "cube": lambda a: a ** 3,
    "abs": abs,
    "scale": lambda a: 0.5 * a,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "max": np.maximum,
    "min": np.minimum,
    "pymax": lambda a, b: a if a.ndim else max(a, b),
}
ARRAY = {  # shape-preserving array operations, for vector (3,) and matrix (2, 3) values
    "sum_keep": lambda a, b: np.sum(a, axis=-1, keepdims=True) * b,
    "mean_keep": lambda a, b: np.mean(a, axis=0, keepdims=True) + b,
    "max_keep": lambda a, b: np.max(a, axis=-1, keepdims=True) - b,
    "reverse": lambda a, b: a[..., ::-1] * b,
    "matmul": lambda a, b: (a @ b.T @ a) if a.ndim == 2 else np.dot(a, b) * a,
    "transpose": lambda a, b: a.T.T + b.reshape(b.shape),
    "clip": lambda a, b: np.clip(a, -1.5, 1.5) * b,
}

grid = st.integers(-16, 16).filter(lambda i: i != 0).map(lambda i: i / 8)  # dyadic: ties are exact


@st.composite
def programs(draw):
    shape = draw(st.sampled_from([(), (3,), (2, 3)]))
    leaves = [np.array(draw(st.lists(grid, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                       dtype=float).reshape(shape) for _ in range(3)]
    table = {**UNARY, **BINARY, **(ARRAY if shape else {})}
    steps = []
    for k in range(draw(st.integers(1, 7))):
        name = draw(st.sampled_from(sorted(table)))
        steps.append((name, draw(st.integers(0, 2 + k)), draw(st.integers(0, 2 + k))))
    return leaves, steps


def build(steps):
    table = {**UNARY, **BINARY, **ARRAY}

    def f(a, b, c):
        values = [a, b, c]
        for name, i, j in steps:
            fn = table[name]
            values.append(fn(values[i]) if name in UNARY else fn(values[i], values[j]))
        return np.sum(values[-1] * values[-1]) if values[-1].ndim else values[-1] * values[-1]
    return f


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from(["scalar", "tensor"]))
def test_random_expressions_match_central_finite_differences(program, granularity):
    leaves, steps = program
    f = build(steps)
    g = gradviz.trace(f, granularity=granularity, a=leaves[0], b=leaves[1], c=leaves[2])
    assume(not any(n.nondiff for n in g.nodes))  # at a kink the derivative does not exist
    assert np.isclose(g.output_value, f(*leaves))
    h = 1e-6
    for name, leaf in zip("abc", leaves, strict=True):
        numeric = np.zeros_like(leaf)
        for idx in np.ndindex(leaf.shape):
            up = [x.copy() for x in leaves]
            down = [x.copy() for x in leaves]
            up["abc".index(name)][idx] += h
            down["abc".index(name)][idx] -= h
            numeric[idx] = (f(*up) - f(*down)) / (2 * h)
        np.testing.assert_allclose(g.grad(name), numeric, rtol=1e-5, atol=1e-5)
