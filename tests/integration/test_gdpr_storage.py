"""Erasure and retention storage on SQL; on PostgreSQL, the append-only audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import OrderShipping
from linkbay_customers.testing import (
    T0,
    FixedClock,
    add_address,
    add_consent_event,
    add_customer,
    add_note,
    add_order,
    new_tenant_id,
)
from linkbay_customers_sqlalchemy import (
    SqlAlchemyStorage,
)
from linkbay_customers_sqlalchemy._repositories._postgresql import COPY_MIN_ROWS

CUTOFF = T0 + timedelta(days=30)
SHIPPING = OrderShipping(recipient_name="Mario Rossi", city="Milano", country="IT")


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(database_url)
    yield storage
    await storage.close()


# ------------------------------------------------------------------- retention


async def test_inactive_customers_are_listed_by_id_in_keyset_chunks(
    storage: SqlAlchemyStorage, tenant: str, other_tenant: str
) -> None:
    old, recent = T0, CUTOFF + timedelta(days=1)
    async with storage.unit_of_work(other_tenant) as uow:
        await add_customer(uow)
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        idle = await add_customer(uow)
        deleted = await add_customer(uow, deleted_at=old)
        ordered_long_ago = await add_customer(uow, last_order_at=old)
        await add_customer(uow, updated_at=recent)
        await add_customer(uow, last_order_at=recent)
        await add_customer(uow, is_anonymized=True, email=None, deleted_at=old)
        await add_customer(uow, updated_at=CUTOFF)  # not before the cutoff
        last = await add_customer(uow)
        await uow.commit()
    expected = [idle.id, deleted.id, ordered_long_ago.id, last.id]
    async with storage.unit_of_work(tenant) as uow:
        everyone = await uow.customers.list_inactive(CUTOFF, after_id=0, limit=100)
        first = await uow.customers.list_inactive(CUTOFF, after_id=0, limit=2)
        rest = await uow.customers.list_inactive(CUTOFF, after_id=first[-1].id, limit=2)
        after_last = await uow.customers.list_inactive(CUTOFF, after_id=last.id, limit=2)
    assert [c.id for c in everyone] == expected
    assert everyone[1] == deleted
    assert [c.id for c in [*first, *rest]] == expected
    assert after_last == []


# --------------------------------------------------------- erasure, table by table


async def test_deleting_for_customers_removes_their_rows_only(
    storage: SqlAlchemyStorage, tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        one, two, kept = [await add_customer(uow) for _ in range(3)]
        for customer in (one, two, kept):
            await add_address(uow, customer.id)
            await add_note(uow, customer.id)
            await add_order(uow, customer.id)
            await add_consent_event(uow, customer.id)
        await add_address(uow, one.id, is_default=True)
        ids = [one.id, two.id]
        assert await uow.addresses.delete_for_customers(ids) == 3
        assert await uow.notes.delete_for_customers(ids) == 2
        assert await uow.orders.delete_for_customers(ids) == 2
        assert await uow.consents.delete_for_customers(ids) == 2
        for repository in (uow.addresses, uow.notes, uow.orders, uow.consents):
            assert await repository.delete_for_customers([]) == 0
        for gone in ids:
            assert await uow.addresses.list_for_customer(gone) == []
            assert await uow.notes.list_for_customer(gone) == []
            assert (await uow.orders.list_for_customer(gone, page=1, page_size=10)).total == 0
            assert await uow.consents.list_for_customer(gone) == []
        assert len(await uow.addresses.list_for_customer(kept.id)) == 1
        assert len(await uow.notes.list_for_customer(kept.id)) == 1
        assert (await uow.orders.list_for_customer(kept.id, page=1, page_size=10)).total == 1
        assert len(await uow.consents.list_for_customer(kept.id)) == 1
        # The order lines went with their orders: the customers can now be removed.
        for gone in ids:
            await uow.customers.delete(gone)
        await uow.commit()


async def test_scrubbing_for_customers_removes_personal_values_once(
    storage: SqlAlchemyStorage, tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        one, two, kept = [await add_customer(uow) for _ in range(3)]
        for customer in (one, two, kept):
            await add_note(uow, customer.id)
            await add_order(uow, customer.id, shipping=SHIPPING)
            await add_consent_event(uow, customer.id, ip_address="192.0.2.1", user_agent="curl/8")
        plain = await add_order(uow, one.id)  # no shipping, but named lines
        bare = await add_order(uow, one.id, items=())  # nothing to scrub
        await add_consent_event(uow, two.id, source="web")  # neither IP nor agent
        await add_consent_event(uow, two.id)  # nothing to scrub
        ids = [one.id, two.id]
        counts = [
            await uow.notes.scrub_for_customers(ids),
            await uow.orders.scrub_for_customers(ids),
            await uow.consents.scrub_for_customers(ids),
        ]
        again = [
            await uow.notes.scrub_for_customers(ids),
            await uow.orders.scrub_for_customers(ids),
            await uow.consents.scrub_for_customers(ids),
        ]
        none = [
            await repository.scrub_for_customers([])
            for repository in (uow.notes, uow.orders, uow.consents)
        ]
        await uow.commit()
    assert counts == [2, 3, 3]
    assert again == none == [0, 0, 0]
    async with storage.unit_of_work(tenant) as uow:
        for customer_id in ids:
            assert [n.note for n in await uow.notes.list_for_customer(customer_id)] == [""]
            orders = (await uow.orders.list_for_customer(customer_id, page=1, page_size=10)).items
            assert orders
            assert all(o.shipping is None for o in orders)
            assert all(o.items for o in orders if o.id != bare.id), "the order lines stay"
            assert {i.product_name for o in orders for i in o.items} == {""}
            events = await uow.consents.list_for_customer(customer_id)
            assert {(e.source, e.ip_address, e.user_agent) for e in events} == {(None, None, None)}
        assert await uow.orders.get_by_order_id(bare.order_id) == bare
        scrubbed_plain = await uow.orders.get_by_order_id(plain.order_id)
        assert scrubbed_plain is not None
        assert [i.product_id for i in scrubbed_plain.items] == [i.product_id for i in plain.items]
        assert [n.note for n in await uow.notes.list_for_customer(kept.id)] != [""]
        kept_order = (await uow.orders.list_for_customer(kept.id, page=1, page_size=1)).items
        assert kept_order[0].shipping == SHIPPING
        assert [i.product_name for i in kept_order[0].items] == ["Mug", "Tea"]
        (kept_consent,) = await uow.consents.list_for_customer(kept.id)
        assert kept_consent.ip_address == "192.0.2.1"


async def test_erasure_reaches_no_row_of_another_tenant(
    storage: SqlAlchemyStorage, tenant: str, other_tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        customer = await add_customer(uow)
        await add_address(uow, customer.id)
        await add_note(uow, customer.id)
        await add_order(uow, customer.id, shipping=SHIPPING)
        await add_consent_event(uow, customer.id, ip_address="192.0.2.1")
        await uow.commit()
    async with storage.unit_of_work(other_tenant) as uow:
        ids = [customer.id]
        assert await uow.customers.list_inactive(CUTOFF, after_id=0, limit=10) == []
        for repository in (uow.notes, uow.orders, uow.consents):
            assert await repository.scrub_for_customers(ids) == 0
        for repository in (uow.addresses, uow.notes, uow.orders, uow.consents):
            assert await repository.delete_for_customers(ids) == 0
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        assert len(await uow.addresses.list_for_customer(customer.id)) == 1
        assert [n.note for n in await uow.notes.list_for_customer(customer.id)] != [""]
        (order,) = (await uow.orders.list_for_customer(customer.id, page=1, page_size=1)).items
        assert order.shipping == SHIPPING
        assert (await uow.consents.list_for_customer(customer.id))[0].ip_address == "192.0.2.1"


# ---------------------------------------------------- PostgreSQL: the application role


async def test_bulk_writes_fall_back_to_insert_when_row_level_security_refuses_copy(
    app_storage: SqlAlchemyStorage,
) -> None:
    service = CustomerService(app_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = new_tenant_id()
    # Enough rows for COPY to be tried (fewer are inserted anyway), twice: once
    # refused, then not tried again.
    for start in (0, COPY_MIN_ROWS):
        rows = [{"email": f"c{n}@example.com"} for n in range(start, start + COPY_MIN_ROWS)]
        assert (await service.import_customers(tenant, rows)).created == COPY_MIN_ROWS
    assert (await service.list_customers(tenant)).total == 2 * COPY_MIN_ROWS
    gdpr = GDPRService(app_storage.unit_of_work, FixedClock())
    assert (await gdpr.list_audit_events(tenant)).total == 2 * COPY_MIN_ROWS
    assert (await gdpr.verify_audit_trail(tenant)).intact
    assert app_storage.postgresql is not None
    assert app_storage.postgresql.copy_refused >= {"customers", "customer_audit_events"}
