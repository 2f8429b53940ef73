from __future__ import annotations

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
    InvalidMerge,
    OrderConflict,
)
from linkbay_customers.domain import MAX_MONEY, AuditAction, Customer
from linkbay_customers.ports import Storage
from linkbay_customers.schemas import CustomerDataExport
from linkbay_customers.testing import FixedClock
from linkbay_customers_memory import InMemoryStorage
from tests.unit.test_profiling_consent import DERIVED

# The export shows every derived field but the embedding.
EXPORTED_DERIVED = tuple(name for name in DERIVED if not name.startswith("embedding"))
ORDER: dict[str, Any] = {
    "order_id": "A-1",
    "total": "99.99",
    "currency": "EUR",
    "items": [
        {"product_id": 1, "product_name": "Mug", "quantity": 2, "unit_price": "19.99"},
        {"product_id": "sku-2", "product_name": "Tea", "quantity": 1, "unit_price": "60.01"},
    ],
}


def _figures(customer: Customer) -> tuple[Any, ...]:
    return (
        customer.total_orders,
        customer.total_spent,
        customer.average_order_value,
        customer.first_order_at,
        customer.last_order_at,
        customer.currency,
    )


class TestRecordOrder:
    async def test_an_order_updates_every_analytic(
        self, service: CustomerService, tenant: str, customer: Customer, clock: FixedClock
    ) -> None:
        placed = clock.now() - timedelta(days=3)
        result = await service.record_order(tenant, customer.id, {**ORDER, "created_at": placed})
        assert result.created is True
        assert result.order.items[0].product_id == "1"
        assert _figures(result.customer) == (
            1,
            Decimal("99.99"),
            Decimal("99.99"),
            placed,
            placed,
            "EUR",
        )
        later = await service.record_order(
            tenant, customer.id, {"order_id": "A-2", "total": "0.02"}
        )
        assert _figures(later.customer) == (
            2,
            Decimal("100.01"),
            Decimal("50.005"),
            placed,
            clock.now(),
            "EUR",
        )
        assert await service.get_customer(tenant, customer.id) == later.customer

    async def test_an_older_order_arriving_late_moves_only_the_first_order_date(
        self, service: CustomerService, tenant: str, customer: Customer, clock: FixedClock
    ) -> None:
        await service.record_order(tenant, customer.id, {"order_id": "new", "total": 10})
        old = clock.now() - timedelta(days=100)
        result = await service.record_order(
            tenant, customer.id, {"order_id": "old", "total": 10, "created_at": old}
        )
        assert (result.customer.first_order_at, result.customer.last_order_at) == (
            old,
            clock.now(),
        )

    async def test_a_retried_order_changes_nothing(
        self,
        service: CustomerService,
        storage: Storage,
        tenant: str,
        customer: Customer,
        clock: FixedClock,
    ) -> None:
        first = await service.record_order(tenant, customer.id, ORDER)
        clock.advance(minutes=3)
        retry = await service.record_order(tenant, customer.id, ORDER)
        assert retry.created is False
        assert retry.order == first.order
        stored = await service.get_customer(tenant, customer.id)
        assert _figures(stored) == _figures(first.customer)
        assert stored.updated_at == first.customer.updated_at
        assert (await service.list_orders(tenant, customer.id)).total == 1
        async with storage.unit_of_work(tenant) as uow:
            actions = [e.action.value for e in (await uow.audit.list()).items]
        assert actions.count("order.recorded") == 1

    async def test_a_reused_order_id_with_other_content_is_a_conflict(
        self, service: CustomerService, tenant: str, customer: Customer
    ) -> None:
        await service.record_order(tenant, customer.id, ORDER)
        with pytest.raises(OrderConflict) as caught:
            await service.record_order(tenant, customer.id, {**ORDER, "total": "1.00"})
        assert caught.value.field == "order_id"
        other = await service.create_customer(tenant, {"email": "other@example.com"})
        with pytest.raises(OrderConflict):
            await service.record_order(tenant, other.id, ORDER)
        assert (await service.get_customer(tenant, other.id)).total_orders == 0

    async def test_the_seed_name_records_the_order(
        self, service: CustomerService, tenant: str, customer: Customer
    ) -> None:
        await service.update_customer_analytics(
            tenant, customer.id, {"order_id": "S-1", "total": 149.99}
        )
        await service.update_customer_analytics(
            tenant, customer.id, {"order_id": "S-1", "total": 149.99}
        )
        stored = await service.get_customer(tenant, customer.id)
        assert (stored.total_orders, stored.total_spent) == (1, Decimal("149.99"))
        with pytest.raises(InvalidInput) as caught:
            await service.update_customer_analytics(tenant, customer.id, {"total": 5})
        assert caught.value.field == "order_id"

    async def test_a_currency_other_than_earlier_orders_is_refused(
        self, service: CustomerService, tenant: str, customer: Customer
    ) -> None:
        await service.record_order(
            tenant, customer.id, {"order_id": "1", "total": 5, "currency": "usd"}
        )
        with pytest.raises(InvalidInput) as caught:
            await service.record_order(
                tenant, customer.id, {"order_id": "2", "total": 5, "currency": "EUR"}
            )
        assert caught.value.field == "currency"
        third = await service.record_order(tenant, customer.id, {"order_id": "3", "total": 5})
        assert third.order.currency == "USD"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"total": "-1"}, "total"),
            ({"total": "1.00001"}, "total"),
            ({"total": "NaN"}, "total"),
            ({"currency": "EURO"}, "currency"),
            ({"order_id": ""}, "order_id"),
            ({"created_at": "2024-01-01T00:00:00"}, "created_at"),
            (
                {
                    "items": [
                        {"product_id": "p", "product_name": "x", "quantity": 0, "unit_price": 1}
                    ]
                },
                "items.0.quantity",
            ),
        ],
    )
    async def test_invalid_orders_name_the_field_and_change_nothing(
        self,
        service: CustomerService,
        tenant: str,
        customer: Customer,
        change: dict[str, Any],
        field: str,
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.record_order(tenant, customer.id, {**ORDER, **change})
        assert caught.value.field == field
        assert (await service.get_customer(tenant, customer.id)).total_orders == 0

    async def test_orders_beyond_the_largest_storable_total_are_refused(
        self, service: CustomerService, tenant: str, customer: Customer
    ) -> None:
        largest = {**ORDER, "total": "1e13", "items": []}
        for n in range(9):
            await service.record_order(tenant, customer.id, {**largest, "order_id": f"B-{n}"})
        last = await service.record_order(
            tenant, customer.id, {**largest, "order_id": "B-9", "total": "9999999999999.9999"}
        )
        assert last.customer.total_spent == MAX_MONEY
        before = await service.get_customer(tenant, customer.id)
        with pytest.raises(InvalidInput) as caught:
            await service.record_order(tenant, customer.id, {**ORDER, "order_id": "B-10"})
        assert caught.value.field == "total"
        assert await service.get_customer(tenant, customer.id) == before
        assert len((await service.list_orders(tenant, customer.id)).items) == 10

    async def test_an_order_dated_in_the_future_is_refused(
        self, service: CustomerService, tenant: str, customer: Customer, clock: FixedClock
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.record_order(
                tenant, customer.id, {**ORDER, "created_at": clock.now() + timedelta(hours=1)}
            )
        assert caught.value.field == "created_at"

    async def test_orders_list_newest_first(
        self, service: CustomerService, tenant: str, customer: Customer, clock: FixedClock
    ) -> None:
        for i in range(3):
            await service.record_order(
                tenant,
                customer.id,
                {
                    "order_id": f"o{i}",
                    "total": 1,
                    "created_at": clock.now() - timedelta(days=3 - i),
                },
            )
        page = await service.list_orders(tenant, customer.id, page=1, page_size=2)
        assert [o.order_id for o in page.items] == ["o2", "o1"]
        assert page.total == 3

    async def test_an_unknown_customer_is_not_found(
        self, service: CustomerService, tenant: str
    ) -> None:
        with pytest.raises(CustomerNotFound):
            await service.record_order(tenant, 999, ORDER)
        with pytest.raises(CustomerNotFound):
            await service.list_orders(tenant, 999)


class TestMerge:
    async def _pair(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> tuple[Customer, Customer]:
        source = await service.create_customer(
            tenant,
            {
                "email": "dup@example.com",
                "tags": ["a", "b"],
                "preferences": {"language": "it", "ui": {"theme": "dark"}},
            },
        )
        target = await service.create_customer(
            tenant,
            {"email": "keep@example.com", "tags": ["b", "c"], "preferences": {"language": "en"}},
        )
        old = clock.now() - timedelta(days=50)
        await service.record_order(
            tenant, source.id, {"order_id": "s1", "total": "30", "created_at": old}
        )
        await service.record_order(tenant, target.id, {"order_id": "t1", "total": "10"})
        await service.add_address(
            tenant,
            source.id,
            {
                "type": "shipping",
                "address_line1": "Via A",
                "city": "Roma",
                "postal_code": "1",
                "country": "IT",
                "is_default": True,
            },
        )
        await service.add_address(
            tenant,
            target.id,
            {
                "type": "shipping",
                "address_line1": "Via B",
                "city": "Roma",
                "postal_code": "1",
                "country": "IT",
                "is_default": True,
            },
        )
        await service.add_note(tenant, source.id, {"note": "from source"})
        return source, target

    async def test_merge_moves_orders_analytics_addresses_notes_and_tags(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        merged = await service.merge_customers(
            tenant,
            {
                "source_customer_id": source.id,
                "target_customer_id": target.id,
                "merge_preferences": True,
            },
        )
        assert merged.id == target.id
        assert (merged.total_orders, merged.total_spent, merged.average_order_value) == (
            2,
            Decimal("40"),
            Decimal("20"),
        )
        assert merged.first_order_at == clock.now() - timedelta(days=50)
        assert merged.tags == ["b", "c", "a"]
        assert merged.preferences == {"language": "en", "ui": {"theme": "dark"}}
        orders = await service.list_orders(tenant, target.id)
        assert sorted(o.order_id for o in orders.items) == ["s1", "t1"]
        addresses = (await service.list_addresses(tenant, target.id)).items
        assert [(a.address_line1, a.is_default) for a in addresses] == [
            ("Via A", False),
            ("Via B", True),
        ]
        assert [n.note for n in (await service.list_notes(tenant, target.id)).items] == [
            "from source"
        ]
        gone = await service.get_customer(tenant, source.id, include_deleted=True)
        assert gone.id == target.id  # the source id now resolves to the target
        assert [a.alias_id for a in await service.list_aliases(tenant, target.id)] == [source.id]

    async def test_the_merged_away_customer_keeps_no_derived_data(
        self,
        storage: Storage,
        service: CustomerService,
        ai: AIService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        await ai.score_tenant(tenant)
        scored = await service.get_customer(tenant, source.id)
        assert scored.segment == "active"
        assert None not in [getattr(scored, name) for name in DERIVED]

        await service.merge_customers(
            tenant, {"source_customer_id": source.id, "target_customer_id": target.id}
        )

        export = await gdpr.export_customer_data(tenant, target.id)
        document = CustomerDataExport.of(export).model_dump(mode="json")
        (merged,) = document["merged_customers"]
        assert merged["id"] == source.id
        assert merged["total_orders"] == 0
        assert [merged[name] for name in EXPORTED_DERIVED] == [None] * 5
        async with storage.unit_of_work(tenant) as uow:
            stored = await uow.customers.get(source.id, include_deleted=True)
        assert stored is not None
        assert {name: getattr(stored, name) for name in DERIVED} == dict.fromkeys(DERIVED)
        assert document["customer"]["segment"] is not None  # the target's is recomputed
        merged_into = [
            e for e in export.audit_trail if e.action is AuditAction.CUSTOMER_MERGED_INTO
        ]
        assert set(merged_into[0].changed_fields) == {"deleted_at", *DERIVED}

    async def test_merge_options_off_leave_addresses_notes_tags_and_preferences(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        merged = await service.merge_customers(
            tenant,
            {
                "source_customer_id": source.id,
                "target_customer_id": target.id,
                "merge_addresses": False,
                "merge_notes": False,
                "merge_tags": False,
            },
        )
        assert merged.tags == ["b", "c"]
        assert merged.preferences == {"language": "en"}
        assert len((await service.list_addresses(tenant, target.id)).items) == 1
        assert (await service.list_notes(tenant, target.id)).items == []
        assert merged.total_orders == 2  # orders always move

    async def test_the_source_id_resolves_to_the_target_everywhere(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        await service.merge_customers(
            tenant, {"source_customer_id": source.id, "target_customer_id": target.id}
        )
        assert (await service.get_customer(tenant, source.id)).id == target.id
        result = await service.record_order(
            tenant, source.id, {"order_id": "via-alias", "total": 1}
        )
        assert result.customer.id == target.id
        # A retried order sent to the old id is still a retry.
        again = await service.record_order(tenant, source.id, {"order_id": "s1", "total": "30"})
        assert again.created is False

    async def test_a_retried_merge_changes_nothing(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        request = {"source_customer_id": source.id, "target_customer_id": target.id}
        first = await service.merge_customers(tenant, request)
        clock.advance(minutes=1)
        again = await service.merge_customers(tenant, request)
        assert again == first
        assert await service.get_customer(tenant, target.id) == first

    async def test_merging_into_a_merged_customer_follows_the_alias(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        a, b = await self._pair(service, tenant, clock)
        c = await service.create_customer(tenant, {"email": "third@example.com"})
        await service.merge_customers(
            tenant, {"source_customer_id": a.id, "target_customer_id": b.id}
        )
        await service.merge_customers(
            tenant, {"source_customer_id": b.id, "target_customer_id": c.id}
        )
        assert (await service.get_customer(tenant, a.id)).id == c.id
        final = await service.get_customer(tenant, c.id)
        assert final.total_orders == 2
        assert {x.alias_id for x in await service.list_aliases(tenant, c.id)} == {a.id, b.id}

    async def test_self_merge_deleted_and_unknown_customers_are_refused(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        with pytest.raises(InvalidMerge) as caught:
            await service.merge_customers(
                tenant, {"source_customer_id": source.id, "target_customer_id": source.id}
            )
        assert caught.value.code == "invalid_merge"
        with pytest.raises(CustomerNotFound) as not_found:
            await service.merge_customers(
                tenant, {"source_customer_id": 999, "target_customer_id": target.id}
            )
        assert not_found.value.field == "source_customer_id"
        with pytest.raises(CustomerNotFound) as not_found:
            await service.merge_customers(
                tenant, {"source_customer_id": source.id, "target_customer_id": 999}
            )
        assert not_found.value.field == "target_customer_id"
        await service.delete_customer(tenant, source.id)
        with pytest.raises(InvalidMerge) as caught:
            await service.merge_customers(
                tenant, {"source_customer_id": source.id, "target_customer_id": target.id}
            )
        assert caught.value.field == "source_customer_id"
        with pytest.raises(InvalidMerge) as caught:
            await service.merge_customers(
                tenant, {"source_customer_id": target.id, "target_customer_id": source.id}
            )
        assert caught.value.field == "target_customer_id"
        assert (await service.get_customer(tenant, target.id)).total_orders == 1

    async def test_customers_with_orders_in_different_currencies_cannot_merge(
        self, service: CustomerService, tenant: str
    ) -> None:
        eur = await service.create_customer(tenant, {"email": "eur@example.com"})
        usd = await service.create_customer(tenant, {"email": "usd@example.com"})
        await service.record_order(tenant, eur.id, {"order_id": "e", "total": 1, "currency": "EUR"})
        await service.record_order(tenant, usd.id, {"order_id": "u", "total": 1, "currency": "USD"})
        with pytest.raises(InvalidMerge):
            await service.merge_customers(
                tenant, {"source_customer_id": eur.id, "target_customer_id": usd.id}
            )
        assert (await service.get_customer(tenant, eur.id)).total_orders == 1

    async def test_hard_deleting_the_target_removes_the_merged_customers_too(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        source, target = await self._pair(service, tenant, clock)
        await service.merge_customers(
            tenant, {"source_customer_id": source.id, "target_customer_id": target.id}
        )
        await service.delete_customer(tenant, target.id, soft_delete=False)
        for customer_id in (source.id, target.id):
            with pytest.raises(CustomerNotFound):
                await service.get_customer(tenant, customer_id, include_deleted=True)
        again = await service.create_customer(tenant, {"email": "dup@example.com"})
        assert again.id not in (source.id, target.id)


def test_a_default_currency_that_is_no_iso_4217_code_is_refused_when_configured() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        CustomerService(
            InMemoryStorage().unit_of_work,
            FixedClock(),
            HeuristicIntelligence(),
            default_currency="EURO",
        )
