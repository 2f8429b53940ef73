"""Erasure, checked in SQLite's files themselves: the database, its ``-wal`` and ``-journal``.

The storage stays open while the files are read, with pooled connections alive,
as in a running server: the engine's closing checkpoint must not be what cleans
them. The erasures run twice: on this SQLite build, and on connections that
start with ``secure_delete`` off, as most builds do (this one compiles it in).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from linkbay_customers import GDPRService
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy import _engine as engine_module
from linkbay_customers_sqlalchemy import _storage as storage_module
from tests._databases import new_sqlite_database
from tests.integration.test_gdpr_erasure import services
from tests.unit.test_gdpr import live_a_life, personal_values

# Stored by the scripted life besides its final values: the last name it replaced
# and the city of its addresses (deleted by anonymization, like the addresses).
OVERWRITTEN_OR_DELETED = ["Rossi", "Milano"]

Erasure = Callable[[GDPRService, FixedClock, str, int], Awaitable[Any]]


async def _anonymize(gdpr: GDPRService, _clock: FixedClock, tenant: str, customer: int) -> Any:
    return await gdpr.delete_customer_data(tenant, customer, anonymize=True)


async def _delete(gdpr: GDPRService, _clock: FixedClock, tenant: str, customer: int) -> Any:
    return await gdpr.delete_customer_data(tenant, customer, anonymize=False)


async def _purge(gdpr: GDPRService, clock: FixedClock, tenant: str, customer: int) -> Any:
    clock.advance(days=800)
    result = await gdpr.purge_inactive(tenant, timedelta(days=365), dry_run=False)
    assert customer in result.customer_ids
    return result


ERASURES = {"anonymization": _anonymize, "hard deletion": _delete, "retention purge": _purge}


def database_files(database: Path) -> list[Path]:
    """The database file and every file SQLite keeps beside it (-wal, -shm, -journal)."""
    return sorted(database.parent.glob(f"{database.name}*"))


def personal_bytes(database: Path) -> dict[str, dict[str, int]]:
    """file suffix ("" for the database) -> personal value -> occurrences of its bytes."""
    values = [*personal_values(), *OVERWRITTEN_OR_DELETED]
    found: dict[str, dict[str, int]] = {}
    for file in database_files(database):
        content = file.read_bytes()
        hits = {v: n for v in values if (n := content.count(v.encode()))}
        if hits:
            found[file.name.removeprefix(database.name)] = hits
    return found


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    """A migrated SQLite file of its own: no other test's values are in its pages."""
    url = await new_sqlite_database(tmp_path)
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


@pytest.fixture(params=["this build", "secure_delete off by default"])
async def storage(
    request: pytest.FixtureRequest, database: Path
) -> AsyncIterator[SqlAlchemyStorage]:
    """The library's storage; the second opens its connections as a build without
    SQLITE_SECURE_DELETE does, before the library configures them."""
    options: dict[str, Any] = {}
    if request.param != "this build":

        async def connect() -> aiosqlite.Connection:
            connection = await aiosqlite.connect(database)
            await connection.execute("PRAGMA secure_delete = OFF")
            return connection

        options["async_creator"] = connect
    storage = SqlAlchemyStorage.from_url(f"sqlite+aiosqlite:///{database}", **options)
    yield storage
    await storage.close()


@pytest.fixture
async def this_build(database: Path) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(f"sqlite+aiosqlite:///{database}")
    yield storage
    await storage.close()


async def keep_connections_pooled(storage: SqlAlchemyStorage, count: int) -> None:
    """Open ``count`` connections at once and return them to the pool, which keeps them."""

    async def one() -> None:
        async with storage.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(count)))
    assert storage.engine.pool.checkedin() >= count  # type: ignore[attr-defined]


@pytest.mark.parametrize("erasure", ERASURES.values(), ids=ERASURES.keys())
async def test_after_erasure_no_file_of_the_open_database_holds_a_personal_value(
    storage: SqlAlchemyStorage, database: Path, erasure: Erasure
) -> None:
    clock = FixedClock()
    service, gdpr = services(storage, clock)
    tenant = new_tenant_id("disk")
    mario = await live_a_life(service, gdpr, tenant)
    await keep_connections_pooled(storage, 3)
    before = personal_bytes(database)
    assert set(before.get("-wal", {})) >= set(personal_values()), "the life must reach the files"

    async with storage.engine.connect() as held:  # checked out across the erasure
        secure_delete = (await held.exec_driver_sql("PRAGMA secure_delete")).scalar()
        await held.rollback()
        await erasure(gdpr, clock, tenant, mario.id)

        assert personal_bytes(database) == {}
        assert secure_delete == 1
    assert any(file.name.endswith("-wal") for file in database_files(database)), (
        "the log is truncated, not deleted: the files were read with the database open"
    )


async def test_an_erasure_waits_for_a_read_transaction_begun_before_it(
    this_build: SqlAlchemyStorage, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock()
    service, gdpr = services(this_build, clock)
    tenant = new_tenant_id("disk")
    mario = await live_a_life(service, gdpr, tenant)
    # Another process's reader (a backup, a shell) sees the rows as they were before
    # the erasure until it ends, so the log cannot be truncated before that.
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM customers").fetchall()
    ended: list[bool] = []
    open_at_checkpoint: list[bool] = []

    def end_reader() -> None:
        if not ended:
            reader.execute("COMMIT")
            ended.append(True)

    checkpoint = storage_module._checkpoint

    async def checkpoint_while_reading(driver: Any) -> bool:
        # The reader ends while the checkpoint waits for it, not before it starts.
        open_at_checkpoint.append(not ended)
        asyncio.get_running_loop().call_later(0.2, end_reader)
        return await checkpoint(driver)

    monkeypatch.setattr(storage_module, "_checkpoint", checkpoint_while_reading)
    try:
        await gdpr.delete_customer_data(tenant, mario.id, anonymize=True)
    finally:
        end_reader()
        reader.close()

    assert open_at_checkpoint == [True]
    assert personal_bytes(database) == {}


async def test_a_reader_beyond_the_busy_timeout_leaves_the_log_to_a_later_commit(
    database: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(engine_module, "_SQLITE_BUSY_TIMEOUT_MS", 200)
    storage = SqlAlchemyStorage.from_url(f"sqlite+aiosqlite:///{database}")
    try:
        clock = FixedClock()
        service, gdpr = services(storage, clock)
        tenant = new_tenant_id("disk")
        mario = await live_a_life(service, gdpr, tenant)
        reader = sqlite3.connect(database, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM customers").fetchall()
        with caplog.at_level(logging.WARNING, logger="linkbay_customers_sqlalchemy"):
            result = await gdpr.delete_customer_data(tenant, mario.id, anonymize=False)
        assert result.method == "deleted"
        assert "write-ahead log" in caplog.text
        assert "-wal" in personal_bytes(database), "the log could not be truncated"

        await service.create_customer(tenant, {"email": "while.reading@example.com"})
        assert "-wal" in personal_bytes(database), "nor while the reader stays"

        reader.execute("COMMIT")
        reader.close()
        await service.create_customer(tenant, {"email": "after.reading@example.com"})
        assert personal_bytes(database) == {}
    finally:
        await storage.close()


async def test_a_commit_that_erased_nothing_leaves_the_log_alone(
    this_build: SqlAlchemyStorage, database: Path
) -> None:
    service, _ = services(this_build, FixedClock())
    tenant = new_tenant_id("disk")
    await service.create_customer(tenant, {"email": "kept@example.com"})
    wal = database.with_name(f"{database.name}-wal")
    size = wal.stat().st_size
    await service.create_customer(tenant, {"email": "kept.too@example.com"})
    assert wal.stat().st_size > size > 0
