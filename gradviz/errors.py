"""Errors a user can cause. Each carries one line for the terminal; the CLI prints it and exits non-zero."""
from __future__ import annotations


class GradvizError(Exception):
    """A mistake in the user's input: printed as one line, never as a traceback."""

    exit_code = 2


class ModelError(GradvizError):
    """The model file cannot be loaded or its function cannot be traced."""


class UnsupportedOperation(GradvizError):
    """A traced value met a NumPy function or Python operation that gradviz cannot differentiate."""


class RenderError(GradvizError):
    """A figure could not be produced (for example PNG without a Graphviz install)."""
