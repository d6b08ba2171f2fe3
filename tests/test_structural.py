"""Functions that only move elements, arrays built from traced values, writes into arrays and the Python
idioms of from-scratch code: every gradient against central finite differences at both granularities
(gradviz.check), on random shapes, axes, repeated indices and overlapping writes drawn by hypothesis."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gradviz
from gradviz.check import check
from gradviz.errors import ModelError

GRANULARITIES = ("scalar", "tensor")


def agrees(fn, **leaves) -> None:
    """fn's gradient agrees with central differences for every leaf element, at both granularities."""
    values = {k: np.asarray(v, dtype=float) for k, v in leaves.items()}
    for granularity in GRANULARITIES:
        report = check(fn, values, granularity)
        bad = [(c.input, c.analytic, c.numeric) for c in report.inputs if c.status != "ok"]
        assert not bad, (granularity, bad)
        assert len(report.inputs) == sum(v.size for v in values.values())


def weighted(y) -> float:
    """A loss that gives every element of y its own weight, so a misplaced element shows in the gradient."""
    w = np.cos(np.arange(np.size(y), dtype=float) + 0.3).reshape(np.shape(y))
    return np.sum(y * w + 0.1 * y * y)


shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)


def _array(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).round(3)


MOVES = {  # name: (the call on one array, needs ndim ≥)
    "concatenate": (lambda x, a: np.concatenate([x, x[::-1]], axis=a % x.ndim), 1),
    "stack": (lambda x, a: np.stack([x, 2 * x], axis=a % (x.ndim + 1)), 1),
    "vstack": (lambda x, a: np.vstack([x, x]), 1),
    "hstack": (lambda x, a: np.hstack([x, x * 3]), 1),
    "column_stack": (lambda x, a: np.column_stack([x, x]), 1),
    "split": (lambda x, a: np.split(x, x.shape[a % x.ndim], axis=a % x.ndim)[-1], 1),
    "array_split": (lambda x, a: np.array_split(x, 2, axis=a % x.ndim)[0], 1),
    "tile": (lambda x, a: np.tile(x, (2,) * (a % 2 + 1)), 1),
    "repeat": (lambda x, a: np.repeat(x, 2, axis=a % x.ndim), 1),
    "broadcast_to": (lambda x, a: np.broadcast_to(x, (2,) + x.shape), 1),
    "flip": (lambda x, a: np.flip(x, axis=a % x.ndim), 1),
    "fliplr": (lambda x, a: np.fliplr(x), 2),
    "roll": (lambda x, a: np.roll(x, a - 1, axis=a % x.ndim), 1),
    "pad": (lambda x, a: np.pad(x, 1, constant_values=0.5 * a), 1),
    "pad edge": (lambda x, a: np.pad(x, (0, 2), mode="edge"), 1),
    "diag": (lambda x, a: np.diag(np.ravel(x), k=a - 1), 1),
    "diagonal": (lambda x, a: np.diagonal(x), 2),
    "triu": (lambda x, a: np.triu(x, k=a - 1), 2),
    "tril": (lambda x, a: np.tril(x), 2),
    "squeeze": (lambda x, a: np.squeeze(x[None]), 1),
    "expand_dims": (lambda x, a: np.expand_dims(x, a % (x.ndim + 1)), 1),
    "swapaxes": (lambda x, a: np.swapaxes(x, 0, -1), 1),
    "moveaxis": (lambda x, a: np.moveaxis(x, 0, -1), 1),
    "ravel": (lambda x, a: x.ravel(), 1),
    "flatten": (lambda x, a: x.flatten() * 1.0, 1),
    "take": (lambda x, a: np.take(x, [0, -1, 0], axis=a % x.ndim), 1),
    "take_along_axis": (lambda x, a: np.take_along_axis(x, np.zeros_like(x, dtype=int), axis=a % x.ndim), 1),
    "x[None]": (lambda x, a: x[None], 1),
    "x[..., i]": (lambda x, a: x[..., -1], 1),
    "mask": (lambda x, a: x[x >= x.mean()], 1),
    "reshape F": (lambda x, a: x.reshape(-1, order="F"), 1),
    "transpose": (lambda x, a: x.T, 1),
    "sort": (lambda x, a: np.sort(x, axis=a % x.ndim), 1),
    "getitem slice": (lambda x, a: x[::2], 1),
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(MOVES)), shapes, st.integers(0, 2), st.integers(0, 10**6))
def test_every_function_that_moves_elements(name, shape, a, seed):
    move, ndim = MOVES[name]
    shape = shape + (2,) * max(0, ndim - len(shape))
    agrees(lambda x: weighted(move(x, a)), x=_array(shape, seed))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8), st.integers(0, 10**6))
def test_repeated_fancy_indices_add_up(idx, seed):
    x = _array((4, 2), seed)
    agrees(lambda x: weighted(x[idx]) + weighted(x[idx, [1] * len(idx)]), x=x)
    # x[[1, 1]]: ∂Σ(x[idx])/∂x[i] counts how often i is picked
    graph = gradviz.trace(lambda x: np.sum(x[idx]), granularity="tensor", x=x[:, 0])
    np.testing.assert_allclose(graph.grad("x"), np.bincount(idx, minlength=4))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 4), st.sampled_from(["=", "+=", "*="])),
                min_size=1, max_size=5), st.integers(0, 10**6))
def test_overlapping_writes(writes, seed):
    def model(x, v):
        y = np.zeros(8)
        y[:3] = x
        for start, n, how in writes:
            part = v[:n] / (start + 1)  # bounded: repeated *= of growing parts made the output too large for
            # central differences at h = 1e-6 to resolve the gradient (an error of the check, not of gradviz)
            if how == "=":
                y[start:start + n] = part
            elif how == "+=":
                y[start:start + n] += part
            else:
                y[start:start + n] *= part
        return weighted(y)
    agrees(model, x=_array(3, seed), v=_array(4, seed + 1))


def test_writes_a_model_makes():
    def model(a, b):
        c = a.copy()
        c += b
        c[:, 1:] *= b[:, 1:]
        c[c > 2] = 0
        c /= c.sum(axis=1, keepdims=True)
        d = np.zeros_like(a) + a
        d[0] = b[1]
        e = np.full(3, a[0, 1])  # a traced fill value is written into the new array
        e[1:] += b[0, 1:]
        return weighted(c) + weighted(d) + weighted(e)
    agrees(model, a=[[1.0, 2.0, 3.0], [0.5, 0.2, 0.1]], b=[[0.3, 0.1, 0.7], [0.2, 0.4, 0.6]])


def test_a_write_reaches_the_views_and_a_write_into_a_view_reaches_its_array():
    def model(x):
        a = x.copy()
        v = a[1:]
        v *= 3  # a[1:] is v: both change
        a[0] = a[2] * 2  # v does not hold a[0]
        return np.sum(a * v.sum()) + np.sum(v.T)
    x = np.array([1.0, 2.0, 3.0])
    for granularity in GRANULARITIES:
        graph = gradviz.trace(model, granularity=granularity, x=x)
        a = np.array([18.0, 6.0, 9.0])  # [2·(3·3), 3·2, 3·3]
        np.testing.assert_allclose(graph.output_value, np.sum(a * 15.0) + 15.0)
    agrees(model, x=x)


def test_aliases_see_in_place_writes():
    def model(h):
        hs = {}
        hs[-1] = np.copy(h)
        last = hs[-1]
        last += h  # the dict entry and `last` are one array
        return np.sum(hs[-1] * np.array([1.0, 2.0]))
    graph = gradviz.trace(model, granularity="tensor", h=np.array([1.0, -1.0]))
    np.testing.assert_allclose(graph.output_value, 2.0 * (1.0 - 2.0))
    np.testing.assert_allclose(graph.grad("h"), [2.0, 4.0])


def test_arrays_built_from_traced_values():
    def model(a, b):
        m = np.array([[a, b], [b * a, 1.0]])
        s = np.stack([a, b])
        return weighted(m @ s) + weighted(np.asarray([a, 2.0]))
    agrees(model, a=1.5, b=-0.5)

    def same_or_copy(x):
        a = np.asarray(x)  # x itself
        b = np.array(x)  # a copy: writing into it leaves x as it is
        b[0] = 0.0
        return np.sum(a * 2) + np.sum(b) + np.sum(x)
    for granularity in GRANULARITIES:
        graph = gradviz.trace(same_or_copy, granularity=granularity, x=np.array([1.0, 2.0]))
        assert (graph.output_value, graph.grad("x").tolist()) == (11.0, [3.0, 4.0])


def test_ndarray_methods():
    def model(x):
        return (x.var() + x.std(axis=0).sum() + x.prod() + x.cumsum().sum() + weighted(x.ravel())
                + weighted(x.flatten()) + weighted(x[None].squeeze()) + weighted(x.copy()) + weighted(x.astype(float))
                + sum(x.tolist()[0]) + x.T.sum() * (x.ndim + x.size) + weighted(x.astype(x.dtype))
                + (x[0, 0] * 2 if x[0, 0].item() > 0 else x[0, 0]))  # .item() for control flow: a cut
    agrees(model, x=[[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])


def test_the_math_module_lists_zip_and_sum_of_a_generator():
    def model(xs, w):
        exp_values = [math.e ** x for x in xs]
        base = sum(e for e in exp_values)
        terms = [a * b for a, b in zip(exp_values, w, strict=True)]
        return (-math.log(exp_values[0] / base) + math.sqrt(math.exp(terms[1])) + math.erf(terms[2])
                + math.log1p(math.fabs(w[0])) + math.tanh(w[1]) + math.sin(w[2]) * math.cos(xs[1])
                + math.pow(xs[2], 2) + math.log(base, 10))
    agrees(model, xs=[0.8, 0.21, 0.385], w=[0.5, -0.3, 0.2])


def test_e_and_pi_read_as_themselves_in_labels_and_rules():
    from gradviz.views.format import partial

    g = gradviz.trace(lambda x: math.e ** x + math.pi * x, granularity="scalar", x=2.0)
    assert sorted(g.label(n.id) for n in g.nodes if n.kind == "const") == ["e", "π"]
    rules = {partial(g, e) for e in g.edges if g.nodes[e.src].kind == "leaf"}
    assert rules == {"∂(e**x)/∂x = e^x·ln e", "∂(π*x)/∂x = π"}
    assert g.grad("x") == pytest.approx(math.e ** 2 + math.pi, rel=1e-12)  # e^x·ln e at 2, and π: by hand


def test_a_value_taken_as_a_number_stops_the_gradient_with_one_warning_per_line():
    def model(x, w, stride=2.0):
        n = (x.shape[0] - 2) // stride + 1  # a hyperparameter in disguise
        out = 0.0
        for i in range(int(n)):
            out = out + np.sum(x[i * stride: i * stride + 2] * w)
        if float(out) > 100:
            out = out * 0
        return out
    for granularity in GRANULARITIES:
        graph = gradviz.trace(model, granularity=granularity, x=np.array([1.0, 2, 3, 4, 5]), w=np.array([0.5, -1.0]))
        # windows x[0:2] and x[2:4]: out = 0.5·1 − 2 + 0.5·3 − 4 = −4
        np.testing.assert_allclose(graph.output_value, -4.0)
        np.testing.assert_allclose(graph.grad("x"), [0.5, -1.0, 0.5, -1.0, 0.0])
        np.testing.assert_allclose(graph.grad("w"), [4.0, 6.0])
        np.testing.assert_allclose(graph.grad("stride"), 0.0)
        warnings = [w for w in graph.warnings() if "plain number" in w]
        lines = [w.split(": ")[0].rsplit(":", 1)[1] for w in warnings]
        assert lines == [str(model.__code__.co_firstlineno + k) for k in (1, 4, 5)]
        assert "float() of out" in warnings[2]
        cuts = [n for n in graph.nodes if n.op == "cut"]
        assert cuts and all(graph.in_edges(n.id)[0].local == 0.0 for n in cuts)
        assert gradviz.Graph.from_json(graph.to_json()).warnings() == graph.warnings()  # a saved graph tells too


def test_refused_cleanly():
    def plain_target(x):
        a = np.array([0.0, 1.0])
        a[0] = x
        return np.sum(a)
    with pytest.raises(ModelError, match=r":\d+: writing a traced value into a plain NumPy array"):
        gradviz.trace(plain_target, x=2.0)

    def mean_pad(x):
        return np.sum(np.pad(x, 1, mode="mean"))
    with pytest.raises(ModelError, match=r"np.pad\(..., mode='mean'\) is not supported"):
        gradviz.trace(mean_pad, x=np.array([1.0, 2.0]))

    def out_arg(x):
        return np.sum(np.concatenate([x, x], out=np.zeros(4)))
    with pytest.raises(ModelError, match=r"np.concatenate\(..., out=\) is not supported"):
        gradviz.trace(out_arg, x=np.array([1.0, 2.0]))


def test_hyperparameters_in_disguise_keep_working():
    """Integer parameters become float leaves; where Python needs an int they give their value."""
    def forward(x, w, b, stride=2.0, pad=1.0):
        xp = np.pad(x, pad)
        h_out = 1 + (len(xp) - len(w)) // stride
        out = np.zeros(h_out)
        for i in range(h_out):
            out[i] = np.sum(xp[i * stride: i * stride + len(w)] * w) + b
        return np.sum(out ** 2)

    x, w, b = np.array([1.0, 2.0, -1.0, 0.5, 3.0, 1.5]), np.array([1.0, -1.0, 0.5]), 0.5
    plain = {"stride": 2, "pad": 1}
    for granularity in GRANULARITIES:
        graph = gradviz.trace(forward, granularity=granularity, x=x, w=w, b=b, stride=2.0, pad=1.0)
        np.testing.assert_allclose(graph.output_value, forward(x, w, b, **plain))
        for name, value in (("x", x), ("w", w)):
            numeric = [(forward(**{"x": x, "w": w, "b": b, **plain, name: value + h * e})
                        - forward(**{"x": x, "w": w, "b": b, **plain, name: value - h * e})) / (2 * h)
                       for h in [1e-6] for e in np.eye(len(value))]
            np.testing.assert_allclose(graph.grad(name), numeric, rtol=1e-6, atol=1e-8)
        assert graph.grad("stride") == 0.0 and graph.grad("pad") == 0.0
        assert any("stride" in w and "plain number" in w for w in graph.warnings())


def test_a_list_written_into_a_slice():
    def model(a, b):
        y = np.zeros(3)
        y[0:2] = [a, b * 2]
        z = a * np.ones(3)
        z[1:] = [1.0, b]
        return np.sum(y * np.array([1.0, 2.0, 3.0])) + np.sum(z)
    for granularity in GRANULARITIES:
        graph = gradviz.trace(model, granularity=granularity, a=1.0, b=2.0)
        # y = [a, 2b, 0], z = [a, 1, b]: out = a + 4b + a + 1 + b = 13; ∂/∂a = 2, ∂/∂b = 5
        assert (graph.output_value, graph.grad("a"), graph.grad("b")) == (13.0, 2.0, 5.0)


def _through_a_transpose(x):
    y = x * 1.0
    y.T[0] = y[:, 1] * 3  # a write into the transpose is a write into y
    return weighted(y)


def _into_a_row_of_a_plain_array(x):
    h = np.zeros((2, 3))
    h[0][1] = x[0, 0]  # h[0] is a view of h: the write reaches h
    h[1] += x[1]
    return weighted(h)


def _rows_in_a_loop(x):
    y = x.copy()
    for row in y:
        row *= 2  # each row is a view: y changes
    return weighted(y)


def _through_a_reshape(x):
    y = x.copy()
    a = y.reshape(3, 2)
    a[0, 0] = 5.0
    a[2] += y[0, 0]
    return weighted(y)


@pytest.mark.parametrize("model", [_through_a_transpose, _into_a_row_of_a_plain_array, _rows_in_a_loop,
                                   _through_a_reshape], ids=lambda f: f.__name__)
def test_writes_through_views_behave_as_in_numpy(model):
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for granularity in GRANULARITIES:
        graph = gradviz.trace(model, granularity=granularity, x=x)
        np.testing.assert_allclose(graph.output_value, model(x.copy()))
    agrees(model, x=x)


def test_numpy_functions_of_lists_of_traced_values():
    def model(a, b):
        xs = [a, b * 2, a * b]
        e = np.exp(xs)  # NumPy would convert the list: the list becomes an array of its nodes first
        return np.sum(xs) + np.mean([a, b]) + np.max([a, b]) + np.add.reduce(e) + np.dot([a, b], [b, 1.0])
    agrees(model, a=0.5, b=-1.0)
    graph = gradviz.trace(model, granularity="tensor", a=0.5, b=-1.0)
    np.testing.assert_allclose(graph.output_value, model(0.5, -1.0))


@pytest.mark.parametrize("model", [_through_a_transpose, _into_a_row_of_a_plain_array, _rows_in_a_loop,
                                   _through_a_reshape], ids=lambda f: f.__name__)
def test_forward_mode_tangents_through_writes_equal_the_gradient(model):
    from gradviz.forward import forward_mode, output_tangent
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for granularity in GRANULARITIES:
        for index in ((0, 0), (1, 2)):
            graph = gradviz.trace(model, granularity=granularity, x=x)
            expected = graph.grad("x")[index]
            assert output_tangent(forward_mode(graph, f"x[{index[0]},{index[1]}]")) == pytest.approx(expected)


def test_names_imported_from_math_and_numpy(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('"""from-imports."""\nfrom math import exp, log\nimport numpy\nfrom numpy import zeros\n\n\n'
                    "def forward(a=0.5, b=2.0):\n    out = zeros(2)\n    out[0] = exp(a)\n    out[1] = log(b)\n"
                    "    return numpy.sum(out * numpy.array([1.0, 3.0]))\n")
    for granularity in GRANULARITIES:
        graph = gradviz.trace_file(path, granularity=granularity)
        np.testing.assert_allclose(graph.output_value, math.exp(0.5) + 3 * math.log(2.0))
        np.testing.assert_allclose([graph.grad("a"), graph.grad("b")], [math.exp(0.5), 3 / 2.0])


def test_reshape_in_fortran_order_is_right_not_refused():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for granularity in GRANULARITIES:
        graph = gradviz.trace(lambda x: np.sum(x.reshape(3, 2, order="F") * np.arange(6.0).reshape(3, 2)),
                              granularity=granularity, x=x)
        # column by column: [[1, 5], [4, 3], [2, 6]] · [[0, 1], [2, 3], [4, 5]] = 5 + 8 + 9 + 8 + 30 = 60
        assert graph.output_value == 60.0
        # each element's gradient is the weight at the place it lands: x[0,1] = 2 lands at [2,0], weight 4
        assert graph.grad("x").tolist() == [[0.0, 4.0, 3.0], [2.0, 1.0, 5.0]]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2), min_size=1, max_size=3),
       st.integers(0, 10**6))
def test_arrays_built_from_traced_numbers_with_repeats(rows, seed):
    def model(x):
        built = np.array([[x[i] * (k + 1) for k, i in enumerate(row)] for row in rows])
        return weighted(built) + weighted(np.stack([x[row[0]] for row in rows]))
    agrees(model, x=_array(4, seed))


def test_values_put_in_a_dict_or_list_are_named_by_it():
    def model(x):
        hs, terms = {}, []
        for t in range(2):
            hs[t] = np.tanh(x * (t + 1))
            terms.append(hs[t] * 2)
        return sum(terms)
    graph = gradviz.trace(model, granularity="tensor", x=np.array([0.5, -0.25]))
    labels = {graph.label(n.id) for n in graph.nodes}
    assert {"hs[0]", "hs[1]", "terms[0]", "terms[1]"} <= labels
