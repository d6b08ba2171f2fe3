"""A single neuron with ReLU: y = max(x·w + b, 0), the running example of the notes.

The gradient of the output with respect to the inputs is the weights, with respect
to the weights it is the inputs, and with respect to the bias it is 1, because the
ReLU is active (x·w + b = 6 > 0) and passes the gradient through unchanged.
"""
import numpy as np

x = np.array([1.0, -2.0, 3.0])
w = np.array([-3.0, -1.0, 2.0])
b = 1.0

def forward(x, w, b):
    z = np.dot(x, w) + b
    return np.maximum(z, 0)
