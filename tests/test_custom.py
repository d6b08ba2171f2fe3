"""@custom_op: an operation with a derivative the student wrote, traced as one node from the same table."""
from __future__ import annotations

import numpy as np
import pytest

from gradviz import GradvizError, custom_op, trace
from gradviz.ops import OPS


@custom_op(rule="σ(x)·(1−σ(x))", partials=lambda x, out: out * (1 - out))
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@custom_op(rule=("∂hyp(x,y)/∂x = x/hyp", "∂hyp(x,y)/∂y = y/hyp"), partials=lambda x, y, out: (x / out, y / out))
def hyp(x, y):
    return np.sqrt(x * x + y * y)


def test_outside_a_trace_it_is_the_plain_function():
    assert sigmoid(0.0) == 0.5
    np.testing.assert_allclose(sigmoid(np.array([0.0, np.log(3.0)])), [0.5, 0.75])
    assert hyp(3.0, 4.0) == 5.0


def test_registered_in_the_table_of_operations():
    assert OPS["sigmoid"].kind.name == "elementwise"
    assert OPS["sigmoid"].rules == ("∂sigmoid(x)/∂x = σ(x)·(1−σ(x))",)
    assert OPS["hyp"].rules == ("∂hyp(x,y)/∂x = x/hyp", "∂hyp(x,y)/∂y = y/hyp")


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_one_node_named_after_the_function(granularity):
    def f(z):
        s = sigmoid(z)
        return s * 2

    # z = ln 3: σ = 3/4, ∂(2σ)/∂z = 2·σ(1−σ) = 2 · 3/16 = 0.375
    g = trace(f, granularity=granularity, z=np.log(3.0))
    (node,) = [n for n in g.nodes if n.op == "sigmoid"]
    assert g.label(node.id) == "s" and node.value == pytest.approx(0.75)
    (edge,) = g.in_edges(node.id)
    assert g.rule(edge) == "∂sigmoid(x)/∂x = σ(x)·(1−σ(x))"
    assert edge.local == pytest.approx(0.1875)
    assert g.grad("z") == pytest.approx(0.375)


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_elementwise_on_arrays_with_two_inputs(granularity):
    def f(a, b):
        return np.sum(hyp(a, b))

    # hyp(3, 4) = 5, hyp(6, 8) = 10: ∂/∂a = a/hyp = [0.6, 0.6], ∂/∂b = b/hyp = [0.8, 0.8]
    g = trace(f, granularity=granularity, a=[3.0, 6.0], b=[4.0, 8.0])
    assert g.output_value == 15.0
    np.testing.assert_allclose(g.grad("a"), [0.6, 0.6])
    np.testing.assert_allclose(g.grad("b"), [0.8, 0.8])
    assert sum(n.op == "hyp" for n in g.nodes) == (2 if granularity == "scalar" else 1)


def test_mistakes_in_the_declaration_are_one_line_errors():
    def exp(x):
        return np.exp(x)

    with pytest.raises(GradvizError, match="custom_op exp: the name is taken by a built-in operation"):
        custom_op(rule="eˣ", partials=lambda x, out: out)(exp)
    with pytest.raises(GradvizError, match=r"give one rule per input \(x, y\), not 1"):
        custom_op(rule="y", partials=lambda x, y, out: (y, x))(lambda x, y: x * y)


@custom_op(rule=("b", "a"), partials=lambda a, b, out: (b, a))
def times(a, b):
    return a * b


def test_tables_write_the_rule_with_the_graphs_labels():
    from gradviz.views.format import partial

    def f(p, q):
        r = times(p, q)
        return r

    # the rule is written in times' own parameter names a, b; on the graph they read as p and q
    g = trace(f, granularity="scalar", p=2.0, q=5.0)
    assert {partial(g, e) for e in g.edges} == {"∂r/∂p = q", "∂r/∂q = p"}
    assert {e.local for e in g.edges} == {5.0, 2.0}


def test_a_later_op_of_the_same_name_does_not_answer_for_an_earlier_one():
    def make(slope):
        @custom_op(rule=str(slope), partials=lambda x, out: slope)
        def scaled(x):
            return slope * x
        return scaled

    double, triple = make(2.0), make(3.0)  # both named "scaled"; triple registered last
    assert trace(lambda x: double(x), x=1.0).grad("x") == 2.0
    assert trace(lambda x: triple(x), x=1.0).grad("x") == 3.0
