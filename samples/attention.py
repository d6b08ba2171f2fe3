"""One head of scaled dot-product self-attention over two tokens of three features, with a head size of two.

Q, K, V are projections of the same tokens; the weights are softmax(Q·Kᵀ/√d) row by row, and the
output mixes the values with them. The loss weights the output by a fixed target so every path counts.
"""
import numpy as np

rng = np.random.default_rng(3)
Wq = rng.normal(0, 0.5, (3, 2))
Wk = rng.normal(0, 0.5, (3, 2))
Wv = rng.normal(0, 0.5, (3, 2))
target = np.array([[1.0, -1.0], [0.5, 2.0]])


def forward(X=np.array([[1.0, 0.0, -1.0], [0.2, 1.0, 0.3]])):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    scores = Q @ K.T / np.sqrt(K.shape[-1])
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)
    out = weights @ V
    return np.sum(out * target)
