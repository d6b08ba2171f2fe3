"""A polynomial in two inputs: f(x, y) = 3x³ − y² + 5x + 2.

Apply the sum rule first, then differentiate each term with the other input held
constant: ∂f/∂x = 9x² + 5 and ∂f/∂y = −2y; the constant 2 contributes nothing.
"""
x = 2.0
y = 3.0


def forward(x, y):
    cubic = 3 * x**3
    square = y**2
    linear = 5 * x
    f = cubic - square + linear + 2
    return f
