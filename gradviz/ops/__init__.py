"""THE table of operations, one registry keyed by the NumPy callable (see registry.py), by family:

- elementwise.py: arithmetic, exponents and logarithms, trigonometric and hyperbolic functions, comparison
  and clipping, rounding (zero derivative): one line each.
- reductions.py: sum, mean, max, min, prod; var, std, average, ptp, nansum, nanmean (derived); cumsum,
  cumprod, diff.
- linalg.py: matmul, dot, inner, tensordot, einsum, trace (contractions); outer, vdot, kron, multi_dot,
  matrix_power, norm (derived); inv, det, slogdet, solve (one node with the exact partials).
- structural.py: operations that only move elements (indexing, reshape, transpose, sort).
- kinds.py: how each kind of primitive becomes nodes and what its edges carry backwards and forwards.

Convention at a point where the derivative does not exist (a max or min tie, ReLU or abs at exactly 0,
clip at a bound, a jump of floor): the local partial is 0, as in the study notes' "d max(x, 0)/dx = 1 if
x > 0, else 0", and the node is flagged non-differentiable.
"""
from __future__ import annotations

from . import elementwise, linalg, reductions, structural  # noqa: F401  (each registers its entries)
from .kinds import Kind, unbroadcast
from .registry import FUNCTIONS, METHODS, OPS, REGISTRY, Entry, display_name, families, register

__all__ = ["Entry", "FUNCTIONS", "Kind", "METHODS", "OPS", "REGISTRY", "display_name", "families", "register",
           "unbroadcast"]
