"""The audit trail under an adversarial audit: append-only for the application role,
stamped by the database's clock, and tamper-evident to ``verify`` even against a
superuser's SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import AuditAction
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import (
    AuditEventMixin,
    ModelSet,
    SqlAlchemyStorage,
    build_models,
    create_audit_triggers,
    create_engine,
    default_models,
    drop_audit_triggers,
    upgrade,
)
from linkbay_customers_sqlalchemy._repositories._ledgers import _reserve_and_lock
from tests._databases import database_of_kind

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _services(storage: SqlAlchemyStorage, clock: FixedClock) -> tuple[CustomerService, GDPRService]:
    return (
        CustomerService(storage.unit_of_work, clock, HeuristicIntelligence()),
        GDPRService(storage.unit_of_work, clock),
    )


async def _life(service: CustomerService, tenant: str) -> list[int]:
    """Three customers with a few changes each: a trail of several chains."""
    ids = []
    for n in range(3):
        customer = await service.create_customer(tenant, {"email": f"c{n}@example.com"})
        await service.update_customer(tenant, customer.id, {"first_name": f"N{n}"})
        await service.record_order(tenant, customer.id, {"order_id": f"o-{n}", "total": "10"})
        ids.append(customer.id)
    return ids


async def _events(url: str, tenant: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT set_config('linkbay.tenant_id', :t, false)"), {"t": tenant}
                )
            count = await connection.execute(
                text("SELECT count(*) FROM customer_audit_events WHERE tenant_id = :t"),
                {"t": tenant},
            )
            return int(count.scalar_one())
    finally:
        await engine.dispose()


# ----------------------------------------- the application role (PostgreSQL)


async def test_no_sql_of_the_application_role_deletes_or_changes_an_audit_event(
    app_url: str, app_storage: SqlAlchemyStorage
) -> None:
    service, _ = _services(app_storage, FixedClock())
    tenant = new_tenant_id()
    ids = await _life(service, tenant)
    before = await _events(app_url, tenant)
    attempts = [
        "SELECT linkbay_delete_customer_audit_events(:t, ARRAY[:a, :b]::bigint[])",
        "SELECT linkbay_scrub_customer_audit_events(:t, ARRAY[:a, :b]::bigint[])",
        "UPDATE customer_audit_events SET details = '{}' WHERE customer_id = :a",
        "UPDATE customer_audit_events SET occurred_at = occurred_at - interval '1 year'",
        "DELETE FROM customer_audit_events WHERE customer_id = :a",
        "TRUNCATE customer_audit_events",
    ]
    for statement in attempts:
        async with app_storage.unit_of_work(tenant) as uow:
            connection = await uow.connection()
            with pytest.raises(DBAPIError, match=r"permission denied|does not exist"):
                await connection.execute(text(statement), {"t": tenant, "a": ids[0], "b": ids[1]})
    assert await _events(app_url, tenant) == before == 3 * 3


async def test_the_database_stamps_each_event_with_its_own_time(
    app_url: str, app_storage: SqlAlchemyStorage
) -> None:
    # The service's clock says 2020; the trail says when the database wrote it.
    service, gdpr = _services(app_storage, FixedClock(LONG_AGO))
    tenant = new_tenant_id()
    started = datetime.now(UTC)
    customer = await service.create_customer(tenant, {"email": "when@example.com"})
    async with app_storage.unit_of_work(tenant) as uow:
        event_id = await uow.audit.next_id()
        connection = await uow.connection()
        # A back-dated INSERT as the application role: the trigger overrides its date.
        await connection.execute(
            text(
                "INSERT INTO customer_audit_events (tenant_id, id, customer_id, action,"
                " occurred_at, changed_fields, details, chain_id, sequence, hash) VALUES"
                " (:t, :id, :c, 'customer.updated', :then, '[]', '{}', :c, 2, :forged)"
            ),
            {"t": tenant, "id": event_id, "c": customer.id, "then": LONG_AGO, "forged": "0" * 64},
        )
        await uow.commit()
    trail = (await gdpr.list_audit_events(tenant)).items
    assert len(trail) == 2
    assert all(e.occurred_at >= started - timedelta(seconds=5) for e in trail)
    verification = await gdpr.verify_audit_trail(tenant)
    assert verification.broken is not None
    assert verification.broken.event_id == trail[1].id
    assert "changed or inserted" in verification.broken.reason


async def test_a_batch_lock_creates_every_chain_and_reads_back_only_those_with_events(
    app_storage: SqlAlchemyStorage,
) -> None:
    service, _ = _services(app_storage, FixedClock())
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, {"email": "one@example.com"})
    fresh = [customer.id + n for n in range(1, 4)]  # a bulk import's new customers
    models = default_models()
    statement = _reserve_and_lock(models.id_counter.__table__, models.audit_chain.__table__)
    async with app_storage.unit_of_work(tenant) as uow:
        _, locked = await uow.audit.reserve_and_lock(2, [customer.id, *fresh])
        assert set(locked.tips) == {customer.id}
        connection = await uow.connection()
        parameters = {
            "tenant": tenant,
            "kind": models.audit_event.__table__.name,
            "count": 1,
            "chains": [customer.id, *fresh],
        }
        rows = (await connection.execute(statement, parameters)).all()
        assert [(r[0], r[1]) for r in rows if r[3] is None] == [(customer.id, 1)]
        tips = await connection.execute(
            text(
                "SELECT chain_id, sequence FROM customer_audit_chains"
                " WHERE tenant_id = :t ORDER BY chain_id"
            ),
            {"t": tenant},
        )
        assert tips.all() == [(customer.id, 1), *((chain, 0) for chain in fresh)]


# --------------------------------- tampering by the owner or a superuser (both)


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A new migrated database of each kind, whose tables a test may tamper with."""
    return await database_of_kind(request, tmp_path_factory)


@pytest.fixture
async def owner_storage(fresh_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(fresh_url)
    yield storage
    await storage.close()


async def _tamper(url: str, statement: str, **parameters: object) -> int:
    """Run SQL as the database's owner (PostgreSQL's superuser), past the library."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), parameters)
            return int(result.rowcount)
    finally:
        await engine.dispose()


async def test_verify_passes_on_an_untouched_trail_erasure_included(
    owner_storage: SqlAlchemyStorage,
) -> None:
    service, gdpr = _services(owner_storage, FixedClock())
    tenant = new_tenant_id()
    ids = await _life(service, tenant)
    await gdpr.export_customer_data(tenant, ids[0])
    await gdpr.delete_customer_data(tenant, ids[0], anonymize=True)
    await gdpr.delete_customer_data(tenant, ids[1], anonymize=False)
    verification = await gdpr.verify_audit_trail(tenant)
    assert (verification.intact, verification.events, verification.chains) == (True, 12, 3)
    # Erasure kept every event of both customers and added its own.
    trail = (await gdpr.list_audit_events(tenant, customer_id=ids[1])).items
    assert [e.action for e in trail][-1] == AuditAction.DATA_ERASED
    assert len(trail) == 4


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            "UPDATE customer_audit_events SET actor = 'someone-else'"
            " WHERE tenant_id = :t AND customer_id = :c AND sequence = 2",
            "changed or inserted",
        ),
        (
            "DELETE FROM customer_audit_events"
            " WHERE tenant_id = :t AND customer_id = :c AND sequence = 2",
            "removed or inserted",
        ),
        (
            "DELETE FROM customer_audit_events"
            " WHERE tenant_id = :t AND customer_id = :c AND sequence = 3",
            "removed from its end",
        ),
        (
            "INSERT INTO customer_audit_events (tenant_id, id, customer_id, action,"
            " occurred_at, changed_fields, details, chain_id, sequence, hash)"
            " SELECT tenant_id, id + 100000, customer_id, action, occurred_at, changed_fields,"
            " details, chain_id, 4, hash FROM customer_audit_events"
            " WHERE tenant_id = :t AND customer_id = :c AND sequence = 3",
            "changed or inserted",
        ),
    ],
    ids=["update", "delete", "delete-last", "insert"],
)
async def test_verify_names_the_first_event_a_superuser_changed_removed_or_added(
    fresh_url: str, owner_storage: SqlAlchemyStorage, statement: str, reason: str
) -> None:
    service, gdpr = _services(owner_storage, FixedClock())
    tenant = new_tenant_id()
    ids = await _life(service, tenant)
    assert (await gdpr.verify_audit_trail(tenant)).intact
    assert await _tamper(fresh_url, statement, t=tenant, c=ids[1]) == 1

    verification = await gdpr.verify_audit_trail(tenant)

    assert verification.broken is not None
    assert verification.broken.chain == ids[1]
    assert reason in str(verification.broken)


async def test_concurrent_writers_of_one_customer_leave_one_unbroken_chain(
    owner_storage: SqlAlchemyStorage,
) -> None:
    service, gdpr = _services(owner_storage, FixedClock())
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, {"email": "busy@example.com"})
    others = [
        await service.create_customer(tenant, {"email": f"o{n}@example.com"}) for n in range(5)
    ]
    await asyncio.gather(
        *(
            service.record_order(tenant, customer.id, {"order_id": f"o-{n}", "total": "1"})
            for n in range(20)
        ),
        *(service.add_note(tenant, o.id, {"note": "hello"}) for o in others),
    )
    verification = await gdpr.verify_audit_trail(tenant)
    assert (verification.intact, verification.events, verification.chains) == (True, 31, 6)
    trail = (await gdpr.list_audit_events(tenant, customer_id=customer.id, page_size=50)).items
    assert sorted(e.sequence for e in trail) == list(range(1, 22))


# ---------------------------------------------------------------- migration


@pytest.fixture(params=["sqlite", "postgres"])
async def legacy_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A new database of each kind at revision 0005, before the trail was chained."""
    return await database_of_kind(request, tmp_path_factory, revision="0005")


async def test_the_migration_chains_an_existing_trail_and_keeps_its_order_references(
    legacy_url: str,
) -> None:
    tables = default_models().tables()
    tenant = new_tenant_id()
    engine = create_engine(legacy_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                tables["customer"]
                .insert()
                .values(
                    tenant_id=tenant,
                    id=1,
                    email="old@example.com",
                    preferences={},
                    tags=[],
                    total_orders=1,
                    total_spent=Decimal(5),
                    average_order_value=Decimal(5),
                    consent_data={},
                    is_anonymized=False,
                    created_at=LONG_AGO,
                    updated_at=LONG_AGO,
                )
            )
            await connection.execute(
                tables["order"]
                .insert()
                .values(
                    tenant_id=tenant,
                    id=9,
                    customer_id=1,
                    order_id="ORDER-Anna-Rossi",
                    total=Decimal(5),
                    currency="EUR",
                    created_at=LONG_AGO,
                    recorded_at=LONG_AGO,
                )
            )
            events = tables["audit_event"]
            await connection.execute(
                events.insert(),
                [
                    {
                        "tenant_id": tenant,
                        "id": n,
                        "customer_id": 1,
                        "actor": None,
                        "action": action,
                        "occurred_at": LONG_AGO + timedelta(minutes=n),
                        "changed_fields": [],
                        "details": details,
                    }
                    for n, (action, details) in enumerate(
                        [
                            ("customer.created", {}),
                            ("order.recorded", {"order_id": "ORDER-Anna-Rossi"}),
                            ("customer.updated", {"email": "old@example.com"}),
                        ],
                        start=1,
                    )
                ],
            )
    finally:
        await engine.dispose()

    await upgrade(legacy_url)

    storage = SqlAlchemyStorage.from_url(legacy_url)
    try:
        gdpr = GDPRService(storage.unit_of_work, FixedClock())
        verification = await gdpr.verify_audit_trail(tenant)
        trail = (await gdpr.list_audit_events(tenant)).items
    finally:
        await storage.close()
    assert (verification.intact, verification.events) == (True, 3)
    assert [(e.sequence, e.details) for e in trail] == [(1, {}), (2, {"order": 9}), (3, {})]


# ------------------------------------------------------------ a host's own audit table


class HostBase(DeclarativeBase):
    metadata = MetaData()


class HostAuditEvent(HostBase, AuditEventMixin):
    __tablename__ = "host_audit_trail"


HOST_MODELS: ModelSet = build_models(HostBase, audit_event=HostAuditEvent)


async def test_a_host_audit_table_gets_its_triggers_from_create_all(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    postgresql = engine.dialect.name == "postgresql"
    async with engine.begin() as connection:
        if postgresql:
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await connection.run_sync(HOST_MODELS.metadata.create_all)
    storage = SqlAlchemyStorage.from_url(empty_database_url, models=HOST_MODELS)
    service, gdpr = _services(storage, FixedClock(LONG_AGO))
    tenant = new_tenant_id()
    try:
        customer = await service.create_customer(tenant, {"email": "host@example.com"})
        await service.update_customer(tenant, customer.id, {"first_name": "Ada"})
        verification = await gdpr.verify_audit_trail(tenant)
        trail = (await gdpr.list_audit_events(tenant)).items
    finally:
        await storage.close()
    assert (verification.intact, verification.events) == (True, 2)
    # The database's clock on PostgreSQL; the service's elsewhere.
    assert all((e.occurred_at > LONG_AGO) == postgresql for e in trail)
    triggers = (
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'host_audit_trail_append'"
        if postgresql
        else "SELECT count(*) FROM sqlite_master WHERE name = 'host_audit_trail_append'"
    )
    async with engine.begin() as connection:
        # What a host's own migrations call, once the table exists.
        await connection.run_sync(drop_audit_triggers, HOST_MODELS)
        assert (await connection.execute(text(triggers))).scalar_one() == 0
        await connection.run_sync(create_audit_triggers, HOST_MODELS)
        assert (await connection.execute(text(triggers))).scalar_one() == 1
        await connection.run_sync(HOST_MODELS.metadata.drop_all)
        assert (await connection.execute(text(triggers))).scalar_one() == 0
    await engine.dispose()
