"""Default tolerances of `gradviz check`, in a module of their own so that the command line can show them
in its help without importing the engine (and NumPy)."""

RTOL = 1e-5
ATOL = 1e-6
