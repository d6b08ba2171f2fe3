"""A chain of 300,000 scalar operations (300,001 nodes with the leaf): the graph of section 5 of
bench/run.py, traced with `gradviz trace bench/models/chain_300k.py -g scalar --no-table -f json`."""
import numpy as np


def forward(x=0.5):
    for _ in range(300_000):
        x = np.tanh(x)
    return x
