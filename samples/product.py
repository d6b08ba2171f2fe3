"""The partial derivative of a product: f(x, y) = x·y.

With respect to either input it equals the other input: raising x by 1 raises the
output by y, so ∂f/∂x = y and ∂f/∂y = x.
"""
x = 2.0
y = 3.0


def forward(x, y):
    return x * y
