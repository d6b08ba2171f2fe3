"""The spiral network of section 4 of bench/run.py, as a model file: Dense(2,64) → ReLU → Dense(64,3) →
softmax → categorical cross-entropy, in plain NumPy. X and y are the data (the bench sets them: 300 points,
then 3,000); X is traced as a constant (`consts=("X",)`, the CLI's --const), as the hand-written backward
pass it is compared with computes no gradient for the data."""
import numpy as np

X = np.zeros((0, 2))
y = np.zeros(0, dtype=int)


def forward(W1, b1, W2, b2):
    hidden = np.maximum(0, X @ W1 + b1)
    logits = hidden @ W2 + b2
    exp_values = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    probabilities = exp_values / np.sum(exp_values, axis=1, keepdims=True)
    correct = probabilities[np.arange(len(y)), y]
    return np.mean(-np.log(correct))
