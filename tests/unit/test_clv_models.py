from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import quad
from scipy.special import betaln
from scipy.stats import rankdata

from linkbay_customers_clv import (
    MIN_CUSTOMERS,
    BetaGeoModel,
    ConvergenceError,
    GammaGammaModel,
    customer_lifetime_value,
)

FloatArray = NDArray[np.float64]

# The CDNOW sample of Fader, Hardie & Lee ("Counting your customers the easy way", 2005;
# "RFM and CLV", 2005): 2,357 customers of the CDNOW cohort who first bought in Q1 1997,
# their 6,919 purchases to the end of June 1998. Columns: master id, sample id, date
# (YYYYMMDD), CDs bought, dollars spent. The file is lifetimes/datasets/CDNOW_sample.txt
# from the lifetimes 0.11.3 wheel on PyPI (MIT licence; the data come from
# brucehardie.com), compressed with `gzip -n -9`; CDNOW_SHA256 is the wheel's RECORD hash
# of the uncompressed text.
CDNOW = Path(__file__).parents[1] / "data" / "CDNOW_sample.txt.gz"
CDNOW_SHA256 = "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a"
CALIBRATION_END = date(1997, 9, 30)  # weeks 1-39 calibrate, weeks 40-78 are the holdout
HOLDOUT_WEEKS = 39

PUBLISHED_BG = BetaGeoModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_GG = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)


@dataclass(frozen=True)
class Cdnow:
    """Calibration-period summary in weeks, as published, and holdout purchase counts."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    holdout_purchases: FloatArray


@cache
def cdnow() -> Cdnow:
    text = gzip.decompress(CDNOW.read_bytes())
    assert hashlib.sha256(text).hexdigest() == CDNOW_SHA256
    table = np.loadtxt(io.BytesIO(text), usecols=(1, 2, 4))
    stamps = table[:, 1].astype(int)
    ordinals = {s: date(s // 10000, s // 100 % 100, s % 100).toordinal() for s in set(stamps)}
    # Purchases on the same day are one transaction, as in the published summary.
    pairs, inverse = np.unique(
        np.column_stack([table[:, 0].astype(int) - 1, [ordinals[s] for s in stamps]]),
        axis=0,
        return_inverse=True,
    )
    customer, day = pairs[:, 0], pairs[:, 1]
    dollars = np.bincount(inverse.ravel(), weights=table[:, 2])
    count = int(customer.max()) + 1
    first = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(first, customer, day)
    end = CALIBRATION_END.toordinal()
    calibration = day <= end
    last = np.zeros(count, dtype=np.int64)
    np.maximum.at(last, customer[calibration], day[calibration])
    frequency = np.bincount(customer[calibration], minlength=count) - 1
    repeat = calibration & (day > first[customer])
    spend = np.bincount(customer[repeat], weights=dollars[repeat], minlength=count)
    return Cdnow(
        frequency=frequency.astype(np.float64),
        recency=(last - first) / 7,
        T=(end - first) / 7,
        monetary_value=np.divide(spend, frequency, out=np.zeros(count), where=frequency > 0),
        holdout_purchases=np.bincount(customer[~calibration], minlength=count).astype(float),
    )


def auc(scores: ArrayLike, positives: NDArray[np.bool_]) -> float:
    """Mann-Whitney: the chance a random positive scores above a random negative
    (ties count half)."""
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    n_positive = int(positives.sum())
    n_negative = positives.size - n_positive
    rank_sum = float(ranks[positives].sum())
    return (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)


@pytest.fixture(scope="module")
def data() -> Cdnow:
    return cdnow()


@pytest.fixture(scope="module")
def bg(data: Cdnow) -> BetaGeoModel:
    return BetaGeoModel.fit(data.frequency, data.recency, data.T)


@pytest.fixture(scope="module")
def gg(data: Cdnow) -> GammaGammaModel:
    repeat = data.frequency > 0
    return GammaGammaModel.fit(data.frequency[repeat], data.monetary_value[repeat])


# --- CDNOW: the published figures ------------------------------------------------------


def test_the_cdnow_summary_is_the_published_one(data: Cdnow) -> None:
    assert data.frequency.size == 2357
    assert int((data.frequency > 0).sum()) == 946
    # The first row of the published summary: x = 2, t_x = 30.43, T = 38.86, zbar = 22.35.
    first = (data.frequency[0], data.recency[0], data.T[0], data.monetary_value[0])
    assert first == pytest.approx((2, 30.43, 38.86, 22.35), abs=0.01)


def test_bg_nbd_reproduces_the_published_cdnow_estimates(data: Cdnow, bg: BetaGeoModel) -> None:
    assert (round(bg.r, 3), round(bg.alpha, 3), round(bg.a, 3), round(bg.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert bg.log_likelihood is not None
    assert round(bg.log_likelihood, 1) == -9582.4
    assert bg.customers == 2357
    total = bg.customer_log_likelihoods(data.frequency, data.recency, data.T).sum()
    assert bg.log_likelihood == pytest.approx(total, rel=1e-12)


def test_the_published_bg_nbd_parameters_give_the_published_log_likelihood(data: Cdnow) -> None:
    total = PUBLISHED_BG.customer_log_likelihoods(data.frequency, data.recency, data.T).sum()
    assert total == pytest.approx(-9582.4, abs=0.05)


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(
    data: Cdnow, gg: GammaGammaModel
) -> None:
    # Published: p = 6.25, q = 3.74, gamma = 15.44, from Fader & Hardie's spreadsheet.
    # The maximum is at gamma = 15.448 (lifetimes prints 15.45): Excel's Solver stopped
    # a hair short, hence the tolerance on gamma.
    assert (round(gg.p, 2), round(gg.q, 2)) == (6.25, 3.74)
    assert gg.gamma == pytest.approx(15.44, abs=0.01)
    assert gg.customers == 946
    repeat = data.frequency > 0
    total = gg.customer_log_likelihoods(data.frequency[repeat], data.monetary_value[repeat])
    assert gg.log_likelihood == pytest.approx(total.sum(), rel=1e-12)


def test_fitting_in_days_instead_of_weeks_changes_only_alpha(data: Cdnow, bg: BetaGeoModel) -> None:
    days = BetaGeoModel.fit(data.frequency, data.recency * 7, data.T * 7)
    assert (days.r, days.alpha / 7, days.a, days.b) == pytest.approx(
        (bg.r, bg.alpha, bg.a, bg.b), rel=1e-5
    )
    assert bg.log_likelihood is not None
    # The likelihood holds a density of x purchase times: each is 7 times thinner in days.
    assert days.log_likelihood == pytest.approx(
        bg.log_likelihood - data.frequency.sum() * np.log(7), rel=1e-9
    )
    in_days = days.predict_purchases(
        HOLDOUT_WEEKS * 7, data.frequency, data.recency * 7, data.T * 7
    )
    in_weeks = bg.predict_purchases(HOLDOUT_WEEKS, data.frequency, data.recency, data.T)
    np.testing.assert_allclose(in_days, in_weeks, rtol=1e-4)


# --- CDNOW: churn over the 39-week holdout --------------------------------------------


def test_churn_risk_separates_the_customers_who_buy_nothing_in_the_holdout(
    data: Cdnow, bg: BetaGeoModel
) -> None:
    silent = data.holdout_purchases == 0
    risk = bg.probability_no_purchase(HOLDOUT_WEEKS, data.frequency, data.recency, data.T)
    assert auc(risk, silent) >= 0.75  # 0.757
    assert abs(risk.mean() - silent.mean()) <= 0.05  # 0.738 predicted, 0.710 observed


def test_one_minus_p_alive_is_a_poor_churn_score(data: Cdnow, bg: BetaGeoModel) -> None:
    # P(alive) is 1 for everyone without a repeat purchase, the customers most likely
    # to stay silent: as a churn score it ranks worse than chance.
    silent = data.holdout_purchases == 0
    alive = bg.probability_alive(data.frequency, data.recency, data.T)
    risk = bg.probability_no_purchase(HOLDOUT_WEEKS, data.frequency, data.recency, data.T)
    assert auc(1 - alive, silent) == pytest.approx(0.32, abs=0.02)  # 0.316
    assert auc(risk, silent) - auc(1 - alive, silent) > 0.4


def test_auc_is_the_probability_that_a_positive_outranks_a_negative() -> None:
    positives = np.array([False, False, True, True])
    assert auc([1, 2, 3, 4], positives) == 1.0
    assert auc([4, 3, 2, 1], positives) == 0.0
    assert auc([1, 1, 1, 1], positives) == 0.5
    assert auc([1, 3, 2, 4], positives) == 0.75


# --- Predictions against the model's definition -----------------------------------------


def _expected_purchases_by_integration(
    model: BetaGeoModel, t: float, x: int, t_x: float, T: float
) -> float:
    """E[purchases in (T, T+t]] straight from the model's assumptions: alive, with
    rate posterior Gamma(r+x, alpha+T) and dropout posterior Beta(a, b+x), a customer
    buys (1 - exp(-lambda p t)) / p in expectation; integrate lambda out in closed form
    and p numerically."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b

    def given_dropout(p: float) -> float:
        if p == 0:
            return (r + x) * t / (alpha + T)
        return float(-np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p)

    integral, _ = quad(
        given_dropout, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-12
    )
    return float(model.probability_alive(x, t_x, T) * integral / np.exp(betaln(a, b + x)))


@pytest.mark.parametrize(
    "model",
    [
        PUBLISHED_BG,
        BetaGeoModel(r=2.0, alpha=30.0, a=1.5, b=8.0),
        BetaGeoModel(r=0.3, alpha=5.0, a=0.3, b=0.5),  # a + b < 1
        BetaGeoModel(r=0.3, alpha=5.0, a=1.0, b=2.0),  # eq. 10 is 0/0 at a = 1
        BetaGeoModel(r=0.3, alpha=5.0, a=1 + 1e-9, b=2.0),
    ],
)
@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0, 10), (1, 5, 30), (7, 30, 38), (40, 38, 39), (200, 364, 365)]
)
@pytest.mark.parametrize("t", [0.5, 39, 1000])
def test_predicted_purchases_are_the_models_expectation(
    model: BetaGeoModel, x: int, t_x: float, T: float, t: float
) -> None:
    expected = _expected_purchases_by_integration(model, t, x, t_x, T)
    assert float(model.predict_purchases(t, x, t_x, T)) == pytest.approx(expected, rel=1e-7)


def test_predictions_match_lifetimes_on_the_same_parameters() -> None:
    # lifetimes 0.11.3, BetaGeoFitter and GammaGammaFitter with the published parameters.
    x, t_x, T = [0, 1, 2, 7, 20], [0, 1.71, 30.43, 35.0, 38.0], [38.86, 38.86, 38.86, 38.0, 38.57]
    np.testing.assert_allclose(
        PUBLISHED_BG.predict_purchases(39, x, t_x, T),
        [0.19509805, 0.20318699, 1.22602817, 4.55618528, 13.58901552],
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        PUBLISHED_GG.expected_spend(x, [0, 11.77, 22.35, 40.0, 120.5]),
        [35.2189781, 18.91685206, 24.66371391, 39.71821897, 118.67073744],
        rtol=1e-8,
    )


def test_nothing_happens_over_a_zero_horizon(data: Cdnow, bg: BetaGeoModel) -> None:
    history = (data.frequency, data.recency, data.T)
    assert (bg.predict_purchases(0, *history) == 0).all()
    assert (bg.probability_no_purchase(0, *history) == 1).all()


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    assert (PUBLISHED_BG.probability_alive(0, 0, [1, 10, 100]) == 1).all()
    alive = PUBLISHED_BG.probability_alive(3, 10, [10, 20, 40])
    assert 0 < alive[2] < alive[1] < alive[0] <= 1


def test_churn_risk_counts_the_silence_of_a_living_customer() -> None:
    # A one-off buyer is certainly alive, yet likely silent over a short horizon.
    assert float(PUBLISHED_BG.probability_alive(0, 0, 38)) == 1
    risk = PUBLISHED_BG.probability_no_purchase([1, 39, 1000], 0, 0, 38)
    assert 0 < risk[2] < risk[1] < risk[0] < 1


def test_predictions_broadcast() -> None:
    horizons = np.array([[1.0], [10.0], [100.0]])
    x, t_x, T = np.array([0, 1, 5, 9]), np.array([0, 2.0, 20.0, 30.0]), 38.0
    assert PUBLISHED_BG.predict_purchases(horizons, x, t_x, T).shape == (3, 4)
    assert PUBLISHED_BG.probability_no_purchase(horizons, x, t_x, T).shape == (3, 4)
    assert PUBLISHED_BG.probability_alive(x, t_x, T).shape == (4,)
    assert PUBLISHED_GG.expected_spend(x, 20.0).shape == (4,)


# --- Simulated customers --------------------------------------------------------------

TRUE_BG = BetaGeoModel(r=0.5, alpha=8.0, a=0.8, b=3.0)
TRUE_GG = GammaGammaModel(p=6.0, q=4.0, gamma=20.0)


def test_fits_recover_the_parameters_of_simulated_customers() -> None:
    rng = np.random.default_rng(2005)
    T = rng.uniform(26, 78, size=50_000)
    frequency, recency = TRUE_BG.sample(T, rng)
    spend = TRUE_GG.sample(frequency, rng)
    bg = BetaGeoModel.fit(frequency, recency, T)
    repeat = frequency > 0
    gg = GammaGammaModel.fit(frequency[repeat], spend[repeat])
    # About three standard errors at this size (measured over seeds): the dropout
    # parameters a and b, and gamma, are the least well determined.
    assert bg.r == pytest.approx(TRUE_BG.r, rel=0.03)
    assert bg.alpha == pytest.approx(TRUE_BG.alpha, rel=0.04)
    assert bg.a == pytest.approx(TRUE_BG.a, rel=0.15)
    assert bg.b == pytest.approx(TRUE_BG.b, rel=0.2)
    assert gg.p == pytest.approx(TRUE_GG.p, rel=0.1)
    assert gg.q == pytest.approx(TRUE_GG.q, rel=0.05)
    assert gg.gamma == pytest.approx(TRUE_GG.gamma, rel=0.15)


def _calibration_and_holdout(
    model: BetaGeoModel, size: int, calibration: float, holdout: float, seed: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Customers' histories over ``calibration`` and purchases over the next ``holdout``,
    simulated from the model's assumptions independently of ``BetaGeoModel.sample``."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(model.r, 1 / model.alpha, size)
    dropout = rng.beta(model.a, model.b, size)
    purchases = rng.poisson(rate * calibration)
    lifetime = rng.geometric(dropout)  # repeat purchases up to the one they drop out after
    frequency = np.minimum(purchases, lifetime)
    recency = np.zeros(size)
    bought = frequency > 0
    recency[bought] = calibration * rng.beta(
        frequency[bought], purchases[bought] - frequency[bought] + 1
    )
    alive = lifetime > purchases
    later = np.where(alive, np.minimum(rng.poisson(rate * holdout), lifetime - purchases), 0)
    return frequency.astype(float), recency, later.astype(float)


def test_conditional_predictions_match_simulated_holdouts() -> None:
    frequency, recency, later = _calibration_and_holdout(
        TRUE_BG, 200_000, calibration=52, holdout=26, seed=7
    )
    risk = TRUE_BG.probability_no_purchase(26, frequency, recency, 52)
    assert risk.mean() == pytest.approx((later == 0).mean(), abs=0.005)
    one_off = frequency == 0  # one shared history, so one probability
    assert risk[one_off][0] == pytest.approx((later[one_off] == 0).mean(), abs=0.01)
    heavy = frequency >= 10
    assert risk[heavy].mean() == pytest.approx((later[heavy] == 0).mean(), abs=0.02)
    expected = TRUE_BG.predict_purchases(26, frequency, recency, 52)
    assert expected.mean() == pytest.approx(later.mean(), rel=0.03)
    assert expected[heavy].mean() == pytest.approx(later[heavy].mean(), rel=0.05)


def test_sampled_spend_averages_to_the_population_mean() -> None:
    rng = np.random.default_rng(11)
    spend = TRUE_GG.sample(np.full(100_000, 3.0), rng)
    population_mean = TRUE_GG.p * TRUE_GG.gamma / (TRUE_GG.q - 1)
    assert spend.mean() == pytest.approx(population_mean, rel=0.02)


# --- Lifetime value ----------------------------------------------------------------------

HISTORIES: dict[str, Any] = {
    "frequency": [0, 1, 2, 7, 20],
    "recency": [0, 1.71, 30.43, 35.0, 38.0],
    "T": [38.86, 38.86, 38.86, 38.0, 38.57],
    "monetary_value": [0, 11.77, 22.35, 40.0, 120.5],
}


def test_lifetime_value_matches_lifetimes() -> None:
    # lifetimes 0.11.3 with the published parameters: freq="W" counts 4.345 weeks a
    # month, freq="D" 30 days.
    weekly = customer_lifetime_value(
        PUBLISHED_BG,
        PUBLISHED_GG,
        **HISTORIES,
        months=12,
        discount_rate=0.01,
        time_unit_days=7,
        days_per_month=30.415,
    )
    np.testing.assert_allclose(
        weekly, [8.36900436, 4.63729466, 36.28921113, 214.99310366, 1907.9449471], rtol=1e-7
    )
    in_days = BetaGeoModel(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
    daily = customer_lifetime_value(
        in_days,
        PUBLISHED_GG,
        HISTORIES["frequency"],
        np.multiply(HISTORIES["recency"], 7),
        np.multiply(HISTORIES["T"], 7),
        HISTORIES["monetary_value"],
        months=6,
        discount_rate=0.02,
    )
    np.testing.assert_allclose(
        daily, [4.38758163, 2.48520435, 19.69189349, 119.53866722, 1071.7688576], rtol=1e-7
    )


def test_lifetime_value_is_the_same_in_days_and_in_weeks() -> None:
    in_days = BetaGeoModel(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
    weekly = customer_lifetime_value(
        PUBLISHED_BG, PUBLISHED_GG, **HISTORIES, months=12, discount_rate=0.01, time_unit_days=7
    )
    daily = customer_lifetime_value(
        in_days,
        PUBLISHED_GG,
        HISTORIES["frequency"],
        np.multiply(HISTORIES["recency"], 7),
        np.multiply(HISTORIES["T"], 7),
        HISTORIES["monetary_value"],
        months=12,
        discount_rate=0.01,
    )
    np.testing.assert_allclose(daily, weekly, rtol=1e-9)


def test_undiscounted_lifetime_value_is_expected_purchases_times_expected_spend() -> None:
    value = customer_lifetime_value(
        PUBLISHED_BG, PUBLISHED_GG, **HISTORIES, months=12, discount_rate=0, time_unit_days=7
    )
    purchases = PUBLISHED_BG.predict_purchases(
        12 * 30 / 7, HISTORIES["frequency"], HISTORIES["recency"], HISTORIES["T"]
    )
    spend = PUBLISHED_GG.expected_spend(HISTORIES["frequency"], HISTORIES["monetary_value"])
    np.testing.assert_allclose(value, purchases * spend, rtol=1e-12)


def test_lifetime_value_grows_with_the_horizon_and_shrinks_with_the_discount() -> None:
    def value(months: int, rate: float) -> FloatArray:
        return customer_lifetime_value(
            PUBLISHED_BG, PUBLISHED_GG, **HISTORIES, months=months, discount_rate=rate
        )

    assert (value(24, 0.01) > value(12, 0.01)).all()
    assert (value(12, 0.05) < value(12, 0.01)).all()


# --- Bad input and fits that cannot converge --------------------------------------------

VALID: dict[str, list[float]] = {
    "frequency": [0, 0, 1, 2, 3, 1, 0, 4, 2, 5, 1, 0],
    "recency": [0, 0, 5.0, 9.0, 20.0, 2.0, 0, 30.0, 12.0, 33.0, 1.0, 0],
    "T": [10.0, 20.0, 30.0, 30.0, 35.0, 12.0, 40.0, 40.0, 25.0, 38.0, 5.0, 3.0],
}


def _with(**changes: Any) -> dict[str, Any]:
    history: dict[str, Any] = {k: list(v) for k, v in VALID.items()}
    for name, (index, value) in changes.items():
        history[name][index] = value
    return history


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (_with(frequency=(2, -1)), "frequency must be non-negative"),
        (_with(frequency=(2, 1.5)), "frequency must be integer-valued"),
        (_with(recency=(2, 31.0)), "recency must not exceed T"),
        (_with(recency=(0, 3.0)), "recency must be 0 where frequency is 0"),
        (_with(recency=(2, -1.0)), "recency must be non-negative"),
        (_with(T=(0, float("nan"))), "T must be finite"),
        (_with(T=(0, -1.0), recency=(0, -1.0)), "recency must be non-negative"),
        (_with(recency=(2, "soon")), "recency must be numeric"),
        ({**VALID, "T": VALID["T"][:-1]}, "one-dimensional and of the same length"),
        ({k: [v] for k, v in VALID.items()}, "one-dimensional and of the same length"),
    ],
)
def test_bg_nbd_fit_names_the_bad_argument(history: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BetaGeoModel.fit(**history)


def test_bg_nbd_fit_needs_customers_and_repeat_purchases() -> None:
    few = {k: v[: MIN_CUSTOMERS - 1] for k, v in VALID.items()}
    with pytest.raises(ValueError, match=f"at least {MIN_CUSTOMERS} customers to fit, got 9"):
        BetaGeoModel.fit(**few)
    with pytest.raises(ValueError, match="frequency is 0 for every customer"):
        BetaGeoModel.fit(np.zeros(50), np.zeros(50), np.full(50, 10.0))


@pytest.mark.parametrize(
    ("frequency", "monetary_value", "message"),
    [
        ([0] + [2] * 11, [10.0] * 12, "frequency must be positive"),
        ([2] * 12, [0.0] + [10.0] * 11, "monetary_value must be positive"),
        ([2] * 12, [-5.0] + [10.0] * 11, "monetary_value must be non-negative"),
        ([2] * 12, [10.0] * 11, "must have the same shape"),
        ([2] * 12, [10.0] * 11 + [float("inf")], "monetary_value must be finite"),
        ([2] * 5, [10.0] * 5, f"at least {MIN_CUSTOMERS} repeat buyers to fit, got 5"),
    ],
)
def test_gamma_gamma_fit_names_the_bad_argument(
    frequency: list[float], monetary_value: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        GammaGammaModel.fit(frequency, monetary_value)


def test_predictions_name_the_bad_argument() -> None:
    with pytest.raises(ValueError, match="t must be non-negative"):
        PUBLISHED_BG.predict_purchases(-1, 1, 1.0, 2.0)
    with pytest.raises(ValueError, match="t must be non-negative"):
        PUBLISHED_BG.probability_no_purchase([1, -1], 1, 1.0, 2.0)
    with pytest.raises(ValueError, match="must have the same shape"):
        PUBLISHED_BG.probability_alive([1, 2], [1.0, 1.0, 1.0], 5.0)
    with pytest.raises(ValueError, match="recency must not exceed T"):
        PUBLISHED_BG.probability_alive(1, 3.0, 2.0)


def test_models_refuse_impossible_parameters() -> None:
    with pytest.raises(ValueError, match="parameter r must be positive"):
        BetaGeoModel(r=0, alpha=1, a=1, b=1)
    with pytest.raises(ValueError, match="parameter gamma must be positive"):
        GammaGammaModel(p=1, q=2, gamma=float("inf"))


def test_expected_spend_refuses_an_infinite_population_mean() -> None:
    heavy_tailed = GammaGammaModel(p=2.0, q=0.8, gamma=10.0)
    assert float(heavy_tailed.expected_spend(3, 25.0)) > 0  # enough own purchases
    with pytest.raises(ValueError, match="population mean spend is infinite"):
        heavy_tailed.expected_spend(0, 0.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"months": 0}, "months must be a positive integer"),
        ({"months": 1.5}, "months must be a positive integer"),
        ({"discount_rate": -0.01}, "discount_rate must be non-negative"),
        ({"time_unit_days": 0}, "time_unit_days must be positive"),
        ({"days_per_month": float("nan")}, "days_per_month must be positive"),
    ],
)
def test_lifetime_value_names_the_bad_option(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"months": 12, "discount_rate": 0.01, **options}
    with pytest.raises(ValueError, match=message):
        customer_lifetime_value(PUBLISHED_BG, PUBLISHED_GG, **HISTORIES, **arguments)


def test_bg_nbd_fit_refuses_data_without_dropout() -> None:
    # Everyone bought at the very end of the observation: nothing says anyone dropped
    # out, and the dropout parameters run off (a -> 0, b -> infinity).
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 10, size=200).astype(float)
    T = np.full(200, 52.0)
    with pytest.raises(ConvergenceError, match="BetaGeoModel fit did not converge"):
        BetaGeoModel.fit(frequency, T, T)


def test_gamma_gamma_fit_refuses_spend_that_never_varies() -> None:
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 5, size=200)
    with pytest.raises(ConvergenceError, match="ran off to 0 or infinity"):
        GammaGammaModel.fit(frequency, np.full(200, 25.0))
