from __future__ import annotations

from typing import Any

import pytest

from linkbay_customers import (
    AddressNotFound,
    CustomerNotFound,
    CustomerService,
    HeuristicIntelligence,
    InvalidInput,
    TooManyAddresses,
)
from linkbay_customers.domain import AddressType
from linkbay_customers.ports import Storage
from linkbay_customers.schemas import AddressCreate
from linkbay_customers.testing import FixedClock

MILANO: dict[str, Any] = {
    "type": "shipping",
    "address_line1": "Via Roma 123",
    "address_line2": "Interno 4",
    "city": "Milano",
    "state": "MI",
    "postal_code": "20100",
    "country": "it",
}


class TestAddresses:
    async def test_add_list_update_delete(
        self, service: CustomerService, tenant: str, customer_id: int, clock: FixedClock
    ) -> None:
        address = await service.add_address(tenant, customer_id, AddressCreate(**MILANO))
        assert address.country == "IT"
        assert address.type is AddressType.SHIPPING
        clock.advance(minutes=5)
        updated = await service.update_address(
            tenant, customer_id, address.id, {"city": "Roma", "postal_code": "00100"}
        )
        assert (updated.city, updated.postal_code, updated.address_line1) == (
            "Roma",
            "00100",
            "Via Roma 123",
        )
        assert updated.updated_at == clock.now()
        assert (await service.list_addresses(tenant, customer_id)).items == [updated]
        assert await service.delete_address(tenant, customer_id, address.id) is True
        assert (await service.list_addresses(tenant, customer_id)).items == []

    async def test_a_new_default_replaces_the_old_default_of_its_type_only(
        self, service: CustomerService, tenant: str, customer_id: int
    ) -> None:
        first = await service.add_address(tenant, customer_id, {**MILANO, "is_default": True})
        billing = await service.add_address(
            tenant, customer_id, {**MILANO, "type": "billing", "is_default": True}
        )
        second = await service.add_address(tenant, customer_id, {**MILANO, "is_default": True})
        defaults = {
            a.id: a.is_default for a in (await service.list_addresses(tenant, customer_id)).items
        }
        assert defaults == {first.id: False, billing.id: True, second.id: True}

    async def test_making_an_address_default_or_changing_its_type_keeps_one_default(
        self, service: CustomerService, tenant: str, customer_id: int
    ) -> None:
        shipping = await service.add_address(tenant, customer_id, {**MILANO, "is_default": True})
        billing = await service.add_address(
            tenant, customer_id, {**MILANO, "type": "billing", "is_default": True}
        )
        await service.update_address(tenant, customer_id, billing.id, {"type": "shipping"})
        defaults = {
            a.id: a.is_default for a in (await service.list_addresses(tenant, customer_id)).items
        }
        assert defaults == {shipping.id: False, billing.id: True}

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"country": "XX"}, "country"),
            ({"country": "ITA"}, "country"),
            ({"type": "home"}, "type"),
            ({"city": ""}, "city"),
            ({"postal_code": "1" * 21}, "postal_code"),
            ({"address_line1": None}, "address_line1"),
        ],
    )
    async def test_invalid_input_names_the_field(
        self,
        service: CustomerService,
        tenant: str,
        customer_id: int,
        change: dict[str, Any],
        field: str,
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.add_address(tenant, customer_id, {**MILANO, **change})
        assert caught.value.field == field
        address = await service.add_address(tenant, customer_id, MILANO)
        with pytest.raises(InvalidInput) as caught:
            await service.update_address(tenant, customer_id, address.id, change)
        assert caught.value.field == field
        assert (await service.list_addresses(tenant, customer_id)).items == [address]

    async def test_an_address_of_another_customer_is_not_found(
        self, service: CustomerService, tenant: str, customer_id: int
    ) -> None:
        other = await service.create_customer(tenant, {"email": "b@example.com"})
        address = await service.add_address(tenant, other.id, MILANO)
        with pytest.raises(AddressNotFound):
            await service.update_address(tenant, customer_id, address.id, {"city": "Roma"})
        with pytest.raises(AddressNotFound):
            await service.delete_address(tenant, customer_id, address.id)
        with pytest.raises(AddressNotFound):
            await service.delete_address(tenant, customer_id, 2**70)
        assert (await service.list_addresses(tenant, other.id)).items == [address]

    async def test_an_unknown_customer_is_not_found(
        self, service: CustomerService, tenant: str
    ) -> None:
        with pytest.raises(CustomerNotFound):
            await service.add_address(tenant, 999, MILANO)
        with pytest.raises(CustomerNotFound):
            await service.list_addresses(tenant, 999)


class TestNotes:
    async def test_notes_keep_their_author_and_order(
        self, service: CustomerService, tenant: str, customer_id: int, clock: FixedClock
    ) -> None:
        first = await service.add_note(tenant, customer_id, {"note": "called"}, actor="u1")
        clock.advance(minutes=1)
        second = await service.add_note(tenant, customer_id, {"note": "emailed"})
        assert (first.created_by, second.created_by) == ("u1", None)
        assert (await service.list_notes(tenant, customer_id)).items == [first, second]

    @pytest.mark.parametrize(
        ("note", "created_by", "field"),
        [("", "u1", "note"), ("x" * 10_001, "u1", "note"), ("ok", "", "created_by")],
    )
    async def test_invalid_input_names_the_field(
        self,
        service: CustomerService,
        tenant: str,
        customer_id: int,
        note: str,
        created_by: str,
        field: str,
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.add_note(tenant, customer_id, {"note": note}, actor=created_by)
        assert caught.value.field == field
        assert (await service.list_notes(tenant, customer_id)).items == []


class TestAddressLimit:
    async def test_the_limit_holds_on_adding_and_counts_what_is_stored(
        self, storage: Storage, tenant: str, customer_id: int, clock: FixedClock
    ) -> None:
        service = CustomerService(
            storage.unit_of_work, clock, HeuristicIntelligence(), max_addresses_per_customer=2
        )
        first = await service.add_address(tenant, customer_id, MILANO)
        await service.add_address(tenant, customer_id, {**MILANO, "type": "billing"})

        with pytest.raises(TooManyAddresses) as refused:
            await service.add_address(tenant, customer_id, MILANO)
        assert (refused.value.limit, refused.value.field) == (2, "customer_id")
        assert (await service.list_addresses(tenant, customer_id)).total == 2
        await service.delete_address(tenant, customer_id, first.id)
        await service.add_address(tenant, customer_id, MILANO)

    async def test_the_default_limit_is_fifty(
        self, service: CustomerService, tenant: str, customer_id: int
    ) -> None:
        for _ in range(50):
            await service.add_address(tenant, customer_id, MILANO)
        with pytest.raises(TooManyAddresses, match="more than 50 addresses"):
            await service.add_address(tenant, customer_id, MILANO)

    @pytest.mark.parametrize("limit", [0, -1, True, 2.5])
    def test_a_limit_must_be_a_positive_integer(
        self, storage: Storage, clock: FixedClock, limit: Any
    ) -> None:
        with pytest.raises(ValueError, match="max_addresses_per_customer"):
            CustomerService(
                storage.unit_of_work,
                clock,
                HeuristicIntelligence(),
                max_addresses_per_customer=limit,
            )
