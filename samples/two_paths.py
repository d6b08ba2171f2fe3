"""Sum over paths: e = (a + b)·(b + 1), where b feeds two nodes.

b reaches e along two paths, through c = a + b and through d = b + 1. Each path contributes
the product of its local partials, and b's gradient is their sum:
∂e/∂b = ∂e/∂c · ∂c/∂b + ∂e/∂d · ∂d/∂b = d · 1 + c · 1 = 2 + 3 = 5 at a = 2, b = 1.
"""
a = 2.0
b = 1.0


def forward(a, b):
    c = a + b
    d = b + 1
    e = c * d
    return e
