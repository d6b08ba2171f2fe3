"""The spiral network's forward and backward pass written by hand in NumPy, with the NNFS book's formulas.

Independent of gradviz: the reference its gradients are checked against (tests) and timed against (bench).
"""
from __future__ import annotations

import numpy as np


def forward_backward(X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray,
                     b2: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Loss of Dense(W1, b1) → ReLU → Dense(W2, b2) → softmax → categorical cross-entropy, and its gradients."""
    # forward
    z1 = np.dot(X, W1) + b1
    a1 = np.maximum(0, z1)
    z2 = np.dot(a1, W2) + b2
    exp_values = np.exp(z2 - np.max(z2, axis=1, keepdims=True))
    probs = exp_values / np.sum(exp_values, axis=1, keepdims=True)
    n = len(probs)
    loss = float(np.mean(-np.log(np.clip(probs, 1e-7, 1 - 1e-7)[range(n), y])))
    # backward: softmax and cross-entropy combined, dvalues = (softmax − one-hot) / n
    dz2 = probs.copy()
    dz2[range(n), y] -= 1
    dz2 /= n
    dW2 = np.dot(a1.T, dz2)
    db2 = np.sum(dz2, axis=0, keepdims=True)
    da1 = np.dot(dz2, W2.T)
    dz1 = da1.copy()
    dz1[z1 <= 0] = 0  # ReLU passes the gradient only where its input was positive
    dW1 = np.dot(X.T, dz1)
    db1 = np.sum(dz1, axis=0, keepdims=True)
    dX = np.dot(dz1, W1.T)
    return loss, {"X": dX, "dense1.weights": dW1, "dense1.biases": db1, "dense2.weights": dW2, "dense2.biases": db2}
