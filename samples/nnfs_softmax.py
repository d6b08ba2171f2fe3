"""The softmax of "Neural Networks from Scratch", chapter 4, as the book first writes it: Python lists
and the math module, no NumPy in the computation. Then the categorical cross-entropy of chapter 5 for
target class 0: loss = −log(softmax(outputs)[0]), whose gradient is softmax − one-hot.
"""
import math

layer_outputs = [4.8, 1.21, 2.385]


def forward(layer_outputs=layer_outputs):
    E = math.e
    exp_values = []
    for output in layer_outputs:
        exp_values.append(E ** output)
    norm_base = sum(exp_values)
    norm_values = []
    for value in exp_values:
        norm_values.append(value / norm_base)
    return -math.log(norm_values[0])
