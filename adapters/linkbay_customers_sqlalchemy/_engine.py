"""Engines configured for the library: SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only  # await_ from SQLAlchemy 2.1 on

from linkbay_customers.registry import registered_storages
from linkbay_customers_sqlalchemy._pool import FairAsyncPool

__all__ = (
    "ASYNC_DRIVERS",
    "POSTGRES_POOL_SIZE",
    "READ_ONLY",
    "async_database_url",
    "begin_settings",
    "create_engine",
    "dump_json",
    "load_json",
    "send_with_begin",
    "supported_dialects",
    "unit_of_work_checkout",
)

# The async driver each dialect is driven by here, and the extra that installs it.
# Which dialects this adapter opens is declared once, as storage schemes in the
# registry (pyproject.toml's entry points); a test keeps the two in step.
ASYNC_DRIVERS = {"sqlite": ("aiosqlite", "sqlalchemy"), "postgresql": ("asyncpg", "postgres")}
_SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "linkbay.read_only"
"""Set to True in a SQLite connection's ``info`` before it begins a transaction that
only reads: that one begins deferred, with writes refused (``PRAGMA query_only``)."""
MIN_EF_SEARCH = 160
"""Candidates per pass of pgvector's HNSW scan for the similarity search (see
``PostgresFeatures.nearest``)."""
SIMILARITY_SESSION_SETTINGS = {
    "hnsw.ef_search": str(MIN_EF_SEARCH),
    "hnsw.iterative_scan": "relaxed_order",
}
"""What every PostgreSQL connection starts with, for the similarity search."""
_QUERY_ONLY = "linkbay.query_only"  # the connection's PRAGMA query_only, as last set
POSTGRES_POOL_SIZE = 10
"""Connections a PostgreSQL engine keeps open by default; callers beyond it wait."""
# Set while a unit of work checks a connection out: it sets its own tenant, so a
# session's tenant left by an earlier read need not be reset first.
_UNIT_OF_WORK_CHECKOUT: ContextVar[bool] = ContextVar(
    "linkbay_unit_of_work_checkout", default=False
)


@contextmanager
def unit_of_work_checkout() -> Iterator[None]:
    """Mark the connections checked out in the block as a unit of work's (see
    ``TenantConnection``): they keep the session's tenant an earlier read set."""
    token = _UNIT_OF_WORK_CHECKOUT.set(True)
    try:
        yield
    finally:
        _UNIT_OF_WORK_CHECKOUT.reset(token)


def dump_json(value: Any) -> str:
    """Serialize a JSON column's value: orjson, or the standard library beyond its range.

    orjson is many times faster, which bulk imports feel; it refuses integers
    beyond 64 bits, which JSON documents may hold.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


# A run of digits as long as the shortest integer orjson would not read exactly
# (-9223372036854775809, below the 64-bit range, has 19).
_LONG_DIGITS = re.compile(r"\d{19}")


def load_json(document: str) -> Any:
    """Read a JSON column's value as the standard library reads it: with orjson
    (about four times as fast, which every read of a customer's documents feels),
    except where orjson would read it otherwise or not at all.

    orjson reads an integer beyond 64 bits as a float, rounded: a document with a
    run of 19 digits or more goes to the standard library, which keeps it exact.
    orjson refuses what the standard library takes (NaN, Infinity, a number beyond
    a float's range, a lone surrogate in a string): those go there too.
    """
    if _LONG_DIGITS.search(document) is None:
        try:
            return orjson.loads(document)
        except orjson.JSONDecodeError:
            pass
    return json.loads(document)


def _unicode_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _configure_sqlite(engine: AsyncEngine, *, file_backed: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only; duplicate detection's email keys
        # lower like Python ('Élodie@…' and 'élodie@…' share a key). Search does not
        # fold in the database: it compares the stored search keys.
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
        read_only = bool(connection.info.pop(READ_ONLY, False))
        if connection.info.get(_QUERY_ONLY, False) is not read_only:
            connection.exec_driver_sql(f"PRAGMA query_only = {int(read_only)}")
            connection.info[_QUERY_ONLY] = read_only
        # A transaction that only reads begins deferred: in WAL mode it reads its
        # snapshot beside the one writer, never waiting for it. Any other takes
        # the write lock up front: one that reads and then writes would otherwise
        # fail, not wait, when another connection wrote meanwhile.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _literal(value: str) -> str:
    """``value`` as a PostgreSQL escape string literal, whatever
    ``standard_conforming_strings`` and ``backslash_quote`` say (a quote doubled)."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def begin_settings(tenant_id: str, *, read_only: bool) -> str | None:
    """The statement that sets a transaction's tenant (and read-only mode), to send
    with its BEGIN; None for a tenant id that cannot be written as a literal here (a
    NUL, a control character): that one goes as a parameter of its own statement."""
    if not tenant_id.isprintable():
        return None
    statement = f"SELECT set_config('linkbay.tenant_id', {_literal(tenant_id)}, true)"
    if read_only:
        statement += ", set_config('transaction_read_only', 'on', true)"
    return statement + ";"


def send_with_begin(connection: AsyncConnection, statement: str | None) -> bool:
    """Hand ``statement`` to the connection's next BEGIN (None: take it back); False
    where the connection cannot carry one (not a ``TenantConnection``)."""
    sync = connection.sync_connection
    if sync is None or sync.invalidated or sync.closed:
        return False
    send = getattr(sync.connection.driver_connection, "send_with_begin", None)
    if send is None:
        return False
    send(statement)
    return True


def supported_dialects() -> tuple[str, ...]:
    """The storage schemes the registry routes to this adapter: the dialects it opens."""
    package = __name__.split(".")[0]
    return tuple(
        found.scheme for found in registered_storages() if found.module.split(".")[0] == package
    )


def _unsupported(what: str) -> ValueError:
    spelled = " or ".join(
        f"{dialect}+{ASYNC_DRIVERS[dialect][0]}://"
        for dialect in supported_dialects()
        if dialect in ASYNC_DRIVERS
    )
    return ValueError(f"unsupported database {what}; use {spelled or 'a registered scheme'}")


def async_database_url(database_url: str) -> str:
    """The URL with its dialect's async driver named (``sqlite://`` -> ``sqlite+aiosqlite://``).

    Raises:
        ValueError: the URL is malformed, or names a dialect this adapter does
            not open or a driver it does not use.
    """
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"{database_url!r} is not a valid database URL") from exc
    dialect = url.get_backend_name()
    if dialect not in supported_dialects() or dialect not in ASYNC_DRIVERS:
        raise _unsupported(repr(dialect))
    driver = ASYNC_DRIVERS[dialect][0]
    if url.drivername == dialect:
        return url.set(drivername=f"{dialect}+{driver}").render_as_string(hide_password=False)
    if url.get_driver_name() != driver:
        raise _unsupported(f"driver {url.drivername!r}")
    return database_url


def create_engine(database_url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs
    (``sqlite://`` and ``postgresql://`` get those drivers).

    SQLite gets foreign keys, WAL, a busy timeout, immediate write transactions
    (deferred, write-refusing ones for read-only units of work),
    ``secure_delete`` (deleted content is zeroed in the file) and a Unicode-aware
    ``lower()``. An in-memory SQLite database lives on one
    connection, which units of work then take in turn.

    Args:
        database_url: The database to connect to.
        **options: Passed to ``create_async_engine`` (pool size, echo, ...).

    Raises:
        ValueError: the URL names a database the library does not support.
        ImportError: the dialect's driver is not installed (the message names the extra).
    """
    url = make_url(async_database_url(database_url))
    dialect = url.get_backend_name()
    options.setdefault("json_serializer", dump_json)
    options.setdefault("json_deserializer", load_json)
    try:
        return _create_engine(url, dialect, options)
    except ImportError as exc:  # the dialect's driver is not installed
        raise ImportError(
            f"{dialect}:// needs {ASYNC_DRIVERS[dialect][0]}: "
            f"pip install 'linkbay-customers[{ASYNC_DRIVERS[dialect][1]}]' ({exc})"
        ) from exc


def _create_engine(url: URL, dialect: str, options: dict[str, Any]) -> AsyncEngine:
    # Units of work get connections in the order they ask (see FairAsyncPool).
    options.setdefault("poolclass", FairAsyncPool)
    if dialect == "sqlite":
        in_memory = url.database in (None, "", ":memory:")
        if in_memory:
            options.setdefault("pool_size", 1)
            options.setdefault("max_overflow", 0)
        engine = create_async_engine(url, **options)
        _configure_sqlite(engine, file_backed=not in_memory)
        return engine
    # A steady pool: connections beyond it ("overflow") would be opened and closed
    # under every burst, and a new PostgreSQL connection costs far more than a query.
    options.setdefault("pool_size", POSTGRES_POOL_SIZE)
    options.setdefault("max_overflow", 0)
    # No ping on checkout (three round trips on asyncpg, as many as a read's own
    # statements): a unit of work whose first statement finds its pooled connection
    # dropped by the server (a restart, a failover) begins again on a new one.
    options.setdefault("pool_pre_ping", False)
    from linkbay_customers_sqlalchemy._connection import TenantConnection

    # Units of work send their tenant setting with BEGIN (see TenantConnection).
    # The similarity search's settings go with the connection's startup rather
    # than before every search (they only steer pgvector's HNSW scans).
    connect_args = {"connection_class": TenantConnection, **options.get("connect_args", {})}
    connect_args["server_settings"] = {
        **SIMILARITY_SESSION_SETTINGS,
        **connect_args.get("server_settings", {}),
    }
    options["connect_args"] = connect_args
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # A setting no BEGIN took never reaches the next user of the connection.
        driver = record.driver_connection
        if isinstance(driver, TenantConnection):
            driver.send_with_begin(None)

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Only units of work see a tenant they did not set themselves: anything
        # else (a ping, the host's own statements) gets a session with none.
        driver = record.driver_connection
        if (
            isinstance(driver, TenantConnection)
            and driver.may_hold_tenant
            and not _UNIT_OF_WORK_CHECKOUT.get()
        ):
            try:
                await_only(driver.forget_tenant())
            except Exception as exc:
                # The pool discards this connection and hands out another.
                raise DisconnectionError(f"resetting the session's tenant failed: {exc}") from exc

    return engine
