"""BetaGeoIntelligence: fitted per tenant from stored customers, stored, used by AIService."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from linkbay_customers import AIService, CustomerService
from linkbay_customers.domain import quantize_money
from linkbay_customers.ports import Storage
from linkbay_customers.testing import FixedClock, add_customer
from linkbay_customers_clv import (
    MODEL_NAME,
    BetaGeoIntelligence,
    BetaGeoModel,
    GammaGammaModel,
    ModelFitStorage,
)

TRUE_BG = BetaGeoModel(r=0.8, alpha=40.0, a=0.6, b=3.0)
TRUE_GG = GammaGammaModel(p=5.0, q=4.0, gamma=60.0)


async def simulated_tenant(storage: Storage, clock: FixedClock, tenant: str, n: int) -> None:
    """``n`` customers whose histories (in days) come from known BG/NBD + Gamma-Gamma."""
    rng = np.random.default_rng(7)
    age = rng.uniform(60, 720, size=n).round()
    frequency, recency = TRUE_BG.sample(age, rng)
    spend = TRUE_GG.sample(frequency, rng)
    now = clock.now()
    async with storage.unit_of_work(tenant) as uow:
        for x, t_x, t, m in zip(frequency, recency, age, spend, strict=True):
            first = now - timedelta(days=float(t))
            orders = int(x) + 1
            value = quantize_money(Decimal(repr(float(m) if x else 20.0)))
            await add_customer(
                uow,
                created_at=first,
                updated_at=first,
                total_orders=orders,
                total_spent=value * orders,
                average_order_value=value,
                currency="EUR",
                first_order_at=first,
                last_order_at=first + timedelta(days=float(t_x)),
            )
        await uow.commit()


@pytest.fixture
def model(storage: Storage, clock: FixedClock) -> BetaGeoIntelligence:
    return BetaGeoIntelligence.from_storage(storage, clock, cache_seconds=0)


async def test_a_fit_recovers_the_parameters_and_is_stored_with_date_and_size(
    storage: Storage, clock: FixedClock, tenant: str, model: BetaGeoIntelligence
) -> None:
    await simulated_tenant(storage, clock, tenant, 3000)
    outcome = await model.fit(tenant)
    assert outcome.fit is not None
    assert outcome.reason is None
    p = outcome.fit.parameters
    assert p["r"] == pytest.approx(TRUE_BG.r, rel=0.25)
    assert p["alpha"] == pytest.approx(TRUE_BG.alpha, rel=0.3)
    assert p["a"] == pytest.approx(TRUE_BG.a, rel=0.4)
    assert p["b"] == pytest.approx(TRUE_BG.b, rel=0.5)
    assert p["q"] > 1
    assert outcome.fit.sample_size == 3000
    assert outcome.fit.fitted_at == clock.now()
    assert isinstance(storage, ModelFitStorage)
    assert await storage.load_model_fit(tenant, MODEL_NAME) == outcome.fit


async def test_the_service_answers_from_the_models_and_names_the_source(
    storage: Storage,
    service: CustomerService,
    clock: FixedClock,
    tenant: str,
    model: BetaGeoIntelligence,
) -> None:
    await simulated_tenant(storage, clock, tenant, 1500)
    await model.fit(tenant)
    ai = AIService(storage.unit_of_work, clock, model)
    buyer = await service.create_customer(tenant, {"email": "fresh@example.com"})
    await service.record_order(
        tenant, buyer.id, {"order_id": "F-1", "total": "80", "currency": "EUR"}
    )
    clock.advance(days=10)
    await service.record_order(
        tenant, buyer.id, {"order_id": "F-2", "total": "60", "currency": "EUR"}
    )
    soon = await ai.calculate_churn_risk(tenant, buyer.id)
    clock.advance(days=300)
    later = await ai.calculate_churn_risk(tenant, buyer.id)
    assert soon.source == later.source == "bg_nbd"
    assert 0 < soon.churn_risk_score < later.churn_risk_score < 1
    year = await ai.predict_clv(tenant, buyer.id, prediction_months=12)
    half = await ai.predict_clv(tenant, buyer.id, prediction_months=6)
    assert year.source == "bg_nbd"
    assert Decimal(0) < half.predicted_clv < year.predicted_clv
    nobody = await service.create_customer(tenant, {"email": "browser@example.com"})
    assert (await ai.calculate_churn_risk(tenant, nobody.id)).source == "heuristic"
    summary = await ai.score_tenant(tenant)
    assert summary.sources["bg_nbd"] == 1501
    assert summary.sources["heuristic"] == 1


async def test_a_tenant_too_small_to_fit_keeps_the_heuristics_with_a_reason(
    storage: Storage,
    service: CustomerService,
    clock: FixedClock,
    tenant: str,
    model: BetaGeoIntelligence,
) -> None:
    await simulated_tenant(storage, clock, tenant, 4)
    outcome = await model.fit(tenant)
    assert outcome.fit is None
    assert outcome.reason is not None
    assert "4 customers" in outcome.reason
    ai = AIService(storage.unit_of_work, clock, model)
    page = await service.list_customers(tenant)
    risk = await ai.calculate_churn_risk(tenant, page.items[0].id)
    assert risk.source == "heuristic"


async def test_another_process_picks_up_a_stored_fit(
    storage: Storage, clock: FixedClock, tenant: str, model: BetaGeoIntelligence
) -> None:
    await simulated_tenant(storage, clock, tenant, 800)
    fitted = (await model.fit(tenant)).fit
    elsewhere = BetaGeoIntelligence.from_storage(storage, clock)
    async with storage.unit_of_work(tenant) as uow:
        customer = (await uow.customers.list_after(0, limit=1))[0]
    risk = await elsewhere.churn_risk(customer, now=clock.now())
    assert fitted is not None
    stored = BetaGeoModel(
        r=fitted.parameters["r"],
        alpha=fitted.parameters["alpha"],
        a=fitted.parameters["a"],
        b=fitted.parameters["b"],
    )
    x = customer.total_orders - 1
    first = customer.first_order_at
    last = customer.last_order_at
    assert first is not None
    assert last is not None
    t_x = (last - first).total_seconds() / 86_400 if x else 0.0
    age = (clock.now() - first).total_seconds() / 86_400
    assert risk == pytest.approx(float(stored.probability_no_purchase(90.0, x, t_x, age)), abs=1e-6)
