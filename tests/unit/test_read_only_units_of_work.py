"""The services read in read-only units of work, and write in ordinary ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_memory import InMemoryStorage, InMemoryUnitOfWork


class RecordingStorage(InMemoryStorage):
    """Records whether each unit of work it opens is read-only."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[bool] = []

    def unit_of_work(self, tenant_id: str, *, read_only: bool = False) -> InMemoryUnitOfWork:
        self.opened.append(read_only)
        return super().unit_of_work(tenant_id, read_only=read_only)


class TenantOnlyStorage(InMemoryStorage):
    """A storage written before ``read_only`` existed: its units of work take a tenant."""

    def unit_of_work(self, tenant_id: str) -> InMemoryUnitOfWork:  # type: ignore[override]
        return super().unit_of_work(tenant_id)


Read = Callable[[CustomerService, AIService, GDPRService, str, int], Awaitable[Any]]

READS: dict[str, Read] = {
    "get": lambda s, a, g, t, c: s.get_customer(t, c),
    "by email": lambda s, a, g, t, c: s.get_customer_by_email(t, "anna@example.com"),
    "list": lambda s, a, g, t, c: s.list_customers(t),
    "search": lambda s, a, g, t, c: s.search_customers(t, "anna"),
    "aliases": lambda s, a, g, t, c: s.list_aliases(t, c),
    "churn": lambda s, a, g, t, c: a.calculate_churn_risk(t, c),
    "clv": lambda s, a, g, t, c: a.predict_clv(t, c),
    "similar": lambda s, a, g, t, c: a.find_similar_customers(t, c),
    "recommendations": lambda s, a, g, t, c: a.generate_recommendations(t, c),
    "consent": lambda s, a, g, t, c: g.has_consent(t, c, "marketing"),
    "consent history": lambda s, a, g, t, c: g.get_consent_history(t, c),
    "audit events": lambda s, a, g, t, c: g.list_audit_events(t),
    "audit verification": lambda s, a, g, t, c: g.verify_audit_trail(t),
    "purge dry run": lambda s, a, g, t, c: g.purge_inactive(t, timedelta(days=1), chunk_size=1),
}


def _services(storage: InMemoryStorage) -> tuple[CustomerService, AIService, GDPRService]:
    clock, intelligence = FixedClock(), HeuristicIntelligence()
    return (
        CustomerService(storage.unit_of_work, clock, intelligence),
        AIService(storage.unit_of_work, clock, intelligence),
        GDPRService(storage.unit_of_work, clock),
    )


@pytest.mark.parametrize("name", READS)
async def test_each_read_opens_read_only_units_of_work_only(name: str) -> None:
    storage = RecordingStorage()
    service, ai, gdpr = _services(storage)
    tenant = new_tenant_id()
    anna = await service.create_customer(tenant, {"email": "anna@example.com"})
    await service.record_order(tenant, anna.id, {"order_id": "a-1", "total": 10})
    await ai.score_tenant(tenant)
    assert False in storage.opened  # the writes above opened ordinary ones
    storage.opened.clear()

    await READS[name](service, ai, gdpr, tenant, anna.id)

    assert storage.opened, "the read opened no unit of work"
    assert all(storage.opened), storage.opened


async def test_a_storage_without_the_keyword_serves_reads_and_writes() -> None:
    service, _, _ = _services(TenantOnlyStorage())
    tenant = new_tenant_id()
    anna = await service.create_customer(tenant, {"email": "anna@example.com"})

    assert (await service.get_customer(tenant, anna.id)).email == "anna@example.com"
