"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from linkbay_customers_clv._checks import (
    FloatArray,
    as_float_array,
    check_history,
    check_parameters,
    check_sample_size,
)
from linkbay_customers_clv._likelihood import dot, maximize_log_likelihood

__all__ = ("BetaGeoModel",)


@dataclass(frozen=True, slots=True)
class BetaGeoModel:
    """The beta-geometric/negative-binomial distribution (BG/NBD) model.

    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting your customers'
    the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2).

    While alive, a customer buys as a Poisson process with rate ``λ ~ Gamma(r, alpha)``
    (shape ``r``, rate ``alpha``); right after each repeat purchase they drop out for
    good with probability ``p ~ Beta(a, b)``.

    A customer's history is ``frequency`` (x: the number of repeat purchases, the first
    purchase excluded), ``recency`` (t_x: age at the last repeat purchase, 0 when there
    is none) and ``T`` (age at the end of the observation). Ages are measured from the
    first purchase in one time unit of your choosing, the *period*: weeks in the CDNOW
    examples, days for order dates. ``alpha`` is in those periods, every ``t`` passed
    to a prediction is too, and a model fitted on weeks must be given weeks. Every
    method is vectorized and broadcasts its arguments.

    Build one with ``BetaGeoModel.fit(frequency, recency, T)`` (a classmethod returning
    a new, immutable model) or from known parameters, ``BetaGeoModel(r, alpha, a, b)``.

    Attributes:
        r: Shape of the gamma distribution of purchase rates.
        alpha: Rate (inverse scale) of that gamma distribution, in periods.
        a: First shape parameter of the beta distribution of dropout probabilities.
        b: Second shape parameter of that beta distribution.
        log_likelihood: Total log-likelihood of the data the model was fitted on (as
            published: densities in the fitted periods); None when built from parameters.
        customers: How many customers the model was fitted on; 0 when built from parameters.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float | None = None
    customers: int = 0

    def __post_init__(self) -> None:
        check_parameters("BetaGeoModel", r=self.r, alpha=self.alpha, a=self.a, b=self.b)

    @classmethod
    def fit(cls, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Self:
        """Fits the model by maximum likelihood.

        Args:
            frequency: Repeat purchases per customer (integer-valued, one per customer).
            recency: Age at the last repeat purchase per customer, 0 without one.
            T: Age at the end of the observation period per customer.

        Returns:
            A new fitted model.

        Raises:
            ValueError: An argument is malformed (the message names it), or there are
                fewer than ``MIN_CUSTOMERS`` customers, or nobody bought twice.
            ConvergenceError: The likelihood has no trustworthy maximum on this data.
        """
        x, t_x, age = check_history(frequency, recency, T, for_fit=True)
        check_sample_size("BetaGeoModel", x.size)
        if not (x > 0).any():
            raise ValueError(
                "frequency is 0 for every customer: the BG/NBD model needs repeat purchases"
            )
        if age.max() <= 0:
            raise ValueError("T is 0 for every customer: nobody has been observed yet")
        # Time is rescaled so the oldest customer has age 1: the optimizer then works on
        # parameters of order 1 whatever the period (days, weeks, ...).
        scale = float(age.max())
        likelihood = _Likelihood(x, t_x / scale, age / scale)
        rate = x.sum() / (age / scale).sum()
        starts = [
            np.log([1.0, 1.0 / rate, 1.0, 1.0]),
            np.full(4, 0.1),  # lifetimes' start, as a fallback
        ]
        log_estimate = maximize_log_likelihood(
            likelihood,
            starts,
            model="BetaGeoModel",
            names=("r", "alpha", "a", "b"),
            units=(1.0, scale, 1.0, 1.0),
            hint="too few repeat purchases, or no sign of customers dropping out",
        )
        r, alpha, a, b = (float(v) for v in np.exp(log_estimate))
        # Rescaling time by 1/scale adds x ln(scale) to each customer's log-likelihood.
        total = -x.size * likelihood(log_estimate)[0] - float(x.sum()) * np.log(scale)
        return cls(r, alpha * scale, a, b, log_likelihood=float(total), customers=int(x.size))

    def customer_log_likelihoods(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Each customer's log-likelihood under the model (eq. 6 of the paper, in logs)."""
        x, t_x, age = check_history(frequency, recency, T, for_fit=False)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
        alive = -(r + x) * np.log(alpha + age)
        # Only customers with a repeat purchase can have dropped out (x > 0).
        dropped = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
        dropped = np.where(x > 0, dropped, -np.inf)
        return np.asarray(common + np.logaddexp(alive, dropped), dtype=np.float64)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Probability that each customer is still alive at age ``T`` (Fader, Hardie & Lee,
        "Computing P(alive) using the BG/NBD model", 2008). It is 1 for customers with no
        repeat purchase: the model lets customers drop out only right after one.
        """
        x, t_x, age = check_history(frequency, recency, T, for_fit=False)
        return self._probability_alive(x, t_x, age)

    def predict_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected number of purchases in the next ``t`` periods, ``(T, T + t]``, given
        each customer's history (eq. 10 of the paper).

        The Gaussian hypergeometric function of eq. 10 is taken through Euler's
        transformation, ``2F1(r+x, b+x; a+b+x-1; z) (1-z)^(r+x)
        = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` with ``z = t / (alpha+T+t)``,
        which keeps its first two arguments from growing with ``x`` and needs no huge
        powers: accurate for heavy buyers and long horizons alike.
        """
        horizon = _horizon(t)
        x, t_x, age = check_history(frequency, recency, T, for_fit=False)
        return self._expected_purchases(horizon, x, age, self._probability_alive(x, t_x, age))

    def probability_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Probability that each customer makes no purchase in the next ``t`` periods.

        A dead customer never buys. An alive one buys at rate ``λ``, whose distribution
        given the history and being alive is ``Gamma(r + x, alpha + T)``, and can only
        drop out right after a purchase, so with no purchase in ``(T, T + t]`` they stay
        alive throughout: ``P(none | alive) = E[exp(-λt)] = ((alpha+T)/(alpha+T+t))^(r+x)``.
        Hence ``P(none) = 1 - P(alive) (1 - ((alpha+T)/(alpha+T+t))^(r+x))``.

        This is the churn risk over a horizon ``t``. Unlike ``1 - probability_alive`` it
        counts the chance that a customer who is alive but buys rarely stays silent, and
        it does not call a one-off buyer certainly alive (hence never churning).
        """
        horizon = _horizon(t)
        x, t_x, age = check_history(frequency, recency, T, for_fit=False)
        buys_if_alive = -np.expm1(-(self.r + x) * np.log1p(horizon / (self.alpha + age)))
        alive = self._probability_alive(x, t_x, age)
        return np.asarray(1.0 - alive * buys_if_alive, dtype=np.float64)

    def sample(self, T: ArrayLike, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """Draws a history (frequency, recency) for customers of ages ``T`` from the model.

        Exact, and vectorized: given ``n`` purchases in ``(0, T]``, the ``k``-th one falls
        at ``T`` times the ``k``-th order statistic of ``n`` uniforms, a ``Beta(k, n-k+1)``.
        """
        age = as_float_array("T", T)
        if (age < 0).any():
            raise ValueError("T must be non-negative")
        rate = rng.gamma(self.r, 1.0 / self.alpha, size=age.shape)
        dropout = rng.beta(self.a, self.b, size=age.shape)
        purchases = rng.poisson(rate * age)
        # Repeat purchases up to and including the one after which the customer drops
        # out: geometric on 1, 2, ..., drawn in floats (a tiny p would overflow integers).
        uniform = 1.0 - rng.random(size=age.shape)
        with np.errstate(divide="ignore"):
            lifetime_purchases = np.maximum(np.ceil(np.log(uniform) / np.log1p(-dropout)), 1.0)
        frequency = np.minimum(purchases, lifetime_purchases)
        bought = frequency > 0
        recency = np.zeros(age.shape)
        recency[bought] = age[bought] * rng.beta(
            frequency[bought], purchases[bought] - frequency[bought] + 1
        )
        return frequency.astype(np.float64), recency

    def _probability_alive(self, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
        log_odds_dead = (
            np.log(self.a)
            - np.log(self.b + np.maximum(x, 1) - 1)
            + (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x))
        )
        return np.asarray(np.where(x > 0, expit(-log_odds_dead), 1.0), dtype=np.float64)

    def _expected_purchases(
        self, horizon: FloatArray, x: FloatArray, age: FloatArray, alive: FloatArray
    ) -> FloatArray:
        if abs(self.a - 1) < _NEAR_ONE:
            # Eq. 10 is 0/0 at a = 1 and loses digits near it, but it is smooth in a:
            # interpolating between a = 1 -+ _NEAR_ONE is exact to O(_NEAR_ONE²).
            below, above = (
                _expected_purchases(self.r, self.alpha, a, self.b, horizon, x, age)
                for a in (1 - _NEAR_ONE, 1 + _NEAR_ONE)
            )
            share = (self.a - (1 - _NEAR_ONE)) / (2 * _NEAR_ONE)
            return np.asarray((below + share * (above - below)) * alive, dtype=np.float64)
        expected = _expected_purchases(self.r, self.alpha, self.a, self.b, horizon, x, age)
        return np.asarray(expected * alive, dtype=np.float64)


_NEAR_ONE = 1e-4


def _expected_purchases(
    r: float, alpha: float, a: float, b: float, horizon: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    """Eq. 10 without its P(alive) factor, for a != 1."""
    c = a + b + x - 1
    z = horizon / (alpha + age + horizon)
    hypergeometric = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    return np.asarray(c / (a - 1) * (1.0 - hypergeometric), dtype=np.float64)


def _horizon(t: ArrayLike) -> FloatArray:
    horizon = as_float_array("t", t)
    if (horizon < 0).any():
        raise ValueError("t must be non-negative")
    return horizon


class _Likelihood:
    """Mean negative log-likelihood of a data set and its gradient in log-parameters.

    Each customer's likelihood is ``A(x) [exp(A3) + [x > 0] exp(A4)]`` with
    ``A3 = -(r+x) ln(alpha+T)`` (alive at T) and ``A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x)``
    (dropped out right after the last purchase). Terms in ``x`` only are computed once
    per distinct ``x``; repeat buyers are stored first so theirs are contiguous slices,
    and ``ln(e^A3 + e^A4) = A3 + softplus(A4 - A3)`` shares one exponential with the
    gradient's weight ``expit(A4 - A3)``.
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, age: FloatArray) -> None:
        order = np.argsort(x == 0, kind="stable")
        self.size = x.size
        self.repeat = int(np.count_nonzero(x))
        self.x = x[order]
        self.age = age[order]
        self.t_x = t_x[order][: self.repeat]
        self.x_repeat = self.x[: self.repeat]
        self.x_repeat_minus_1 = self.x_repeat - 1
        self.distinct_x, counts = np.unique(self.x, return_counts=True)
        self.counts = counts.astype(np.float64)

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        k, n, m = self.distinct_x, self.counts, self.repeat
        x = self.x_repeat

        # Terms in x only: ln Γ(r+x) - ln Γ(r) + r ln alpha + ln B(a, b+x) - ln B(a, b).
        value = float(
            dot(n, gammaln(r + k) - gammaln(r) + betaln(a, b + k) - betaln(a, b))
        ) + self.size * r * np.log(alpha)
        grad_r = dot(n, digamma(r + k) - digamma(r)) + self.size * np.log(alpha)
        grad_alpha = self.size * r / alpha
        grad_a = dot(n, digamma(a + b) - digamma(a + b + k))
        grad_b = dot(n, digamma(a + b) + digamma(b + k) - digamma(b) - digamma(a + b + k))

        # A3 for everyone.
        log_age = np.log(alpha + self.age)
        inv_age = 1.0 / (alpha + self.age)
        sum_log_age = float(log_age.sum())
        value -= r * sum_log_age + dot(x, log_age[:m])
        grad_r -= sum_log_age
        grad_alpha -= r * float(inv_age.sum()) + dot(x, inv_age[:m])

        # softplus(A4 - A3) for repeat buyers, and its derivative w = expit(A4 - A3).
        log_t_x = np.log(alpha + self.t_x)
        inv_t_x = 1.0 / (alpha + self.t_x)
        log_ratio = log_age[:m] - log_t_x  # ln((alpha+T)/(alpha+t_x)) >= 0
        r_x = r + x
        b_x = b + self.x_repeat_minus_1
        diff = (np.log(a) - np.log(b_x)) + r_x * log_ratio
        tail = np.exp(-np.abs(diff))
        value += float(np.maximum(diff, 0.0).sum() + np.log1p(tail).sum())
        weight = np.where(diff >= 0, 1.0, tail) / (1.0 + tail)

        grad_r += dot(weight, log_ratio)
        grad_alpha += dot(weight * r_x, inv_age[:m] - inv_t_x)
        grad_a += float(weight.sum()) / a
        grad_b -= dot(weight, 1.0 / b_x)

        gradient = np.array([grad_r * r, grad_alpha * alpha, grad_a * a, grad_b * b])
        return -value / self.size, -gradient / self.size
