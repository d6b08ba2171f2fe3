"""Primitive kinds: how an operation of each kind becomes nodes, at both granularities, and what its
tensor edges carry backwards (the chain, a vector-Jacobian product) and forwards (the tangent, a
Jacobian-vector product). backward.py, forward.py and the views ask the kind; none of them branches on it.

- Elementwise: broadcasting inputs, one local partial per input element (`entry.partials`).
- Reduce: one array folded over axes; split into scalars, one n-ary node per output element.
- Contraction: einsum and everything that is an einsum (dot, matmul, inner, tensordot, trace). Split into
  scalars it is products and n-ary sums; as a tensor its Jacobian stays unmaterialised.
- Linear: a linear map along an axis with its transpose (cumsum); split into scalars, one n-ary node per
  output element over the inputs it adds.
- Opaque: linear algebra that is no sum of products (inv, det, solve): one node per output element whose
  edges carry the exact partials, computed from the entry's JVP.
- Structural (in structural.py, with its entries): operations that only move elements; one index map learnt
  by running the NumPy call on element numbers serves them all.

Every kind calls `tracer.reserve(n, what)` with the number of nodes it is about to make, before it
computes values or allocates (`what` names the operation, or is a function that describes it for a refusal).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple  # NumPy 2.0+

if TYPE_CHECKING:
    from .registry import Entry


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient shaped like a broadcast result back to the shape of the input that was broadcast."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if kept:
        g = g.sum(axis=kept, keepdims=True)
    return g.reshape(shape)


def _shaped(local: Any, shape: tuple) -> np.ndarray:
    """A local partial as a float array of the result's shape (a broadcast view where it is smaller)."""
    if type(local) is np.ndarray and local.shape == shape and local.dtype == np.float64:
        return local
    return np.broadcast_to(np.asarray(local, dtype=float), shape)


def _as_tuple(p: Any) -> tuple:
    return p if isinstance(p, tuple) else (p,)


class Kind:
    """What every kind answers. `nary`: its scalar nodes join many inputs (the label lists them);
    `rule_style`: how a rule's variables are written with the graph's labels ("variables": x, y stand for
    the inputs; "element": xᵢ is one element of the input; None: the rule stays as written)."""

    name = ""
    nary = False
    rule_style: str | None = None
    # bounds: its chain and tangent, run on magnitudes (|local|, |inputs|), bound the size of the terms they
    # sum, which tells rounding noise from a real small number (gradviz.rounding); uses_local: they read local
    bounds = False
    uses_local = False

    def trace(self, tracer: Any, entry: "Entry", args: dict) -> Any:
        raise NotImplementedError

    def chain(self, entry: "Entry", arg: int, local: Any, up: np.ndarray, ctx: tuple, out: Any) -> np.ndarray:
        """upstream × local for the tensor edge into input `arg`: shaped like that input."""
        args, params = ctx
        return entry.vjp[arg](up, args, out, params)

    def backward(self, entry: "Entry", edge: Any, up: np.ndarray, ctx: tuple, out: Any) -> np.ndarray:
        """The chain of one tensor edge in the reverse pass (rounding.py calls chain itself, with magnitudes)."""
        return self.chain(entry, edge.arg, edge.local, up, ctx, out)

    def tangent(self, entry: "Entry", arg: int, local: Any, t: np.ndarray, ctx: tuple, out: Any) -> np.ndarray:
        """local × the input's tangent for the tensor edge from input `arg`: shaped like the result."""
        args, params = ctx
        return entry.jvp[arg](t, args, out, params)


class Elementwise(Kind):
    name = "elementwise"
    bounds = uses_local = True
    rule_style = "variables"

    def __init__(self, sums: bool = False) -> None:
        self.sums = sums  # x + y at scalar granularity joins the terms of unnamed sums into one n-ary node

    def trace(self, tracer, entry, args):
        if entry.spec is not None:
            return self.apply(tracer, entry, *entry.spec(**args))
        return self.apply(tracer, entry, [args[p] for p in entry.operands], {k: args[k] for k in entry.options})

    def apply(self, tracer, entry, operands: list, params: dict | None = None):
        xs = [tracer.lift(a) for a in operands]
        vals = [x.value for x in xs]
        if not tracer.scalar or all(v.ndim == 0 for v in vals):
            tracer.reserve(1, entry.name)
        else:
            n = math.prod(np.broadcast_shapes(*(v.shape for v in vals)))
            # the shapes are written out only for a refusal: this runs for every + of two arrays
            tracer.reserve(n, lambda: f"{entry.name} of {' and '.join(str(v.shape) for v in vals)}")
        with np.errstate(all="ignore"):
            out = np.asarray(entry.forward(*vals, **(params or {})), dtype=float)
            nondiff = entry.nondiff(*vals, out) if entry.nondiff else None
            # a tensor's local partials are computed when first read (backward may need none)
            partials = _as_tuple(entry.partials(*vals, out)) if tracer.scalar else None
        name = entry.name
        if not tracer.scalar:
            nid = tracer.op_node(name, out, [x.ref for x in xs], _Partials(entry, vals, out),
                                 nondiff is not None and bool(np.any(nondiff)), (tuple(vals), params or {}))
            return tracer.wrap(out, nid)
        if out.ndim == 0:
            # scalars in, one scalar out (a loop over Python numbers): skip the array bookkeeping below
            srcs = [int(x.ref) for x in xs]
            if self.sums:
                return tracer.wrap(out, np.array(tracer.sum_node(out.item(), srcs)))
            return tracer.wrap(out, np.array(tracer.op_node(name, out.item(), srcs, list(map(float, partials)),
                                                            bool(nondiff))))
        locs = [_shaped(p, out.shape) for p in partials]
        refs = [np.broadcast_to(x.ref, out.shape).ravel().tolist() for x in xs]
        locs = [loc.ravel().tolist() for loc in locs]
        if self.sums:
            return tracer.wrap(out, tracer.scalar_sums(out, refs))
        if len(xs) > 1:  # node by node, its inputs in order
            refs = [[r for group in zip(*refs, strict=True) for r in group]]
            locs = [[v for group in zip(*locs, strict=True) for v in group]]
        return tracer.wrap(out, tracer.op_nodes(name, out, len(xs), refs[0], locs[0], nondiff))

    def chain(self, entry, arg, local, up, ctx, out):
        return _times(up, local, np.shape(ctx[0][arg]))

    def backward(self, entry, edge, up, ctx, out):
        return _times(up, _as_computed(edge), np.shape(ctx[0][edge.arg]))

    def tangent(self, entry, arg, local, t, ctx, out):
        return np.broadcast_to(local * t, np.shape(out))


def _as_computed(edge: Any) -> Any:
    """The edge's local partial as its entry computes it (a number, a mask) while nothing has read the graph's
    array of it (a LazyEdge's `partial` still set), else that array."""
    partial = getattr(edge, "partial", None)
    return edge.local if partial is None else partial.raw(edge.arg)


def _number(local: Any) -> Any:
    """A local partial that is one number (an array of it broadcast: x + y's 1, a sum's 1) as that number."""
    if isinstance(local, np.ndarray) and local.size and not any(local.strides):
        return local.flat[0]
    return local


def _times(up: np.ndarray, local: Any, shape: tuple) -> np.ndarray:
    """upstream × local, summed back to the shape of the input (which the result may broadcast)."""
    local = _number(local)
    if not isinstance(local, np.ndarray) and local == 1.0:  # x + y passes its upstream on as it is
        return unbroadcast(up, shape)
    return unbroadcast(up * local, shape)


class _Partials:
    """The local partials of one tensor elementwise node, computed on the first read of any: all together, or
    each alone where the entry has one function per input."""

    __slots__ = ("entry", "vals", "out", "done")

    def __init__(self, entry: "Entry", vals: list, out: np.ndarray) -> None:
        self.entry, self.vals, self.out, self.done = entry, vals, out, None

    def raw(self, arg: int) -> Any:
        """The partial for input arg as the entry computes it: a number, a mask, or an array that broadcasts
        to the result. NumPy's floating-point warnings are the caller's to silence (backward does)."""
        entry = self.entry
        if entry.each:
            return entry.each[arg](*self.vals, self.out)
        if self.done is None:
            self.done = _as_tuple(entry.partials(*self.vals, self.out))
        return self.done[arg]

    def __call__(self, arg: int) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _shaped(self.raw(arg), self.out.shape)


class Reduce(Kind):
    name = "reduce"
    bounds = uses_local = True
    nary = True
    rule_style = "element"

    def trace(self, tracer, entry, args):
        return self.reduce(tracer, entry, args[entry.operands[0]], args.get("axis"), bool(args.get("keepdims")))

    def reduce(self, tracer, entry, x, axis=None, keepdims: bool = False):
        x = tracer.lift(x)
        xs = x.value
        axes = tuple(range(xs.ndim)) if axis is None else tuple(sorted(normalize_axis_tuple(axis, xs.ndim)))
        keep_shape = tuple(1 if i in axes else n for i, n in enumerate(xs.shape))
        out_shape = keep_shape if keepdims else tuple(n for i, n in enumerate(xs.shape) if i not in axes)
        n = math.prod(out_shape) if tracer.scalar else 1
        tracer.reserve(n, lambda: f"{entry.name} of {xs.shape}")
        if not tracer.scalar:
            with np.errstate(all="ignore"):
                out = np.asarray(entry.forward(xs, axis=axes, keepdims=True), dtype=float)
            nondiff = bool(entry.nondiff(xs, out, axes).any()) if entry.nondiff else False
            value = out.reshape(out_shape)
            local = _ReducedLocal(entry, xs, out, axes)  # computed when first read
            return tracer.wrap(value, tracer.op_node(entry.name, value, [x.ref], local, nondiff,
                                                     ((xs,), {"keep_shape": keep_shape})))
        # split into scalars: one n-ary node per output element, over the elements folded into it
        kept = [i for i in range(xs.ndim) if i not in axes]
        order = kept + list(axes)
        n = math.prod(xs.shape[i] for i in axes)
        vals = np.transpose(xs, order).reshape(-1, n)
        refs = np.transpose(np.broadcast_to(x.ref, xs.shape), order).reshape(-1, n)
        with np.errstate(all="ignore"):
            out = np.asarray(entry.forward(vals, axis=1, keepdims=True), dtype=float)
            local = _shaped(entry.local(vals, out, 1), vals.shape)
        nondiff = entry.nondiff(vals, out, 1) if entry.nondiff else None
        ids = tracer.op_nodes(entry.name, out[:, 0], n, refs.ravel().tolist(), local.ravel().tolist(), nondiff)
        return tracer.wrap(out.reshape(out_shape), ids.reshape(out_shape))

    def chain(self, entry, arg, local, up, ctx, out):
        return _spread(up, local, ctx)

    def backward(self, entry, edge, up, ctx, out):
        return _spread(up, _as_computed(edge), ctx)

    def tangent(self, entry, arg, local, t, ctx, out):
        axes = tuple(i for i, k in enumerate(ctx[1]["keep_shape"]) if k == 1)
        return np.sum(local * t, axis=axes).reshape(np.shape(out))


def _spread(up: np.ndarray, local: Any, ctx: tuple) -> np.ndarray:
    """upstream × local for a reduction's input: each result element's upstream spread over the elements
    folded into it, times their partials (one number for a sum or a mean: a broadcast view then)."""
    up = np.reshape(up, ctx[1]["keep_shape"])
    local = _number(local)
    if isinstance(local, np.ndarray):
        return up * local
    return np.broadcast_to(up if local == 1.0 else up * local, np.shape(ctx[0][0]))


class _ReducedLocal:
    """The local partial of one tensor reduction, computed when first read."""

    __slots__ = ("entry", "xs", "out", "axes")

    def __init__(self, entry: "Entry", xs: np.ndarray, out: np.ndarray, axes: tuple) -> None:
        self.entry, self.xs, self.out, self.axes = entry, xs, out, axes

    def raw(self, arg: int) -> Any:
        """The local as the entry computes it: shaped like the input, or one number (NumPy's warnings are the
        caller's to silence)."""
        return self.entry.local(self.xs, self.out, self.axes)

    def __call__(self, arg: int) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _shaped(self.raw(arg), self.xs.shape)


class Contraction(Kind):
    """An einsum in explicit letters: `entry.spec(args)` gives (operands, input letters, output letters,
    forward), where forward computes the result with NumPy's own function."""

    name = "contraction"
    bounds = True
    rule_style = "variables"

    def trace(self, tracer, entry, args):
        operands, ins, out, forward = entry.spec(**args)
        xs = [tracer.lift(a) for a in operands]
        if not tracer.scalar:  # NumPy's own function checks the shapes
            tracer.reserve(1, entry.name)
            vals = tuple(x.value for x in xs)
            with np.errstate(all="ignore"):
                value = np.asarray(forward(*vals), dtype=float)
            params = {"ins": ins, "out": out}
            locals_ = [None] * len(xs)
            if value.size == 1:  # a scalar result's Jacobian is just its gradient, shaped like the input: show it
                locals_ = [einsum_vjp(np.ones(value.shape), i, vals, ins, out) for i in range(len(xs))]
            return tracer.wrap(value, tracer.op_node(entry.name, value, [x.ref for x in xs], locals_, False,
                                                     (vals, params)))
        sizes = letter_sizes([x.shape for x in xs], ins)
        letters = "".join(dict.fromkeys("".join(ins)))  # the order the products are made in
        contracted = [c for c in letters if c not in out]
        out_size = math.prod(sizes[c] for c in out)
        full = tuple(sizes[c] for c in letters)
        products, sums = math.prod(full) * (len(xs) - 1), (out_size if contracted else 0)
        shapes = (" @ " if entry.name in ("matmul", "dot") else ", ").join(str(x.shape) for x in xs)
        tracer.reserve(products + sums, f"{entry.name} {shapes} split into {products:,} products and {sums:,} sums")
        # the letters let a dimension of 1 broadcast, as einsum does; matmul, dot and the others are stricter:
        # NumPy's own function on stand-ins of the same shapes (zero strides, no memory) refuses what it refuses
        forward(*(np.broadcast_to(0.0, x.shape) for x in xs))
        grid = np.ogrid[tuple(slice(0, n) for n in full)] if full else []
        views = []
        for x, s in zip(xs, ins, strict=True):
            ix = tuple(grid[letters.index(c)] if x.shape[d] > 1 else 0 for d, c in enumerate(s))
            views.append(tracer.view(x, lambda v, ix=ix: np.broadcast_to(v[ix], full)))
        product = views[0]
        mul = _entry("mul")
        for v in views[1:]:
            product = mul.kind.apply(tracer, mul, [product, v])
        if contracted:
            product = REDUCE.reduce(tracer, _entry("sum"), product, tuple(letters.index(c) for c in contracted))
        rest = [c for c in letters if c not in contracted]
        perm = [rest.index(c) for c in out]
        return tracer.view(product, lambda v: np.transpose(v, perm))

    def chain(self, entry, arg, local, up, ctx, out):
        args, p = ctx
        (a, b), (sa, sb) = (args, p["ins"]) if len(args) == 2 else ((None, None), ("", ""))
        if (len(sa) == len(sb) == 2 and sa[1] == sb[0] and p["out"] == sa[0] + sb[1] and len(set(p["out"] + sa)) == 3
                and np.shape(a)[1] == np.shape(b)[0]):  # A @ B of two matrices: the textbook's two products
            return up @ np.transpose(b) if arg == 0 else np.transpose(a) @ up
        return einsum_vjp(up, arg, args, p["ins"], p["out"])

    def tangent(self, entry, arg, local, t, ctx, out):
        args, p = ctx
        vals = list(args)
        vals[arg] = t
        return contract(p["ins"], vals, p["out"])


def contract(ins: list[str], arrays: list, out: str) -> np.ndarray:
    """einsum(ins -> out). Two operands without repeated letters go through one batched matmul (BLAS):
    np.einsum's own path is ten times slower on the matrices of a network."""
    if len(arrays) != 2 or any(len(set(s)) != len(s) for s in ins) or any(
            np.shape(a)[d] == 1 for a, s in zip(arrays, ins, strict=True) for d in range(len(s))):
        return np.einsum(",".join(ins) + "->" + out, *arrays, optimize=True)
    (sa, sb), (a, b) = ins, arrays
    # a letter only one operand has and the result lacks is summed inside that operand first
    for only, (s, x) in enumerate([(sa, a), (sb, b)]):
        other = sb if only == 0 else sa
        gone = [d for d, c in enumerate(s) if c not in out and c not in other]
        if gone:
            x = np.sum(x, axis=tuple(gone))
            s = "".join(c for d, c in enumerate(s) if d not in gone)
        sa, a = (s, x) if only == 0 else (sa, a)
        sb, b = (s, x) if only == 1 else (sb, b)
    sizes = dict(zip(sa, np.shape(a), strict=True)) | dict(zip(sb, np.shape(b), strict=True))
    batch = [c for c in out if c in sa and c in sb]
    summed = [c for c in sa if c in sb and c not in out]
    free_a = [c for c in sa if c not in sb]
    free_b = [c for c in sb if c not in sa]

    def size(cs):
        return math.prod(sizes[c] for c in cs)

    am = np.transpose(a, [sa.index(c) for c in batch + free_a + summed])
    am = am.reshape(size(batch), size(free_a), size(summed))
    bm = np.transpose(b, [sb.index(c) for c in batch + summed + free_b])
    bm = bm.reshape(size(batch), size(summed), size(free_b))
    made = batch + free_a + free_b
    r = np.matmul(am, bm).reshape([sizes[c] for c in made])
    return np.transpose(r, [made.index(c) for c in out])


def letter_sizes(shapes: list[tuple], ins: list[str]) -> dict[str, int]:
    """The size of every letter; a dimension of 1 broadcasts against a larger one, as in NumPy."""
    sizes: dict[str, int] = {}
    for shape, s in zip(shapes, ins, strict=True):
        if len(shape) != len(s):
            raise ValueError(f"operand has {len(shape)} dimensions, subscripts give {len(s)}")
        for n, c in zip(shape, s, strict=True):
            known = sizes.get(c, 1)
            if n != 1 and known != 1 and n != known:
                raise ValueError(f"size {n} of {c!r} does not match {known}")
            sizes[c] = max(known, n) if n != 0 and known != 0 else 0
    return sizes


def einsum_vjp(g: np.ndarray, k: int, args: tuple, ins: list[str], out: str) -> np.ndarray:
    """The gradient of Σ g·einsum(args) with respect to args[k], shaped like args[k]: an einsum of g with the
    other operands, spread over the diagonal where a letter repeats in args[k] and summed where args[k]
    was broadcast."""
    sizes = letter_sizes([np.shape(a) for a in args], ins)

    def squeezed(a, s):  # drop the broadcast dimensions: einsum then broadcasts by leaving the letter out
        keep = [d for d, c in enumerate(s) if not (np.shape(a)[d] == 1 and sizes[c] != 1)]
        return np.reshape(a, [np.shape(a)[d] for d in keep]), "".join(s[d] for d in keep)

    x, s = squeezed(args[k], ins[k])
    others = [squeezed(a, t) for i, (a, t) in enumerate(zip(args, ins, strict=True)) if i != k]
    unique = "".join(dict.fromkeys(s))
    present = set(out).union(*(t for _, t in others))
    made = "".join(c for c in unique if c in present)
    r = contract([out] + [t for _, t in others], [g] + [a for a, _ in others], made)
    # letters only args[k] has (summed inside it): the gradient is the same along them
    r = np.broadcast_to(np.expand_dims(r, tuple(i for i, c in enumerate(unique) if c not in present)),
                        tuple(sizes[c] for c in unique))
    if len(unique) == len(s):
        grad = np.transpose(r, [unique.index(c) for c in s])
    else:
        grad = np.zeros(x.shape)
        idx = np.indices(r.shape, sparse=True)
        np.add.at(grad, tuple(idx[unique.index(c)] for c in s), r)
    return np.reshape(grad, np.shape(args[k])).astype(float, copy=False)


class Linear(Kind):
    """A linear map of one input, `entry.forward(x, **params)`, with `entry.vjp[0]` its transpose."""

    name = "linear"
    nary = True
    rule_style = "element"

    def trace(self, tracer, entry, args):
        x = tracer.lift(args[entry.operands[0]])
        params = {k: args[k] for k in entry.options}
        out_shape = np.shape(entry.forward(np.zeros(x.shape), **params))
        tracer.reserve(math.prod(out_shape) if tracer.scalar else 1, entry.name)
        with np.errstate(all="ignore"):
            value = np.asarray(entry.forward(x.value, **params), dtype=float)
        if not tracer.scalar:
            return tracer.wrap(value, tracer.op_node(entry.name, value, [x.ref], [None], False, ((x.value,), params)))
        # its Jacobian, column by column (the image of each input element), kept where it is not 0: one
        # column at a time, so the memory is that of the edges, not of the dense out.size × x.size matrix
        rows, cols, vals = [], [], []
        basis = np.zeros(x.size)
        for j in range(x.size):
            basis[j] = 1.0
            column = np.ravel(entry.forward(basis.reshape(x.shape), **params))
            basis[j] = 0.0
            hit = np.flatnonzero(column)
            rows.append(hit)
            cols.append(np.full(hit.size, j))
            vals.append(column[hit])
        rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        order = np.lexsort((cols, rows))  # node by node, its inputs in order
        refs = np.ravel(np.broadcast_to(x.ref, x.shape))
        counts = np.bincount(rows, minlength=value.size).tolist()
        ids = tracer.op_nodes_ragged(entry.name, value, counts, refs[cols[order]].tolist(), vals[order].tolist())
        return tracer.wrap(value, ids)

    def tangent(self, entry, arg, local, t, ctx, out):
        return entry.forward(t, **ctx[1])


class Opaque(Kind):
    """One node per result (a tensor, or one scalar per element), with the exact partials: the entry's
    forward, and its VJP and JVP per input. An entry with `derive` splits into scalars that way instead
    (cumprod: a chain of products)."""

    name = "opaque"
    nary = True  # split into scalars, each node reads every input element

    def trace(self, tracer, entry, args):
        xs = [tracer.lift(args[p]) for p in entry.operands]
        params = {k: args[k] for k in entry.options}
        vals = tuple(x.value for x in xs)
        if tracer.scalar and entry.derive is not None:
            return entry.derive(tracer, *xs, **params)
        if not tracer.scalar:
            tracer.reserve(1, entry.name)
            with np.errstate(all="ignore"):
                value = np.asarray(entry.forward(*vals, **params), dtype=float)
            locals_ = [None] * len(xs)
            if value.size == 1:
                locals_ = [entry.vjp[i](np.ones(value.shape), vals, value, params) for i in range(len(xs))]
            return tracer.wrap(value, tracer.op_node(entry.name, value, [x.ref for x in xs], locals_, False,
                                                     (vals, params)))
        with np.errstate(all="ignore"):
            value = np.asarray(entry.forward(*vals, **params), dtype=float)
        tracer.reserve(value.size, entry.name)
        jacs = [self._jacobian(entry, i, vals, value, params) for i in range(len(vals))]
        # an edge wherever the result depends on the input: a partial that is 0 here but not at a nearby
        # point is a real dependence (a cofactor that happens to vanish); 0 at both is none (another
        # matrix of a stack)
        rng = np.random.default_rng(0)
        near = tuple(v + 0.1 * (1.0 + np.abs(v)) * rng.uniform(-1.0, 1.0, v.shape) for v in vals)
        with np.errstate(all="ignore"):
            near_value = np.asarray(entry.forward(*near, **params), dtype=float)
        depends = [(j != 0) | (self._jacobian(entry, i, near, near_value, params) != 0) for i, j in enumerate(jacs)]
        refs = [np.ravel(np.broadcast_to(x.ref, x.shape)) for x in xs]
        counts, srcs, locs = [], [], []
        for k in range(value.size):
            counts.append(sum(int(d[k].sum()) for d in depends))
            for r, j, d in zip(refs, jacs, depends, strict=True):
                srcs.extend(r[d[k]].tolist())
                locs.extend(j[k][d[k]].tolist())
        return tracer.wrap(value, tracer.op_nodes_ragged(entry.name, value, counts, srcs, locs))

    @staticmethod
    def _jacobian(entry, i, vals, value, params) -> np.ndarray:
        """∂out/∂vals[i] as (out.size, vals[i].size): the JVP along each input element (exact, no differences)."""
        v = vals[i]
        with np.errstate(all="ignore"):
            return np.stack([np.ravel(entry.jvp[i](e.reshape(v.shape), vals, value, params)) for e in np.eye(v.size)],
                            axis=1)


def _entry(name: str) -> "Entry":
    from .registry import OPS
    return OPS[name]


ELEMENTWISE = Elementwise()
ADDITION = Elementwise(sums=True)
REDUCE = Reduce()
CONTRACTION = Contraction()
LINEAR = Linear()
OPAQUE = Opaque()
