"""An NNFS-style three-layer network on a small batch, traced at scalar granularity: about 20,000 nodes in
three layers, used to time `gradviz trace ... -g scalar --no-table` (see bench/README.md)."""
import numpy as np

np.random.seed(0)


class Layer_Dense:
    def __init__(self, n_inputs, n_neurons):
        self.weights = 0.1 * np.random.randn(n_inputs, n_neurons)
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.output = np.dot(inputs, self.weights) + self.biases


class Activation_ReLU:
    def forward(self, inputs):
        self.output = np.maximum(0, inputs)


X = np.random.randn(20, 8)
dense1 = Layer_Dense(8, 40)
relu1 = Activation_ReLU()
dense2 = Layer_Dense(40, 16)
relu2 = Activation_ReLU()
dense3 = Layer_Dense(16, 1)


def forward(X):
    dense1.forward(X)
    relu1.forward(dense1.output)
    dense2.forward(relu1.output)
    relu2.forward(dense2.output)
    dense3.forward(relu2.output)
    return np.mean(dense3.output)
