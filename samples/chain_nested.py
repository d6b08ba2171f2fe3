"""The chain rule with several inputs: f(g(y, h(x, z))), the shape of the notes' example.

Here h(x, z) = x·z, g(y, h) = y + h² and f(g) = g². x reaches f only through h and then g, so
∂f/∂x = ∂f/∂g · ∂g/∂h · ∂h/∂x = 2g · 2h · z; the middle factor is taken with respect to h, not y.
y enters at g, so ∂f/∂y = ∂f/∂g · ∂g/∂y = 2g · 1.
"""
x = 1.0
y = -1.0
z = 2.0


def forward(x, y, z):
    h = x * z
    g = y + h**2
    f = g**2
    return f
