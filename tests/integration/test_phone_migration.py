"""Revision 0007 brings stored phone numbers to E.164, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from linkbay_customers.testing import new_tenant_id
from linkbay_customers_sqlalchemy import create_engine, default_models, upgrade
from tests._databases import customer_row, database_of_kind

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)

# As the old code stored them (formatting stripped) → as revision 0007 leaves them.
PHONES = {
    1: ("+393331234567", "+393331234567"),  # already E.164
    2: ("+4402079460958", "+442079460958"),  # written "+44 (0)20 7946 0958"
    3: ("+39 02 1234 5678", "+390212345678"),  # formatting, as an early version kept it
    4: ("3331234567", "3331234567"),  # national: no region known
    5: ("00393331234567", "00393331234567"),  # international call prefix: a region's
    6: ("+3912345", "+3912345"),  # too short for Italy's plan: left alone
    7: (None, None),
}


@pytest.fixture(params=["sqlite", "postgres"])
async def database_at_0006(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return await database_of_kind(request, tmp_path_factory, revision="0006")


def _order(tenant: str, order_id: int, shipping: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "id": order_id,
        "customer_id": 1,
        "order_id": f"ORDER-{order_id}",
        "total": Decimal(5),
        "currency": "EUR",
        "created_at": LONG_AGO,
        "recorded_at": LONG_AGO,
        "shipping": shipping,
    }


async def _seed(url: str, tenant: str) -> None:
    tables = default_models().tables()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                tables["customer"].insert(),
                [customer_row(tenant, cid, phone=old) for cid, (old, _) in PHONES.items()],
            )
            await connection.execute(
                tables["order"].insert(),
                [
                    _order(tenant, 1, {"city": "London", "phone": "+4402079460958"}),
                    _order(tenant, 2, {"city": "Milano", "phone": "3331234567"}),
                    _order(tenant, 3, {"city": "Roma"}),
                    _order(tenant, 4, None),
                ],
            )
    finally:
        await engine.dispose()


async def _stored(url: str, tenant: str) -> tuple[dict[int, Any], dict[int, Any], int, Any]:
    tables = default_models().tables()
    customers, orders, events = tables["customer"], tables["order"], tables["audit_event"]
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            phones = dict(
                (await connection.execute(select(customers.c.id, customers.c.phone))).all()
            )
            shipping = dict(
                (await connection.execute(select(orders.c.id, orders.c.shipping))).all()
            )
            audited = (
                await connection.execute(select(func.count()).select_from(events))
            ).scalar_one()
            updated = set(
                (await connection.execute(select(customers.c.updated_at))).scalars().all()
            )
    finally:
        await engine.dispose()
    return phones, shipping, audited, updated


async def test_international_numbers_become_e164_and_the_others_stay(
    database_at_0006: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LINKBAY_PHONE_REGION", raising=False)
    tenant = new_tenant_id()
    await _seed(database_at_0006, tenant)

    await upgrade(database_at_0006)

    phones, shipping, audited, updated = await _stored(database_at_0006, tenant)
    assert phones == {cid: new for cid, (_, new) in PHONES.items()}
    assert shipping == {
        1: {"city": "London", "phone": "+442079460958"},
        2: {"city": "Milano", "phone": "3331234567"},
        3: {"city": "Roma"},
        4: None,
    }
    # A change of form, not of any customer: no audit event, no updated_at moved.
    assert (audited, updated) == (0, {LONG_AGO})


async def test_a_region_in_the_environment_reads_national_numbers_too(
    database_at_0006: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKBAY_PHONE_REGION", "it")
    tenant = new_tenant_id()
    await _seed(database_at_0006, tenant)

    await upgrade(database_at_0006)

    phones, shipping, _, _ = await _stored(database_at_0006, tenant)
    assert phones == {
        **{cid: new for cid, (_, new) in PHONES.items()},
        4: "+393331234567",
        5: "+393331234567",
    }
    assert shipping[2] == {"city": "Milano", "phone": "+393331234567"}


async def test_an_unknown_region_in_the_environment_stops_the_migration(
    database_at_0006: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKBAY_PHONE_REGION", "XX")
    with pytest.raises(ValueError, match="'XX' is not a region"):
        await upgrade(database_at_0006)
