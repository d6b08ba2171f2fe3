"""The index map: where each output element of a call that only moves elements comes from."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from gradviz.index_map import CONSTANT, gather, scatter, sources


def test_pad_triu_concatenate_and_a_write_by_hand():
    (pad,) = sources(lambda a: np.pad(a[0], 1, constant_values=5.0), [(1, 2)])
    np.testing.assert_array_equal(pad, [[-1, -1, -1, -1], [-1, 0, 1, -1], [-1, -1, -1, -1]])
    (tri,) = sources(lambda a: np.triu(a[0]), [(2, 2)])
    np.testing.assert_array_equal(tri, [[0, 1], [CONSTANT, 3]])
    # a plain array among the arguments is a constant; the second input's elements follow the first's
    (cat,) = sources(lambda a: np.concatenate([a[0], np.ones(1), a[1]]), [(2,), (1,)])
    np.testing.assert_array_equal(cat, [0, 1, CONSTANT, 2])

    def write(a):
        c = a[0].copy()
        c[[0, 0], 1] = a[1]  # the same element written twice: the last write wins, as in NumPy
        return c
    (w,) = sources(write, [(2, 2), ()])
    np.testing.assert_array_equal(w, [[0, 4], [2, 3]])


def test_several_outputs():
    maps = sources(lambda a: np.split(a[0], 2, axis=1), [(2, 2)])
    np.testing.assert_array_equal(maps[0], [[0], [2]])
    np.testing.assert_array_equal(maps[1], [[1], [3]])


def test_repeated_indices_add_up_in_the_scatter():
    (m,) = sources(lambda a: a[0][[1, 1, 0, 1]], [(3,)], copies_only=True)
    np.testing.assert_array_equal(m, [1, 1, 0, 1])
    np.testing.assert_allclose(scatter(np.array([1.0, 2.0, 3.0, 4.0]), m, 0, (3,)), [3.0, 7.0, 0.0])


CALLS = [
    lambda a: np.concatenate([a[0], a[0][::-1]], axis=0),
    lambda a: np.tile(a[0], (2, 1)),
    lambda a: np.roll(a[0], 1, axis=-1),
    lambda a: np.pad(a[0], ((1, 0), (0, 2))),
    lambda a: np.tril(a[0], -1),
    lambda a: np.repeat(a[0], 2, axis=0),
    lambda a: np.flip(a[0]),
    lambda a: np.swapaxes(a[0], 0, 1)[:, ::2],
    lambda a: a[0][np.indices(a[0].shape).sum(axis=0) % 2 == 0],  # a boolean mask
    lambda a: np.take(a[0], [0, -1, 0], axis=1),
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CALLS), hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=4),
                                          elements=st.floats(-1, 1)))
def test_the_map_rebuilds_the_output_and_scatter_is_the_transpose_of_gather(call, x):
    (m,) = sources(call, [x.shape])
    out = call([x])
    copied = m >= 0
    np.testing.assert_array_equal(out[copied], x.ravel()[m[copied]])
    # ⟨gather(t), g⟩ = ⟨t, scatter(g)⟩: the VJP is the adjoint of the JVP, for every t and g
    rng = np.random.default_rng(x.size)
    t, g = rng.normal(size=x.shape), rng.normal(size=m.shape)
    np.testing.assert_allclose(np.sum(gather(t, m, 0) * g), np.sum(t * scatter(g, m, 0, x.shape)), atol=1e-12)
