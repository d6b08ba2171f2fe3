"""Three inputs, and products of inputs: f(x, y, z) = 3x³z − y² + 5z + 2yz.

Differentiate with respect to one input at a time, moving the other two outside
as constants. The gradient is the vector of all three partials: (9x²z, −2y + 2z, 3x³ + 5 + 2y).
"""
x = 1.0
y = 2.0
z = 3.0


def forward(x, y, z):
    cubic_term = 3 * x**3 * z
    square_term = y**2
    linear_term = 5 * z
    cross_term = 2 * y * z
    f = cubic_term - square_term + linear_term + cross_term
    return f
