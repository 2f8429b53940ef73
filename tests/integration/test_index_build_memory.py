"""The memory a tenant partition's HNSW build gets (PostgreSQL).

pgvector builds an HNSW graph in ``maintenance_work_mem``; a graph that outgrows it
is finished on disk, one insertion at a time, and says so in a notice. The storage
raises the setting for the build's transaction to what the graph of the table's
rows needs, up to ``index_build_memory``, and builds at the server's setting when
the server cannot give that memory. The server here starts every connection with
1 MB, which holds the graph of about 1,200 embeddings of 32 dimensions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from linkbay_customers.domain import EMBEDDING_DIMENSIONS
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._repositories import _postgresql as postgresql
from tests._databases import new_postgres_database, shown_setting

ROWS = 4_000
USING = " USING hnsw (embedding vector_cosine_ops) WITH (m='16', ef_construction='32')"
OUTGROWN = "hnsw graph no longer fits into maintenance_work_mem"

StorageOf = Callable[..., SqlAlchemyStorage]


@pytest.fixture
async def storage_of(postgres_server: str) -> AsyncIterator[StorageOf]:
    """Storages on one database whose connections start with 1 MB of
    ``maintenance_work_mem``."""
    url = await new_postgres_database(postgres_server)
    opened: list[SqlAlchemyStorage] = []

    def storage_of(**options: Any) -> SqlAlchemyStorage:
        settings = {"maintenance_work_mem": "1MB", **options.pop("server_settings", {})}
        storage = SqlAlchemyStorage.from_url(
            url, connect_args={"server_settings": settings}, **options
        )
        opened.append(storage)
        return storage

    yield storage_of
    for storage in opened:
        await storage.close()


async def build(storage: SqlAlchemyStorage, using: str = USING) -> tuple[list[str], str, str]:
    """Index ``ROWS`` random embeddings as a tenant partition's build does, in a
    transaction that commits: the notices, the setting in the transaction after
    the build, and the setting of the connection's next transaction."""
    features = storage.postgresql
    assert features is not None
    notices: list[str] = []
    async with storage.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None

        def listener(_connection: Any, message: Any) -> None:
            notices.append(str(message.message))

        driver.add_log_listener(listener)
        async with connection.begin():
            await connection.execute(
                text(f"CREATE TABLE build_probe (embedding vector({EMBEDDING_DIMENSIONS}))")
            )
            await connection.execute(
                text(
                    "INSERT INTO build_probe SELECT (SELECT array_agg(random() - 0.5)::vector"
                    " FROM generate_series(1, :dimensions) WHERE g > 0)"
                    " FROM generate_series(1, :rows) AS g"
                ),
                {"dimensions": EMBEDDING_DIMENSIONS, "rows": ROWS},
            )
            await features.build_hnsw_index(connection, "build_probe", using, EMBEDDING_DIMENSIONS)
            during = str(await connection.scalar(text("SHOW maintenance_work_mem")))
        async with connection.begin():
            after = str(await connection.scalar(text("SHOW maintenance_work_mem")))
            await connection.execute(text("DROP TABLE build_probe"))
        driver.remove_log_listener(listener)
    return notices, during, after


async def test_a_storage_refuses_a_size_postgresql_would_not_take(postgres_server: str) -> None:
    url = await new_postgres_database(postgres_server)
    for size in (1 << 19, 1 << 50, 2.5e9, True):
        with pytest.raises(ValueError, match="index_build_memory"):
            SqlAlchemyStorage.from_url(url, index_build_memory=size)  # type: ignore[arg-type]


def test_the_memory_counted_holds_the_graphs_pgvector_measured() -> None:
    # With 64 MB (61 MiB for the graph of a parallel build) pgvector's graph of
    # 32-dimensional embeddings stopped fitting after 77,632 of them; with 1 MB
    # after 1,244.
    assert postgresql.hnsw_build_memory(77_633, 32, 16) > 61 << 20
    assert postgresql.hnsw_build_memory(1_245, 32, 16) > 1 << 20
    # It grows with the rows, the dimensions and the neighbours kept.
    one = postgresql.hnsw_build_memory(1_000_000, 32, 16)
    assert postgresql.hnsw_build_memory(2_000_000, 32, 16) > 1.9 * one
    assert postgresql.hnsw_build_memory(1_000_000, 1536, 16) > 7 * one
    assert postgresql.hnsw_build_memory(1_000_000, 32, 32) > 1.5 * one


async def test_the_build_gets_the_memory_its_graph_needs_for_its_transaction_only(
    storage_of: StorageOf,
) -> None:
    notices, during, after = await build(storage_of())

    assert not [n for n in notices if OUTGROWN in n]
    assert during == shown_setting(postgresql.hnsw_build_memory(ROWS, EMBEDDING_DIMENSIONS, 16))
    assert after == "1MB"  # the transaction committed: its setting went with it


async def test_the_memory_counted_follows_the_indexs_neighbours(storage_of: StorageOf) -> None:
    using = USING.replace("m='16', ef_construction='32'", "m='24', ef_construction='48'")
    _, during, _ = await build(storage_of(), using)

    assert during == shown_setting(postgresql.hnsw_build_memory(ROWS, EMBEDDING_DIMENSIONS, 24))
    assert during != shown_setting(postgresql.hnsw_build_memory(ROWS, EMBEDDING_DIMENSIONS, 16))


async def test_a_server_setting_above_the_need_is_kept(storage_of: StorageOf) -> None:
    assert postgresql.hnsw_build_memory(ROWS, EMBEDDING_DIMENSIONS, 16) < 64 << 20
    storage = storage_of(server_settings={"maintenance_work_mem": "64MB"})

    notices, during, after = await build(storage)

    assert during == after == "64MB"
    assert not [n for n in notices if OUTGROWN in n]


async def test_without_a_ceiling_the_servers_setting_stays_and_the_graph_outgrows_it(
    storage_of: StorageOf,
) -> None:
    notices, during, after = await build(storage_of(index_build_memory=None))

    assert [n for n in notices if OUTGROWN in n]
    assert during == after == "1MB"


async def test_the_ceiling_bounds_the_memory_asked_for(storage_of: StorageOf) -> None:
    notices, during, _ = await build(storage_of(index_build_memory=2 << 20))

    assert during == "2MB"
    assert [n for n in notices if OUTGROWN in n]  # 2 MB holds about 2,400


async def test_memory_the_server_cannot_give_builds_at_its_setting(
    storage_of: StorageOf, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A parallel build takes its memory as shared memory at once; asking for a
    # terabyte, more than this machine's /dev/shm holds, is refused as a container's
    # 64 MB /dev/shm refuses a gigabyte.
    storage = storage_of(
        index_build_memory=1 << 40, server_settings={"min_parallel_table_scan_size": "0"}
    )
    async with storage.engine.connect() as connection:
        shared = await connection.scalar(text("SHOW dynamic_shared_memory_type"))
        workers = await connection.scalar(text("SHOW max_parallel_maintenance_workers"))
    if shared != "posix" or workers == "0":
        pytest.skip("needs a parallel build in POSIX shared memory, which refuses a terabyte")
    monkeypatch.setattr(postgresql, "hnsw_build_memory", lambda *_: 1 << 40)

    with caplog.at_level(logging.WARNING, logger="linkbay_customers_sqlalchemy"):
        notices, during, after = await build(storage)
        refused = [r.getMessage() for r in caplog.records]
        caplog.clear()
        again, _, _ = await build(storage)

    assert [n for n in notices if OUTGROWN in n]  # built, at the server's 1 MB
    assert during == after == "1MB"
    assert [m for m in refused if "1048576 MiB" in m and "server's 1 MiB" in m]
    # The next build keeps the server's setting at once: no refusal, no warning.
    assert [n for n in again if OUTGROWN in n]
    assert not caplog.records
