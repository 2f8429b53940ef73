"""Storage errors say whether retrying can help: a lock may clear, a missing table will not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from linkbay_customers import (
    CustomerService,
    HeuristicIntelligence,
    SchemaNotMigrated,
    StorageError,
    StorageRejected,
)
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine
from linkbay_customers_sqlalchemy._errors import storage_error


def _service(storage: SqlAlchemyStorage) -> CustomerService:
    return CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())


@pytest.fixture
async def impatient_storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    """A storage that gives up at once on a lock another transaction holds."""
    if database_url.startswith("postgresql"):
        engine = create_engine(
            database_url, connect_args={"server_settings": {"lock_timeout": "50"}}
        )
    else:
        engine = create_engine(database_url)

        @event.listens_for(engine.sync_engine, "connect")
        def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 0")
            cursor.close()

    storage = SqlAlchemyStorage(engine, owns_engine=True)
    yield storage
    await storage.close()


async def test_a_lock_held_by_another_transaction_is_retryable_and_a_retry_succeeds(
    database_url: str, impatient_storage: SqlAlchemyStorage
) -> None:
    service = _service(impatient_storage)
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, {"email": "locked@example.com"})
    holder_storage = SqlAlchemyStorage.from_url(database_url)
    try:
        async with holder_storage.unit_of_work(tenant) as holder:
            # Locks the row on PostgreSQL; takes the database's write lock on SQLite.
            await holder.customers.get(customer.id, for_update=True)
            with pytest.raises(StorageError) as caught:
                await service.update_customer(tenant, customer.id, {"first_name": "Anna"})
        assert not isinstance(caught.value, StorageRejected)
        assert caught.value.retryable is True
        assert caught.value.code == "storage_error"

        updated = await service.update_customer(tenant, customer.id, {"first_name": "Anna"})
        assert updated.first_name == "Anna"
    finally:
        await holder_storage.close()


async def test_a_database_without_the_schema_is_rejected_as_not_migrated_and_not_retryable(
    empty_database_url: str,
) -> None:
    storage = SqlAlchemyStorage.from_url(empty_database_url)
    try:
        with pytest.raises(SchemaNotMigrated) as caught:
            await _service(storage).get_customer("acme", 1)
        assert isinstance(caught.value, StorageRejected)
        assert caught.value.retryable is False
        assert caught.value.code == "schema_not_migrated"
        assert caught.value.table == "customers"
        assert "linkbay-customers migrate --database-url" in caught.value.message
    finally:
        await storage.close()


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "retryable"),
    [
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock detected
        ("55P03", True),  # lock not available
        ("57014", True),  # statement timeout
        ("08006", True),  # connection failure
        ("53300", True),  # too many connections
        ("23502", False),  # not null violation
        ("23503", False),  # foreign key violation
        ("22001", False),  # value too long for the column
        ("42703", False),  # undefined column
        ("42883", False),  # undefined function
    ],
)
def test_postgresql_errors_are_retryable_by_their_sqlstate(sqlstate: str, retryable: bool) -> None:
    error = storage_error("writing failed", _DriverError(sqlstate))
    assert error.retryable is retryable
    assert isinstance(error, StorageRejected) is not retryable
