"""The chain rule on a composition: f(g(x)) = 3(2x²)⁵, the notes' example.

The derivative of the outer function with respect to the inner one, times the derivative
of the inner one: f'(g(x)) · g'(x) = 5·3(2x²)⁴ · 4x, which at x = 1 is 15 · 16 · 4 = 960.
"""
x = 1.0


def forward(x):
    inner = 2 * x**2
    return 3 * inner**5
