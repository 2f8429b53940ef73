"""The addresses and notes of ``CustomerService``: a customer's addresses (one default
per type) and the notes written about them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from linkbay_customers.domain import (
    Address,
    AddressNotFound,
    AddressType,
    AuditAction,
    CustomerNote,
    Page,
    TooManyAddresses,
    check_actor,
)
from linkbay_customers.ports import UnitOfWork
from linkbay_customers.schemas import AddressCreate, AddressUpdate, CustomerNoteCreate
from linkbay_customers.services._boundary import check_id, check_page, validated
from linkbay_customers.services._change import Transactions

__all__ = ("AddressesAndNotes", "move_addresses")


class AddressesAndNotes:
    """Addresses and notes (part of ``CustomerService``)."""

    _tx: Transactions
    _max_addresses: int

    async def add_address(
        self,
        tenant_id: str,
        customer_id: int,
        data: AddressCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Address:
        """Add an address; a new default replaces the customer's default of that type.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: a field is invalid (type, country, ...).
            TooManyAddresses: the customer has ``max_addresses_per_customer`` already.
        """
        data = validated(AddressCreate, data)
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            held = await change.uow.addresses.page_for_customers([customer.id], page=1, page_size=1)
            if held.total >= self._max_addresses:
                raise TooManyAddresses(customer.id, self._max_addresses)
            if data.is_default:
                await _clear_default(change.uow, customer.id, data.type, keep=None)
            address = Address(
                id=await change.uow.addresses.next_id(),
                tenant_id=change.uow.tenant_id,
                customer_id=customer.id,
                created_at=change.now,
                updated_at=change.now,
                **data.model_dump(),
            )
            await change.uow.addresses.add(address)
            change.audit(
                AuditAction.ADDRESS_ADDED,
                customer_id=customer.id,
                changed_fields=sorted(data.model_fields_set),
                details={"address_id": address.id},
            )
        return address

    async def list_addresses(
        self, tenant_id: str, customer_id: int, *, page: int = 1, page_size: int = 20
    ) -> Page[Address]:
        """One page of a customer's addresses, oldest first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: ``page`` < 1 or ``page_size`` not in 1..100.
        """
        check_page(page, page_size)
        return await self._tx.of_customer(
            tenant_id,
            customer_id,
            lambda uow, customer: uow.addresses.page_for_customers(
                [customer.id], page=page, page_size=page_size
            ),
        )

    async def update_address(
        self,
        tenant_id: str,
        customer_id: int,
        address_id: int,
        data: AddressUpdate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Address:
        """Apply a partial address update.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            AddressNotFound: the address does not belong to that customer.
            InvalidInput: a field is invalid.
        """
        data = validated(AddressUpdate, data)
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            address = await _own_address(change.uow, customer.id, address_id)
            changed = [
                name
                for name in sorted(data.model_fields_set)
                if getattr(address, name) != getattr(data, name)
            ]
            if not changed:
                return address
            for name in changed:
                setattr(address, name, getattr(data, name))
            if address.is_default:
                await _clear_default(change.uow, customer.id, address.type, keep=address.id)
            address.updated_at = change.now
            await change.uow.addresses.update(address)
            change.audit(
                AuditAction.ADDRESS_UPDATED,
                customer_id=customer.id,
                changed_fields=changed,
                details={"address_id": address.id},
            )
        return address

    async def delete_address(
        self, tenant_id: str, customer_id: int, address_id: int, *, actor: str | None = None
    ) -> bool:
        """Delete an address.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            AddressNotFound: the address does not belong to that customer.
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            address = await _own_address(change.uow, customer.id, address_id)
            await change.uow.addresses.delete(address.id)
            change.audit(
                AuditAction.ADDRESS_DELETED,
                customer_id=customer.id,
                details={"address_id": address.id},
            )
        return True

    async def add_note(
        self,
        tenant_id: str,
        customer_id: int,
        data: CustomerNoteCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> CustomerNote:
        """Add a note written by ``actor`` (the acting user), kept as its ``created_by``.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: empty or over-long note, or an invalid ``actor`` (named by the
                note field it fills, ``created_by``).
        """
        data = validated(CustomerNoteCreate, data)
        created_by = check_actor(actor, field="created_by")
        async with self._tx.change(tenant_id, actor=created_by) as change:
            customer = await change.customer(customer_id)
            note = CustomerNote(
                id=await change.uow.notes.next_id(),
                tenant_id=change.uow.tenant_id,
                customer_id=customer.id,
                note=data.note,
                created_by=created_by,
                created_at=change.now,
            )
            await change.uow.notes.add(note)
            change.audit(
                AuditAction.NOTE_ADDED, customer_id=customer.id, details={"note_id": note.id}
            )
        return note

    async def list_notes(
        self, tenant_id: str, customer_id: int, *, page: int = 1, page_size: int = 20
    ) -> Page[CustomerNote]:
        """One page of a customer's notes, oldest first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: ``page`` < 1 or ``page_size`` not in 1..100.
        """
        check_page(page, page_size)
        return await self._tx.of_customer(
            tenant_id,
            customer_id,
            lambda uow, customer: uow.notes.page_for_customers(
                [customer.id], page=page, page_size=page_size
            ),
        )


async def move_addresses(
    uow: UnitOfWork, source_id: int, target_id: int, now: datetime, *, limit: int
) -> None:
    """Move a merged customer's addresses to the target; the target's defaults win: a
    moved default of a type the target already has a default for arrives as a plain
    address.

    Raises:
        TooManyAddresses: the target would have more than ``limit`` addresses.
    """
    held = await uow.addresses.list_for_customer(target_id)
    moving = await uow.addresses.list_for_customer(source_id)
    if len(held) + len(moving) > limit:
        raise TooManyAddresses(target_id, limit)
    taken = {a.type for a in held if a.is_default}
    for address in moving:
        if address.is_default and address.type in taken:
            address.is_default = False
            address.updated_at = now
            await uow.addresses.update(address)
    await uow.addresses.reassign(source_id, target_id)


async def _own_address(uow: UnitOfWork, customer_id: int, address_id: int) -> Address:
    address = await uow.addresses.get(address_id) if check_id(address_id) else None
    if address is None or address.customer_id != customer_id:
        raise AddressNotFound(address_id)
    return address


async def _clear_default(
    uow: UnitOfWork, customer_id: int, type_: AddressType, *, keep: int | None
) -> None:
    for other in await uow.addresses.list_for_customer(customer_id):
        if other.is_default and other.type == type_ and other.id != keep:
            other.is_default = False
            await uow.addresses.update(other)
