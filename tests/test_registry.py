"""The one registry: every entry traced on its own test inputs at both granularities (value against NumPy,
gradient against central finite differences, forward-mode tangent against the gradient), and every call
bound to NumPy's own signature (an argument an entry does not declare is refused, never dropped)."""
from __future__ import annotations

import inspect
import operator
import re

import numpy as np
import pytest

import gradviz
from gradviz import GradvizError
from gradviz.forward import forward_mode, output_tangent
from gradviz.ops import OPS, REGISTRY
from gradviz.ops.registry import numpy_signature

ENTRIES = [e for e in REGISTRY if not e.custom and e.callables]
CASES = [(e, i) for e in ENTRIES for i in range(len(e.examples))]


def _leaves(args):
    """The float arrays among args (also inside lists) become leaves a0, a1, …; the rest stay constants."""
    leaves = {}

    def walk(v):
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            name = f"a{len(leaves)}"
            leaves[name] = v
            return ("leaf", name)
        if isinstance(v, list):
            return [walk(x) for x in v]
        return ("const", v)

    return [walk(a) for a in args], leaves


def _rebuild(template, values):
    if isinstance(template, list):
        return [_rebuild(t, values) for t in template]
    kind, v = template
    return values[v] if kind == "leaf" else v


def _model(entry, args, kwargs):
    func = entry.callables[0]
    template, leaves = _leaves(args)
    reference = func(*args, **kwargs)
    reference = reference[-1] if isinstance(reference, (tuple, list)) else reference
    weights = np.random.default_rng(1).uniform(0.5, 1.5, np.shape(reference))
    params = ", ".join(leaves)
    namespace = {"np": np, "func": func, "template": template, "kwargs": kwargs, "weights": weights,
                 "rebuild": _rebuild}
    exec(f"def f({params}):\n"
         f"    out = func(*rebuild(template, dict(zip({list(leaves)!r}, [{params}]))), **kwargs)\n"
         f"    out = out[-1] if isinstance(out, (tuple, list)) else out\n"
         f"    return np.sum(weights * out)\n", namespace)
    return namespace["f"], leaves, float(np.sum(weights * reference))


def _numeric(f, leaves, name, h=1e-6):
    grad = np.zeros_like(leaves[name])
    for idx in np.ndindex(grad.shape):
        up, down = dict(leaves), dict(leaves)
        up[name], down[name] = leaves[name].copy(), leaves[name].copy()
        up[name][idx] += h
        down[name][idx] -= h
        grad[idx] = (f(**up) - f(**down)) / (2 * h)
    return grad


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
@pytest.mark.parametrize("entry, k", CASES, ids=[f"{e.name}-{k}" for e, k in CASES])
def test_every_entry_on_its_own_inputs(entry, k, granularity):
    args, kwargs = entry.examples[k]
    f, leaves, expected = _model(entry, args, kwargs)
    g = gradviz.trace(f, granularity=granularity, **leaves)
    assert g.output_value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    for name in leaves:
        np.testing.assert_allclose(g.grad(name), _numeric(f, leaves, name), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{entry.name} {name}")
    first = next(iter(leaves))
    element = first + ("[" + ",".join(["0"] * leaves[first].ndim) + "]" if leaves[first].ndim else "")
    assert output_tangent(forward_mode(g, element)) == pytest.approx(float(np.ravel(g.grad(first))[0]), abs=1e-9)


def test_every_entry_has_test_inputs_and_a_rule():
    for entry in ENTRIES:
        assert entry.examples, entry.name
        assert entry.rules and all(entry.rules), entry.name


SENTINEL = object()


def _refusable(entry, func):
    sig = numpy_signature(func)
    for p in sig.parameters.values():
        if p.name in entry.operands or p.name in entry.options:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        yield p.name


SIGNATURE_CASES = [(e, f) for e in ENTRIES for f in e.callables if f is not operator.getitem]


def _numpys_own(func):
    try:
        return inspect.signature(func)
    except ValueError:  # NumPy before 2.4 gives none for ufuncs and C functions
        return None


@pytest.mark.parametrize("func", sorted({f for _, f in SIGNATURE_CASES if _numpys_own(f) is not None
                                         and not inspect.isfunction(f)}, key=str), ids=str)
def test_signatures_built_for_ufuncs_and_c_functions_are_numpys_own(func):
    assert str(numpy_signature(func)) == str(inspect.signature(func))


@pytest.mark.parametrize("entry, func", SIGNATURE_CASES, ids=[f"{e.name}-{getattr(f, '__name__', f)}"
                                                              for e, f in SIGNATURE_CASES])
def test_keyword_arguments_follow_numpys_signature_and_the_rest_are_refused(entry, func):
    names = set(numpy_signature(func).parameters)
    assert set(entry.operands) | set(entry.options) <= names, (entry.name, func)
    args, kwargs = entry.examples[0]
    f0, leaves, _ = _model(entry, args, kwargs)
    template, _ = _leaves(args)
    for name in _refusable(entry, func):
        f = _passing(func, template, {**kwargs, name: SENTINEL}, leaves)
        with pytest.raises(GradvizError, match=rf"\(\.\.\., {name}=\) is not supported"):
            gradviz.trace(f, granularity="tensor", **leaves)


def _passing(func, template, kwargs, leaves):
    """A model of the leaves calling func with these keyword arguments."""
    def f(**values):
        return func(*_rebuild(template, values), **kwargs)

    f.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in leaves])
    return f


X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize("call, refused", [
    (lambda x: np.sum(x, initial=5), "np.sum(..., initial=) is not supported"),
    (lambda x: np.max(x, initial=10), "np.max(..., initial=) is not supported"),
    (lambda x: np.sum(x, where=x > 2), "np.sum(..., where=) is not supported"),
    (lambda x: np.var(x, mean=np.mean(x.value if hasattr(x, "value") else x)), "np.var(..., mean=) is not supported"),
])
@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_arguments_gradviz_does_not_understand_are_refused(call, refused, granularity):
    with pytest.raises(GradvizError, match=refused.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        gradviz.trace(call, granularity=granularity, x=X)


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_nd_dot_pairs_every_row_with_every_column_not_batches(granularity):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))
    w = rng.normal(size=(2, 3, 2, 5))  # np.dot's result: (2,3) from a, (2,5) from b

    def f(a, b):
        return np.sum(w * np.dot(a, b))

    g = gradviz.trace(f, granularity=granularity, a=a, b=b)
    assert g.output_value == pytest.approx(np.sum(w * np.dot(a, b)))
    # ∂/∂a[i,j,k] = Σ w[i,j,m,n]·b[m,k,n];  ∂/∂b[m,k,n] = Σ w[i,j,m,n]·a[i,j,k]
    np.testing.assert_allclose(g.grad("a"), np.einsum("ijmn,mkn->ijk", w, b))
    np.testing.assert_allclose(g.grad("b"), np.einsum("ijmn,ijk->mkn", w, a))


def test_ops_lookup_by_node_name_and_callable_agree():
    from gradviz.ops import FUNCTIONS
    for entry in ENTRIES:
        for func in entry.callables:
            assert FUNCTIONS[func] is entry
        if entry.kind is not None:
            assert OPS[entry.name] is entry


# -- NumPy's own messages, at the model's file:line ----------------------------------------------------------

def _model_file(tmp_path, body):
    path = tmp_path / "m.py"
    path.write_text("import numpy as np\n" + body)
    return path


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_forgotten_transpose_reads_numpys_message_in_the_users_shapes(tmp_path, granularity):
    path = _model_file(tmp_path, "inputs = np.ones((3, 4))\nweights = np.ones((3, 4))\n"
                                 "def forward(inputs, weights):\n    return np.sum(np.dot(inputs, weights))\n")
    with pytest.raises(GradvizError) as info:
        gradviz.trace_file(path, granularity=granularity)
    message = str(info.value)
    assert message.startswith(f"{path}:5: ValueError: shapes (3,4) and (3,4) not aligned: 4 (dim 1) != 3 (dim 0)")
    assert message.count("(3,4)") == 2
    assert set(re.findall(r"\([\d,]*\)", message)) == {"(3,4)"}  # no shape the user did not write
    assert "transpose" in message


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_mismatched_vectors_read_numpys_message(tmp_path, granularity):
    path = _model_file(tmp_path, "a = np.ones(3)\nb = np.ones(4)\ndef forward(a, b):\n    return np.sum(a * b)\n")
    with pytest.raises(GradvizError, match=r":5: ValueError: operands could not be broadcast together with "
                                           r"shapes \(3,\) \(4,\)$"):
        gradviz.trace_file(path, granularity=granularity)


def test_an_unsupported_function_names_the_nearest_supported_spelling_at_file_line(tmp_path):
    path = _model_file(tmp_path, "def forward(x=np.ones(3)):\n    y = x * 2\n    return np.nancumprod(y)\n")
    with pytest.raises(GradvizError, match=r"m\.py:4: np\.nancumprod is not supported on traced values "
                                           r"\(did you mean np\.cumprod\?\); `gradviz ops` lists"):
        gradviz.trace_file(path)


def test_numpy_coverage_page_is_generated_from_the_table():
    """Regenerate with: gradviz ops --markdown > docs/numpy-coverage.md"""
    from pathlib import Path

    from gradviz.views.ops_table import ops_markdown
    page = Path(__file__).resolve().parent.parent / "docs" / "numpy-coverage.md"
    assert page.read_text() == ops_markdown(), ("docs/numpy-coverage.md is stale: "
                                                "run gradviz ops --markdown > docs/numpy-coverage.md")
    for entry in ENTRIES:
        for spelling in entry.spellings():
            assert f"`{spelling}`" in page.read_text(), spelling


def test_an_operation_reserves_its_nodes_before_it_makes_them():
    from gradviz.trace import Tracer, _TooLarge
    calls = []
    tracer = Tracer("scalar", max_nodes=150)
    a, b = tracer.leaf("a", np.ones((4, 5))), tracer.leaf("b", np.ones((5, 6)))
    real = tracer.reserve
    tracer.reserve = lambda n, what: (calls.append((n, what)), real(n, what))[1]
    with pytest.raises(_TooLarge):
        a @ b  # 4·6·5 products and 4·6 sums: 144 nodes on top of 50 leaves passes 150
    assert calls == [(4 * 6 * 5 + 4 * 6, "matmul (4, 5) @ (5, 6) split into 120 products and 24 sums")]
    assert len(tracer.graph.nodes) == 50 and not tracer.graph.edges  # refused before anything was made


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
def test_rounding_has_zero_derivative_and_is_flagged_at_its_jumps(granularity):
    g = gradviz.trace(lambda x: np.sum(np.floor(x) * x), granularity=granularity, x=np.array([0.5, 2.0]))
    # d(floor(x)·x)/dx = floor(x) + x·0: the step contributes nothing; floor jumps at x = 2, so that is flagged
    np.testing.assert_allclose(g.grad("x"), [0.0, 2.0])
    floors = [n for n in g.nodes if n.op == "floor"]
    assert any(n.nondiff for n in floors)
    assert OPS["floor"].zero and OPS["floor"].family == "rounding and sign (zero derivative)"


def test_gradviz_ops_lists_every_family_with_its_rows(capsys):
    from rich.console import Console

    from gradviz.ops import families
    from gradviz.views.ops_table import ops_table
    console = Console(width=100, record=True)
    console.print(ops_table())
    text = console.export_text()
    positions = [text.index(f"\n{family}") for family, entries in families().items()
                 if not entries[0].custom and any(e.spellings() for e in entries)]  # PyTorch's rows: none to write
    assert positions == sorted(positions)  # one table per family, in the registry's order
    for needle in ("np.linalg.det", "det(A)·(A⁻¹)ⱼᵢ", "np.einsum", "x.var", "zero derivative"):
        assert needle in text


def test_det_split_into_scalars_is_one_node_whose_edges_carry_the_cofactors():
    # det [[a, b], [c, d]] = ad − bc: ∂/∂a = d, ∂/∂b = −c, ∂/∂c = −b, ∂/∂d = a (= 0 here, yet d still feeds det)
    g = gradviz.trace(lambda M: np.linalg.det(M), granularity="scalar", M=np.array([[0.0, 1.0], [2.0, 3.0]]))
    (det,) = [n for n in g.nodes if n.op == "det"]
    edges = g.in_edges(det.id)
    assert [g.label(e.src) for e in edges] == ["M[0,0]", "M[0,1]", "M[1,0]", "M[1,1]"]
    assert [e.local for e in edges] == pytest.approx([3.0, -2.0, -1.0, 0.0], abs=1e-12)
    # a stack of matrices: each determinant reads its own matrix only
    stack = np.array([[[2.0, 0.5], [0.3, 1.5]], [[1.2, -0.4], [0.6, 2.2]]])
    g = gradviz.trace(lambda S: np.sum(np.linalg.det(S)), granularity="scalar", S=stack)
    dets = [n for n in g.nodes if n.op == "det"]
    assert [sorted(g.label(e.src)[:3] for e in g.in_edges(n.id)) for n in dets] == [["S[0"] * 4, ["S[1"] * 4]


@pytest.mark.parametrize("granularity", ["scalar", "tensor"])
@pytest.mark.parametrize("product", [np.matmul, np.dot, np.inner])
def test_a_product_numpy_refuses_is_refused_at_both_granularities(granularity, product):
    # (2,1) against (4,3): the inner sizes 1 and 4 differ; a 1 must not broadcast as einsum's letters would
    a, b = np.ones((2, 1)), np.ones((4, 3))
    with pytest.raises(Exception) as numpy_said:
        product(a, b)
    with pytest.raises(GradvizError, match=re.escape(str(numpy_said.value).split(",")[0])):
        gradviz.trace(lambda a, b: np.sum(product(a, b)), granularity=granularity, a=a, b=b)
