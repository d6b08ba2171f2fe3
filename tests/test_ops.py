"""Every row of the table of operations: its local partials against central finite differences of its own
forward, and the convention at non-differentiable points."""
from __future__ import annotations

import numpy as np
import pytest

from gradviz.ops import OPS, unbroadcast

# inputs away from every kink and from the edges of each domain
POINTS = {
    "add": (1.5, -2.0), "sub": (1.5, -2.0), "mul": (1.5, -2.0), "div": (1.5, -2.0), "pow": (1.5, 2.5),
    "neg": (0.7,), "abs": (-0.7,), "square": (-1.3,), "sqrt": (2.0,), "exp": (0.3,), "log": (2.0,),
    "tanh": (0.4,), "maximum": (1.0, 3.0), "minimum": (1.0, 3.0), "clip": (0.5, 0.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(POINTS))
def test_elementwise_partials_match_finite_differences(name):
    op = OPS[name]
    args = [np.float64(a) for a in POINTS[name]]
    out = op.forward(*args)
    locals_ = op.partials(*args, out)
    locals_ = locals_ if isinstance(locals_, tuple) else (locals_,)
    h = 1e-6
    for i in range(len(args)):
        up, down = list(args), list(args)
        up[i], down[i] = args[i] + h, args[i] - h
        numeric = (op.forward(*up) - op.forward(*down)) / (2 * h)
        assert np.isclose(float(np.asarray(locals_[i])), numeric, rtol=1e-6, atol=1e-8), (name, i)


def test_textbook_rules():
    # sum -> 1; product -> the other input; max -> 1 for the larger input; relu -> 1 if x > 0 else 0
    assert OPS["add"].partials(2.0, 5.0, 7.0) == (1.0, 1.0)
    assert OPS["mul"].partials(2.0, 5.0, 10.0) == (5.0, 2.0)
    assert OPS["maximum"].partials(np.float64(2.0), np.float64(5.0), 5.0) == (0.0, 1.0)
    assert OPS["maximum"].partials(np.float64(3.0), np.float64(0.0), 3.0) == (1.0, 0.0)
    assert OPS["maximum"].partials(np.float64(-3.0), np.float64(0.0), 0.0) == (0.0, 1.0)


@pytest.mark.parametrize("name,args", [("maximum", (2.0, 2.0)), ("minimum", (2.0, 2.0)), ("abs", (0.0,)),
                                       ("maximum", (0.0, 0.0)), ("clip", (1.0, 0.0, 1.0))])
def test_kinks_take_zero_and_are_flagged(name, args):
    op = OPS[name]
    args = [np.float64(a) for a in args]
    out = op.forward(*args)
    assert bool(op.nondiff(*args, out))
    got = op.partials(*args, out)
    assert float(np.asarray(got[0] if isinstance(got, tuple) else got)) == 0.0


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reduction_locals_match_finite_differences(name):
    op = OPS[name]
    xs = np.array([[0.3, -1.2, 2.5], [1.1, 0.4, -0.6]])
    for axis in [(0,), (1,), (0, 1)]:
        out = op.forward(xs, axis=axis, keepdims=True)
        local = np.broadcast_to(op.local(xs, out, axis), xs.shape)  # a number where it is the same for all
        h = 1e-6
        for idx in np.ndindex(xs.shape):
            up, down = xs.copy(), xs.copy()
            up[idx] += h
            down[idx] -= h
            diff = (op.forward(up, axis=axis, keepdims=True) - op.forward(down, axis=axis, keepdims=True)) / (2 * h)
            # element idx feeds exactly one output element: the one its reduced group lands in
            group = tuple(0 if i in axis else j for i, j in enumerate(idx))
            assert np.isclose(local[idx], diff[group], atol=1e-8), (name, axis, idx)


def test_reduction_tie_is_flagged_and_takes_zero():
    xs = np.array([[2.0, 2.0, 1.0]])
    out = OPS["max"].forward(xs, axis=(1,), keepdims=True)
    assert OPS["max"].nondiff(xs, out, (1,)).tolist() == [True]
    assert OPS["max"].local(xs, out, (1,)).tolist() == [[0.0, 0.0, 0.0]]


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
                                    ((5, 2, 3), (3, 4))])
def test_matmul_vjp_matches_finite_differences(shapes):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    op = OPS["matmul"]
    _, ins, out_letters, _ = op.spec(a, b)
    out = np.matmul(a, b)
    g = rng.normal(size=out.shape)
    for i, x in enumerate((a, b)):
        chain = op.kind.chain(op, i, None, g, ((a, b), {"ins": ins, "out": out_letters}), out)
        assert chain.shape == x.shape
        h = 1e-6
        for idx in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[idx] += h
            down[idx] -= h
            args_up = (up, b) if i == 0 else (a, up)
            args_down = (down, b) if i == 0 else (a, down)
            numeric = np.sum(g * (np.matmul(*args_up) - np.matmul(*args_down))) / (2 * h)
            assert np.isclose(chain[idx], numeric, atol=1e-7)


def test_getitem_vjp_adds_repeated_picks():
    import gradviz
    x = np.array([1.0, 2.0, 3.0])
    graph = gradviz.trace(lambda x: x[[0, 2, 0]], granularity="tensor", seed_grad=[10.0, 20.0, 30.0], x=x)
    assert graph.grad("x").tolist() == [40.0, 0.0, 20.0]


def test_unbroadcast_sums_over_broadcast_axes():
    g = np.ones((4, 2, 3))
    assert unbroadcast(g, (3,)).tolist() == [8.0, 8.0, 8.0]
    assert unbroadcast(g, (2, 1)).tolist() == [[12.0], [12.0]]
    assert unbroadcast(g, ()).item() == 24.0


def test_every_op_has_a_rule_per_argument_and_a_spelling():
    for op in OPS.values():
        assert op.rules and all(r.startswith("∂") for r in op.rules), op.name
        # logabsdet, norm2: reached through others; PyTorch's autograd nodes (registered by a PyTorch trace in
        # this process): read from its graph, never written in a NumPy model
        assert op.spellings() or op.name in ("logabsdet", "norm2") or op.family == "PyTorch", op.name
