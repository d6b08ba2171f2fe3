"""A two-layer network as a course assignment writes it: weights in a dict on the object, a forward
with no parameters, and in-place updates (-= to shift the scores, /= to normalise the probabilities).

loss = mean over the batch of −log softmax(relu(X·W1 + b1)·W2 + b2)[y]. The leaves are where the
network keeps them: net.params['W1'], net.params['b1'], ... and the data X.
"""
import numpy as np


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, std=0.5):
        rng = np.random.default_rng(0)
        self.params = {}
        self.params['W1'] = std * rng.standard_normal((input_size, hidden_size))
        self.params['b1'] = np.full(hidden_size, 0.1)
        self.params['W2'] = std * rng.standard_normal((hidden_size, output_size))
        self.params['b2'] = np.zeros(output_size)

    def loss(self, X, y):
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N = X.shape[0]
        hidden = np.maximum(0, X.dot(W1) + b1)
        scores = hidden.dot(W2) + b2
        scores -= np.max(scores, axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= np.sum(probs, axis=1, keepdims=True)
        return -np.sum(np.log(probs[np.arange(N), y])) / N


net = TwoLayerNet(3, 4, 3)
X = np.array([[-0.5, 1.0, 0.7],
              [1.2, -0.4, 0.3]])
y = np.array([2, 0])


def forward():
    return net.loss(X, y)
