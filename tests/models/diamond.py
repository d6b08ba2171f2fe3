"""e = (a + b)·(b + 1): b reaches e along two paths, so its gradient is a sum of two chain products."""
a = 2.0
b = 1.0


def forward(a, b):
    c = a + b
    d = b + 1
    e = c * d
    return e
