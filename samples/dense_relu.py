"""A dense layer followed by ReLU on a batch of two samples, summed to one number.

Every weight and bias is an input of the output. One unit receives a negative
pre-activation, so its ReLU is "dead": it passes no gradient back to the weights,
bias or inputs that feed it.
"""
import numpy as np

inputs = np.array([[1.0, 2.0, -1.0],
                   [0.5, -1.0, 2.0]])
weights = np.array([[0.5, -1.0],
                    [1.0, 0.5],
                    [-0.5, 2.0]])
biases = np.array([0.5, 3.0])


def forward(inputs, weights, biases):
    layer_outputs = np.dot(inputs, weights) + biases
    activations = np.maximum(0, layer_outputs)
    output = np.sum(activations)
    return output
