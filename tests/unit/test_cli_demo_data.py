from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from linkbay_customers import CustomerService
from linkbay_customers.domain import Segment
from linkbay_customers.testing import T0, FixedClock
from linkbay_customers_cli._demo import (
    CATALOGUE,
    DemoCustomer,
    demo_customers,
    fill_demo_tenant,
    segment_counts,
    tenant_is_empty,
)


@pytest.fixture(scope="module")
def people() -> list[DemoCustomer]:
    return demo_customers(200, seed=11, now=T0)


def test_the_same_seed_gives_the_same_customers(people: list[DemoCustomer]) -> None:
    assert demo_customers(200, seed=11, now=T0) == people
    other = demo_customers(200, seed=12, now=T0)
    assert [p.profile.email for p in other] != [p.profile.email for p in people]


def test_emails_and_order_ids_are_unique(people: list[DemoCustomer]) -> None:
    emails = [p.profile.email for p in people]
    order_ids = [o.order_id for p in people for o in p.orders]
    assert len(set(emails)) == len(emails)
    assert len(set(order_ids)) == len(order_ids)
    assert all(email.rsplit("@", 1)[1].startswith("example.") for email in emails)


def test_orders_are_in_the_past_in_one_currency_and_add_up(people: list[DemoCustomer]) -> None:
    prices = {product.product_id: product.unit_price for product in CATALOGUE}
    for person in people:
        for order in person.orders:
            assert order.created_at is not None
            assert order.created_at < T0
            assert order.currency == "EUR"
            assert order.items
            assert order.total == sum(
                (item.unit_price * item.quantity for item in order.items), Decimal(0)
            )
            assert all(item.unit_price == prices[item.product_id] for item in order.items)


def test_every_customer_signed_up_before_its_first_order(people: list[DemoCustomer]) -> None:
    for person in people:
        signed_up = person.profile.created_at
        assert signed_up is not None
        assert signed_up < T0
        first = min((o.created_at for o in person.orders if o.created_at), default=None)
        assert first is None or signed_up <= first
    browsers = [p.profile.created_at for p in people if not p.orders]
    assert any(T0 - signed_up > timedelta(days=365) for signed_up in browsers if signed_up)


def test_some_customers_are_gone_for_years(people: list[DemoCustomer]) -> None:
    last_orders = [max(o.created_at for o in p.orders if o.created_at) for p in people if p.orders]
    assert sum(1 for last in last_orders if T0 - last > timedelta(days=2 * 365)) >= 5


def test_recency_spend_and_repeat_buying_vary(people: list[DemoCustomer]) -> None:
    last_order_days = [
        (T0 - max(o.created_at for o in p.orders if o.created_at)).days for p in people if p.orders
    ]
    assert sum(1 for p in people if not p.orders) >= 5
    assert sum(1 for days in last_order_days if days <= 30) >= 20
    assert sum(1 for days in last_order_days if 100 <= days <= 400) >= 40
    spend = sorted(sum((o.total for o in p.orders), Decimal(0)) for p in people)
    assert spend[-1] > 5 * spend[len(spend) // 2]  # a heavy tail
    repeat_buyers = [
        p
        for p in people
        if any(n > 1 for n in Counter(i.product_id for o in p.orders for i in o.items).values())
    ]
    assert len(repeat_buyers) >= len(people) // 3


async def test_filling_a_tenant_shows_every_segment(
    service: CustomerService, clock: FixedClock, tenant: str
) -> None:
    assert await tenant_is_empty(service, tenant)
    summary = await fill_demo_tenant(service, tenant, now=clock.now(), customers=200, seed=11)
    assert not await tenant_is_empty(service, tenant)
    assert summary.customers == 200
    assert summary.orders > 400
    assert summary.order_lines > summary.orders
    counts = await segment_counts(service, tenant)
    assert set(counts) == {s.value for s in Segment}
    assert all(count >= 5 for count in counts.values()), counts
    assert sum(counts.values()) == 200

    top = (await service.list_customers(tenant, {"sort": "-total_spent"}, page_size=5)).items
    assert top[0].total_spent > Decimal(1000)
    orders = await service.list_orders(tenant, top[0].id, page_size=100)
    assert orders.total == top[0].total_orders
    assert all(order.items for order in orders.items)
    assert (await service.list_addresses(tenant, top[0].id)).items


async def test_addresses_and_notes_are_written_as_generated(
    service: CustomerService, clock: FixedClock, tenant: str
) -> None:
    summary = await fill_demo_tenant(service, tenant, now=clock.now(), customers=30, seed=3)
    expected = demo_customers(30, seed=3, now=clock.now())
    assert summary.addresses == sum(len(p.addresses) for p in expected)
    assert summary.notes == sum(len(p.notes) for p in expected)
    noted = next(p for p in expected if p.notes and p.addresses)
    customer = await service.get_customer_by_email(tenant, noted.profile.email)
    assert [n.note for n in (await service.list_notes(tenant, customer.id)).items] == [
        n.note for n in noted.notes
    ]
    addresses = (await service.list_addresses(tenant, customer.id)).items
    assert [(a.type, a.city, a.is_default) for a in addresses] == [
        (a.type, a.city, a.is_default) for a in noted.addresses
    ]
    assert customer.last_order_at is None or clock.now() - customer.last_order_at > timedelta(0)
