"""Stored phone numbers in E.164: customers' phones and orders' shipping phones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Phone numbers used to be checked by shape only and stored with their formatting
stripped (``+4402079460958``, ``00393331234567``, ``3331234567``); the library now
validates them with ``phonenumbers`` and stores E.164 (``+442079460958``), which
is what search and an order's retry compare against. This revision rewrites every
stored number that parses as a valid number into E.164: a customer's ``phone``
and the ``phone`` inside an order's ``shipping`` document.

No default region is known when a schema migrates, so a number written without
its country code stays as it is, unless ``LINKBAY_PHONE_REGION`` (an ISO 3166-1
alpha-2 code, such as ``IT``) is set in the environment of the migration: then it
reads such numbers in that region's plan, as a service with that
``default_phone_region`` would. A number that does not parse as a valid one (too
short, an unknown country code) is also left as it is: nothing is lost, and the
services validate it again only when a caller sends a new one.

This changes the form of stored data, not any customer's data: it writes no
audit event, and no ``updated_at`` moves. On PostgreSQL the migrating role sees
every tenant's rows for the duration (forced row-level security would show it
none). Downgrading changes nothing: the E.164 form is what the old code stored
for a number written canonically, and the formatting it replaced is not kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

from linkbay_customers.domain import check_phone_region, normalize_phone
from linkbay_customers_sqlalchemy._migrate import PHONE_REGION_VARIABLE
from linkbay_customers_sqlalchemy._types import JSONDocument
from linkbay_customers_sqlalchemy.migrations._tenancy import every_tenant_visible

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_CUSTOMERS = "customers"
_ORDERS = "customer_orders"
_BATCH = 1000

_customers = sa.table(
    _CUSTOMERS, sa.column("tenant_id"), sa.column("id"), sa.column("phone", sa.String(40))
)
_orders = sa.table(
    _ORDERS, sa.column("tenant_id"), sa.column("id"), sa.column("shipping", JSONDocument)
)


def _e164(phone: object, region: str | None) -> str | None:
    """The E.164 form of a stored number, or None when it is to stay as it is."""
    if not isinstance(phone, str):
        return None
    try:
        normalized = normalize_phone(phone, region)
    except ValueError:
        return None
    return None if normalized == phone else normalized


def _in_batches(
    bind: sa.Connection, statement: sa.Update, changes: Iterable[dict[str, Any]]
) -> None:
    batch: list[dict[str, Any]] = []
    for change in changes:
        batch.append(change)
        if len(batch) >= _BATCH:
            bind.execute(statement, batch)
            batch = []
    if batch:
        bind.execute(statement, batch)


def _customer_phones(bind: sa.Connection, region: str | None) -> None:
    phone = _customers.c.phone
    rows = bind.execute(
        sa.select(_customers.c.tenant_id, _customers.c.id, phone).where(
            phone.is_not(None) if region else phone.like("+%")
        )
    ).fetchall()
    _in_batches(
        bind,
        _customers.update()
        .where(
            _customers.c.tenant_id == sa.bindparam("key_tenant"),
            _customers.c.id == sa.bindparam("key_id"),
        )
        .values(phone=sa.bindparam("new_phone")),
        (
            {"key_tenant": row.tenant_id, "key_id": row.id, "new_phone": new}
            for row in rows
            if (new := _e164(row.phone, region)) is not None
        ),
    )


def _shipping_phones(bind: sa.Connection, region: str | None) -> None:
    rows = bind.execute(
        sa.select(_orders.c.tenant_id, _orders.c.id, _orders.c.shipping).where(
            _orders.c.shipping.is_not(None)
        )
    ).fetchall()

    def changes() -> Iterable[dict[str, Any]]:
        for row in rows:
            shipping = row.shipping
            if not isinstance(shipping, dict):
                continue
            new = _e164(shipping.get("phone"), region)
            if new is not None:
                yield {
                    "key_tenant": row.tenant_id,
                    "key_id": row.id,
                    "new_shipping": {**shipping, "phone": new},
                }

    _in_batches(
        bind,
        _orders.update()
        .where(
            _orders.c.tenant_id == sa.bindparam("key_tenant"),
            _orders.c.id == sa.bindparam("key_id"),
        )
        .values(shipping=sa.bindparam("new_shipping", type_=JSONDocument)),
        changes(),
    )


def upgrade() -> None:
    bind = op.get_bind()
    region = check_phone_region(os.environ.get(PHONE_REGION_VARIABLE) or None)
    with every_tenant_visible(_CUSTOMERS, _ORDERS):
        _customer_phones(bind, region)
        _shipping_phones(bind, region)


def downgrade() -> None:
    # Nothing to undo: the old code reads E.164 as it reads any number, and the
    # formatting the upgrade replaced was never kept.
    pass
