"""Maximum likelihood over log-parameters, with the checks that make a fit trustworthy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from linkbay_customers_clv._checks import FloatArray
from linkbay_customers_clv._errors import ConvergenceError

__all__ = ("LOG_BOUND", "dot", "maximize_log_likelihood")

Objective = Callable[[FloatArray], tuple[float, FloatArray]]
"""Log-parameters → (mean negative log-likelihood, its gradient)."""

LOG_BOUND = 18.0
"""The optimizer searches log-parameters in [-18, 18] (parameters between about 1.5e-8
and 6.6e7, time and money rescaled to order 1); an estimate on that bound has run off
to 0 or infinity."""

GRADIENT_TOLERANCE = 1e-6
"""Largest gradient component of the mean negative log-likelihood accepted at the optimum."""

CONDITION_LIMIT = 1e6
"""Largest accepted ratio of the extreme curvatures of the log-likelihood at the optimum.
Beyond it the likelihood is flat in some direction: the data cannot tell apart
parameters along it (e.g. no heterogeneity in dropout sends a and b to infinity
together), and the estimates there are arbitrary."""


def maximize_log_likelihood(
    objective: Objective,
    starts: Sequence[FloatArray],
    *,
    model: str,
    names: Sequence[str],
    units: Sequence[float],
    hint: str,
) -> FloatArray:
    """The log-parameters that minimize ``objective``, trying ``starts`` in turn.

    An optimum is accepted when it is inside the search bounds, the gradient vanishes
    there and the curvature is positive in every direction. ``units`` turn the
    parameters back into the caller's units for the error messages, and ``hint`` says
    what data leaves the model unidentified.

    Raises:
        ConvergenceError: No start reached such an optimum.
    """
    failures: list[str] = []
    for start in starts:
        # SLSQP rather than L-BFGS-B: as precise here, and L-BFGS-B's many tiny BLAS
        # calls slow it down tenfold or more when the cores are busy (OpenBLAS threads).
        result = minimize(
            objective,
            np.asarray(start, dtype=np.float64),
            jac=True,
            method="SLSQP",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
            options={"maxiter": 500, "ftol": 1e-14},
        )
        estimate = np.asarray(result.x, dtype=np.float64)
        reached = ", ".join(
            f"{name}={value:.4g}"
            for name, value in zip(names, np.exp(estimate) * np.asarray(units), strict=True)
        )
        failure = _failure(objective, estimate, names, reached, hint, str(result.message))
        if failure is None:
            return estimate
        failures.append(failure)
    raise ConvergenceError(
        f"{model} fit did not converge (tried {len(starts)} starting points): {failures[0]}"
    )


def _failure(
    objective: Objective,
    estimate: FloatArray,
    names: Sequence[str],
    reached: str,
    hint: str,
    message: str,
) -> str | None:
    """Why ``estimate`` is not a trustworthy optimum, or None when it is."""
    on_bound = [n for n, v in zip(names, estimate, strict=True) if abs(v) >= LOG_BOUND - 1e-3]
    if on_bound:
        return (
            f"{', '.join(on_bound)} ran off to 0 or infinity ({reached}): the data does not "
            f"identify the model ({hint})"
        )
    value, gradient = objective(estimate)
    if not np.isfinite(value) or not (np.abs(gradient) <= GRADIENT_TOLERANCE).all():
        return f"the optimizer stopped short of an optimum at {reached} ({message})"
    curvatures = np.linalg.eigvalsh(_hessian(objective, estimate, gradient))
    if not curvatures[0] > curvatures[-1] / CONDITION_LIMIT:
        return (
            f"the likelihood is flat in some direction at {reached}: the data does not "
            f"identify the parameters ({hint})"
        )
    return None


def _hessian(objective: Objective, at: FloatArray, gradient: FloatArray) -> FloatArray:
    """Forward differences of the analytic gradient, symmetrized."""
    step = 1e-5
    columns = [(objective(at + step * unit)[1] - gradient) / step for unit in np.eye(at.size)]
    hessian = np.column_stack(columns)
    return np.asarray((hessian + hessian.T) / 2, dtype=np.float64)


def dot(left: FloatArray, right: FloatArray) -> float:
    """``Σ left·right`` in one single-threaded pass. Not ``@``: a vector dot product
    goes to multithreaded BLAS, several times slower than this when the cores are busy."""
    return float(np.einsum("i,i->", left, right))
