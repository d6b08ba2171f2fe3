"""The chain rule for two functions: y = f(g(x)) with g(x) = 3x² and f(z) = 5z.

The derivative of the chain is the product of the derivatives along it:
dy/dx = df/dz · dz/dx = 5 · 6x.
"""
x = 3.0


def forward(x):
    z = 3 * x**2
    y = 5 * z
    return y
