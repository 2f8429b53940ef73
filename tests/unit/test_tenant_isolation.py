"""Another tenant's ids behave exactly like unknown ids, for every service method."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from linkbay_customers import CustomerService, LinkbayError
from linkbay_customers.ports import Storage

ADDRESS = {
    "type": "billing",
    "address_line1": "x",
    "city": "y",
    "postal_code": "1",
    "country": "IT",
}


@dataclass(frozen=True)
class Ids:
    customer: int
    address: int
    own_customer: int  # a customer of the calling tenant


Call = Callable[[CustomerService, str, Ids], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "get_customer": lambda s, t, i: s.get_customer(t, i.customer),
    "get_customer(include_deleted)": lambda s, t, i: s.get_customer(
        t, i.customer, include_deleted=True
    ),
    "update_customer": lambda s, t, i: s.update_customer(t, i.customer, {"first_name": "X"}),
    "delete_customer(soft)": lambda s, t, i: s.delete_customer(t, i.customer),
    "delete_customer(hard)": lambda s, t, i: s.delete_customer(t, i.customer, soft_delete=False),
    "restore_customer": lambda s, t, i: s.restore_customer(t, i.customer),
    "add_address": lambda s, t, i: s.add_address(t, i.customer, ADDRESS),
    "list_addresses": lambda s, t, i: s.list_addresses(t, i.customer),
    "update_address(customer)": lambda s, t, i: s.update_address(
        t, i.customer, i.address, {"city": "z"}
    ),
    "update_address(address)": lambda s, t, i: s.update_address(
        t, i.own_customer, i.address, {"city": "z"}
    ),
    "delete_address(customer)": lambda s, t, i: s.delete_address(t, i.customer, i.address),
    "delete_address(address)": lambda s, t, i: s.delete_address(t, i.own_customer, i.address),
    "add_note": lambda s, t, i: s.add_note(t, i.customer, {"note": "n"}),
    "list_notes": lambda s, t, i: s.list_notes(t, i.customer),
    "record_order": lambda s, t, i: s.record_order(t, i.customer, {"order_id": "x", "total": 1}),
    "update_customer_analytics": lambda s, t, i: s.update_customer_analytics(
        t, i.customer, {"order_id": "y", "total": 1}
    ),
    "list_orders": lambda s, t, i: s.list_orders(t, i.customer),
    "list_aliases": lambda s, t, i: s.list_aliases(t, i.customer),
    "find_duplicates_of": lambda s, t, i: s.find_duplicates_of(t, i.customer),
    "mark_distinct(customer)": lambda s, t, i: s.mark_distinct(t, i.customer, i.own_customer),
    "mark_distinct(other)": lambda s, t, i: s.mark_distinct(t, i.own_customer, i.customer),
    "undo_distinct(customer)": lambda s, t, i: s.undo_distinct(t, i.customer, i.own_customer),
    "undo_distinct(other)": lambda s, t, i: s.undo_distinct(t, i.own_customer, i.customer),
    "list_duplicate_decisions": lambda s, t, i: s.list_duplicate_decisions(t, i.customer),
    "merge_customers(source)": lambda s, t, i: s.merge_customers(
        t, {"source_customer_id": i.customer, "target_customer_id": i.own_customer}
    ),
    "merge_customers(target)": lambda s, t, i: s.merge_customers(
        t, {"source_customer_id": i.own_customer, "target_customer_id": i.customer}
    ),
}


def _outcome(error: LinkbayError, ids: Ids) -> tuple[str, str, str | None, str]:
    message = re.sub(rf"\b({ids.customer}|{ids.address})\b", "<id>", str(error))
    return type(error).__name__, error.code, error.field, message


async def _snapshot(storage: Storage, tenant: str, customer_id: int) -> tuple[Any, ...]:
    async with storage.unit_of_work(tenant) as uow:
        return (
            await uow.customers.get(customer_id, include_deleted=True),
            await uow.addresses.list_for_customer(customer_id),
            await uow.notes.list_for_customer(customer_id),
            (await uow.orders.list_for_customer(customer_id, page=1, page_size=100)).items,
            (await uow.audit.list()).items,
        )


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_foreign_id_behaves_exactly_like_an_unknown_id(
    name: str,
    service: CustomerService,
    storage: Storage,
    tenant: str,
    other_tenant: str,
) -> None:
    # Each tenant counts its own ids: the victim's tenant gets ahead, so that the
    # victim's id names no customer of the other tenant.
    for n in range(2):
        await service.create_customer(tenant, {"email": f"earlier{n}@example.com"})
    victim = await service.create_customer(tenant, {"email": "victim@example.com"})
    address = await service.add_address(tenant, victim.id, ADDRESS)
    await service.add_note(tenant, victim.id, {"note": "private"})
    await service.record_order(tenant, victim.id, {"order_id": "x", "total": 5})
    own = await service.create_customer(other_tenant, {"email": "own@example.com"})
    assert own.id != victim.id
    before = await _snapshot(storage, tenant, victim.id)

    foreign = Ids(customer=victim.id, address=address.id, own_customer=own.id)
    unknown = Ids(customer=victim.id + 10_000, address=address.id + 10_000, own_customer=own.id)
    call = CALLS[name]

    with pytest.raises(LinkbayError) as with_foreign:
        await call(service, other_tenant, foreign)
    with pytest.raises(LinkbayError) as with_unknown:
        await call(service, other_tenant, unknown)

    assert _outcome(with_foreign.value, foreign) == _outcome(with_unknown.value, unknown)
    assert await _snapshot(storage, tenant, victim.id) == before


async def test_every_service_method_taking_an_id_is_covered() -> None:
    taking_ids = {
        name
        for name, method in inspect.getmembers(CustomerService, inspect.isfunction)
        if not name.startswith("_")
        and {"customer_id", "merge_request"} & set(inspect.signature(method).parameters)
    }
    covered = {name.split("(")[0] for name in CALLS}
    assert taking_ids <= covered


async def test_a_foreign_email_is_like_an_unknown_email(
    service: CustomerService, tenant: str, other_tenant: str
) -> None:
    await service.create_customer(tenant, {"email": "victim@example.com"})
    with pytest.raises(LinkbayError) as foreign:
        await service.get_customer_by_email(other_tenant, "victim@example.com")
    with pytest.raises(LinkbayError) as unknown:
        await service.get_customer_by_email(other_tenant, "nobody@example.com")
    assert (foreign.value.code, foreign.value.field) == (unknown.value.code, unknown.value.field)
    assert await service.search_customers(other_tenant, "victim") == []
    assert (await service.list_customers(other_tenant, {"include_deleted": True})).total == 0
