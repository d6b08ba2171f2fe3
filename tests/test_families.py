"""One hypothesis-driven test per family of operations: random shapes, axes, keepdims and broadcasting; the
gradient at both granularities against central finite differences of the same NumPy code."""
from __future__ import annotations

import inspect
import string

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import gradviz
from gradviz.ops import REGISTRY

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])
GRANULARITY = st.sampled_from(["scalar", "tensor"])


def check(f, granularity, **leaves):
    """gradviz's value and gradients against NumPy and central finite differences of f's weighted sum."""
    plain = f(**leaves)
    weights = np.random.default_rng(0).uniform(0.5, 1.5, np.shape(plain))

    def loss(**values):
        return np.sum(weights * f(**values))

    loss.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in leaves])

    g = gradviz.trace(loss, granularity=granularity, **leaves)
    assume(not any(n.nondiff for n in g.nodes))  # at a tie or a kink the derivative does not exist
    np.testing.assert_allclose(g.output_value, np.sum(weights * plain), rtol=1e-9, atol=1e-12)
    h = 1e-6
    for name, value in leaves.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            up, down = dict(leaves), dict(leaves)
            up[name], down[name] = value.copy(), value.copy()
            up[name][idx] += h
            down[name][idx] -= h
            numeric[idx] = (loss(**up) - loss(**down)) / (2 * h)
        np.testing.assert_allclose(g.grad(name), numeric, rtol=1e-4, atol=1e-5, err_msg=name)


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


def arrays(draw, shape, low=-2.0, high=2.0, unique=False):
    """Numbers on a grid of 1/64 (distinct ones stay far apart next to the finite-difference step); unique:
    no two equal (no ties for max, min, sort)."""
    grid = st.integers(int(np.ceil(low * 64)), int(np.floor(high * 64))).map(lambda i: i / 64)
    return np.array(draw(st.lists(grid, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)), unique=unique)),
                    dtype=float).reshape(shape)


@st.composite
def broadcastable(draw):
    """A shape and a second shape that broadcasts against it (fewer dimensions, or 1s in some)."""
    a = draw(shapes)
    keep = draw(st.integers(0, len(a)))
    b = tuple(1 if draw(st.booleans()) else n for n in a[len(a) - keep:])
    return (a, b) if draw(st.booleans()) else (b, a)


SMOOTH = [e for e in REGISTRY if e.kind is not None and e.kind.name == "elementwise" and not e.zero
          and not e.custom and e.spec is None and len(e.operands) in (1, 2)]


@SETTINGS
@given(st.data(), GRANULARITY)
def test_elementwise(data, granularity):
    entry = data.draw(st.sampled_from(SMOOTH))
    func = entry.callables[0]
    point = [float(np.ravel(a)[0]) for a in entry.examples[0][0]]
    sa, sb = data.draw(broadcastable())
    values = [arrays(data.draw, s, p - 0.1, p + 0.1) for s, p in zip((sa, sb), point, strict=False)]
    if len(values) == 1:
        check(lambda x: func(x), granularity, x=values[0])
    else:
        check(lambda x, y: func(x, y), granularity, x=values[0], y=values[1])


REDUCTIONS = {
    "sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod, "ptp": np.ptp,
    "var": np.var, "std": np.std, "nansum": np.nansum, "nanmean": np.nanmean, "average": np.average,
    "var_ddof": lambda x, axis=None, keepdims=False: np.var(x, axis=axis, ddof=1, keepdims=keepdims),
    "norm": lambda x, axis=None, keepdims=False: np.linalg.norm(x, axis=axis, keepdims=keepdims),
    "logsumexp": lambda x, axis=None, keepdims=False: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
}


@SETTINGS
@given(st.data(), GRANULARITY)
def test_reductions(data, granularity):
    name = data.draw(st.sampled_from(sorted(REDUCTIONS)))
    shape = data.draw(st.lists(st.integers(2, 3), min_size=1, max_size=3).map(tuple))
    x = arrays(data.draw, shape, 0.3, 2.0, unique=True)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape),
                                        unique=True).map(tuple)))
    if name in ("average", "norm") and isinstance(axis, tuple):
        axis = axis[0]
    keepdims = data.draw(st.booleans())
    fn = REDUCTIONS[name]
    check(lambda x: fn(x, axis=axis, keepdims=keepdims), granularity, x=x)


SCANS = {
    "cumsum": lambda x, axis: np.cumsum(x, axis=axis),
    "cumprod": lambda x, axis: np.cumprod(x, axis=axis),
    "diff": lambda x, axis: np.diff(x, axis=-1 if axis is None else axis),
    "diff2": lambda x, axis: np.diff(x, n=2, axis=-1 if axis is None else axis),
    "sort": lambda x, axis: np.sort(x, axis=axis),
}


@SETTINGS
@given(st.data(), GRANULARITY)
def test_scans_and_sort(data, granularity):
    name = data.draw(st.sampled_from(sorted(SCANS)))
    shape = data.draw(st.lists(st.integers(3, 4), min_size=1, max_size=2).map(tuple))
    x = arrays(data.draw, shape, unique=True)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    check(lambda x: SCANS[name](x, axis), granularity, x=x)


@st.composite
def einsums(draw):
    """Random subscripts over 1–3 operands: repeated letters (diagonals), summed letters, implicit or
    explicit output, sometimes an ellipsis of broadcast dimensions."""
    letters = draw(st.lists(st.sampled_from("ijkl"), min_size=1, max_size=4, unique=True))
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    n = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3)) for _ in range(n)]
    ellipsis = draw(st.booleans())
    batch = draw(st.lists(st.integers(1, 2), min_size=1, max_size=2)) if ellipsis else []
    values, subs = [], []
    for t in terms:
        lead = draw(st.integers(0, len(batch)))
        shape = [1 if draw(st.booleans()) else b for b in batch[len(batch) - lead:]] if ellipsis else []
        values.append(arrays(draw, tuple(shape) + tuple(sizes[c] for c in t)))
        subs.append(("..." if ellipsis else "") + "".join(t))
    used = sorted(set("".join("".join(t) for t in terms)))
    if draw(st.booleans()):
        out = draw(st.lists(st.sampled_from(used), unique=True)) if used else []
        spec = ",".join(subs) + "->" + ("..." if ellipsis else "") + "".join(out)
    else:
        spec = ",".join(subs)
    return spec, values


@SETTINGS
@given(einsums(), GRANULARITY)
def test_einsum_any_subscripts(case, granularity):
    spec, values = case
    leaves = {string.ascii_lowercase[i]: v for i, v in enumerate(values)}
    check(lambda **xs: np.einsum(spec, *xs.values()), granularity, **leaves)


@st.composite
def products(draw):
    kind = draw(st.sampled_from(["matmul", "dot", "inner", "tensordot", "outer", "kron", "trace"]))
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    if kind == "matmul":
        batch_a = draw(st.lists(st.integers(1, 2), max_size=2))
        batch_b = [1 if draw(st.booleans()) else b for b in batch_a]
        a_shape = (k,) if draw(st.booleans()) else tuple(batch_a) + (n, k)
        b_shape = (k,) if draw(st.booleans()) else tuple(batch_b) + (k, m)
        return kind, np.matmul, arrays(draw, a_shape), arrays(draw, b_shape)
    if kind == "dot":
        a_shape = draw(st.sampled_from([(), (k,), (n, k), (2, n, k)]))
        b_shape = draw(st.sampled_from([(), (k,), (k, m), (2, k, m)]))
        if a_shape == () or b_shape == ():
            a_shape, b_shape = a_shape or (), b_shape or ()
        return kind, np.dot, arrays(draw, a_shape), arrays(draw, b_shape)
    if kind == "inner":
        return kind, np.inner, arrays(draw, draw(st.sampled_from([(k,), (n, k)]))), \
            arrays(draw, draw(st.sampled_from([(k,), (m, k), (2, m, k)])))
    if kind == "tensordot":
        axes = draw(st.integers(0, 2))
        summed = (2, k)[2 - axes:]  # the last `axes` dimensions of a, the first of b
        return kind, lambda a, b: np.tensordot(a, b, axes), arrays(draw, (n,) + summed), arrays(draw, summed + (m,))
    if kind == "outer":
        return kind, np.outer, arrays(draw, (n, k)), arrays(draw, (m,))
    if kind == "kron":
        return kind, np.kron, arrays(draw, (n, k)), arrays(draw, draw(st.sampled_from([(m,), (m, 2)])))
    return kind, lambda a, b: np.trace(a) * b, arrays(draw, (k, k, n)), arrays(draw, (n,))


@SETTINGS
@given(products(), GRANULARITY)
def test_products(case, granularity):
    _, fn, a, b = case
    check(lambda a, b: fn(a, b), granularity, a=a, b=b)


@st.composite
def matrices(draw):
    n = draw(st.integers(1, 3))
    noise = arrays(draw, (n, n), -0.4, 0.4)
    return np.eye(n) * draw(st.sampled_from([1.5, -2.0])) + noise  # well away from singular


LINALG = {
    "inv": lambda a, b: np.linalg.inv(a),
    "det": lambda a, b: np.linalg.det(a),
    "slogdet": lambda a, b: np.linalg.slogdet(a)[1],
    "solve_vector": lambda a, b: np.linalg.solve(a, b),
    "solve_matrix": lambda a, b: np.linalg.solve(a, b[:, None] * b[None, :]),
    "matrix_power": lambda a, b: np.linalg.matrix_power(a, 2),
    "norm_fro": lambda a, b: np.linalg.norm(a, "fro"),
    "norm_1": lambda a, b: np.linalg.norm(a, 1),
    "norm_inf": lambda a, b: np.linalg.norm(a, np.inf),
    "norm_2": lambda a, b: np.linalg.norm(a, 2),
}


@SETTINGS
@given(matrices(), st.sampled_from(sorted(LINALG)), GRANULARITY, st.data())
def test_linear_algebra(a, name, granularity, data):
    b = arrays(data.draw, (a.shape[0],))
    if name == "norm_2" and a.shape[0] > 1:  # the top singular value must be simple to be differentiable
        s = np.linalg.svd(a, compute_uv=False)
        assume(s[0] - s[1] > 1e-3)
    check(lambda a, b: LINALG[name](a, b) + 0 * np.sum(b), granularity, a=a, b=b)
