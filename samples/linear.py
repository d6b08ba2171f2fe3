"""Partial derivatives with constants and a power: f(x, y) = 2x + 3y².

Constants move outside the derivative; the other input is treated as a constant
and drops out. So ∂f/∂x = 2 (it does not depend on y) and ∂f/∂y = 6y.
"""
x = 1.5
y = 2.0


def forward(x, y):
    x_term = 2 * x
    y_term = 3 * y**2
    return x_term + y_term
