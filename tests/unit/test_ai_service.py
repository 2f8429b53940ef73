"""AIService over the heuristics, on any storage (run again on SQL in tests/integration)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from linkbay_customers import (
    AIService,
    CustomerNotFound,
    CustomerService,
    GDPRService,
    HeuristicIntelligence,
    InvalidInput,
    ProfilingNotAllowed,
)
from linkbay_customers.domain import StorageError, cosine_similarity, embedding_values
from linkbay_customers.ports import CustomerProfile, Storage, purchase_history
from linkbay_customers.testing import FixedClock
from linkbay_customers_memory._storage import InMemoryCustomerRepository


def order(order_id: str, *products: tuple[str, str, int], total: str = "50") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "total": total,
        "currency": "EUR",
        "items": [
            {"product_id": pid, "product_name": name, "quantity": qty, "unit_price": "1"}
            for pid, name, qty in products
        ],
    }


BIKE = ("bike", "Gravel bike", 1)
BELL = ("bell", "Bike bell", 1)
LIGHT = ("light", "Front light", 1)
TEA = ("tea", "Green tea", 3)
MUG = ("mug", "Mug", 1)


async def shop(service: CustomerService, tenant: str, clock: FixedClock) -> dict[str, int]:
    """Cyclists who buy bikes, bells and lights; tea drinkers who buy tea and mugs."""
    ids: dict[str, int] = {}
    for n in range(4):
        c = await service.create_customer(tenant, {"email": f"cyclist{n}@example.com"})
        ids[f"cyclist{n}"] = c.id
        products = [BIKE, BELL] + ([LIGHT] if n else [])
        await service.record_order(tenant, c.id, order(f"C{n}", *products, total="900"))
    for n in range(3):
        c = await service.create_customer(tenant, {"email": f"tea{n}@example.com"})
        ids[f"tea{n}"] = c.id
        await service.record_order(tenant, c.id, order(f"T{n}", TEA, MUG, total="15"))
    newbie = await service.create_customer(tenant, {"email": "newbie@example.com"})
    ids["newbie"] = newbie.id
    clock.advance(days=1)
    return ids


class TestOneCustomer:
    async def test_churn_risk_comes_with_its_level_and_source(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        fresh = await ai.calculate_churn_risk(tenant, ids["cyclist1"])
        clock.advance(days=400)
        stale = await ai.calculate_churn_risk(tenant, ids["cyclist1"])
        assert 0.0 <= fresh.churn_risk_score < stale.churn_risk_score <= 1.0
        assert fresh.risk_level == "low"
        assert stale.risk_level == "high"
        assert fresh.source == "heuristic"

    async def test_a_customer_without_orders_gets_meaningful_answers(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        churn = await ai.calculate_churn_risk(tenant, ids["newbie"])
        clv = await ai.predict_clv(tenant, ids["newbie"], prediction_months=12)
        assert 0.0 <= churn.churn_risk_score <= 1.0
        assert clv.predicted_clv == Decimal("0")
        assert clv.prediction_months == 12
        recs = await ai.generate_recommendations(tenant, ids["newbie"], limit=2)
        assert [r.product_id for r in recs] == ["bell", "bike"]
        assert all("best seller" in r.reason for r in recs)

    async def test_clv_grows_with_the_horizon(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        six = await ai.predict_clv(tenant, ids["cyclist2"], prediction_months=6)
        twelve = await ai.predict_clv(tenant, ids["cyclist2"], prediction_months=12)
        assert Decimal(0) < six.predicted_clv < twelve.predicted_clv
        for bad in (0, 121, True):
            with pytest.raises(InvalidInput) as caught:
                await ai.predict_clv(tenant, ids["cyclist2"], prediction_months=bad)
            assert caught.value.field == "months"

    async def test_segment_is_recomputed_stored_and_audited(
        self,
        service: CustomerService,
        ai: AIService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        clock.advance(days=200)
        updated = await ai.update_customer_segment(tenant, ids["tea0"], actor="ops")
        assert updated.segment == "dormant"
        assert (await service.get_customer(tenant, ids["tea0"])).segment == "dormant"
        trail = (await gdpr.list_audit_events(tenant, customer_id=ids["tea0"])).items
        assert trail[-1].action == "scores.updated"
        assert trail[-1].changed_fields == ("segment",)

    async def test_another_tenants_ids_are_unknown(
        self,
        service: CustomerService,
        ai: AIService,
        tenant: str,
        other_tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        calls = (
            ai.calculate_churn_risk(other_tenant, ids["cyclist0"]),
            ai.predict_clv(other_tenant, ids["cyclist0"]),
            ai.find_similar_customers(other_tenant, ids["cyclist0"]),
            ai.generate_recommendations(other_tenant, ids["cyclist0"]),
            ai.update_customer_segment(other_tenant, ids["cyclist0"]),
        )
        for call in calls:
            with pytest.raises(CustomerNotFound):
                await call


class TestSimilarityAndRecommendations:
    async def test_similar_customers_are_those_who_buy_alike(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        await ai.score_tenant(tenant)
        similar = await ai.find_similar_customers(tenant, ids["cyclist0"], limit=3)
        assert {s.customer.id for s in similar} == {ids[f"cyclist{n}"] for n in (1, 2, 3)}
        scores = [s.similarity_score for s in similar]
        assert scores == sorted(scores, reverse=True)
        assert all(0.5 < s <= 1.0 for s in scores)
        tea = await ai.find_similar_customers(tenant, ids["tea0"], limit=2)
        assert {s.customer.id for s in tea} == {ids["tea1"], ids["tea2"]}

    async def test_similar_customers_are_the_exact_ranking_of_the_stored_embeddings(
        self,
        storage: Storage,
        service: CustomerService,
        ai: AIService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        for n in range(6):  # more histories, on other days and of other sizes
            clock.advance(days=3 + 11 * n)
            c = await service.create_customer(tenant, {"email": f"mixed{n}@example.com"})
            ids[f"mixed{n}"] = c.id
            products = (BIKE, TEA, LIGHT, MUG)[: 1 + n % 4]
            await service.record_order(tenant, c.id, order(f"M{n}", *products, total=f"{40 + n}"))
        stored = {
            customer_id: (await service.get_customer(tenant, customer_id)).embedding
            for customer_id in ids.values()
        }
        for reference, embedding in stored.items():
            if embedding is None:
                assert await ai.find_similar_customers(tenant, reference) == []
                continue
            ranked = sorted(
                (
                    (-cosine_similarity(embedding, other), customer_id)
                    for customer_id, other in stored.items()
                    if other is not None and customer_id != reference
                ),
            )[:5]
            similar = await ai.find_similar_customers(tenant, reference, limit=5)
            assert [s.customer.id for s in similar] == [customer_id for _, customer_id in ranked]
            assert [s.similarity_score for s in similar] == pytest.approx(
                [-score for score, _ in ranked], abs=1e-5
            )

    async def test_recommendations_are_what_similar_customers_bought_and_this_one_did_not(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        await ai.score_tenant(tenant)
        recs = await ai.generate_recommendations(tenant, ids["cyclist0"], limit=5)
        assert recs[0].product_id == "light"
        assert recs[0].product_name == "Front light"
        assert "similar" in recs[0].reason
        assert 0.0 < recs[0].score <= 1.0
        assert {r.product_id for r in recs}.isdisjoint({"bike", "bell"})

    async def test_the_limit_is_checked(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        for bad in (0, 101):
            with pytest.raises(InvalidInput) as caught:
                await ai.find_similar_customers(tenant, ids["tea0"], limit=bad)
            assert caught.value.field == "limit"


class TestScoreTenant:
    async def test_an_async_progress_callback_is_awaited(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        await shop(service, tenant, clock)
        progress: list[int] = []

        async def report(done: int) -> None:
            await asyncio.sleep(0)
            progress.append(done)

        await ai.score_tenant(tenant, on_progress=report)
        assert progress == [3, 6, 8]

    async def test_every_customer_is_scored_in_chunks_with_a_summary(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        progress: list[int] = []
        summary = await ai.score_tenant(tenant, on_progress=progress.append)
        assert summary.customers == len(ids)
        assert progress == [3, 6, 8]
        assert sum(summary.per_segment.values()) == len(ids)
        assert sum(summary.churn_risk_distribution.values()) == len(ids)
        assert summary.sources == {"heuristic": len(ids)}
        assert summary.total_predicted_clv > 0
        scored = await service.get_customer(tenant, ids["cyclist0"])
        assert scored.scored_at == clock.now()
        assert scored.score_source == "heuristic"
        assert scored.embedding is not None
        assert scored.churn_risk_score is not None
        assert scored.customer_lifetime_value is not None

    async def test_changes_keep_embeddings_current_and_scoring_on_another_day_rewrites_none(
        self, service: CustomerService, ai: AIService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        first = (await service.get_customer(tenant, ids["tea0"])).embedding
        assert first is not None  # stored by the order, before any scoring
        assert (await ai.score_tenant(tenant)).embeddings_written == 0
        clock.advance(days=30)
        summary = await ai.score_tenant(tenant)
        assert (summary.customers, summary.embeddings_written) == (len(ids), 0)
        assert (await service.get_customer(tenant, ids["tea0"])).embedding == first
        await service.record_order(tenant, ids["tea0"], order("T0-bike", BIKE, total="900"))
        moved = (await service.get_customer(tenant, ids["tea0"])).embedding
        assert moved is not None
        assert 1 - cosine_similarity(first, moved) > 0.01
        assert (await ai.score_tenant(tenant)).embeddings_written == 0

    async def test_scoring_rewrites_an_embedding_further_than_the_tolerance_from_its_history(
        self, storage: Storage, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        current: list[float] = []

        async def nudge() -> None:
            """A write outside the services, stamping the customer changed."""
            async with storage.unit_of_work(tenant) as uow:
                customer = await uow.customers.get(ids["tea0"], for_update=True)
                assert customer is not None
                assert customer.embedding is not None
                current[:] = current or list(customer.embedding)
                customer.embedding = [v + 1e-5 * (n % 3) for n, v in enumerate(current)]
                customer.updated_at = clock.now()
                await uow.customers.update(customer)
                await uow.commit()
            clock.advance(minutes=1)

        await nudge()
        tolerant = AIService(storage.unit_of_work, clock, HeuristicIntelligence())
        assert (await tolerant.score_tenant(tenant)).embeddings_written == 0
        await nudge()
        exact = AIService(
            storage.unit_of_work, clock, HeuristicIntelligence(), embedding_tolerance=0
        )
        assert (await exact.score_tenant(tenant)).embeddings_written == 1  # that one only
        assert (await service.get_customer(tenant, ids["tea0"])).embedding == current

    async def test_customers_who_withdrew_analytics_consent_are_skipped_and_cleared(
        self,
        service: CustomerService,
        ai: AIService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        await ai.score_tenant(tenant)
        await gdpr.update_consent(tenant, ids["cyclist1"], "analytics", False)
        clock.advance(timedelta(hours=1))
        summary = await ai.score_tenant(tenant)
        assert summary.skipped_without_consent == 1
        withdrawn = await service.get_customer(tenant, ids["cyclist1"])
        assert (withdrawn.embedding, withdrawn.churn_risk_score, withdrawn.segment) == (
            None,
            None,
            None,
        )
        similar = await ai.find_similar_customers(tenant, ids["cyclist0"], limit=10)
        assert ids["cyclist1"] not in {s.customer.id for s in similar}
        with pytest.raises(ProfilingNotAllowed):
            await ai.calculate_churn_risk(tenant, ids["cyclist1"])
        with pytest.raises(ProfilingNotAllowed):
            await ai.find_similar_customers(tenant, ids["cyclist1"])
        recs = await ai.generate_recommendations(tenant, ids["cyclist1"], limit=3)
        assert all("best seller" in r.reason for r in recs)


async def fresh_embedding(storage: Storage, tenant: str, customer_id: int) -> list[float] | None:
    """The embedding a scoring run would compute now from what is stored of the customer."""
    async with storage.unit_of_work(tenant) as uow:
        customer = await uow.customers.get(customer_id)
        assert customer is not None
        purchases = await purchase_history(uow).purchases([customer_id])
    products = {p.product_id: p.quantity for p in purchases}
    (scores,) = await HeuristicIntelligence().score_many(
        [CustomerProfile(customer, products)], now=customer.updated_at, months=12
    )
    return None if scores.embedding is None else embedding_values(scores.embedding)


class TestEmbeddingsKeptCurrent:
    """Every change that moves a customer's history stores the embedding a scoring run
    would compute, in its own transaction."""

    async def test_a_new_customer_has_none_and_each_order_stores_the_scored_one(
        self, storage: Storage, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "ada@example.com"})
        assert (await service.get_customer(tenant, customer.id)).embedding is None
        for n, products in enumerate(((BIKE, BELL), (LIGHT,), (TEA, MUG))):
            clock.advance(days=9)
            await service.record_order(tenant, customer.id, order(f"A{n}", *products))
            stored = await service.get_customer(tenant, customer.id)
            assert stored.embedding is not None
            assert stored.embedding == await fresh_embedding(storage, tenant, customer.id)
            assert stored.embedding_version == "behaviour-v3"

    async def test_a_merge_stores_the_targets_embedding_of_both_histories(
        self, storage: Storage, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        ids = await shop(service, tenant, clock)
        before = (await service.get_customer(tenant, ids["cyclist1"])).embedding
        await service.merge_customers(
            tenant, {"source_customer_id": ids["tea0"], "target_customer_id": ids["cyclist1"]}
        )
        merged = await service.get_customer(tenant, ids["cyclist1"])
        assert merged.embedding != before
        assert merged.embedding == await fresh_embedding(storage, tenant, ids["cyclist1"])
        async with storage.unit_of_work(tenant) as uow:
            source = await uow.customers.get(ids["tea0"], include_deleted=True)
        assert source is not None
        assert source.embedding is None

    async def test_a_profile_update_leaves_the_embedding_and_erasure_removes_it(
        self,
        storage: Storage,
        service: CustomerService,
        ai: AIService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        before = (await service.get_customer(tenant, ids["tea1"])).embedding
        await service.update_customer(tenant, ids["tea1"], {"first_name": "Tea", "tags": ["x"]})
        assert (await service.get_customer(tenant, ids["tea1"])).embedding == before
        await gdpr.delete_customer_data(tenant, ids["tea1"], anonymize=True)
        async with storage.unit_of_work(tenant) as uow:
            erased = await uow.customers.get(ids["tea1"], include_deleted=True)
        assert erased is not None
        assert (erased.embedding, erased.embedding_version) == (None, None)
        similar = await ai.find_similar_customers(tenant, ids["tea0"], limit=10)
        assert ids["tea1"] not in {s.customer.id for s in similar}

    async def test_a_customer_the_policy_excludes_gets_no_embedding_from_an_order(
        self,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "no@example.com"})
        await gdpr.update_consent(tenant, customer.id, "analytics", False)
        await service.record_order(tenant, customer.id, order("N1", BIKE))
        stored = await service.get_customer(tenant, customer.id)
        assert (stored.embedding, stored.embedding_version, stored.segment) == (None, None, None)
        await gdpr.update_consent(tenant, customer.id, "analytics", True)
        await service.record_order(tenant, customer.id, order("N2", BELL))
        assert (await service.get_customer(tenant, customer.id)).embedding is not None

    async def test_similar_customers_answer_without_scoring_and_never_across_tenants(
        self,
        service: CustomerService,
        ai: AIService,
        tenant: str,
        other_tenant: str,
        clock: FixedClock,
    ) -> None:
        ids = await shop(service, tenant, clock)
        theirs = await shop(service, other_tenant, clock)
        similar = await ai.find_similar_customers(tenant, ids["cyclist0"], limit=100)
        assert {s.customer.id for s in similar} == set(ids.values()) - {
            ids["cyclist0"],
            ids["newbie"],
        }
        assert {s.customer.tenant_id for s in similar} == {tenant}
        assert {s.customer.id for s in similar[:3]} == {ids[f"cyclist{n}"] for n in (1, 2, 3)}
        their_similar = await ai.find_similar_customers(other_tenant, theirs["tea0"], limit=100)
        assert {s.customer.tenant_id for s in their_similar} == {other_tenant}


class _FallingBack(HeuristicIntelligence):
    """An adapter whose batch answers came from its fallback, as a model's may."""

    name = "model"

    async def score_many(self, profiles: Any, *, now: Any, months: int) -> Any:
        scores = await super().score_many(profiles, now=now, months=months)
        return [replace(s, source="heuristic-fallback") for s in scores]


async def test_the_source_reported_is_the_one_that_produced_the_answer(
    storage: Storage, service: CustomerService, clock: FixedClock, tenant: str
) -> None:
    ids = await shop(service, tenant, clock)
    ai = AIService(storage.unit_of_work, clock, _FallingBack())
    assert (await ai.calculate_churn_risk(tenant, ids["tea1"])).source == "heuristic-fallback"
    assert (await ai.predict_clv(tenant, ids["tea1"])).source == "heuristic-fallback"
    assert (await ai.score_tenant(tenant)).sources == {"heuristic-fallback": len(ids)}


async def test_a_failing_write_stops_batch_scoring_and_keeps_what_was_written(
    service: CustomerService,
    ai: AIService,
    tenant: str,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = await shop(service, tenant, clock)
    written = InMemoryCustomerRepository.update_derived
    calls = 0

    async def failing_second_write(self: Any, rows: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StorageError("the database went away")
        await written(self, rows)

    monkeypatch.setattr(InMemoryCustomerRepository, "update_derived", failing_second_write)
    progress: list[int] = []
    with pytest.raises(StorageError):
        await ai.score_tenant(tenant, on_progress=progress.append)
    assert progress == [3]
    scored = [await service.get_customer(tenant, i) for i in sorted(ids.values())]
    assert [c.scored_at is not None for c in scored] == [True] * 3 + [False] * 5
