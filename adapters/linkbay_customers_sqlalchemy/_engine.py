"""Engines configured for the library: SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

__all__ = ("POSTGRES_POOL_SIZE", "SUPPORTED_DIALECTS", "create_engine", "dump_json")

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
_SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_POOL_SIZE = 10
"""Connections a PostgreSQL engine keeps open by default; callers beyond it wait."""


def dump_json(value: Any) -> str:
    """Serialize a JSON column's value: orjson, or the standard library beyond its range.

    orjson is many times faster, which bulk imports feel; it refuses integers
    beyond 64 bits, which JSON documents may hold. Reading stays with the
    standard library, which keeps such integers exact.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def _unicode_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _configure_sqlite(engine: AsyncEngine, *, file_backed: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only; searches must fold like Python
        # and PostgreSQL do ('Élodie' matches 'élodie').
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        # Deleted and overwritten content is zeroed, not left in free space and
        # free pages where a raw read of the file finds it after an erasure.
        # Most SQLite builds default to OFF (SQLITE_SECURE_DELETE unset).
        cursor.execute("PRAGMA secure_delete = ON")
        if file_backed:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock up front: a transaction that reads and then writes
        # would otherwise fail, not wait, when another connection wrote meanwhile.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(database_url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    SQLite gets foreign keys, WAL, a busy timeout, immediate write transactions,
    ``secure_delete`` (deleted content is zeroed in the file) and a Unicode-aware
    ``lower()``. An in-memory SQLite database lives on one
    connection, which units of work then take in turn.

    Args:
        database_url: The database to connect to.
        **options: Passed to ``create_async_engine`` (pool size, echo, ...).

    Raises:
        ValueError: the URL names a database the library does not support.
    """
    url = make_url(database_url)
    dialect = url.get_backend_name()
    options.setdefault("json_serializer", dump_json)
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(
            f"unsupported database {dialect!r}; use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if dialect == "sqlite":
        in_memory = url.database in (None, "", ":memory:")
        if in_memory:
            options.setdefault("poolclass", AsyncAdaptedQueuePool)
            options.setdefault("pool_size", 1)
            options.setdefault("max_overflow", 0)
        engine = create_async_engine(url, **options)
        _configure_sqlite(engine, file_backed=not in_memory)
        return engine
    # A steady pool: connections beyond it ("overflow") would be opened and closed
    # under every burst, and a new PostgreSQL connection costs far more than a query.
    options.setdefault("pool_size", POSTGRES_POOL_SIZE)
    options.setdefault("max_overflow", 0)
    return create_async_engine(url, **options)
