"""A 20,000-node graph of Python scalars with no layers: the worst case for drawing (no tensor form, nothing
to collapse), used to time `gradviz trace ... --no-table` (see bench/README.md)."""


def forward(x=0.5):
    for _ in range(5000):
        x = x * 0.999 + 0.001
    return x
