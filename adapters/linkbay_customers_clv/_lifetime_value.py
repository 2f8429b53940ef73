"""Customer lifetime value from a BG/NBD and a Gamma-Gamma model."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from linkbay_customers_clv._beta_geo import BetaGeoModel
from linkbay_customers_clv._checks import FloatArray, check_history
from linkbay_customers_clv._gamma_gamma import GammaGammaModel

__all__ = ("customer_lifetime_value",)


def customer_lifetime_value(
    bg: BetaGeoModel,
    gg: GammaGammaModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int,
    discount_rate: float,
    time_unit_days: float = 1.0,
    days_per_month: float = 30.0,
) -> FloatArray:
    """Expected discounted revenue from each customer over the next ``months``.

    For each month ``k = 1 .. months``, the purchases expected in that month (the
    BG/NBD's expected purchases up to its end minus those up to its start) times the
    Gamma-Gamma's expected spend per purchase, discounted by ``(1 + discount_rate)^k``,
    summed: what ``lifetimes``' ``customer_lifetime_value`` computes.

    Units: ``recency`` and ``T`` are in the periods the BG/NBD model was fitted on, each
    ``time_unit_days`` days long (1 for days, 7 for weeks as in CDNOW), and a month is
    ``days_per_month`` days, so a month is ``days_per_month / time_unit_days`` periods.
    The defaults match ``lifetimes`` with ``freq="D"`` (30-day months); ``lifetimes``'
    ``freq="W"`` counts 4.345 weeks a month, that is ``days_per_month=30.415`` with
    ``time_unit_days=7``. The result is in the currency unit of ``monetary_value``.

    Args:
        bg: The fitted purchase model.
        gg: The fitted spend model.
        frequency: Repeat purchases per customer.
        recency: Age at the last repeat purchase, in periods (0 without one).
        T: Age at the end of the observation, in periods.
        monetary_value: Mean value of the repeat purchases (ignored where frequency is 0).
        months: The horizon in months, at least 1.
        discount_rate: Monthly discount rate, e.g. 0.01 for 1% a month; 0 for none.
        time_unit_days: Length of one period of the data in days.
        days_per_month: Length of a month in days.

    Returns:
        The lifetime value of each customer, shaped like the broadcast arguments.
    """
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
        raise ValueError(f"months must be a positive integer, got {months!r}")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate must be non-negative, got {discount_rate!r}")
    if not (np.isfinite(time_unit_days) and time_unit_days > 0):
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days!r}")
    if not (np.isfinite(days_per_month) and days_per_month > 0):
        raise ValueError(f"days_per_month must be positive, got {days_per_month!r}")
    x, t_x, age = check_history(frequency, recency, T, for_fit=False)
    spend = gg.expected_spend(x, monetary_value)
    periods_per_month = days_per_month / time_unit_days
    # P(alive) once; eq. 10's hypergeometric term once per month end.
    alive = bg.probability_alive(x, t_x, age)
    value = np.zeros(np.broadcast_shapes(x.shape, t_x.shape, age.shape, spend.shape))
    before = np.zeros_like(value)
    for month in range(1, int(months) + 1):
        horizon = np.asarray(month * periods_per_month, dtype=np.float64)
        until = bg._expected_purchases(horizon, x, age, alive)
        value += (until - before) / (1.0 + discount_rate) ** month
        before = until
    return np.asarray(value * spend, dtype=np.float64)
