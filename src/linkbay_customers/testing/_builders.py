"""Builders of valid entities, stored through a unit of work's repositories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from linkbay_customers.domain import (
    Address,
    AddressType,
    AuditAction,
    AuditEvent,
    ConsentEvent,
    Customer,
    CustomerNote,
    Order,
    OrderItem,
)
from linkbay_customers.ports import UnitOfWork
from linkbay_customers.services._audit import append_audit

__all__ = (
    "T0",
    "add_address",
    "add_audit_event",
    "add_consent_event",
    "add_customer",
    "add_note",
    "add_order",
    "new_tenant_id",
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
"""The reference time of every builder's default timestamps."""


def new_tenant_id(prefix: str = "t") -> str:
    """A tenant id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


async def add_customer(uow: UnitOfWork, **fields: Any) -> Customer:
    """Store a customer with sensible defaults; ``fields`` override any of them."""
    customer_id = await uow.customers.next_id()
    values: dict[str, Any] = {
        "id": customer_id,
        "tenant_id": uow.tenant_id,
        "email": f"customer{customer_id}@example.com",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    customer = Customer(**values)
    await uow.customers.add(customer)
    return customer


async def add_address(uow: UnitOfWork, customer_id: int, **fields: Any) -> Address:
    """Store an address of a customer."""
    values: dict[str, Any] = {
        "id": await uow.addresses.next_id(),
        "tenant_id": uow.tenant_id,
        "customer_id": customer_id,
        "type": AddressType.SHIPPING,
        "address_line1": "Via Roma 123",
        "city": "Milano",
        "postal_code": "20100",
        "country": "IT",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    address = Address(**values)
    await uow.addresses.add(address)
    return address


async def add_note(uow: UnitOfWork, customer_id: int, **fields: Any) -> CustomerNote:
    """Store a note about a customer."""
    values: dict[str, Any] = {
        "id": await uow.notes.next_id(),
        "tenant_id": uow.tenant_id,
        "customer_id": customer_id,
        "note": "asked for express shipping",
        "created_by": "user-1",
        "created_at": T0,
    }
    values.update(fields)
    note = CustomerNote(**values)
    await uow.notes.add(note)
    return note


async def add_order(uow: UnitOfWork, customer_id: int, **fields: Any) -> Order:
    """Store an order of a customer, with two lines unless ``items`` is given."""
    order_pk = await uow.orders.next_id()
    values: dict[str, Any] = {
        "id": order_pk,
        "tenant_id": uow.tenant_id,
        "customer_id": customer_id,
        "order_id": f"ord-{order_pk}",
        "total": Decimal("59.9000"),
        "currency": "EUR",
        "created_at": T0,
        "recorded_at": T0,
        "items": (
            OrderItem(product_id="p-1", product_name="Mug", quantity=2, unit_price=Decimal("9.95")),
            OrderItem(product_id="p-2", product_name="Tea", quantity=1, unit_price=Decimal("40")),
        ),
    }
    values.update(fields)
    order = Order(**values)
    await uow.orders.add(order)
    return order


async def add_consent_event(uow: UnitOfWork, customer_id: int, **fields: Any) -> ConsentEvent:
    """Append a consent event of a customer."""
    values: dict[str, Any] = {
        "id": await uow.consents.next_id(),
        "tenant_id": uow.tenant_id,
        "customer_id": customer_id,
        "consent_type": "marketing",
        "consented": True,
        "occurred_at": T0,
    }
    values.update(fields)
    event = ConsentEvent(**values)
    await uow.consents.append(event)
    return event


async def add_audit_event(uow: UnitOfWork, customer_id: int | None, **fields: Any) -> AuditEvent:
    """Append an audit event the way the services do (sealed into its chain); return
    it as stored (with the storage's time where the storage assigns it)."""
    values: dict[str, Any] = {
        "id": await uow.audit.next_id(),
        "tenant_id": uow.tenant_id,
        "customer_id": customer_id,
        "actor": "user-1",
        "action": AuditAction.CUSTOMER_UPDATED,
        "occurred_at": T0,
    }
    values.update(fields)
    (event,) = await append_audit(uow, [AuditEvent(**values)])
    return event
