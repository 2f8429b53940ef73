from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from linkbay_customers import (
    CustomerNotFound,
    CustomerService,
    DuplicateEmail,
    InvalidInput,
)
from linkbay_customers.domain import AuditAction
from linkbay_customers.ports import Storage
from linkbay_customers.schemas import CustomerCreate, CustomerSearchFilters, CustomerUpdate
from linkbay_customers.testing import FixedClock


async def _audit_actions(storage: Storage, tenant: str, customer_id: int) -> list[str]:
    async with storage.unit_of_work(tenant) as uow:
        page = await uow.audit.list(customer_id=customer_id)
    return [e.action.value for e in page.items]


class TestCreate:
    async def test_creates_a_customer_with_normalized_fields(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        customer = await service.create_customer(
            tenant,
            CustomerCreate(
                email="Mario.Rossi@Example.COM",
                first_name=" Mario ",
                last_name="Rossi",
                phone="+39 333 123-4567",
                birthday=date(1990, 5, 15),
                gender="male",
                preferences={"language": "it", "newsletter_subscribed": True},
                tags=["vip", "early_adopter", "vip"],
            ),
            actor="user-7",
        )
        assert customer.id > 0
        assert customer.tenant_id == tenant
        assert customer.email == "mario.rossi@example.com"
        assert customer.first_name == "Mario"
        assert customer.phone == "+393331234567"
        assert customer.tags == ["vip", "early_adopter"]
        assert customer.segment == "new"
        assert customer.total_orders == 0
        assert customer.total_spent == Decimal(0)
        assert customer.created_at == customer.updated_at == clock.now()
        assert await service.get_customer(tenant, customer.id) == customer

    async def test_a_customer_from_another_system_keeps_the_time_it_signed_up(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        signed_up = clock.now() - timedelta(days=900)
        customer = await service.create_customer(
            tenant, {"email": "old@example.com", "created_at": signed_up.isoformat()}
        )
        assert customer.created_at == signed_up
        assert customer.updated_at == clock.now()
        assert (await service.get_customer(tenant, customer.id)).created_at == signed_up

    @pytest.mark.parametrize("created_at", ["2999-01-01T00:00:00+00:00", "2020-01-01T00:00:00"])
    async def test_a_sign_up_in_the_future_or_without_a_timezone_is_refused(
        self, service: CustomerService, tenant: str, created_at: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.create_customer(
                tenant, {"email": "x@example.com", "created_at": created_at}
            )
        assert caught.value.field == "created_at"
        assert (await service.list_customers(tenant)).total == 0

    async def test_accepts_a_plain_mapping(self, service: CustomerService, tenant: str) -> None:
        customer = await service.create_customer(tenant, {"email": "map@example.com"})
        assert customer.email == "map@example.com"

    async def test_audits_the_creation_with_field_names_only(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        customer = await service.create_customer(
            tenant, {"email": "a@example.com", "first_name": "Ada"}, actor="admin"
        )
        async with storage.unit_of_work(tenant) as uow:
            (event,) = (await uow.audit.list(customer_id=customer.id)).items
        assert event.action is AuditAction.CUSTOMER_CREATED
        assert event.actor == "admin"
        assert event.changed_fields == ("email", "first_name")
        assert "Ada" not in repr(event.details)
        assert "a@example.com" not in repr(event.details)

    async def test_a_duplicate_email_in_the_tenant_is_refused(
        self, service: CustomerService, tenant: str
    ) -> None:
        await service.create_customer(tenant, {"email": "dup@example.com"})
        with pytest.raises(DuplicateEmail) as caught:
            await service.create_customer(tenant, {"email": "DUP@example.com"})
        assert caught.value.field == "email"
        assert caught.value.existing_is_deleted is False

    async def test_the_same_email_in_another_tenant_is_fine(
        self, service: CustomerService, tenant: str, other_tenant: str
    ) -> None:
        a = await service.create_customer(tenant, {"email": "same@example.com"})
        b = await service.create_customer(other_tenant, {"email": "same@example.com"})
        # Each tenant counts its own ids: the same id names two customers.
        assert await service.get_customer(tenant, a.id) == a
        assert await service.get_customer(other_tenant, b.id) == b
        assert (a.id, b.id) == (1, 1)

    async def test_the_email_of_a_soft_deleted_customer_stays_reserved_for_a_restore(
        self, service: CustomerService, tenant: str
    ) -> None:
        old = await service.create_customer(tenant, {"email": "back@example.com"})
        await service.delete_customer(tenant, old.id)
        with pytest.raises(DuplicateEmail) as caught:
            await service.create_customer(tenant, {"email": "back@example.com"})
        assert caught.value.existing_is_deleted is True
        restored = await service.restore_customer(tenant, old.id)
        assert restored.id == old.id

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({}, "email"),
            ({"email": "a@example.com", "phone": "call me"}, "phone"),
            ({"email": "a@example.com", "birthday": "1850-01-01"}, "birthday"),
            ({"email": "a@example.com", "tags": ["x" * 65]}, "tags.0"),
            ({"email": "a@example.com", "preferences": {"k": "\x00"}}, "preferences"),
            ({"email": "a@example.com", "first_name": "x" * 101}, "first_name"),
            ({"email": "a@example.com", "loyalty_points": 3}, "loyalty_points"),
        ],
    )
    async def test_invalid_input_names_the_field(
        self, service: CustomerService, tenant: str, data: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.create_customer(tenant, data)
        assert caught.value.field == field
        assert (await service.list_customers(tenant)).total == 0

    async def test_a_birthday_in_the_future_is_refused(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        tomorrow = clock.now().date() + timedelta(days=1)
        with pytest.raises(InvalidInput) as caught:
            await service.create_customer(tenant, {"email": "a@example.com", "birthday": tomorrow})
        assert caught.value.field == "birthday"

    @pytest.mark.parametrize("tenant_id", ["", " ", "a b", "x" * 65, "tab\t", None, 7])
    async def test_an_invalid_tenant_id_is_refused(
        self, service: CustomerService, tenant_id: Any
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.create_customer(tenant_id, {"email": "a@example.com"})
        assert caught.value.field == "tenant_id"


class TestGet:
    async def test_an_unknown_id_raises_not_found(
        self, service: CustomerService, tenant: str
    ) -> None:
        with pytest.raises(CustomerNotFound) as caught:
            await service.get_customer(tenant, 424242)
        assert caught.value.code == "customer_not_found"

    @pytest.mark.parametrize("bad_id", [0, -1, 2**63, True, "1"])
    async def test_an_impossible_id_is_simply_not_found(
        self, service: CustomerService, tenant: str, bad_id: Any
    ) -> None:
        with pytest.raises(CustomerNotFound):
            await service.get_customer(tenant, bad_id)

    async def test_a_soft_deleted_customer_is_found_only_when_asked(
        self, service: CustomerService, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        await service.delete_customer(tenant, customer.id)
        with pytest.raises(CustomerNotFound):
            await service.get_customer(tenant, customer.id)
        found = await service.get_customer(tenant, customer.id, include_deleted=True)
        assert found.deleted_at is not None

    async def test_documents_read_back_exactly_as_they_were_given(
        self, service: CustomerService, tenant: str
    ) -> None:
        preferences = {
            "beyond_64_bits": 2**64,
            "below_64_bits": -(2**63) - 1,
            "largest": 2**63 - 1,
            "ratio": 0.1,
            "tiny": 5e-324,
            "nested": {"ids": [2**70, 1, 2.5], "text": "\u00e9\u6f22"},
        }
        customer = await service.create_customer(
            tenant, {"email": "a@example.com", "preferences": preferences, "tags": ["vip"]}
        )
        read = await service.get_customer(tenant, customer.id)
        assert read.preferences == preferences
        assert type(read.preferences["beyond_64_bits"]) is int
        assert type(read.preferences["nested"]["ids"][0]) is int
        assert read.tags == ["vip"]

    async def test_get_by_email_ignores_case_and_deleted_customers(
        self, service: CustomerService, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "anna@example.com"})
        assert (await service.get_customer_by_email(tenant, " ANNA@example.com ")).id == customer.id
        await service.delete_customer(tenant, customer.id)
        with pytest.raises(CustomerNotFound) as caught:
            await service.get_customer_by_email(tenant, "anna@example.com")
        assert caught.value.field == "email"


class TestUpdate:
    async def test_only_the_fields_sent_change(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        customer = await service.create_customer(
            tenant,
            {
                "email": "a@example.com",
                "first_name": "Ada",
                "phone": "+39 06 1234 5678",
                "preferences": {"language": "it", "newsletter": True, "ui": {"theme": "dark"}},
                "tags": ["vip"],
            },
        )
        clock.advance(hours=1)
        updated = await service.update_customer(
            tenant,
            customer.id,
            CustomerUpdate(
                phone="+39 333 987 6543",
                preferences={"language": "en", "newsletter": None, "ui": {"size": "l"}},
            ),
        )
        assert updated.first_name == "Ada"
        assert updated.phone == "+393339876543"
        assert updated.preferences == {"language": "en", "ui": {"theme": "dark", "size": "l"}}
        assert updated.tags == ["vip"]
        assert updated.updated_at == clock.now()
        assert await service.get_customer(tenant, customer.id) == updated

    async def test_null_clears_an_optional_field_and_tags_are_replaced(
        self, service: CustomerService, tenant: str
    ) -> None:
        customer = await service.create_customer(
            tenant, {"email": "a@example.com", "first_name": "Ada", "tags": ["a", "b"]}
        )
        updated = await service.update_customer(
            tenant, customer.id, {"first_name": None, "tags": ["c"]}
        )
        assert updated.first_name is None
        assert updated.tags == ["c"]

    async def test_an_update_that_changes_nothing_writes_nothing(
        self,
        service: CustomerService,
        storage: Storage,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        customer = await service.create_customer(
            tenant, {"email": "a@example.com", "first_name": "A"}
        )
        clock.advance(hours=1)
        same = await service.update_customer(tenant, customer.id, {"first_name": "A"})
        assert same.updated_at == customer.updated_at
        assert await _audit_actions(storage, tenant, customer.id) == ["customer.created"]

    async def test_the_change_is_audited_by_field_name(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        await service.update_customer(
            tenant, customer.id, {"last_name": "Lovelace", "gender": "female"}, actor="u1"
        )
        async with storage.unit_of_work(tenant) as uow:
            events = (await uow.audit.list(customer_id=customer.id)).items
        assert events[-1].action is AuditAction.CUSTOMER_UPDATED
        assert events[-1].changed_fields == ("gender", "last_name")
        assert "Lovelace" not in repr(events[-1])

    async def test_changing_to_a_taken_email_is_refused_and_nothing_changes(
        self, service: CustomerService, tenant: str
    ) -> None:
        await service.create_customer(tenant, {"email": "taken@example.com"})
        customer = await service.create_customer(tenant, {"email": "mine@example.com"})
        with pytest.raises(DuplicateEmail):
            await service.update_customer(
                tenant, customer.id, {"email": "taken@example.com", "first_name": "X"}
            )
        assert await service.get_customer(tenant, customer.id) == customer

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"email": None}, "email"),
            ({"email": "nope"}, "email"),
            ({"tags": "vip"}, "tags"),
            ({"id": 5}, "id"),
            ({"total_spent": 5}, "total_spent"),
        ],
    )
    async def test_invalid_input_names_the_field(
        self, service: CustomerService, tenant: str, data: dict[str, Any], field: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        with pytest.raises(InvalidInput) as caught:
            await service.update_customer(tenant, customer.id, data)
        assert caught.value.field == field

    async def test_a_deleted_customer_cannot_be_updated(
        self, service: CustomerService, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        await service.delete_customer(tenant, customer.id)
        with pytest.raises(CustomerNotFound):
            await service.update_customer(tenant, customer.id, {"first_name": "Z"})


class TestDeleteAndRestore:
    async def test_soft_delete_then_restore(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        assert await service.delete_customer(tenant, customer.id) is True
        assert await service.delete_customer(tenant, customer.id) is True  # idempotent
        assert (await service.list_customers(tenant)).total == 0
        restored = await service.restore_customer(tenant, customer.id)
        assert restored.deleted_at is None
        assert (await service.list_customers(tenant)).total == 1
        assert await _audit_actions(storage, tenant, customer.id) == [
            "customer.created",
            "customer.deleted",
            "customer.restored",
        ]

    async def test_restoring_a_live_customer_changes_nothing(
        self, service: CustomerService, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        assert await service.restore_customer(tenant, customer.id) == customer

    async def test_hard_delete_removes_the_customer_and_everything_about_it(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        customer = await service.create_customer(tenant, {"email": "a@example.com"})
        await service.add_address(
            tenant,
            customer.id,
            {
                "type": "billing",
                "address_line1": "x",
                "city": "y",
                "postal_code": "1",
                "country": "IT",
            },
        )
        await service.add_note(tenant, customer.id, {"note": "hello"})
        await service.record_order(tenant, customer.id, {"order_id": "o-1", "total": 5})
        assert await service.delete_customer(tenant, customer.id, soft_delete=False) is True
        with pytest.raises(CustomerNotFound):
            await service.get_customer(tenant, customer.id, include_deleted=True)
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.addresses.list_for_customer(customer.id) == []
            assert await uow.notes.list_for_customer(customer.id) == []
            assert await uow.orders.get_by_order_id("o-1") is None
        # The email is free again.
        again = await service.create_customer(tenant, {"email": "a@example.com"})
        assert again.id != customer.id

    async def test_unknown_ids_raise_not_found(self, service: CustomerService, tenant: str) -> None:
        with pytest.raises(CustomerNotFound):
            await service.delete_customer(tenant, 999)
        with pytest.raises(CustomerNotFound):
            await service.delete_customer(tenant, 999, soft_delete=False)
        with pytest.raises(CustomerNotFound):
            await service.restore_customer(tenant, 999)


class TestListAndSearch:
    async def _seed(self, service: CustomerService, tenant: str, clock: FixedClock) -> list[int]:
        ids = []
        for i, (email, tags) in enumerate(
            [
                ("mario@gmail.com", ["vip"]),
                ("luigi@gmail.com", ["vip", "newsletter"]),
                ("peach@castle.org", ["newsletter"]),
            ]
        ):
            clock.advance(minutes=1)
            customer = await service.create_customer(tenant, {"email": email, "tags": tags})
            await service.record_order(
                tenant, customer.id, {"order_id": f"o{i}", "total": Decimal(500) * (i + 1)}
            )
            ids.append(customer.id)
        return ids

    async def test_filters_pages_and_totals(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        mario, luigi, peach = await self._seed(service, tenant, clock)
        page = await service.list_customers(
            tenant,
            CustomerSearchFilters(min_total_spent=Decimal(1000), tags=["vip"]),
            page=1,
            page_size=50,
        )
        assert [c.id for c in page.items] == [luigi]
        page = await service.list_customers(
            tenant, {"tags": ["vip", "newsletter"], "tags_match": "all"}
        )
        assert [c.id for c in page.items] == [luigi]
        page = await service.list_customers(tenant, {"email_contains": "GMAIL"}, page_size=1)
        assert (page.total, page.total_pages, [c.id for c in page.items]) == (2, 2, [luigi])
        page = await service.list_customers(tenant, {"sort": "total_spent"})
        assert [c.id for c in page.items] == [mario, luigi, peach]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"page_size": 101}, "page_size"),
            ({"page_size": 0}, "page_size"),
            ({"page": 0}, "page"),
            ({"filters": {"min_total_spent": -1}}, "min_total_spent"),
            ({"filters": {"min_total_spent": 10, "max_total_spent": 5}}, "max_total_spent"),
            ({"filters": {"created_after": "2024-01-01T00:00:00"}}, "created_after"),
            ({"filters": {"sort": "email"}}, "sort"),
            ({"filters": {"tags_match": "some"}}, "tags_match"),
        ],
    )
    async def test_invalid_listing_input_names_the_field(
        self, service: CustomerService, tenant: str, kwargs: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.list_customers(tenant, **kwargs)
        assert caught.value.field == field

    async def test_search_finds_by_name_email_and_phone(
        self, service: CustomerService, tenant: str
    ) -> None:
        a = await service.create_customer(
            tenant,
            {"email": "mario.rossi@example.com", "first_name": "Mario", "last_name": "Rossi"},
        )
        b = await service.create_customer(
            tenant, {"email": "x@example.com", "phone": "+39 02 1234"}
        )
        assert [c.id for c in await service.search_customers(tenant, "rossi")] == [a.id]
        assert [c.id for c in await service.search_customers(tenant, "021234")] == [b.id]
        assert [c.id for c in await service.search_customers(tenant, "mario rossi")] == [a.id]
        assert await service.search_customers(tenant, "nobody") == []

    @pytest.mark.parametrize(
        ("query", "limit", "field"),
        [
            ("", 10, "q"),
            ("   ", 10, "q"),
            ("x" * 101, 10, "q"),
            ("ok", 0, "limit"),
            ("ok", 101, "limit"),
        ],
    )
    async def test_invalid_search_input_names_the_field(
        self, service: CustomerService, tenant: str, query: str, limit: int, field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.search_customers(tenant, query, limit=limit)
        assert caught.value.field == field
