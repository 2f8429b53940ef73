"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from linkbay_customers_clv._checks import (
    FloatArray,
    as_float_array,
    check_parameters,
    check_purchase_counts,
    check_sample_size,
)
from linkbay_customers_clv._likelihood import dot, maximize_log_likelihood

__all__ = ("GammaGammaModel",)


@dataclass(frozen=True, slots=True)
class GammaGammaModel:
    """The Gamma-Gamma model of average transaction value.

    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: using iso-value
    curves for customer base analysis", Journal of Marketing Research 42(4); the
    formulas follow Fader & Hardie, "The Gamma-Gamma model of monetary value" (2013).

    Each transaction of a customer is worth ``z ~ Gamma(p, nu)`` (shape ``p``, rate ``nu``),
    and ``nu ~ Gamma(q, gamma)`` across customers (``gamma`` is the papers' gamma and
    ``lifetimes``' ``v``). A customer's mean spend is then ``p / nu``, with population
    mean ``p gamma / (q - 1)`` when ``q > 1``. The model assumes spend per transaction
    is independent of how often a customer buys: check that the two are hardly
    correlated among repeat buyers before relying on it.

    The data are each repeat buyer's ``frequency`` (x, number of repeat purchases) and
    ``monetary_value`` (the mean value of those x purchases, in any currency unit; the
    first purchase is left out, as in the paper). Build one with
    ``GammaGammaModel.fit(frequency, monetary_value)`` (a classmethod returning a new,
    immutable model) or from known parameters, ``GammaGammaModel(p, q, gamma)``.

    Attributes:
        p: Shape of the gamma distribution of transaction values around a customer's mean.
        q: Shape of the gamma distribution of the customers' rates nu.
        gamma: Rate of that distribution, in the currency unit of the data.
        log_likelihood: Total log-likelihood of the data the model was fitted on; None
            when built from parameters.
        customers: How many customers the model was fitted on; 0 when built from parameters.
    """

    p: float
    q: float
    gamma: float
    log_likelihood: float | None = None
    customers: int = 0

    def __post_init__(self) -> None:
        check_parameters("GammaGammaModel", p=self.p, q=self.q, gamma=self.gamma)

    @classmethod
    def fit(cls, frequency: ArrayLike, monetary_value: ArrayLike) -> Self:
        """Fits the model by maximum likelihood on repeat buyers.

        Args:
            frequency: Repeat purchases per customer; every one must be positive (pass
                repeat buyers only, e.g. ``frequency[frequency > 0]``).
            monetary_value: Mean value of those repeat purchases per customer, positive.

        Returns:
            A new fitted model.

        Raises:
            ValueError: An argument is malformed (the message names it), or there are
                fewer than ``MIN_CUSTOMERS`` repeat buyers.
            ConvergenceError: The likelihood has no trustworthy maximum on this data.
        """
        x, m = _check_spend(frequency, monetary_value, repeat_buyers=True)
        if x.ndim != 1 or m.shape != x.shape:
            raise ValueError(
                "frequency and monetary_value must be one-dimensional and of the same "
                f"length, one entry per customer: got shapes {x.shape} and {m.shape}"
            )
        check_sample_size("GammaGammaModel", x.size, "repeat buyers")
        # Money is rescaled to a mean of 1 so the optimizer works on parameters of order 1.
        scale = float(m.mean())
        likelihood = _Likelihood(x, m / scale)
        starts = [np.zeros(3), np.full(3, 0.1), np.log([2.0, 2.0, 1.0])]
        log_estimate = maximize_log_likelihood(
            likelihood,
            starts,
            model="GammaGammaModel",
            names=("p", "q", "gamma"),
            units=(1.0, 1.0, scale),
            hint="too few repeat buyers, or spend that hardly varies within or across customers",
        )
        p, q, gamma = (float(v) for v in np.exp(log_estimate))
        # Rescaling money by 1/scale adds ln(scale) to each density.
        total = -x.size * likelihood(log_estimate)[0] - x.size * np.log(scale)
        return cls(p, q, gamma * scale, log_likelihood=float(total), customers=int(x.size))

    def customer_log_likelihoods(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """Each repeat buyer's log-likelihood: the density of their mean spend given x."""
        x, m = _check_spend(frequency, monetary_value, repeat_buyers=True)
        p, q, gamma = self.p, self.q, self.gamma
        px = p * x
        values = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(gamma + m * x)
        )
        return np.asarray(values, dtype=np.float64)

    def expected_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """Expected mean value of each customer's future transactions given their history.

        A weighted mean of the population mean ``p gamma / (q - 1)`` and the customer's own
        ``monetary_value``, the weight moving to the latter as ``frequency`` grows:
        ``(p gamma + p x m) / (p x + q - 1)``. For ``frequency`` 0 it is the population
        mean and ``monetary_value`` is ignored (pass 0).

        Raises:
            ValueError: The fitted ``q`` is at most 1, so the population mean spend is
                infinite, and some customer has too few purchases to outweigh it.
        """
        x, m = _check_spend(frequency, monetary_value, repeat_buyers=False)
        px = self.p * x
        if (px + self.q - 1 <= 0).any():
            raise ValueError(
                f"expected spend is infinite for frequency < {(1 - self.q) / self.p:.3g}: the "
                f"fitted q = {self.q:.4g} is at most 1, so the population mean spend is infinite"
            )
        m = np.where(x > 0, m, 0.0)
        return np.asarray((self.p * self.gamma + px * m) / (px + self.q - 1), dtype=np.float64)

    def sample(self, frequency: ArrayLike, rng: np.random.Generator) -> FloatArray:
        """Draws each customer's mean spend over ``frequency`` transactions (0 where none)."""
        x = check_purchase_counts("frequency", frequency)
        rate = rng.gamma(self.q, 1.0 / self.gamma, size=x.shape)
        bought = x > 0
        spend = np.zeros(x.shape)
        # The sum of x transactions Gamma(p, nu) is Gamma(p x, nu).
        spend[bought] = rng.gamma(self.p * x[bought], 1.0 / rate[bought]) / x[bought]
        return spend


def _check_spend(
    frequency: ArrayLike, monetary_value: ArrayLike, *, repeat_buyers: bool
) -> tuple[FloatArray, FloatArray]:
    x = check_purchase_counts("frequency", frequency)
    m = as_float_array("monetary_value", monetary_value)
    try:
        np.broadcast_shapes(x.shape, m.shape)
    except ValueError:
        raise ValueError(
            "frequency and monetary_value must have the same shape (or broadcast together): got "
            f"{x.shape} and {m.shape}"
        ) from None
    if (m < 0).any():
        raise ValueError("monetary_value must be non-negative")
    if repeat_buyers:
        if (x == 0).any():
            raise ValueError(
                "frequency must be positive: fit the Gamma-Gamma model on repeat buyers only "
                "(frequency > 0), whose monetary_value is the mean of their repeat purchases"
            )
        if (m == 0).any():
            raise ValueError("monetary_value must be positive for every repeat buyer")
    return x, m


class _Likelihood:
    """Mean negative log-likelihood and its gradient in log-parameters; terms in ``x``
    only are computed once per distinct ``x``."""

    def __init__(self, x: FloatArray, m: FloatArray) -> None:
        self.size = x.size
        self.x = x
        self.xm = x * m
        self.distinct_x, counts = np.unique(x, return_counts=True)
        self.counts = counts.astype(np.float64)
        # Parameter-free sums: Σ x ln m, Σ x ln x, Σ ln m, Σ x.
        log_m = np.log(m)
        self.sum_x_log_m = dot(x, log_m)
        self.sum_log_m = float(log_m.sum())
        self.sum_x_log_x = dot(x, np.log(x))
        self.sum_x = float(x.sum())

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = np.exp(log_params)
        k, n = self.distinct_x, self.counts
        pk = p * k
        log_total = np.log(gamma + self.xm)
        shape = p * self.x + q
        value = (
            float(n @ (gammaln(pk + q) - gammaln(pk)))
            - self.size * gammaln(q)
            + self.size * q * np.log(gamma)
            + p * self.sum_x_log_m
            - self.sum_log_m
            + p * self.sum_x_log_x
            - dot(shape, log_total)
        )
        grad_p = (
            float((n * k) @ (digamma(pk + q) - digamma(pk)))
            + self.sum_x_log_m
            + self.sum_x_log_x
            - dot(self.x, log_total)
        )
        grad_q = (
            float(n @ digamma(pk + q))
            - self.size * digamma(q)
            + self.size * np.log(gamma)
            - float(log_total.sum())
        )
        grad_gamma = self.size * q / gamma - dot(shape, 1.0 / (gamma + self.xm))
        gradient = np.array([grad_p * p, grad_q * q, grad_gamma * gamma])
        return -float(value) / self.size, -gradient / self.size
