"""A two-layer classifier in PyTorch: nn.Sequential(Linear 2→3, ReLU, Linear 3→2) and cross-entropy, on a
batch of three points with their classes.

The leaves are the points and the parameters of the layers, named where they live (model.0.weight,
model.2.bias). Every gradient is the one PyTorch's backward computes; `gradviz check` compares them with
finite differences. With --collapse each layer is one node.
"""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
x = torch.tensor([[0.5, -1.0],
                  [1.5, 0.5],
                  [-0.5, 2.0]])
target = torch.tensor([0, 1, 1])


def forward(x, target):
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, target)
    return loss
