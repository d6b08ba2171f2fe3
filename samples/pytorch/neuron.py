"""The neuron of samples/neuron.py written with PyTorch: y = relu(x·w + b), the running example of the notes.

gradviz reads the graph PyTorch records: the same numbers on every edge as the NumPy neuron, with
PyTorch's own gradients (∂y/∂x = w, ∂y/∂w = x, ∂y/∂b = 1, as the ReLU is active: x·w + b = 6 > 0).
"""
import torch

x = torch.tensor([1.0, -2.0, 3.0])
w = torch.tensor([-3.0, -1.0, 2.0])
b = torch.tensor(1.0)


def forward(x, w, b):
    z = torch.dot(x, w) + b
    return torch.relu(z)
