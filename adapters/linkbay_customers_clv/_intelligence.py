"""``BetaGeoIntelligence``: churn risk and lifetime value from BG/NBD + Gamma-Gamma
models fitted per tenant, behind the core's ``CustomerIntelligence`` port."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from linkbay_customers.domain import (
    MAX_MONEY,
    Customer,
    ModelFit,
    StorageRoleMissing,
    quantize_money,
)
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.ports import (
    Clock,
    CustomerIntelligence,
    CustomerProfile,
    CustomerScores,
    Storage,
    derived_data,
    read_only_units,
)
from linkbay_customers_clv._beta_geo import BetaGeoModel
from linkbay_customers_clv._checks import FloatArray
from linkbay_customers_clv._errors import ConvergenceError
from linkbay_customers_clv._fit_storage import ModelFitStorage
from linkbay_customers_clv._gamma_gamma import GammaGammaModel
from linkbay_customers_clv._lifetime_value import customer_lifetime_value

__all__ = ("MODEL_NAME", "BetaGeoIntelligence", "FitOutcome")

MODEL_NAME = "bg_nbd+gamma_gamma"
"""The name fitted parameters are stored under (``ModelFit.model``)."""

_DAY = 86_400.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FitOutcome:
    """What ``BetaGeoIntelligence.fit`` did for a tenant.

    Attributes:
        fit: The stored fit, or None when the tenant's data could not be fitted.
        reason: Why not, when ``fit`` is None (the heuristics answer meanwhile);
            or why spend falls back to each customer's average order value.
    """

    fit: ModelFit | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Models:
    bg: BetaGeoModel
    gg: GammaGammaModel | None
    loaded_at: float


def _history(
    customers: Sequence[Customer], now: datetime
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(x, t_x, T, mean spend) in days, from the customers' order aggregates.

    ``x`` counts repeat orders, ``t_x`` is the age at the last order and ``T`` the age
    now, both from the first order; mean spend is the average order value (the
    Gamma-Gamma model's input, over all orders rather than repeat orders only).
    """
    x = np.fromiter((c.total_orders - 1 for c in customers), float, len(customers))
    first = [c.first_order_at or now for c in customers]
    pairs = zip(customers, first, strict=True)
    t_x = np.fromiter(
        (((c.last_order_at or f) - f).total_seconds() / _DAY for c, f in pairs),
        float,
        len(customers),
    )
    age = np.fromiter(((now - f).total_seconds() / _DAY for f in first), float, len(customers))
    spend = np.fromiter((float(c.average_order_value) for c in customers), float, len(customers))
    age = np.maximum(age, t_x)
    t_x = np.where(x > 0, t_x, 0.0)
    return x, t_x, age, spend


class BetaGeoIntelligence(CustomerIntelligence):
    """Churn risk and lifetime value from models fitted to each tenant's customers.

    BG/NBD (Fader, Hardie & Lee 2005) models when customers buy and when they stop;
    Gamma-Gamma models how much they spend. Both are fitted per tenant by
    ``fit(tenant_id)`` on the customers with at least one order, in days, and stored
    in the storage (``ModelFitStorage``) with the fit date and sample size.

    Churn risk is the probability of no purchase within ``churn_horizon_days`` —
    not ``1 - P(alive)``, which calls every customer without a repeat purchase
    certainly alive. Lifetime value sums the expected purchases of each month of the
    horizon times the expected spend, discounted monthly by ``discount_rate``.

    Segments and embeddings come from the fallback (the heuristics by default), and
    so does every answer for a tenant without a usable fit (too few customers, a fit
    that did not converge) or for a customer without orders; each answer's source
    says which. Fits are cached per process and reloaded after ``cache_seconds``,
    so a refit in another process is picked up.

    Args:
        storage: Where the customers are read (its ``derived_data`` role) and the
            fits kept.
        clock: Source of the current time (the fit date).
        fallback: Answers what the models cannot; ``HeuristicIntelligence`` by default.
        churn_horizon_days: The horizon of churn risk.
        discount_rate: Monthly discount rate of lifetime value.
        cache_seconds: How long a loaded fit is used before it is read again.
        chunk_size: Customers read per transaction while fitting.
    """

    name = "bg_nbd"

    def __init__(
        self,
        storage: ModelFitStorage,
        clock: Clock,
        *,
        fallback: CustomerIntelligence | None = None,
        churn_horizon_days: float = 90.0,
        discount_rate: float = 0.01,
        cache_seconds: float = 300.0,
        chunk_size: int = 10_000,
    ) -> None:
        if not churn_horizon_days > 0:
            raise ValueError("churn_horizon_days must be positive")
        if not 0 <= discount_rate < 1:
            raise ValueError("discount_rate must be in [0, 1)")
        self._storage = storage
        self._clock = clock
        self._fallback = fallback or HeuristicIntelligence()
        self._horizon = churn_horizon_days
        self._discount = discount_rate
        self._cache_seconds = cache_seconds
        self._chunk_size = chunk_size
        self._cache: dict[str, _Models | None] = {}
        self._cached_at: dict[str, float] = {}

    @classmethod
    def from_storage(cls, storage: Storage, clock: Clock, **options: Any) -> BetaGeoIntelligence:
        """The models over a storage's units of work: the factory ``bootstrap`` takes.

        ``bootstrap(url, intelligence=BetaGeoIntelligence.from_storage)``; with
        options, ``functools.partial(BetaGeoIntelligence.from_storage, discount_rate=0.02)``.

        Args:
            storage: Where the customers are read and the fits kept.
            clock: Source of the current time.
            **options: The constructor's keyword arguments (``fallback``, ...).

        Raises:
            StorageRoleMissing: the storage keeps no fits (it is no ``ModelFitStorage``).
        """
        if not isinstance(storage, ModelFitStorage):
            raise StorageRoleMissing(
                "ModelFitStorage",
                implementer=f"the storage ({type(storage).__name__})",
                needed_by="BetaGeoIntelligence, which keeps the models it fits there",
            )
        return cls(storage, clock, **options)

    # --------------------------------------------------------------------- fitting

    async def fit(self, tenant_id: str) -> FitOutcome:
        """Fit both models to the tenant's customers with orders and store the fit.

        Returns:
            The stored fit, or None with the reason the data could not be fitted
            (the fallback then keeps answering for the tenant).

        Raises:
            StorageRoleMissing: the storage cannot walk the tenant (``DerivedDataStore``).
        """
        now = self._clock.now()
        buyers: list[Customer] = []
        after_id = 0
        while True:
            async with read_only_units(self._storage.unit_of_work)(tenant_id) as uow:
                chunk = await derived_data(uow).list_after(after_id, limit=self._chunk_size)
            if not chunk:
                break
            buyers += [c for c in chunk if c.total_orders > 0 and c.first_order_at is not None]
            after_id = chunk[-1].id
        x, t_x, age, spend = _history(buyers, now)
        try:
            bg = BetaGeoModel.fit(x, t_x, age)
        except (ValueError, ConvergenceError) as exc:
            failure = f"BG/NBD could not be fitted to {len(buyers)} customers: {exc}"
            _log.warning("tenant %s: %s", tenant_id, failure)
            return FitOutcome(fit=None, reason=failure)
        parameters = {
            "r": bg.r,
            "alpha": bg.alpha,
            "a": bg.a,
            "b": bg.b,
            "log_likelihood": float(bg.log_likelihood or 0.0),
        }
        reason: str | None = None
        repeat = x > 0
        try:
            gg = GammaGammaModel.fit(x[repeat], spend[repeat])
            parameters |= {"p": gg.p, "q": gg.q, "gamma": gg.gamma}
        except (ValueError, ConvergenceError) as exc:
            reason = f"Gamma-Gamma not fitted ({exc}); spend is each customer's average"
            _log.warning("tenant %s: %s", tenant_id, reason)
        fit = ModelFit(
            tenant_id=tenant_id,
            model=MODEL_NAME,
            parameters=parameters,
            fitted_at=now,
            sample_size=len(buyers),
        )
        await self._storage.save_model_fit(tenant_id, fit)
        self._remember(tenant_id, fit)
        return FitOutcome(fit=fit, reason=reason)

    def _remember(self, tenant_id: str, fit: ModelFit | None) -> _Models | None:
        models = None
        if fit is not None:
            p = fit.parameters
            gg = (
                GammaGammaModel(p=p["p"], q=p["q"], gamma=p["gamma"])
                if {"p", "q", "gamma"} <= p.keys()
                else None
            )
            models = _Models(
                bg=BetaGeoModel(r=p["r"], alpha=p["alpha"], a=p["a"], b=p["b"]),
                gg=gg,
                loaded_at=time.monotonic(),
            )
        self._cache[tenant_id] = models
        self._cached_at[tenant_id] = time.monotonic()
        return models

    async def _models(self, tenant_id: str) -> _Models | None:
        cached_at = self._cached_at.get(tenant_id)
        if cached_at is not None and time.monotonic() - cached_at < self._cache_seconds:
            return self._cache[tenant_id]
        fit = await self._storage.load_model_fit(tenant_id, MODEL_NAME)
        return self._remember(tenant_id, fit)

    # ------------------------------------------------------------------- scoring

    def _predict(
        self, models: _Models, customers: Sequence[Customer], now: datetime, months: int
    ) -> tuple[FloatArray, FloatArray]:
        x, t_x, age, spend = _history(customers, now)
        churn = models.bg.probability_no_purchase(self._horizon, x, t_x, age)
        if models.gg is not None:
            value = customer_lifetime_value(
                models.bg,
                models.gg,
                x,
                t_x,
                age,
                np.where(x > 0, spend, 0.0),
                months=months,
                discount_rate=self._discount,
            )
        else:
            month = 30.0
            value = np.zeros(len(customers))
            for k in range(1, months + 1):
                expected = models.bg.predict_purchases(month * k, x, t_x, age)
                expected -= models.bg.predict_purchases(month * (k - 1), x, t_x, age)
                value += expected * spend / (1 + self._discount) ** k
        return np.clip(churn, 0.0, 1.0), np.clip(value, 0.0, float(MAX_MONEY))

    async def segment(self, customer: Customer, *, now: datetime) -> str:
        """The fallback's segment (the models do not segment)."""
        return await self._fallback.segment(customer, now=now)

    async def churn_risk(self, customer: Customer, *, now: datetime) -> float:
        """Probability of no purchase within the horizon."""
        (scores,) = await self.score_many([CustomerProfile(customer)], now=now, months=1)
        return scores.churn_risk

    async def predict_clv(self, customer: Customer, *, months: int, now: datetime) -> Decimal:
        """Discounted expected revenue over ``months``."""
        (scores,) = await self.score_many([CustomerProfile(customer)], now=now, months=months)
        return scores.lifetime_value

    async def embed(self, profile: CustomerProfile, *, now: datetime) -> Sequence[float] | None:
        """The fallback's behavioural embedding."""
        return await self._fallback.embed(profile, now=now)

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> list[CustomerScores]:
        """Score a batch at once: the models for customers with orders of a fitted
        tenant, the fallback for the rest; each score names its source."""
        base = list(await self._fallback.score_many(profiles, now=now, months=months))
        by_tenant: dict[str, list[int]] = {}
        for index, profile in enumerate(profiles):
            customer = profile.customer
            if customer.total_orders > 0 and customer.first_order_at is not None:
                by_tenant.setdefault(customer.tenant_id, []).append(index)
        for tenant_id, indexes in by_tenant.items():
            models = await self._models(tenant_id)
            if models is None:
                continue
            churn, value = self._predict(
                models, [profiles[i].customer for i in indexes], now, months
            )
            for i, risk, clv in zip(indexes, churn.tolist(), value.tolist(), strict=True):
                base[i] = CustomerScores(
                    customer_id=base[i].customer_id,
                    segment=base[i].segment,
                    churn_risk=round(risk, 6) if math.isfinite(risk) else 1.0,
                    lifetime_value=quantize_money(Decimal(repr(clv))),
                    embedding=base[i].embedding,
                    source=self.name,
                )
        return base
