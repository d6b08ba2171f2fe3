"""Peer: the neuron of samples/neuron.py in PyTorch, drawn by torchviz (system dot); SVG to argv[1]."""
import sys

import torch
from torchviz import make_dot

x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
w = torch.tensor([-3.0, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
y = torch.relu(torch.dot(x, w) + b)
y.backward()
dot = make_dot(y, params={"x": x, "w": w, "b": b})
dot.format = "svg"
with open(sys.argv[1], "wb") as f:
    f.write(dot.pipe())
