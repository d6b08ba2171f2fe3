"""A character-level vanilla RNN, forward pass and loss, as the famous 100-line NumPy program writes it.

Three characters of a four-letter vocabulary, a hidden state of three. Each input character is written
into a one-hot column by assignment, the hidden states live in a dict keyed by time (hs[-1] is a copy of
the previous state), and the loss adds −log p(next character) over time. The weights are module globals:
forward's only parameter is the previous hidden state.
"""
import numpy as np

vocab_size, hidden_size = 4, 3
rng = np.random.default_rng(7)
Wxh = rng.normal(0, 0.5, (hidden_size, vocab_size))
Whh = rng.normal(0, 0.5, (hidden_size, hidden_size))
Why = rng.normal(0, 0.5, (vocab_size, hidden_size))
bh = np.zeros((hidden_size, 1))
by = np.zeros((vocab_size, 1))
inputs = [0, 2, 1]  # "h", "l", "e" of a vocabulary h, e, l, o
targets = [2, 1, 3]


def forward(hprev=np.full((hidden_size, 1), 0.1)):
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    return loss
