"""Every sample traces to its hand-derived output and gradients, at both granularities."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from gradviz import trace_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GRANULARITIES = ["scalar", "tensor"]
EXACT = 1e-12


def _softmax_cce_expected() -> tuple[float, np.ndarray]:
    """Closed form for softmax + categorical cross-entropy, written independently of the sample's steps.

    loss = mean_i(logsumexp(z_i) − z_i[y_i]);  ∂loss/∂z = (softmax(z) − onehot(y)) / n.
    """
    logits = np.array([[2.0, 1.0, 0.1],
                       [0.5, 2.5, 0.3],
                       [-1.0, 0.2, 1.5]])
    y_true = np.array([0, 1, 1])
    n = len(logits)
    log_sum_exp = np.log(np.exp(logits).sum(axis=1))
    loss = float(np.mean(log_sum_exp - logits[np.arange(n), y_true]))
    softmax = np.exp(logits - log_sum_exp[:, None])
    onehot = np.eye(logits.shape[1])[y_true]
    return loss, (softmax - onehot) / n


SOFTMAX_CCE_LOSS, SOFTMAX_CCE_GRAD = _softmax_cce_expected()

# (file, expected output, {leaf: expected d output / d leaf}, rtol, atol)
CASES = [
    # f = x + y = 2 + 3 = 5;  ∂f/∂x = 1;  ∂f/∂y = 1
    ("sum.py", 5.0, {"x": 1.0, "y": 1.0}, EXACT, 0.0),
    # f = 2x + 3y² = 2·1.5 + 3·4 = 15;  ∂f/∂x = 2;  ∂f/∂y = 6y = 6·2 = 12
    ("linear.py", 15.0, {"x": 2.0, "y": 12.0}, EXACT, 0.0),
    # f = 3x³ − y² + 5x + 2 = 24 − 9 + 10 + 2 = 27
    # ∂f/∂x = 9x² + 5 = 36 + 5 = 41;  ∂f/∂y = −2y = −6
    ("polynomial.py", 27.0, {"x": 41.0, "y": -6.0}, EXACT, 0.0),
    # f = x·y = 2·3 = 6;  ∂f/∂x = y = 3;  ∂f/∂y = x = 2
    ("product.py", 6.0, {"x": 3.0, "y": 2.0}, EXACT, 0.0),
    # f = 3x³z − y² + 5z + 2yz = 9 − 4 + 15 + 12 = 32   (x=1, y=2, z=3)
    # ∂f/∂x = 9x²z = 27;  ∂f/∂y = −2y + 2z = −4 + 6 = 2;  ∂f/∂z = 3x³ + 5 + 2y = 3 + 5 + 4 = 12
    ("three_inputs.py", 32.0, {"x": 27.0, "y": 2.0, "z": 12.0}, EXACT, 0.0),
    # f = max(4, −1) = 4;  x is the larger: ∂f/∂x = 1, ∂f/∂y = 0
    ("max.py", 4.0, {"x": 1.0, "y": 0.0}, EXACT, 0.0),
    # f = max(2.5, 0) = 2.5;  x > 0: df/dx = 1
    ("relu.py", 2.5, {"x": 1.0}, EXACT, 0.0),
    # z = 3x² = 27, y = 5z = 135;  dy/dx = dy/dz · dz/dx = 5 · 6x = 5·18 = 90
    ("chain.py", 135.0, {"x": 90.0}, EXACT, 0.0),
    # h = x·z = −3, g = h² = 9, f = g·y = 18   (x=3, y=2, z=−1)
    # ∂f/∂x = ∂f/∂g · ∂g/∂h · ∂h/∂x = y · 2h · z = 2 · (−6) · (−1) = 12
    # ∂f/∂z = y · 2h · x = 2 · (−6) · 3 = −36;  ∂f/∂y = g = 9
    ("chain3.py", 18.0, {"x": 12.0, "y": 9.0, "z": -36.0}, EXACT, 0.0),
    # f = 3(2x²)⁵ = 3·32 = 96 at x = 1;  df/dx = 5·3(2x²)⁴ · 4x = 15·16·4 = 960
    ("composition.py", 96.0, {"x": 960.0}, EXACT, 0.0),
    # h = x·z = 2, g = y + h² = −1 + 4 = 3, f = g² = 9   (x=1, y=−1, z=2)
    # ∂f/∂x = 2g · 2h · z = 6·4·2 = 48;  ∂f/∂z = 2g · 2h · x = 24;  ∂f/∂y = 2g · 1 = 6
    ("chain_nested.py", 9.0, {"x": 48.0, "y": 6.0, "z": 24.0}, EXACT, 0.0),
    # e = (a + b)(b + 1) = 3·2 = 6;  ∂e/∂a = b + 1 = 2;  ∂e/∂b = (b + 1) + (a + b) = 2 + 3 = 5
    ("two_paths.py", 6.0, {"a": 2.0, "b": 5.0}, EXACT, 0.0),
    # z = x·w + b = −3 + 2 + 6 + 1 = 6 > 0, so ReLU passes 6 and a slope of 1
    # ∂y/∂x = w;  ∂y/∂w = x;  ∂y/∂b = 1
    ("neuron.py", 6.0,
     {"x": np.array([-3.0, -1.0, 2.0]), "w": np.array([1.0, -2.0, 3.0]), "b": 1.0},
     EXACT, 0.0),
    # Z = X·W + B = [[3.5, 1], [−1.25, 6]]; unit (1, 0) is dead, so the ReLU mask is M = [[1, 1], [0, 1]]
    # output = Σ ReLU(Z) = 3.5 + 1 + 6 = 10.5;  ∂out/∂Z = M
    # ∂out/∂X = M·Wᵀ = [[0.5 − 1, 1 + 0.5, −0.5 + 2], [−1, 0.5, 2]]
    # ∂out/∂W = Xᵀ·M: column 0 = X row 0 = [1, 2, −1]; column 1 = X row 0 + X row 1 = [1.5, 1, 1]
    # ∂out/∂B = column sums of M = [1, 2]
    ("dense_relu.py", 10.5,
     {"inputs": np.array([[-0.5, 1.5, 1.5], [-1.0, 0.5, 2.0]]),
      "weights": np.array([[1.0, 1.5], [2.0, 1.0], [-1.0, 1.0]]),
      "biases": np.array([1.0, 2.0])},
     EXACT, 0.0),
    # ∂loss/∂logits = (softmax − onehot) / n; the max-shift carries gradients that cancel to ~1e-17
    ("softmax_cce.py", SOFTMAX_CCE_LOSS, {"inputs": SOFTMAX_CCE_GRAD}, 1e-9, 1e-12),
]


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize(
    ("file", "output", "grads", "rtol", "atol"), CASES, ids=[case[0] for case in CASES]
)
def test_sample_output_and_gradients(file, output, grads, rtol, atol, granularity):
    graph = trace_file(str(SAMPLES / file), granularity=granularity)

    np.testing.assert_allclose(graph.output_value, output, rtol=rtol, atol=atol)
    for leaf, expected in grads.items():
        expected = np.asarray(expected, dtype=float)
        grad = graph.grad(leaf)
        assert np.shape(grad) == expected.shape, leaf
        np.testing.assert_allclose(grad, expected, rtol=rtol, atol=atol, err_msg=leaf)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda path: path.name)
def test_sample_says_what_it_teaches_and_has_forward(path):
    module = ast.parse(path.read_text(encoding="utf-8"))

    assert ast.get_docstring(module), f"{path.name} needs a module docstring saying what it teaches"
    assert any(
        isinstance(node, ast.FunctionDef) and node.name == "forward" for node in module.body
    ), f"{path.name} needs a top-level function named forward"


# -- the samples of NumPy as written: each against an independent hand-written backward pass ---------------

def _module(name: str):
    from gradviz.loader import load_module
    return load_module(SAMPLES / name)


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _char_rnn_by_hand(m):
    """The backward pass of the famous 100-line char-RNN (min-char-rnn.py's lossFun), written out."""
    hprev = np.full((m.hidden_size, 1), 0.1)
    xs, hs, ps = {}, {-1: hprev}, {}
    loss = 0.0
    for t, (i, j) in enumerate(zip(m.inputs, m.targets, strict=True)):
        xs[t] = np.eye(m.vocab_size)[:, [i]]
        hs[t] = np.tanh(m.Wxh @ xs[t] + m.Whh @ hs[t - 1] + m.bh)
        ps[t] = _softmax(m.Why @ hs[t] + m.by, axis=0)
        loss -= np.log(ps[t][j, 0])
    grads = {k: np.zeros_like(getattr(m, k)) for k in ("Wxh", "Whh", "Why", "bh", "by")}
    dhnext = np.zeros_like(hprev)
    for t in reversed(range(len(m.inputs))):
        dy = ps[t].copy()
        dy[m.targets[t]] -= 1
        grads["Why"] += dy @ hs[t].T
        grads["by"] += dy
        dhraw = (1 - hs[t] ** 2) * (m.Why.T @ dy + dhnext)
        grads["bh"] += dhraw
        grads["Wxh"] += dhraw @ xs[t].T
        grads["Whh"] += dhraw @ hs[t - 1].T
        dhnext = m.Whh.T @ dhraw
    return loss, {**grads, "hprev": dhnext}


def _two_layer_net_by_hand(m):
    """CS231n's two-layer net backward pass, written out."""
    p, X, y = m.net.params, m.X, m.y
    n = len(X)
    h = np.maximum(0, X @ p["W1"] + p["b1"])
    probs = _softmax(h @ p["W2"] + p["b2"])
    loss = -np.mean(np.log(probs[np.arange(n), y]))
    ds = (probs - np.eye(probs.shape[1])[y]) / n
    dh = (ds @ p["W2"].T) * (h > 0)
    return loss, {"net.params['W2']": h.T @ ds, "net.params['b2']": ds.sum(0), "net.params['W1']": X.T @ dh,
                  "net.params['b1']": dh.sum(0), "X": dh @ p["W1"].T}


def _batch_norm_by_hand(m):
    """The batch-norm backward pass in its textbook closed form (Ioffe & Szegedy)."""
    import inspect
    defaults = {k: v.default for k, v in inspect.signature(m.forward).parameters.items()}
    x, gamma, beta = defaults["x"], defaults["gamma"], defaults["beta"]
    n = len(x)
    inv = 1 / np.sqrt(x.var(0) + 1e-5)
    x_hat = (x - x.mean(0)) * inv
    d_hat = m.R * gamma
    dx = inv / n * (n * d_hat - d_hat.sum(0) - x_hat * (d_hat * x_hat).sum(0))
    return np.sum((gamma * x_hat + beta) * m.R), {"x": dx, "gamma": (m.R * x_hat).sum(0), "beta": m.R.sum(0)}


def _nnfs_softmax_by_hand(m):
    p = _softmax(np.array(m.layer_outputs))
    return -np.log(p[0]), {"layer_outputs": p - np.eye(3)[0]}


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("file, by_hand", [("char_rnn.py", _char_rnn_by_hand),
                                           ("two_layer_net.py", _two_layer_net_by_hand),
                                           ("batch_norm.py", _batch_norm_by_hand),
                                           ("nnfs_softmax.py", _nnfs_softmax_by_hand)])
def test_numpy_as_written_samples_against_a_backward_pass_by_hand(file, by_hand, granularity):
    loss, grads = by_hand(_module(file))
    graph = trace_file(str(SAMPLES / file), granularity=granularity)
    np.testing.assert_allclose(graph.output_value, loss, rtol=1e-10)
    for leaf, expected in grads.items():
        np.testing.assert_allclose(graph.grad(leaf), expected, rtol=1e-8, atol=1e-12, err_msg=leaf)
