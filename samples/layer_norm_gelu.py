"""Layer normalisation followed by GELU in its tanh approximation, as a transformer block's MLP applies it.

Each row is normalised over its features (mean and variance of that row), scaled by gamma and shifted by
beta, then GELU(y) = ½·y·(1 + tanh(√(2/π)·(y + 0.044715·y³))). The loss weights the result by a fixed w.
"""
import numpy as np

w = np.array([[1.0, -0.5, 2.0, 0.3], [-1.0, 0.8, 0.1, 1.5]])


def forward(x=np.array([[0.5, -1.0, 2.0, 0.1], [1.5, 0.3, -0.7, 0.9]]),
            gamma=np.array([1.0, 0.5, 2.0, 1.5]), beta=np.array([0.0, 0.1, -0.1, 0.2])):
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    y = gamma * (x - mu) / np.sqrt(var + 1e-5) + beta
    gelu = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))
    return np.sum(gelu * w)
