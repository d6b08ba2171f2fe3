"""Batch normalisation of a batch of four samples with two features, as the training-time forward pass
computes it: the batch mean and variance (np.var), normalise, then scale by gamma and shift by beta.

The output is weighted by a fixed matrix R before it is summed: the plain sum of a batch-normalised
output does not depend on x at all (each column sums to n·beta).
"""
import numpy as np

R = np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0], [2.0, 0.5]])


def forward(x=np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0], [0.0, 1.5]]),
            gamma=np.array([1.5, 0.5]), beta=np.array([0.1, -0.2])):
    mu = np.mean(x, axis=0)
    var = np.var(x, axis=0)
    x_hat = (x - mu) / np.sqrt(var + 1e-5)
    out = gamma * x_hat + beta
    return np.sum(out * R)
