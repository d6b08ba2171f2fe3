"""The chain rule through three functions with several inputs: f(g(h(x, z)), y).

Here h = x·z, g = h² and f = g·y. ∂f/∂x multiplies the partials down the chain,
∂f/∂g · ∂g/∂h · ∂h/∂x = y · 2h · z; y enters only at the last step, so ∂f/∂y = g.
"""
x = 3.0
y = 2.0
z = -1.0


def forward(x, y, z):
    h = x * z
    g = h**2
    f = g * y
    return f
