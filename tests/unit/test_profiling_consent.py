"""Profiling consent applies on every path: no derived data for an excluded customer.

The services come from the container, wired with one per-tenant policy, as a host
would: ``tenant`` is opt-in, ``other_tenant`` keeps the default (opt-out). Some
tests profile ``tenant`` under the default first and then move it to opt-in: the
derived data computed before must go on the next write, and no path may compute
new derived data for a customer who never opted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from dependency_injector import providers

from linkbay_customers import (
    AIService,
    CustomersContainer,
    CustomerService,
    GDPRService,
    HeuristicIntelligence,
    ProfilingNotAllowed,
    ProfilingPolicy,
    bootstrap,
)
from linkbay_customers.domain import AuditAction, Customer
from linkbay_customers.ports import CustomerProfile, CustomerScores, Storage
from linkbay_customers.testing import FixedClock

OPT_IN = ProfilingPolicy(require_opt_in=True)
DERIVED = (
    "segment",
    "churn_risk_score",
    "customer_lifetime_value",
    "embedding",
    "embedding_version",
    "scored_at",
    "score_source",
)
NOTHING_DERIVED = dict.fromkeys(DERIVED)
BIKE = {"product_id": "bike", "product_name": "Gravel bike", "quantity": 1, "unit_price": "900"}
BELL = {"product_id": "bell", "product_name": "Bike bell", "quantity": 1, "unit_price": "10"}
TEA = {"product_id": "tea", "product_name": "Green tea", "quantity": 3, "unit_price": "5"}


def derived(customer: Customer) -> dict[str, Any]:
    return {name: getattr(customer, name) for name in DERIVED}


def order(order_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    total = sum(int(i["unit_price"]) * int(i["quantity"]) for i in items) or 10
    return {"order_id": order_id, "total": str(total), "currency": "EUR", "items": list(items)}


class Policies:
    """Each tenant's profiling policy, kept by a host that may change it."""

    def __init__(self) -> None:
        self.by_tenant: dict[str, ProfilingPolicy] = {}

    def __call__(self, tenant_id: str) -> ProfilingPolicy:
        return self.by_tenant.get(tenant_id, ProfilingPolicy())


class RecordingIntelligence(HeuristicIntelligence):
    """The heuristics, remembering whom they were asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    async def segment(self, customer: Customer, *, now: datetime) -> str:
        self.asked.append(customer.id)
        return await super().segment(customer, now=now)

    async def embed(self, profile: CustomerProfile, *, now: datetime) -> Sequence[float] | None:
        self.asked.append(profile.customer.id)
        return await super().embed(profile, now=now)

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> Sequence[CustomerScores]:
        self.asked.extend(p.customer.id for p in profiles)
        return await super().score_many(profiles, now=now, months=months)


@dataclass
class Shop:
    storage: Storage
    customers: CustomerService
    ai: AIService
    gdpr: GDPRService
    policies: Policies
    intelligence: RecordingIntelligence

    async def stored(self, tenant: str, customer_id: int) -> Customer:
        # The row itself: the service would follow a merged-away id to its target.
        async with self.storage.unit_of_work(tenant) as uow:
            customer = await uow.customers.get(customer_id, include_deleted=True)
        assert customer is not None
        return customer

    async def opt_in(self, tenant: str, customer_id: int) -> None:
        await self.gdpr.update_consent(tenant, customer_id, "analytics", True)


@dataclass
class Pair:
    excluded: int  # never gave analytics consent
    allowed: int  # opted in
    also_allowed: int = 0  # opted in too, when there is a third customer


async def profiled_before_opt_in(shop: Shop, tenant: str, clock: FixedClock) -> Pair:
    """Three customers fully profiled under the default policy (cyclists, one buying
    tea too); then the tenant moves to opt-in, and the first never opted in."""
    shop.policies.by_tenant[tenant] = ProfilingPolicy()
    ids = []
    for name, items in (("anna", (BIKE, BELL)), ("bruno", (BIKE,)), ("carla", (BIKE, TEA))):
        customer = await shop.customers.create_customer(tenant, {"email": f"{name}@example.com"})
        await shop.customers.record_order(tenant, customer.id, order(f"{name}-1", *items))
        ids.append(customer.id)
    anna, bruno, carla = ids
    await shop.opt_in(tenant, bruno)
    await shop.opt_in(tenant, carla)
    clock.advance(days=1)
    await shop.ai.score_tenant(tenant)
    for customer_id in ids:
        assert None not in derived(await shop.stored(tenant, customer_id)).values()
    shop.policies.by_tenant[tenant] = OPT_IN
    shop.intelligence.asked.clear()
    return Pair(excluded=anna, allowed=bruno, also_allowed=carla)


async def opted_in_and_not(shop: Shop, tenant: str) -> Pair:
    """Two customers created under the opt-in policy, the second one opting in."""
    anna = await shop.customers.create_customer(tenant, {"email": "anna@example.com"})
    bruno = await shop.customers.create_customer(tenant, {"email": "bruno@example.com"})
    await shop.opt_in(tenant, bruno.id)
    await shop.customers.record_order(tenant, anna.id, order("A-1", BIKE, BELL))
    await shop.customers.record_order(tenant, bruno.id, order("B-1", BIKE))
    shop.intelligence.asked.clear()
    return Pair(excluded=anna.id, allowed=bruno.id)


class ProfilingShop:
    """The shop fixture, as a method so that the classes run again on SQL carry it."""

    @pytest.fixture
    def shop(self, storage: Storage, clock: FixedClock, tenant: str) -> Shop:
        policies = Policies()
        policies.by_tenant[tenant] = OPT_IN
        intelligence = RecordingIntelligence()
        container = CustomersContainer()
        container.storage.override(providers.Object(storage))
        container.clock.override(providers.Object(clock))
        container.intelligence.override(providers.Object(intelligence))
        container.profiling_policy.override(providers.Object(policies))
        return Shop(
            storage,
            container.customer_service(),
            container.ai_service(),
            container.gdpr_service(),
            policies,
            intelligence,
        )


class TestProfilingOnCustomerPaths(ProfilingShop):
    async def test_create_gives_no_segment_to_a_customer_who_never_opted_in(
        self, shop: Shop, tenant: str, other_tenant: str
    ) -> None:
        excluded = await shop.customers.create_customer(tenant, {"email": "anna@example.com"})
        allowed = await shop.customers.create_customer(other_tenant, {"email": "anna@example.com"})

        assert derived(await shop.stored(tenant, excluded.id)) == NOTHING_DERIVED
        assert (await shop.stored(other_tenant, allowed.id)).segment == "new"
        assert set(shop.intelligence.asked) == {allowed.id}

    async def test_import_gives_no_segment_to_customers_who_never_opted_in(
        self, shop: Shop, tenant: str, other_tenant: str
    ) -> None:
        rows = [{"email": "anna@example.com"}, {"email": "bruno@example.com"}]

        assert (await shop.customers.import_customers(tenant, rows)).created == 2
        assert (await shop.customers.import_customers(other_tenant, rows)).created == 2

        for email in ("anna@example.com", "bruno@example.com"):
            excluded = await shop.customers.get_customer_by_email(tenant, email)
            allowed = await shop.customers.get_customer_by_email(other_tenant, email)
            assert derived(excluded) == NOTHING_DERIVED
            assert allowed.segment == "new"

    async def test_import_updating_a_customer_drops_what_the_policy_excludes(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)
        rows = [
            {"email": "anna@example.com", "first_name": "Anna"},
            {"email": "bruno@example.com", "first_name": "Bruno"},
        ]

        assert (await shop.customers.import_customers(tenant, rows)).updated == 2

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert None not in derived(await shop.stored(tenant, pair.allowed)).values()

    async def test_update_drops_what_the_policy_excludes(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)

        for customer_id in (pair.excluded, pair.allowed):
            await shop.customers.update_customer(tenant, customer_id, {"first_name": "New"})

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert None not in derived(await shop.stored(tenant, pair.allowed)).values()
        assert shop.intelligence.asked == []

    async def test_an_order_segments_only_who_opted_in(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)

        await shop.customers.record_order(tenant, pair.excluded, order("A-2", TEA))
        await shop.customers.record_order(tenant, pair.allowed, order("B-2", TEA))

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert (await shop.stored(tenant, pair.allowed)).segment is not None
        assert set(shop.intelligence.asked) == {pair.allowed}

    async def test_a_merge_segments_only_a_target_who_opted_in(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        shop.policies.by_tenant[tenant] = ProfilingPolicy()
        duplicates = [
            (await shop.customers.create_customer(tenant, {"email": email})).id
            for email in ("anna.old@example.com", "bruno.old@example.com")
        ]
        pair = await profiled_before_opt_in(shop, tenant, clock)

        for source, target in zip(duplicates, (pair.excluded, pair.allowed), strict=True):
            await shop.customers.merge_customers(
                tenant, {"source_customer_id": source, "target_customer_id": target}
            )

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        for source in duplicates:
            assert derived(await shop.stored(tenant, source)) == NOTHING_DERIVED
        assert None not in derived(await shop.stored(tenant, pair.allowed)).values()
        assert set(shop.intelligence.asked) == {pair.allowed}

    async def test_a_withdrawal_on_the_merged_away_account_holds_after_the_merge(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        shop.policies.by_tenant[tenant] = ProfilingPolicy()  # opt-out: never answering allows
        old = await shop.customers.create_customer(tenant, {"email": "anna.old@example.com"})
        kept = await shop.customers.create_customer(tenant, {"email": "anna@example.com"})
        for customer, name in ((old, "old"), (kept, "kept")):
            await shop.customers.record_order(tenant, customer.id, order(name, BIKE))
        withdrawal = await shop.gdpr.update_consent(tenant, old.id, "analytics", False)
        clock.advance(hours=1)

        merged = await shop.customers.merge_customers(
            tenant, {"source_customer_id": old.id, "target_customer_id": kept.id}
        )

        assert merged.consent_data["analytics"].consented is False
        assert derived(await shop.stored(tenant, kept.id)) == NOTHING_DERIVED
        for customer_id in (old.id, kept.id):  # the merged-away id resolves to the target
            with pytest.raises(ProfilingNotAllowed):
                await shop.ai.calculate_churn_risk(tenant, customer_id)
        history = await shop.gdpr.get_consent_history(tenant, kept.id)
        assert history.current["analytics"].consented is False
        assert history.events == (withdrawal,)
        assert history.events[0].customer_id == old.id
        (event,) = [
            e
            for e in (await shop.gdpr.list_audit_events(tenant, customer_id=kept.id)).items
            if e.action is AuditAction.CUSTOMER_MERGED
        ]
        assert event.changed_fields == ("consent_data",)

    async def test_the_latest_consent_decision_of_either_account_holds_after_a_merge(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        old = await shop.customers.create_customer(tenant, {"email": "bruno.old@example.com"})
        kept = await shop.customers.create_customer(tenant, {"email": "bruno@example.com"})
        await shop.gdpr.update_consent(tenant, old.id, "analytics", True)
        await shop.gdpr.update_consent(tenant, old.id, "marketing", True)
        clock.advance(hours=1)
        await shop.gdpr.update_consent(tenant, kept.id, "analytics", False)
        clock.advance(hours=1)
        await shop.gdpr.update_consent(tenant, old.id, "marketing", False)
        clock.advance(hours=1)
        await shop.gdpr.update_consent(tenant, kept.id, "marketing", True)

        merged = await shop.customers.merge_customers(
            tenant, {"source_customer_id": old.id, "target_customer_id": kept.id}
        )

        # analytics: the target withdrew after the source opted in; marketing: the
        # target opted in after the source withdrew. The target's later answers hold.
        assert {k: s.consented for k, s in merged.consent_data.items()} == {
            "analytics": False,
            "marketing": True,
        }
        history = await shop.gdpr.get_consent_history(tenant, kept.id)
        assert [(e.customer_id, e.consent_type, e.consented) for e in history.events] == [
            (old.id, "analytics", True),
            (old.id, "marketing", True),
            (kept.id, "analytics", False),
            (old.id, "marketing", False),
            (kept.id, "marketing", True),
        ]

    async def test_restore_drops_what_the_policy_excludes(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)
        for customer_id in (pair.excluded, pair.allowed):
            await shop.customers.delete_customer(tenant, customer_id)

        for customer_id in (pair.excluded, pair.allowed):
            await shop.customers.restore_customer(tenant, customer_id)

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert None not in derived(await shop.stored(tenant, pair.allowed)).values()


class TestProfilingOnIntelligencePaths(ProfilingShop):
    async def test_scoring_clears_who_never_opted_in_and_scores_who_did(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)

        summary = await shop.ai.score_tenant(tenant)

        assert (summary.customers, summary.skipped_without_consent) == (3, 1)
        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert None not in derived(await shop.stored(tenant, pair.allowed)).values()
        assert sorted(shop.intelligence.asked) == [pair.allowed, pair.also_allowed]

    async def test_recomputing_a_segment_is_refused_for_who_never_opted_in(
        self, shop: Shop, tenant: str
    ) -> None:
        pair = await opted_in_and_not(shop, tenant)

        with pytest.raises(ProfilingNotAllowed):
            await shop.ai.update_customer_segment(tenant, pair.excluded)
        await shop.ai.update_customer_segment(tenant, pair.allowed)

        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert (await shop.stored(tenant, pair.allowed)).segment is not None
        assert shop.intelligence.asked == [pair.allowed]

    @pytest.mark.parametrize("call", ["calculate_churn_risk", "predict_clv"])
    async def test_scores_are_refused_for_who_never_opted_in(
        self, shop: Shop, tenant: str, call: str
    ) -> None:
        pair = await opted_in_and_not(shop, tenant)

        with pytest.raises(ProfilingNotAllowed):
            await getattr(shop.ai, call)(tenant, pair.excluded)
        answer = await getattr(shop.ai, call)(tenant, pair.allowed)

        assert answer.customer_id == pair.allowed
        assert derived(await shop.stored(tenant, pair.excluded)) == NOTHING_DERIVED
        assert (await shop.stored(tenant, pair.allowed)).segment is not None
        assert shop.intelligence.asked == [pair.allowed]

    async def test_similarity_never_offers_an_embedding_kept_from_before_opt_in(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)
        stale = await shop.stored(tenant, pair.excluded)
        assert stale.embedding is not None

        with pytest.raises(ProfilingNotAllowed):
            await shop.ai.find_similar_customers(tenant, pair.excluded)
        similar = await shop.ai.find_similar_customers(tenant, pair.allowed)

        assert [s.customer.id for s in similar] == [pair.also_allowed]
        assert shop.intelligence.asked == []

    async def test_recommendations_use_no_one_the_policy_excludes(
        self, shop: Shop, tenant: str, clock: FixedClock
    ) -> None:
        pair = await profiled_before_opt_in(shop, tenant, clock)

        own = await shop.ai.generate_recommendations(tenant, pair.excluded)
        theirs = await shop.ai.generate_recommendations(tenant, pair.allowed)

        assert [(r.product_id, r.reason) for r in own] == [
            ("tea", "a best seller in this shop (1 buyer)")
        ]
        # Anna's bell would be suggested if her stale embedding made her a neighbour.
        assert [(r.product_id, r.reason) for r in theirs] == [
            ("tea", "bought by the customer most similar to this one")
        ]
        assert pair.excluded not in shop.intelligence.asked


async def test_bootstrap_gives_one_profiling_policy_to_every_service(clock: FixedClock) -> None:
    container = bootstrap("memory://", clock=clock, profiling_policy=OPT_IN)
    customers: CustomerService = container.customer_service()
    gdpr: GDPRService = container.gdpr_service()
    ai: AIService = container.ai_service()
    anna = await customers.create_customer("t1", {"email": "anna@example.com"})
    bruno = await customers.create_customer("t1", {"email": "bruno@example.com"})
    await gdpr.update_consent("t1", bruno.id, "analytics", True)

    for customer in (anna, bruno):
        await customers.record_order("t1", customer.id, order(f"{customer.id}-1", BIKE))

    assert gdpr.profiling_policy("t1") == OPT_IN
    assert derived(await customers.get_customer("t1", anna.id)) == NOTHING_DERIVED
    assert (await customers.get_customer("t1", bruno.id)).segment is not None
    with pytest.raises(ProfilingNotAllowed):
        await ai.calculate_churn_risk("t1", anna.id)
    await container.storage().close()
