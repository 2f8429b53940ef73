"""Row-level security on PostgreSQL: a second wall that holds even for raw SQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.domain import DuplicateDecision
from linkbay_customers.ports import duplicate_decisions
from linkbay_customers.testing import (
    T0,
    FixedClock,
    add_address,
    add_customer,
    add_note,
    add_order,
)
from linkbay_customers_sqlalchemy import (
    SqlAlchemyStorage,
    default_models,
)

TABLES = [t.name for t in default_models().tables().values()]


@pytest.fixture
async def two_tenants(postgres_url: str) -> tuple[str, str]:
    """Tenants A and B, each with a customer, an address, a note and an order, and a
    second customer marked as another person than the first."""
    storage = SqlAlchemyStorage.from_url(postgres_url)
    tenants = (f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}")
    for tenant in tenants:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow, email=f"{tenant}@example.com")
            await add_address(uow, customer.id)
            await add_note(uow, customer.id)
            await add_order(uow, customer.id)
            other = await add_customer(uow, email=f"other.{tenant}@example.com")
            await duplicate_decisions(uow).add_decision(
                DuplicateDecision(
                    tenant_id=tenant,
                    customer_id=customer.id,
                    other_id=other.id,
                    decided_by=None,
                    decided_at=T0,
                )
            )
            await uow.commit()
    await storage.close()
    return tenants


async def test_the_application_role_is_neither_superuser_nor_owner(
    app_storage: SqlAlchemyStorage,
) -> None:
    async with app_storage.engine.connect() as connection:
        role = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        owned = (
            await connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
            )
        ).scalar_one()
    assert (role.rolsuper, role.rolbypassrls, owned) == (False, False, 0)


async def test_raw_sql_in_a_tenants_transaction_sees_only_that_tenant(
    app_storage: SqlAlchemyStorage, two_tenants: tuple[str, str]
) -> None:
    a, b = two_tenants
    async with app_storage.unit_of_work(a) as uow:
        connection = await uow.connection()
        for table in TABLES:
            seen = await connection.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))
            assert set(seen.scalars()) <= {a}, table
            foreign = await connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :b"), {"b": b}
            )
            assert foreign.scalar_one() == 0, table
        changed = await connection.execute(
            text("UPDATE customers SET first_name = 'pwned' WHERE tenant_id = :b"), {"b": b}
        )
        removed = await connection.execute(
            text("DELETE FROM customer_notes WHERE tenant_id = :b"), {"b": b}
        )
        undecided = await connection.execute(
            text("DELETE FROM customer_duplicate_decisions WHERE tenant_id = :b"), {"b": b}
        )
        assert (changed.rowcount, removed.rowcount, undecided.rowcount) == (0, 0, 0)


async def test_raw_sql_cannot_insert_a_row_of_another_tenant(
    app_storage: SqlAlchemyStorage, two_tenants: tuple[str, str]
) -> None:
    a, b = two_tenants
    async with app_storage.unit_of_work(a) as uow:
        connection = await uow.connection()
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text(
                    "INSERT INTO customer_audit_events (tenant_id, id, action, occurred_at,"
                    " changed_fields, details, chain_id, sequence, hash) VALUES"
                    " (:b, 424242, 'customer.updated', now(), '[]', '{}', 0, 424242, '')"
                ),
                {"b": b},
            )


async def test_without_a_tenant_nothing_is_visible_and_the_setting_ends_with_the_transaction(
    app_storage: SqlAlchemyStorage, two_tenants: tuple[str, str]
) -> None:
    a, _ = two_tenants
    async with app_storage.unit_of_work(a) as uow:
        connection = await uow.connection()
        assert (await connection.execute(text("SELECT count(*) FROM customers"))).scalar_one() == 2
    # The same pooled connection (pool size 1), in a new transaction: SET LOCAL is gone.
    async with app_storage.engine.connect() as connection:
        for table in TABLES:
            count = await connection.execute(text(f"SELECT count(*) FROM {table}"))
            assert count.scalar_one() == 0, table


async def test_the_service_runs_entirely_as_the_application_role(
    app_storage: SqlAlchemyStorage,
) -> None:
    service = CustomerService(app_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    source = await service.create_customer(tenant, {"email": "one@example.com"})
    target = await service.create_customer(tenant, {"email": "two@example.com"})
    await service.record_order(tenant, source.id, {"order_id": "o-1", "total": "12.50"})
    third = await service.create_customer(tenant, {"email": "three@example.com"})
    await service.mark_distinct(tenant, source.id, third.id)
    await service.mark_distinct(tenant, target.id, third.id)
    await service.undo_distinct(tenant, target.id, third.id)
    merged = await service.merge_customers(
        tenant, {"source_customer_id": source.id, "target_customer_id": target.id}
    )
    assert (merged.total_orders, str(merged.total_spent)) == (1, "12.5000")
    # The merge carried the decision to the target; the hard deletion removes it.
    assert [d.customer_id for d in await service.list_duplicate_decisions(tenant, third.id)] == [
        target.id
    ]
    await service.delete_customer(tenant, target.id, soft_delete=False)
    assert await service.list_duplicate_decisions(tenant, third.id) == []
    await service.delete_customer(tenant, third.id, soft_delete=False)
    assert (await service.list_customers(tenant, {"include_deleted": True})).total == 0


@pytest.mark.parametrize("suffix", ["plain", "o'brien", "back\\slash", "E'x'';--"])
async def test_a_first_statement_runs_under_its_tenant_sent_with_begin(
    app_storage: SqlAlchemyStorage, two_tenants: tuple[str, str], suffix: str
) -> None:
    a, b = two_tenants
    odd = f"{a}-{suffix}"
    async with app_storage.unit_of_work(odd) as uow:
        await add_customer(uow, email="odd@example.com")
        await uow.commit()
    for tenant in (a, odd):
        for read_only in (False, True):
            async with app_storage.unit_of_work(tenant, read_only=read_only) as uow:
                # The first statement of the transaction: the tenant went with its BEGIN.
                seen = await uow.execute(
                    text(
                        "SELECT current_setting('linkbay.tenant_id'),"
                        " current_setting('transaction_read_only'),"
                        " array_agg(DISTINCT tenant_id) FROM customers"
                    ),
                    action="reading",
                )
                assert seen.one() == (tenant, "on" if read_only else "off", [tenant])
                foreign = await uow.execute(
                    text("SELECT count(*) FROM customers WHERE tenant_id = :b"),
                    {"b": b},
                    action="reading",
                )
                assert foreign.scalar_one() == 0


async def test_a_tenant_setting_no_statement_took_never_reaches_the_next_transaction(
    app_storage: SqlAlchemyStorage, two_tenants: tuple[str, str]
) -> None:
    a, _ = two_tenants
    async with app_storage.unit_of_work(a) as uow:
        # Refused before it reaches the database: its BEGIN, and the setting, never go.
        with pytest.raises(Exception, match="bind parameter"):
            await uow.execute(text("SELECT :missing"), action="reading")
    # The same pooled connection (pool size 1), in a new transaction: no tenant.
    async with app_storage.engine.connect() as connection:
        setting = await connection.execute(
            text("SELECT current_setting('linkbay.tenant_id', true)")
        )
        count = await connection.execute(text("SELECT count(*) FROM customers"))
        assert (setting.scalar_one() or "", count.scalar_one()) == ("", 0)


@pytest.mark.parametrize("first", ["statement", "connection"])
async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    postgres_url: str, app_url: str, two_tenants: tuple[str, str], first: str
) -> None:
    a, _ = two_tenants
    storage = SqlAlchemyStorage.from_url(app_url, pool_size=1, max_overflow=0)
    admin = SqlAlchemyStorage.from_url(postgres_url)
    count = text("SELECT count(*) FROM customers")
    try:
        async with storage.unit_of_work(a) as uow:
            pid = (await uow.execute(text("SELECT pg_backend_pid()"), action="reading")).scalar()
        async with admin.engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with storage.unit_of_work(a, read_only=True) as uow:
            if first == "connection":
                result = await (await uow.connection()).execute(count)
            else:
                result = await uow.execute(count, action="reading")
            assert result.scalar_one() == 2  # tenant A's two customers, no one else's
    finally:
        await storage.close()
        await admin.close()
