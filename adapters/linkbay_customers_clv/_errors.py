"""Errors of the statistical models."""

from __future__ import annotations

__all__ = ("ConvergenceError",)


class ConvergenceError(RuntimeError):
    """Maximum likelihood did not reach a trustworthy optimum.

    Raised instead of returning estimates that the data does not support: the
    optimizer stopped without converging, or an estimate ran off to 0 or infinity
    (the data does not identify the model, e.g. almost nobody bought twice).
    """
