"""Input checks shared by the models: every error names the argument at fault."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = (
    "MIN_CUSTOMERS",
    "FloatArray",
    "as_float_array",
    "check_history",
    "check_parameters",
    "check_purchase_counts",
    "check_sample_size",
)

FloatArray = NDArray[np.float64]

MIN_CUSTOMERS = 10
"""The fewest customers a fit accepts. A floor that rejects fits with next to no
information (four or three parameters from a handful of rows), not a guarantee that
more customers give trustworthy estimates: a few hundred are a sensible minimum."""


def as_float_array(name: str, value: ArrayLike) -> FloatArray:
    """``value`` as a float64 array; it must be numeric and finite."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite: it contains NaN or infinity")
    return array


def check_purchase_counts(name: str, value: ArrayLike) -> FloatArray:
    """Non-negative, integer-valued counts (as floats, ready for the formulas)."""
    array = as_float_array(name, value)
    if (array < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if (array != np.round(array)).any():
        raise ValueError(f"{name} must be integer-valued (a count of repeat purchases)")
    return array


def check_history(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, for_fit: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Checks a purchase history, as the BG/NBD model defines it.

    ``frequency`` counts repeat purchases, ``recency`` is the customer's age at the
    last repeat purchase (0 when there is none) and ``T`` the customer's age, both
    measured from the first purchase. For a fit the three are one-dimensional and of
    the same length; otherwise they only need to broadcast together.
    """
    x = check_purchase_counts("frequency", frequency)
    t_x = as_float_array("recency", recency)
    age = as_float_array("T", T)
    shapes = {"frequency": x.shape, "recency": t_x.shape, "T": age.shape}
    if for_fit:
        if any(len(shape) != 1 for shape in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(
                "frequency, recency and T must be one-dimensional and of the same length, "
                f"one entry per customer: got shapes {shapes}"
            )
    else:
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            raise ValueError(
                "frequency, recency and T must have the same shape (or broadcast together): "
                f"got shapes {shapes}"
            ) from None
    if (t_x < 0).any():
        raise ValueError("recency must be non-negative")
    if (age < 0).any():
        raise ValueError("T must be non-negative")
    if (t_x > age).any():
        raise ValueError("recency must not exceed T (the customer's age)")
    if ((x == 0) & (t_x != 0)).any():
        raise ValueError(
            "recency must be 0 where frequency is 0: recency is the customer's age at their "
            "last repeat purchase, not the time since it"
        )
    return x, t_x, age


def check_sample_size(model: str, count: int, what: str = "customers") -> None:
    """Refuses a fit on fewer than ``MIN_CUSTOMERS`` rows."""
    if count < MIN_CUSTOMERS:
        raise ValueError(f"{model} needs at least {MIN_CUSTOMERS} {what} to fit, got {count}")


def check_parameters(model: str, **parameters: float) -> None:
    """Model parameters must be positive and finite."""
    for name, value in parameters.items():
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{model} parameter {name} must be positive and finite, got {value}")
