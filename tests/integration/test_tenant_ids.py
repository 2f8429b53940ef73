"""Ids are counted per tenant: none reveals another tenant's activity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, default_models, upgrade
from linkbay_customers_sqlalchemy._migrate import alembic_config
from tests._databases import customer_row, database_of_kind, new_postgres_database
from tests.integration.conftest import as_role, new_role

COUNTERS = default_models().tables()["id_counter"].name
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
ADDRESS = {
    "type": "shipping",
    "address_line1": "Via Roma 1",
    "city": "Milano",
    "postal_code": "20100",
    "country": "IT",
}


def _someone() -> dict[str, str]:
    return {"email": f"{uuid.uuid4().hex[:12]}@example.com"}


def _services(storage: SqlAlchemyStorage) -> tuple[CustomerService, GDPRService]:
    clock = FixedClock()
    return (
        CustomerService(storage.unit_of_work, clock, HeuristicIntelligence()),
        GDPRService(storage.unit_of_work, clock),
    )


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(database_url, pool_size=20, max_overflow=0)
    yield storage
    await storage.close()


def _counter_statements(engine: AsyncEngine) -> list[str]:
    """The statements the engine sends that touch the id counters, as they are sent."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if COUNTERS in statement:
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return sent


async def test_a_customer_of_a_then_three_of_b_then_one_of_a_leave_each_tenant_consecutive(
    storage: SqlAlchemyStorage,
) -> None:
    service, _ = _services(storage)
    a, b = new_tenant_id("a"), new_tenant_id("b")
    created = []
    for tenant in (a, b, b, b, a):
        customer = await service.create_customer(tenant, {"email": f"c{len(created)}@example.com"})
        created.append((tenant, customer.id))

    assert [i for t, i in created if t == a] == [1, 2]
    assert [i for t, i in created if t == b] == [1, 2, 3]


async def test_every_kind_of_row_is_numbered_within_its_tenant(
    storage: SqlAlchemyStorage,
) -> None:
    service, gdpr = _services(storage)
    a, b = new_tenant_id("a"), new_tenant_id("b")
    ids: dict[str, dict[str, list[int]]] = {a: {}, b: {}}
    address = ADDRESS
    for tenant in (a, b, b, b, a):
        customer = await service.create_customer(tenant, _someone())
        made = {
            "customer": customer.id,
            "address": (await service.add_address(tenant, customer.id, address)).id,
            "note": (await service.add_note(tenant, customer.id, {"note": "called"})).id,
            "order": (
                await service.record_order(
                    tenant, customer.id, {"order_id": f"o-{customer.id}", "total": "5"}
                )
            ).order.id,
            "consent": (await gdpr.update_consent(tenant, customer.id, "marketing", True)).id,
        }
        for kind, made_id in made.items():
            ids[tenant].setdefault(kind, []).append(made_id)

    assert ids[a] == {kind: [1, 2] for kind in ids[a]}
    assert ids[b] == {kind: [1, 2, 3] for kind in ids[b]}
    # Five events per customer: created, address, note, order, consent.
    for tenant, customers in ((a, 2), (b, 3)):
        events = (await gdpr.list_audit_events(tenant)).items
        assert [e.id for e in events] == list(range(1, 5 * customers + 1))


async def test_fifty_concurrent_creates_in_one_tenant_all_succeed_with_distinct_ids(
    storage: SqlAlchemyStorage,
) -> None:
    service, _ = _services(storage)
    tenant, other = new_tenant_id("busy"), new_tenant_id("calm")
    other_first = await service.create_customer(other, {"email": "first@example.com"})

    created = await asyncio.gather(
        *(service.create_customer(tenant, {"email": f"c{n}@example.com"}) for n in range(50)),
        service.create_customer(other, {"email": "second@example.com"}),
    )

    ids = sorted(c.id for c in created if c.tenant_id == tenant)
    assert ids == list(range(1, 51))
    (other_second,) = [c for c in created if c.tenant_id == other]
    assert (other_first.id, other_second.id) == (1, 2)
    assert (await service.list_customers(tenant, page_size=100)).total == 50


async def test_a_bulk_import_reserves_each_chunks_ids_in_one_statement(
    storage: SqlAlchemyStorage,
) -> None:
    service, _ = _services(storage)
    tenant = new_tenant_id("import")
    await service.create_customer(tenant, {"email": "before@example.com"})
    sent = _counter_statements(storage.engine)

    result = await service.import_customers(
        tenant, ({"email": f"row{n}@example.com"} for n in range(2500)), chunk_size=1000
    )

    assert result.created == 2500
    # Three chunks, each reserving its customers' ids and its audit events' ids.
    assert len(sent) == 3 * 2
    async with storage.unit_of_work(tenant) as uow:
        imported = await uow.customers.get_many_by_email(
            [f"row{n}@example.com" for n in range(2500)]
        )
        assert sorted(c.id for c in imported.values()) == list(range(2, 2502))
        assert await uow.customers.next_id() == 2502


async def test_a_rolled_back_reservation_gives_its_ids_back(storage: SqlAlchemyStorage) -> None:
    tenant = new_tenant_id()
    async with storage.unit_of_work(tenant) as uow:
        assert await uow.customers.next_id() == 1
    async with storage.unit_of_work(tenant) as uow:
        assert await uow.customers.next_id() == 1
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        assert await uow.customers.next_id() == 2


# ------------------------------------------------ revision 0008 on existing data


@pytest.fixture(params=["sqlite", "postgres"])
async def database_at_0007(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return await database_of_kind(request, tmp_path_factory, revision="0007")


def _event(
    tenant: str, event_id: int, customer_id: int, sequence: int = 1, **details: Any
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "id": event_id,
        "customer_id": customer_id,
        "action": "customer.created",
        "occurred_at": LONG_AGO,
        "changed_fields": [],
        "details": details,
        "chain_id": customer_id,
        "sequence": sequence,
        "hash": "0" * 64,
    }


LAST_SHARED_IDS = {"customers": 6, "customer_addresses": 9, "customer_audit_events": 7}
CHAIN_TIPS = (("a", 1, 1), ("b", 2, 1), ("b", 3, 1), ("b", 4, 1), ("a", 5, 2), ("a", 6, 1))


async def _seed_shared_sequence_data(url: str) -> None:
    """Two tenants as the shared sequences numbered them: a customer of A (1), three
    of B (2-4), one of A (5); A's customer 6 erased, leaving only its audit event, and
    A's address 9 removed, named by an event's details."""
    tables = default_models().tables()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # The migrating owner writes past the forced policies, as 0008 reads.
                await connection.execute(text("SET row_security = off"))
            await connection.execute(
                tables["customer"].insert(),
                [customer_row(t, i) for t, i in (("a", 1), ("b", 2), ("b", 3), ("b", 4), ("a", 5))],
            )
            await connection.execute(
                tables["address"].insert(),
                [
                    {
                        "tenant_id": "b",
                        "id": 8,
                        "customer_id": 2,
                        "type": "billing",
                        "address_line1": "Via Roma 1",
                        "city": "Milano",
                        "postal_code": "20100",
                        "country": "IT",
                        "is_default": False,
                        "created_at": LONG_AGO,
                        "updated_at": LONG_AGO,
                    }
                ],
            )
            await connection.execute(
                tables["audit_event"].insert(),
                [
                    _event("a", 1, 1),
                    _event("b", 2, 2),
                    _event("b", 3, 3),
                    _event("b", 4, 4),
                    _event("a", 5, 5),
                    _event("a", 6, 6),
                    _event("a", 7, 5, 2, address_id=9),
                ],
            )
            await connection.execute(
                tables["audit_chain"].insert(),
                [
                    {"tenant_id": t, "chain_id": c, "sequence": n, "hash": "0" * 64}
                    for t, c, n in CHAIN_TIPS
                ],
            )
            for table, last in LAST_SHARED_IDS.items():
                if engine.dialect.name == "postgresql":
                    await connection.execute(text(f"SELECT setval('{table}_id_seq', {last})"))
                else:
                    # The table the earlier code created on first use.
                    await connection.execute(
                        text(
                            "CREATE TABLE IF NOT EXISTS linkbay_id_sequences"
                            " (name VARCHAR(128) PRIMARY KEY, value BIGINT NOT NULL)"
                        )
                    )
                    await connection.execute(
                        text("INSERT INTO linkbay_id_sequences VALUES (:name, :value)"),
                        {"name": table, "value": last},
                    )
    finally:
        await engine.dispose()


@pytest.fixture
async def upgraded_from_0007(database_at_0007: str) -> str:
    """A database of two tenants numbered by the shared sequences, upgraded to head."""
    await _seed_shared_sequence_data(database_at_0007)
    await upgrade(database_at_0007)
    return database_at_0007


@asynccontextmanager
async def _service_on(url: str) -> AsyncIterator[tuple[CustomerService, SqlAlchemyStorage]]:
    storage = SqlAlchemyStorage.from_url(url)
    try:
        yield _services(storage)[0], storage
    finally:
        await storage.close()


async def _shared_counters(url: str) -> dict[str, int]:
    """The last id of each table's sequence shared by every tenant (SQLite: of each
    row of ``linkbay_id_sequences``); none once ids are counted per tenant."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = (
                    "SELECT replace(sequencename, '_id_seq', ''), last_value FROM pg_sequences"
                    " WHERE last_value IS NOT NULL"
                )
            elif await connection.run_sync(lambda c: inspect(c).has_table("linkbay_id_sequences")):
                query = "SELECT name, value FROM linkbay_id_sequences"
            else:
                return {}
            return dict((await connection.execute(text(query))).all())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_revision_0008_keeps_every_id_and_each_tenant_counts_on_from_its_own(
    upgraded_from_0007: str,
) -> None:
    async with _service_on(upgraded_from_0007) as (service, storage):
        kept = {t: (await service.list_customers(t, {})).items for t in ("a", "b")}
        assert {t: sorted(c.id for c in items) for t, items in kept.items()} == {
            "a": [1, 5],
            "b": [2, 3, 4],
        }
        # A's next customer follows the erased 6 its audit trail still names.
        assert (await service.create_customer("a", _someone())).id == 7
        assert (await service.create_customer("b", _someone())).id == 5
        assert (await service.create_customer("a", _someone())).id == 8
        assert (await service.add_address("a", 1, ADDRESS)).id == 10
        assert (await service.add_address("b", 2, ADDRESS)).id == 9
        async with storage.unit_of_work("a") as uow:
            assert await uow.notes.next_id() == 1
            # Events 8-10: the two customers' creations and the address.
            assert await uow.audit.next_id() == 11
    assert await _shared_counters(upgraded_from_0007) == {}


async def test_revision_0008_downgrades_to_sequences_past_every_tenants_ids(
    upgraded_from_0007: str,
) -> None:
    async with _service_on(upgraded_from_0007) as (service, _):
        for _ in range(4):
            await service.create_customer("b", _someone())  # B: 5, 6, 7, 8

    engine = create_engine(upgraded_from_0007)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0007"))
            await connection.commit()
    finally:
        await engine.dispose()

    # The largest id of any tenant: B's customer 8, A's address 9, B's event 8.
    assert await _shared_counters(upgraded_from_0007) == {
        "customers": 8,
        "customer_addresses": 9,
        "customer_audit_events": 8,
    }


# --------------------------------------------------- the application role (PostgreSQL)


@pytest.fixture
async def postgres_at_0007(postgres_server: str) -> str:
    url = await new_postgres_database(postgres_server, migrate=False)
    await upgrade(url, "0007")
    return url


async def test_an_application_role_granted_before_0008_creates_customers_after_it(
    postgres_at_0007: str,
) -> None:
    await _seed_shared_sequence_data(postgres_at_0007)
    admin = create_engine(postgres_at_0007)
    try:
        role = await new_role(admin)
        async with admin.begin() as connection:
            # What the application role was granted before revision 0008.
            await connection.execute(
                text(
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
                )
            )
            await connection.execute(
                text(f"REVOKE UPDATE, DELETE, TRUNCATE ON customer_audit_events FROM {role}")
            )
            await connection.execute(
                text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
            )
        await upgrade(admin)
    finally:
        await admin.dispose()

    async with _service_on(as_role(postgres_at_0007, role)) as (service, storage):
        assert (await service.create_customer("a", {"email": "new@example.com"})).id == 7
        assert (await service.create_customer("c", {"email": "new@example.com"})).id == 1
        async with storage.unit_of_work("a") as uow:
            connection = await uow.connection()
            seen = await connection.execute(text(f"SELECT DISTINCT tenant_id FROM {COUNTERS}"))
            assert set(seen.scalars()) == {"a"}
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.execute(text(f"DELETE FROM {COUNTERS} WHERE tenant_id = 'a'"))


async def test_the_counters_of_another_tenant_cannot_be_changed_or_created(
    app_storage: SqlAlchemyStorage,
) -> None:
    a, b = new_tenant_id("a"), new_tenant_id("b")
    service, _ = _services(app_storage)
    await service.create_customer(b, _someone())
    async with app_storage.unit_of_work(a) as uow:
        connection = await uow.connection()
        changed = await connection.execute(
            text(f"UPDATE {COUNTERS} SET last_id = 0 WHERE tenant_id = :b"), {"b": b}
        )
        assert changed.rowcount == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text(f"INSERT INTO {COUNTERS} (tenant_id, kind, last_id) VALUES (:b, 'x', 0)"),
                {"b": b},
            )
    async with app_storage.unit_of_work(b) as uow:
        connection = await uow.connection()
        with pytest.raises(DBAPIError, match="permission denied"):
            await connection.execute(text(f"DELETE FROM {COUNTERS} WHERE tenant_id = :b"), {"b": b})
    async with app_storage.unit_of_work(b) as uow:
        counters = default_models().tables()["id_counter"]
        connection = await uow.connection()
        rows = await connection.execute(select(counters.c.kind, counters.c.last_id))
        assert dict(rows.all()) == {"customers": 1, "customer_audit_events": 1}
