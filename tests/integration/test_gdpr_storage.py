"""Erasure and retention storage on SQL; on PostgreSQL, the append-only audit trail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import AuditAction, OrderShipping
from linkbay_customers.testing import (
    T0,
    FixedClock,
    add_address,
    add_audit_event,
    add_consent_event,
    add_customer,
    add_note,
    add_order,
    new_tenant_id,
)
from linkbay_customers_sqlalchemy import (
    AuditEventMixin,
    ModelSet,
    SqlAlchemyStorage,
    SqlAlchemyUnitOfWork,
    build_models,
    create_audit_erasure_functions,
    create_engine,
    drop_audit_erasure_functions,
    grant_application_role,
    upgrade,
)
from linkbay_customers_sqlalchemy._migrate import alembic_config
from tests._databases import new_postgres_database

CUTOFF = T0 + timedelta(days=30)
SHIPPING = OrderShipping(recipient_name="Mario Rossi", city="Milano", country="IT")


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(database_url)
    yield storage
    await storage.close()


# ------------------------------------------------------------------- retention


async def test_inactive_customers_are_listed_by_id_in_keyset_chunks(
    storage: SqlAlchemyStorage, tenant: str, other_tenant: str
) -> None:
    old, recent = T0, CUTOFF + timedelta(days=1)
    async with storage.unit_of_work(other_tenant) as uow:
        await add_customer(uow)
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        idle = await add_customer(uow)
        deleted = await add_customer(uow, deleted_at=old)
        ordered_long_ago = await add_customer(uow, last_order_at=old)
        await add_customer(uow, updated_at=recent)
        await add_customer(uow, last_order_at=recent)
        await add_customer(uow, is_anonymized=True, email=None, deleted_at=old)
        await add_customer(uow, updated_at=CUTOFF)  # not before the cutoff
        last = await add_customer(uow)
        await uow.commit()
    expected = [idle.id, deleted.id, ordered_long_ago.id, last.id]
    async with storage.unit_of_work(tenant) as uow:
        everyone = await uow.customers.list_inactive(CUTOFF, after_id=0, limit=100)
        first = await uow.customers.list_inactive(CUTOFF, after_id=0, limit=2)
        rest = await uow.customers.list_inactive(CUTOFF, after_id=first[-1].id, limit=2)
        after_last = await uow.customers.list_inactive(CUTOFF, after_id=last.id, limit=2)
    assert [c.id for c in everyone] == expected
    assert everyone[1] == deleted
    assert [c.id for c in [*first, *rest]] == expected
    assert after_last == []


# --------------------------------------------------------- erasure, table by table


async def test_deleting_for_customers_removes_their_rows_only(
    storage: SqlAlchemyStorage, tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        one, two, kept = [await add_customer(uow) for _ in range(3)]
        for customer in (one, two, kept):
            await add_address(uow, customer.id)
            await add_note(uow, customer.id)
            await add_order(uow, customer.id)
            await add_consent_event(uow, customer.id)
            await add_audit_event(uow, customer.id)
        await add_address(uow, one.id, is_default=True)
        ids = [one.id, two.id]
        assert await uow.addresses.delete_for_customers(ids) == 3
        assert await uow.notes.delete_for_customers(ids) == 2
        assert await uow.orders.delete_for_customers(ids) == 2
        assert await uow.consents.delete_for_customers(ids) == 2
        assert await uow.audit.delete_for_customers(ids) == 2
        for repository in (uow.addresses, uow.notes, uow.orders, uow.consents, uow.audit):
            assert await repository.delete_for_customers([]) == 0
        for gone in ids:
            assert await uow.addresses.list_for_customer(gone) == []
            assert await uow.notes.list_for_customer(gone) == []
            assert (await uow.orders.list_for_customer(gone, page=1, page_size=10)).total == 0
            assert await uow.consents.list_for_customer(gone) == []
            assert (await uow.audit.list(customer_id=gone)).total == 0
        assert len(await uow.addresses.list_for_customer(kept.id)) == 1
        assert len(await uow.notes.list_for_customer(kept.id)) == 1
        assert (await uow.orders.list_for_customer(kept.id, page=1, page_size=10)).total == 1
        assert len(await uow.consents.list_for_customer(kept.id)) == 1
        assert (await uow.audit.list(customer_id=kept.id)).total == 1
        # The order lines went with their orders: the customers can now be removed.
        for gone in ids:
            await uow.customers.delete(gone)
        await uow.commit()


async def test_scrubbing_for_customers_removes_personal_values_once(
    storage: SqlAlchemyStorage, tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        one, two, kept = [await add_customer(uow) for _ in range(3)]
        for customer in (one, two, kept):
            await add_note(uow, customer.id)
            await add_order(uow, customer.id, shipping=SHIPPING)
            await add_consent_event(uow, customer.id, ip_address="192.0.2.1", user_agent="curl/8")
            await add_audit_event(uow, customer.id, details={"email": "mario@example.com"})
        plain = await add_order(uow, one.id)  # no shipping, but named lines
        bare = await add_order(uow, one.id, items=())  # nothing to scrub
        await add_consent_event(uow, two.id, source="web")  # neither IP nor agent
        await add_consent_event(uow, two.id)  # nothing to scrub
        await add_audit_event(uow, two.id)  # empty details
        ids = [one.id, two.id]
        counts = [
            await uow.notes.scrub_for_customers(ids),
            await uow.orders.scrub_for_customers(ids),
            await uow.consents.scrub_for_customers(ids),
            await uow.audit.scrub_for_customers(ids),
        ]
        again = [
            await uow.notes.scrub_for_customers(ids),
            await uow.orders.scrub_for_customers(ids),
            await uow.consents.scrub_for_customers(ids),
            await uow.audit.scrub_for_customers(ids),
        ]
        none = [
            await repository.scrub_for_customers([])
            for repository in (uow.notes, uow.orders, uow.consents, uow.audit)
        ]
        await uow.commit()
    assert counts == [2, 3, 3, 2]
    assert again == none == [0, 0, 0, 0]
    async with storage.unit_of_work(tenant) as uow:
        for customer_id in ids:
            assert [n.note for n in await uow.notes.list_for_customer(customer_id)] == [""]
            orders = (await uow.orders.list_for_customer(customer_id, page=1, page_size=10)).items
            assert orders
            assert all(o.shipping is None for o in orders)
            assert all(o.items for o in orders if o.id != bare.id), "the order lines stay"
            assert {i.product_name for o in orders for i in o.items} == {""}
            events = await uow.consents.list_for_customer(customer_id)
            assert {(e.source, e.ip_address, e.user_agent) for e in events} == {(None, None, None)}
            trail = (await uow.audit.list(customer_id=customer_id)).items
            assert trail
            assert all(e.details == {} for e in trail)
        assert await uow.orders.get_by_order_id(bare.order_id) == bare
        scrubbed_plain = await uow.orders.get_by_order_id(plain.order_id)
        assert scrubbed_plain is not None
        assert [i.product_id for i in scrubbed_plain.items] == [i.product_id for i in plain.items]
        assert [n.note for n in await uow.notes.list_for_customer(kept.id)] != [""]
        kept_order = (await uow.orders.list_for_customer(kept.id, page=1, page_size=1)).items
        assert kept_order[0].shipping == SHIPPING
        assert [i.product_name for i in kept_order[0].items] == ["Mug", "Tea"]
        (kept_consent,) = await uow.consents.list_for_customer(kept.id)
        assert kept_consent.ip_address == "192.0.2.1"
        (kept_event,) = (await uow.audit.list(customer_id=kept.id)).items
        assert kept_event.details == {"email": "mario@example.com"}


async def test_erasure_reaches_no_row_of_another_tenant(
    storage: SqlAlchemyStorage, tenant: str, other_tenant: str
) -> None:
    async with storage.unit_of_work(tenant) as uow:
        customer = await add_customer(uow)
        await add_address(uow, customer.id)
        await add_note(uow, customer.id)
        await add_order(uow, customer.id, shipping=SHIPPING)
        await add_consent_event(uow, customer.id, ip_address="192.0.2.1")
        await add_audit_event(uow, customer.id, details={"a": 1})
        await uow.commit()
    async with storage.unit_of_work(other_tenant) as uow:
        ids = [customer.id]
        assert await uow.customers.list_inactive(CUTOFF, after_id=0, limit=10) == []
        for repository in (uow.notes, uow.orders, uow.consents, uow.audit):
            assert await repository.scrub_for_customers(ids) == 0
        for repository in (uow.addresses, uow.notes, uow.orders, uow.consents, uow.audit):
            assert await repository.delete_for_customers(ids) == 0
        await uow.commit()
    async with storage.unit_of_work(tenant) as uow:
        assert len(await uow.addresses.list_for_customer(customer.id)) == 1
        assert [n.note for n in await uow.notes.list_for_customer(customer.id)] != [""]
        (order,) = (await uow.orders.list_for_customer(customer.id, page=1, page_size=1)).items
        assert order.shipping == SHIPPING
        assert (await uow.consents.list_for_customer(customer.id))[0].ip_address == "192.0.2.1"
        assert (await uow.audit.list(customer_id=customer.id)).items[0].details == {"a": 1}


# --------------------------------------------- PostgreSQL: an append-only audit trail


async def _new_role(admin: AsyncEngine) -> str:
    role = f"app_{uuid.uuid4().hex[:10]}"
    async with admin.begin() as connection:
        await connection.execute(
            text(f"CREATE ROLE {role} LOGIN PASSWORD 'app-secret' NOSUPERUSER NOBYPASSRLS")
        )
    return role


def _as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password="app-secret").render_as_string(False)


@pytest.fixture
async def app_storage(postgres_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    """The shared PostgreSQL database, reached as a fresh application role."""
    admin = create_engine(postgres_url)
    role = await _new_role(admin)
    await grant_application_role(admin, role)
    await admin.dispose()
    storage = SqlAlchemyStorage.from_url(_as_role(postgres_url, role), pool_size=1)
    yield storage
    await storage.close()


async def _audit_trail(
    storage: SqlAlchemyStorage, tenant: str, customer_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    async with storage.unit_of_work(tenant) as uow:
        return {
            cid: [dict(e.details) for e in (await uow.audit.list(customer_id=cid)).items]
            for cid in customer_ids
        }


async def _trail_of_two_tenants(postgres_url: str) -> tuple[str, str, int, int]:
    """Tenants A and B, each with audit events of the same two customer ids."""
    owner = SqlAlchemyStorage.from_url(postgres_url)
    a, b = new_tenant_id("a"), new_tenant_id("b")
    async with owner.unit_of_work(a) as uow:
        erased, kept = [await add_customer(uow) for _ in range(2)]
        await uow.commit()
    for tenant in (a, b):
        async with owner.unit_of_work(tenant) as uow:
            # The trail has no foreign key: B's events may name A's customer ids.
            for cid in (erased.id, kept.id):
                await add_audit_event(uow, cid, details={"email": f"{cid}@{tenant}.example"})
                await add_audit_event(uow, cid, details={"note": "second"})
            await uow.commit()
    await owner.close()
    return a, b, erased.id, kept.id


async def test_the_application_role_cannot_update_or_delete_audit_events(
    app_storage: SqlAlchemyStorage, postgres_url: str
) -> None:
    a, _, erased, _ = await _trail_of_two_tenants(postgres_url)
    for statement in (
        "UPDATE customer_audit_events SET details = '{}' WHERE customer_id = :id",
        "DELETE FROM customer_audit_events WHERE customer_id = :id",
        "TRUNCATE customer_audit_events",
    ):
        async with app_storage.unit_of_work(a) as uow:
            connection = await uow.connection()
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.execute(text(statement), {"id": erased})
    async with app_storage.unit_of_work(a) as uow:
        # Reading and appending are what the application does with the trail.
        await add_audit_event(uow, erased)
        assert (await uow.audit.list(customer_id=erased)).total == 3
        await uow.commit()


async def test_the_application_role_erases_through_the_functions_in_its_tenant_only(
    app_storage: SqlAlchemyStorage, postgres_url: str
) -> None:
    a, b, erased, kept = await _trail_of_two_tenants(postgres_url)
    b_before = await _audit_trail(app_storage, b, [erased, kept])
    async with app_storage.unit_of_work(a) as uow:
        assert await uow.audit.scrub_for_customers([erased]) == 2
        assert await uow.audit.scrub_for_customers([erased]) == 0
        await uow.commit()
    assert await _audit_trail(app_storage, a, [erased, kept]) == {
        erased: [{}, {}],
        kept: [{"email": f"{kept}@{a}.example"}, {"note": "second"}],
    }
    async with app_storage.unit_of_work(a) as uow:
        assert await uow.audit.delete_for_customers([erased, kept]) == 4
        await uow.commit()
    assert await _audit_trail(app_storage, a, [erased, kept]) == {erased: [], kept: []}
    assert await _audit_trail(app_storage, b, [erased, kept]) == b_before


async def test_the_functions_refuse_a_tenant_other_than_the_transactions(
    app_storage: SqlAlchemyStorage, postgres_url: str
) -> None:
    a, b, erased, kept = await _trail_of_two_tenants(postgres_url)
    b_before = await _audit_trail(app_storage, b, [erased, kept])
    async with app_storage.unit_of_work(a) as uow:
        connection = await uow.connection()
        for function in (
            "linkbay_scrub_customer_audit_events",
            "linkbay_delete_customer_audit_events",
        ):
            changed = await connection.execute(
                text(f"SELECT {function}(:b, ARRAY[:erased, :kept]::bigint[])"),
                {"b": b, "erased": erased, "kept": kept},
            )
            assert changed.scalar_one() == 0
        await uow.commit()
    async with app_storage.engine.connect() as connection:  # no tenant set at all
        changed = await connection.execute(
            text("SELECT linkbay_delete_customer_audit_events(:b, ARRAY[:kept]::bigint[])"),
            {"b": b, "kept": kept},
        )
        assert changed.scalar_one() == 0
        await connection.commit()
    assert await _audit_trail(app_storage, b, [erased, kept]) == b_before


async def test_no_other_role_may_call_the_functions(postgres_url: str) -> None:
    admin = create_engine(postgres_url)
    stranger = await _new_role(admin)
    async with admin.begin() as connection:
        await connection.execute(text(f"GRANT SELECT ON customer_audit_events TO {stranger}"))
    await admin.dispose()
    engine = create_engine(_as_role(postgres_url, stranger))
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.execute(
                    text("SELECT linkbay_delete_customer_audit_events('t', ARRAY[1]::bigint[])")
                )
    finally:
        await engine.dispose()


async def test_the_gdpr_service_erases_as_the_application_role(
    app_storage: SqlAlchemyStorage,
) -> None:
    clock = FixedClock()
    service = CustomerService(app_storage.unit_of_work, clock, HeuristicIntelligence())
    gdpr = GDPRService(app_storage.unit_of_work, clock)
    tenant = new_tenant_id()
    anonymized = await service.create_customer(tenant, {"email": "anna@example.com"})
    deleted = await service.create_customer(tenant, {"email": "bruno@example.com"})
    await service.add_note(tenant, anonymized.id, {"note": "prefers calls"}, created_by="agent")

    assert (await gdpr.delete_customer_data(tenant, anonymized.id))["method"] == "anonymized"
    assert (await gdpr.delete_customer_data(tenant, deleted.id, anonymize=False))["success"]

    trail = (await gdpr.list_audit_events(tenant)).items
    assert [(e.customer_id, e.action) for e in trail if e.action.value.startswith("data.")] == [
        (anonymized.id, AuditAction.DATA_ANONYMIZED),
        (deleted.id, AuditAction.DATA_ERASED),
    ]
    before = [e for e in trail if e.customer_id == anonymized.id][:-1]
    assert before
    assert all(e.details == {} for e in before)
    async with app_storage.unit_of_work(tenant) as uow:
        assert await uow.customers.get(deleted.id, include_deleted=True) is None
        assert [n.note for n in await uow.notes.list_for_customer(anonymized.id)] == [""]


async def test_bulk_writes_fall_back_to_insert_when_row_level_security_refuses_copy(
    app_storage: SqlAlchemyStorage,
) -> None:
    service = CustomerService(app_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = new_tenant_id()
    for chunk in (["a", "b"], ["c"]):
        rows = [{"email": f"{name}@example.com"} for name in chunk]
        assert (await service.import_customers(tenant, rows)).created == len(chunk)
    assert (await service.list_customers(tenant)).total == 3
    trail = await GDPRService(app_storage.unit_of_work, FixedClock()).list_audit_events(tenant)
    assert trail.total == 3
    assert app_storage._copy_refused >= {"customers", "customer_audit_events"}


# ------------------------------------------- migrations and custom model sets


async def _function_definitions(url: str, table: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT p.proname, pg_get_functiondef(p.oid) AS definition, p.prosecdef,"
                    " p.proconfig, p.proacl::text[] AS acl"
                    " FROM pg_proc AS p WHERE p.proname IN (:scrub, :delete) ORDER BY p.proname"
                ),
                {"scrub": f"linkbay_scrub_{table}", "delete": f"linkbay_delete_{table}"},
            )
            return {row.proname: row for row in rows}
    finally:
        await engine.dispose()


async def test_the_migration_and_the_models_create_the_same_functions(
    postgres_server: str, postgres_url: str
) -> None:
    from linkbay_customers_sqlalchemy import default_models

    created = await new_postgres_database(postgres_server, migrate=False)
    engine = create_engine(created)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await connection.run_sync(default_models().metadata.create_all)
    await engine.dispose()
    migrated = await _function_definitions(postgres_url, "customer_audit_events")
    from_models = await _function_definitions(created, "customer_audit_events")
    assert len(migrated) == 2
    for name, row in migrated.items():
        other = from_models[name]
        assert (row.definition, row.prosecdef, row.proconfig) == (
            other.definition,
            other.prosecdef,
            other.proconfig,
        )
        assert row.prosecdef
        assert row.proconfig == ["search_path=pg_catalog, pg_temp"]
        # EXECUTE for the owner only (until granted): not for PUBLIC ("=X/owner").
        assert not any(entry.startswith("=") for entry in row.acl or [])
        assert not any(entry.startswith("=") for entry in other.acl or [])


async def test_upgrading_narrows_an_existing_application_role_and_downgrading_restores_it(
    postgres_server: str,
) -> None:
    url = await new_postgres_database(postgres_server, migrate=False)
    await upgrade(url, "0002")
    admin = create_engine(url)
    role = await _new_role(admin)
    async with admin.begin() as connection:
        # What grant_application_role granted before revision 0003.
        await connection.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON customer_audit_events TO {role}")
        )
        await connection.execute(text(f"GRANT SELECT, INSERT ON customers TO {role}"))
        await connection.execute(
            text(f"GRANT USAGE, SELECT ON SEQUENCE customer_audit_events_id_seq TO {role}")
        )
    await upgrade(admin)

    async def privileges() -> tuple[bool, bool, bool, bool]:
        async with admin.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT has_table_privilege(:r, 'customer_audit_events', 'UPDATE'),"
                        " has_table_privilege(:r, 'customer_audit_events', 'DELETE'),"
                        " has_table_privilege(:r, 'customer_audit_events', 'INSERT'),"
                        " coalesce(has_function_privilege(:r, to_regprocedure("
                        "'linkbay_scrub_customer_audit_events(text, bigint[])'), 'EXECUTE'), false)"
                    ),
                    {"r": role},
                )
            ).one()
            return (row[0], row[1], row[2], row[3])

    assert await privileges() == (False, False, True, True)
    storage = SqlAlchemyStorage.from_url(_as_role(url, role))
    tenant = new_tenant_id()
    try:
        async with storage.unit_of_work(tenant) as uow:
            await add_audit_event(uow, 7, details={"email": "x@example.com"})
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.audit.scrub_for_customers([7]) == 1
            assert await uow.audit.delete_for_customers([7]) == 1
            await uow.commit()
    finally:
        await storage.close()

    async with admin.connect() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0002"))
        await connection.commit()
    assert await privileges() == (True, True, True, False)
    await admin.dispose()


class HostBase(DeclarativeBase):
    metadata = MetaData()


class HostAuditEvent(HostBase, AuditEventMixin):
    __tablename__ = "host_audit_trail"


HOST_MODELS: ModelSet = build_models(HostBase, audit_event=HostAuditEvent)


async def test_a_custom_audit_table_gets_its_functions_from_create_all(
    postgres_server: str,
) -> None:
    url = await new_postgres_database(postgres_server, migrate=False)
    admin = create_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await connection.run_sync(HOST_MODELS.metadata.create_all)
    role = await _new_role(admin)
    await grant_application_role(admin, role, models=HOST_MODELS)
    storage = SqlAlchemyStorage.from_url(_as_role(url, role), models=HOST_MODELS)
    tenant = new_tenant_id()
    try:
        async with storage.unit_of_work(tenant) as uow:
            await add_audit_event(uow, 7, details={"email": "x@example.com"})
            await add_audit_event(uow, 8, details={"email": "y@example.com"})
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            connection = await uow.connection()
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.execute(text("DELETE FROM host_audit_trail"))
        async with storage.unit_of_work(tenant) as uow:
            assert isinstance(uow, SqlAlchemyUnitOfWork)
            assert await uow.audit.scrub_for_customers([7]) == 1
            assert await uow.audit.delete_for_customers([8]) == 1
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert [e.details for e in (await uow.audit.list()).items] == [{}]
    finally:
        await storage.close()
    functions = text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'linkbay_%host_audit_trail'")
    async with admin.begin() as connection:
        # What a host's own migrations call, once the table exists.
        await connection.run_sync(drop_audit_erasure_functions, HOST_MODELS)
        assert (await connection.execute(functions)).scalar_one() == 0
        await connection.run_sync(create_audit_erasure_functions, HOST_MODELS)
        assert (await connection.execute(functions)).scalar_one() == 2
        await connection.run_sync(HOST_MODELS.metadata.drop_all)
        assert (await connection.execute(functions)).scalar_one() == 0
    await admin.dispose()
