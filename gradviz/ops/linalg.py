"""Products and linear algebra.

Every product that is a sum of products is one einsum in explicit letters (the Contraction kind): matmul,
dot, inner, tensordot, trace and einsum itself. Split into scalars they become products and n-ary sums;
as tensors one node whose VJP is another einsum. inv, det, slogdet and solve are no sum of products: one
node (per result element, split into scalars) whose edges carry the exact partials.
"""
from __future__ import annotations

import numpy as np

from .kinds import CONTRACTION, OPAQUE
from .registry import Entry, register

FAMILY, LINALG = "products", "linear algebra"
_POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")  # not `string`: 1 ms to import
_A, _B = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]]), np.array([[0.4, 1.2], [-0.8, 0.1], [2.0, -0.5]])
_V = np.array([0.5, -1.5, 2.0])
_S = np.array([[2.0, 0.5, -0.3], [0.4, 1.5, 0.2], [-0.1, 0.3, 1.8]])


def _letters(n: int, skip: str = "") -> list[str]:
    return [c for c in _POOL if c not in skip][:n]


def _nd(x) -> int:
    return np.ndim(x.value) if hasattr(x, "value") else np.ndim(x)


def _matmul_spec(x1, x2):
    na, nb = _nd(x1), _nd(x2)
    if na == 0 or nb == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    batch = "".join(_letters(max(na, nb) - 2 if max(na, nb) > 2 else 0, "ijk"))
    sa = "k" if na == 1 else batch[len(batch) - (na - 2):] + "ik"
    sb = "k" if nb == 1 else batch[len(batch) - (nb - 2):] + "kj"
    return [x1, x2], [sa, sb], batch + ("i" if na > 1 else "") + ("j" if nb > 1 else ""), np.matmul


def _dot_spec(a, b):
    na, nb = _nd(a), _nd(b)
    if na == 0 or nb == 0:  # a number times an array
        s = "".join(_letters(max(na, nb)))
        return [a, b], [s if na else "", s if nb else ""], s, np.dot
    la = _letters(na - 1, "k")
    lb = _letters(nb, "k" + "".join(la))
    sa = "".join(la) + "k"
    sb = "k" if nb == 1 else "".join(lb[:nb - 2]) + "k" + lb[nb - 1]
    out = "".join(la) + ("" if nb == 1 else "".join(lb[:nb - 2]) + lb[nb - 1])
    return [a, b], [sa, sb], out, np.dot


def _inner_spec(a, b):
    na, nb = _nd(a), _nd(b)
    la = _letters(max(na - 1, 0), "k")
    lb = _letters(max(nb - 1, 0), "k" + "".join(la))
    sa, sb = "".join(la) + ("k" if na else ""), "".join(lb) + ("k" if nb else "")
    return [a, b], [sa, sb], "".join(la) + "".join(lb), np.inner


def _tensordot_spec(a, b, axes=2):
    na, nb = _nd(a), _nd(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = [list(np.atleast_1d(v)) for v in axes]
    ax_a, ax_b = [int(i) % na for i in ax_a], [int(i) % nb for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise ValueError("shape-mismatch for sum")
    letters = iter(_POOL)
    sa = [next(letters) for _ in range(na)]
    sb = [next(letters) for _ in range(nb)]
    for i, j in zip(ax_a, ax_b, strict=True):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in ax_a] + [c for j, c in enumerate(sb) if j not in ax_b]
    return [a, b], ["".join(sa), "".join(sb)], "".join(out), lambda x, y: np.tensordot(x, y, axes)


def _einsum_spec(operands, optimize=False):
    if not operands or not isinstance(operands[0], str):
        from ..errors import UnsupportedOperation
        raise UnsupportedOperation("np.einsum(op0, sublist0, …) is not supported; write the subscripts as a "
                                   "string, np.einsum('ij,jk->ik', a, b)")
    subscripts, values = operands[0].replace(" ", ""), list(operands[1:])
    inputs, arrow, output = subscripts.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(values):
        raise ValueError("more operands than subscripts, or fewer")
    used = set(subscripts)
    spare = [c for c in _POOL if c not in used]
    width = max((_nd(v) - len(t.replace("...", "")) for t, v in zip(terms, values, strict=True) if "..." in t),
                default=0)
    ell = spare[:width]
    ins = []
    for t, v in zip(terms, values, strict=True):
        if "..." in t:
            n = _nd(v) - len(t.replace("...", ""))
            t = t.replace("...", "".join(ell[width - n:]))
        ins.append(t)
    if arrow:
        out = output.replace("...", "".join(ell))
    else:  # implicit: the broadcast letters, then the letters that appear once, in alphabetical order
        counts = "".join(ins)
        out = "".join(ell) + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ell))
    return values, ins, out, lambda *vals: np.einsum(operands[0], *vals)


def _trace_spec(a, axis1=0, axis2=1):
    n = _nd(a)
    axis1, axis2 = int(axis1) % n, int(axis2) % n
    letters = _letters(n, "")
    letters[axis2] = letters[axis1]
    out = "".join(c for i, c in enumerate(letters) if i not in (axis1, axis2))
    return [a], ["".join(letters)], out, lambda v: np.trace(v, axis1=axis1, axis2=axis2)


def contraction(name, rules, label, spec, callables, methods=(), operands=("a", "b"), options=(), syntax=(),
                variables=("X", "W"), note="", examples=()) -> Entry:
    return register(Entry(name, FAMILY, rules, CONTRACTION, callables, methods, syntax, label, operands, options,
                          spec=spec, variables=variables, note=note, examples=examples))


contraction("matmul", ("∂(X·W)/∂X = ·Wᵀ", "∂(X·W)/∂W = Xᵀ·"), "{0}@{1}", _matmul_spec, (np.matmul,),
            operands=("x1", "x2"), syntax=("X @ W",),
            examples=(((_A, _B), {}), ((_V, _B), {}), ((_B, _A[0, :2]), {}), ((np.stack([_A, _A * 2]), _B), {})))
contraction("dot", ("∂(X·W)/∂X = ·Wᵀ", "∂(X·W)/∂W = Xᵀ·"), "{0}@{1}", _dot_spec, (np.dot,), ("dot",),
            note="N-D: a sum over the last axis of X and the second-to-last of W (every pair, not matmul's batches)",
            examples=(((_V, _V), {}), ((_A, _B), {}), ((np.stack([_A, _A]), np.stack([_B, _B])), {})))
contraction("inner", ("∂(x·y)/∂x = y", "∂(x·y)/∂y = x"), "inner({0},{1})", _inner_spec, (np.inner,),
            variables=("x", "y"), examples=(((_V, _V), {}), ((_A, _A), {})))
contraction("tensordot", ("∂(X·W)/∂X = ·Wᵀ", "∂(X·W)/∂W = Xᵀ·"), "tensordot({0},{1})", _tensordot_spec,
            (np.tensordot,), options=("axes",),
            examples=(((_A, _B), {"axes": 1}), ((_A, _A), {"axes": ([0, 1], [0, 1])})))
contraction("einsum", ("∂einsum/∂operand = the einsum of the upstream with the other operands",),
            "einsum({0},{1})", _einsum_spec, (np.einsum,), operands=("operands",), options=("optimize",),
            note="any subscripts: explicit or implicit output, repeated letters, ellipsis",
            examples=((("ij,jk->ik", _A, _B), {}), (("ij,ij", _A, _A), {}), (("ii", _S), {}),
                      (("...i,i->...", _A, _V), {}), (("ij->j", _A), {})))
contraction("trace", ("∂tr(X)/∂Xᵢⱼ = 1 if i = j else 0",), "trace({0})", _trace_spec, (np.trace,), ("trace",),
            operands=("a",), options=("axis1", "axis2"), examples=(((_S,), {}),))


def _outer(tracer, a, b):
    return np.einsum("i,j->ij", np.reshape(a, -1) if _nd(a) != 1 else a, np.reshape(b, -1) if _nd(b) != 1 else b)


def _vdot(tracer, a, b):
    return np.einsum("i,i->", np.reshape(a, -1) if _nd(a) != 1 else a, np.reshape(b, -1) if _nd(b) != 1 else b)


def _kron(tracer, a, b):
    n = max(_nd(a), _nd(b))
    a = a if _nd(a) == n else np.reshape(a, (1,) * (n - _nd(a)) + np.shape(getattr(a, "value", a)))
    b = b if _nd(b) == n else np.reshape(b, (1,) * (n - _nd(b)) + np.shape(getattr(b, "value", b)))
    la, lb = _letters(n), _letters(n, "".join(_letters(n)))
    pairs = "".join(x + y for x, y in zip(la, lb, strict=True))
    sa, sb = np.shape(getattr(a, "value", a)), np.shape(getattr(b, "value", b))
    return np.reshape(np.einsum(f"{''.join(la)},{''.join(lb)}->{pairs}", a, b),
                      tuple(p * q for p, q in zip(sa, sb, strict=True)))


def _multi_dot(tracer, arrays):
    out = arrays[0]
    for x in arrays[1:]:
        out = np.dot(out, x)
    return out


def _matrix_power(tracer, a, n):
    if n == 0:
        return np.broadcast_to(np.eye(np.shape(getattr(a, "value", a))[-1]), np.shape(getattr(a, "value", a))).copy()
    base = np.linalg.inv(a) if n < 0 else a
    out = base
    for _ in range(abs(int(n)) - 1):
        out = np.matmul(out, base)
    return out


def derived(name, definition, derive, callables, operands, note, options=(), family=FAMILY, examples=()) -> Entry:
    return register(Entry(name, family, (definition,), None, callables, operands=operands, options=options,
                          derive=derive, note=note, examples=examples))


derived("outer", "outer(x, y) = einsum('i,j->ij', ravel(x), ravel(y))", _outer, (np.outer,), ("a", "b"),
        "derived: every product of an element of x with one of y", examples=(((_V, _V[:2]), {}),))
derived("vdot", "vdot(x, y) = einsum('i,i->', ravel(x), ravel(y))", _vdot, (np.vdot,), ("a", "b"),
        "derived: the flattened inputs' dot product", examples=(((_A, _A), {}),))
derived("kron", "kron(A, B)[i·p+k, j·q+l] = A[i,j]·B[k,l]", _kron, (np.kron,), ("a", "b"),
        "derived: an einsum of every pair of elements, reshaped into blocks", examples=(((_A, _S), {}),))
derived("multi_dot", "multi_dot([A, B, C]) = dot(dot(A, B), C)", _multi_dot, (np.linalg.multi_dot,), ("arrays",),
        "derived: dot after dot, left to right", examples=((([_A, _B, _B.T],), {}),))
derived("matrix_power", "matrix_power(A, n) = A @ A @ … (n times; inv(A) for n < 0)", _matrix_power,
        (np.linalg.matrix_power,), ("a",), "derived: repeated matmul", options=("n",), family=LINALG,
        examples=(((_S, 3), {}), ((_S, -2), {})))


# -- no sum of products: one node with the exact partials ------------------------------------------------------
def _t(m):
    return np.swapaxes(m, -1, -2)


def _inv_vjp(g, args, out, params):
    return -_t(out) @ g @ _t(out)


def _inv_jvp(t, args, out, params):
    return -out @ t @ out


def _det_vjp(g, args, out, params):
    return (np.asarray(g) * out)[..., None, None] * _t(np.linalg.inv(args[0]))


def _det_jvp(t, args, out, params):
    return out * np.einsum("...ij,...ji->...", np.linalg.inv(args[0]), t)


def _logdet_vjp(g, args, out, params):
    return np.asarray(g)[..., None, None] * _t(np.linalg.inv(args[0]))


def _logdet_jvp(t, args, out, params):
    return np.einsum("...ij,...ji->...", np.linalg.inv(args[0]), t)


def _vector(b) -> bool:
    return np.ndim(b) == 1


def _solve_vjp_a(g, args, out, params):
    a, b = args
    gb = _solve_vjp_b(g, args, out, params)
    return -np.einsum("...i,...j->...ij", gb, out) if _vector(b) else -gb @ _t(out)


def _solve_vjp_b(g, args, out, params):
    a, b = args
    return np.linalg.solve(_t(a), g)


def _solve_jvp_a(t, args, out, params):
    a, b = args
    return -np.linalg.solve(a, t @ out)


def _solve_jvp_b(t, args, out, params):
    return np.linalg.solve(args[0], t)


def _norm2_vjp(g, args, out, params):
    u, s, vt = np.linalg.svd(args[0])
    return np.asarray(g) * np.outer(u[:, 0], vt[0])


def _norm2_jvp(t, args, out, params):
    u, s, vt = np.linalg.svd(args[0])
    return u[:, 0] @ t @ vt[0]


def opaque(name, rules, forward, vjp, jvp, callables=(), operands=("a",), variables=("A",), note="",
           examples=()) -> Entry:
    return register(Entry(name, LINALG, rules, OPAQUE, callables, label=f"{name}({{0}})", operands=operands,
                          forward=forward, vjp=vjp, jvp=jvp, variables=variables, note=note, examples=examples))


opaque("inv", ("∂(A⁻¹)ₖₗ/∂Aᵢⱼ = −(A⁻¹)ₖᵢ·(A⁻¹)ⱼₗ",), np.linalg.inv, (_inv_vjp,), (_inv_jvp,), (np.linalg.inv,),
       examples=(((_S,), {}),))
opaque("det", ("∂det(A)/∂Aᵢⱼ = det(A)·(A⁻¹)ⱼᵢ",), np.linalg.det, (_det_vjp,), (_det_jvp,), (np.linalg.det,),
       examples=(((_S,), {}),))
opaque("logabsdet", ("∂log|det(A)|/∂Aᵢⱼ = (A⁻¹)ⱼᵢ",), lambda a: np.linalg.slogdet(a)[1], (_logdet_vjp,),
       (_logdet_jvp,), note="the second result of np.linalg.slogdet (the sign is a constant)")
opaque("solve", ("∂xₖ/∂Aᵢⱼ = −(A⁻¹)ₖᵢ·xⱼ (x = A⁻¹b)", "∂xₖ/∂bⱼ = (A⁻¹)ₖⱼ"), np.linalg.solve,
       (_solve_vjp_a, _solve_vjp_b), (_solve_jvp_a, _solve_jvp_b), (np.linalg.solve,), ("a", "b"), ("A", "b"),
       examples=(((_S, _V), {}), ((_S, _S.T), {})))
opaque("norm2", ("∂‖A‖₂/∂A = u₁·v₁ᵀ (the top singular vectors)",), lambda a: np.linalg.norm(a, 2),
       (_norm2_vjp,), (_norm2_jvp,), note="np.linalg.norm(A, 2) of a matrix: its largest singular value")


def _slogdet(tracer, a):
    from .registry import OPS
    x = tracer.lift(a)
    sign = np.sign(np.linalg.det(x.value))
    return sign, OPS["logabsdet"].kind.trace(tracer, OPS["logabsdet"], {"a": x})


derived("slogdet", "slogdet(A) = (sign, log|det(A)|): the sign is a constant", _slogdet, (np.linalg.slogdet,), ("a",),
        "the sign carries no gradient; log|det| is one node", family=LINALG, examples=(((_S,), {}),))


def _norm(tracer, x, ord=None, axis=None, keepdims=False):
    from ..errors import UnsupportedOperation
    from .registry import OPS
    x = tracer.lift(x)
    kd = bool(keepdims)
    if axis is None and ord is None:
        return np.sqrt(np.sum(np.square(x), keepdims=kd))
    axes = tuple(range(x.ndim)) if axis is None else tuple(np.atleast_1d(axis).tolist())
    if len(axes) == 1:
        if ord is None or ord == 2:
            return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=kd))
        if ord == 1:
            return np.sum(np.abs(x), axis=axes, keepdims=kd)
        if ord == np.inf:
            return np.max(np.abs(x), axis=axes, keepdims=kd)
        if ord == -np.inf:
            return np.min(np.abs(x), axis=axes, keepdims=kd)
        if isinstance(ord, (int, float)) and ord != 0:
            return np.sum(np.abs(x) ** ord, axis=axes, keepdims=kd) ** (1.0 / ord)
    elif len(axes) == 2:
        rows, cols = axes
        if ord is None or ord == "fro":
            return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=kd))
        if ord in (1, np.inf):  # the largest column sum (1) or row sum (inf) of |A|
            sums = np.sum(np.abs(x), axis=rows if ord == 1 else cols, keepdims=True)
            return np.max(sums, axis=axes, keepdims=kd)
        if ord == 2 and x.ndim == 2:
            top = OPS["norm2"].kind.trace(tracer, OPS["norm2"], {"a": x})
            return np.reshape(top, (1, 1)) if kd else top
    raise UnsupportedOperation(f"np.linalg.norm(..., ord={ord!r}) is not supported for {len(axes)} axes; "
                               f"supported: ord None, 1, 2, inf, -inf, p (vectors); None, 'fro', 1, 2, inf (matrices)")


derived("norm", "‖x‖ = sqrt(Σ x²) (2, fro), Σ|x| (1), max|x| (inf); matrices: max column/row sum of |A| (1/inf)",
        _norm, (np.linalg.norm,), ("x",), "derived: the learner sees squares, a sum and a root (or |x| and a max); "
        "the matrix 2-norm is one node (its largest singular value)", options=("ord", "axis", "keepdims"),
        family=LINALG, examples=(((_V,), {}), ((_A,), {"ord": 1}), ((_A,), {"ord": np.inf}), ((_A,), {"ord": "fro"}),
                                 ((_S,), {"ord": 2}), ((_A,), {"axis": 1}), ((_V,), {"ord": 1}),
                                 ((_V,), {"ord": np.inf}), ((_A,), {"axis": 0, "keepdims": True}), ((_V,), {"ord": 3})))
