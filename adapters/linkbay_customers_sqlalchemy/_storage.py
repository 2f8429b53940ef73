"""SqlAlchemyStorage and its unit of work."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import BigInteger, Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from linkbay_customers.audit_keys import (
    AUDIT_KEY_FILE_VARIABLE,
    AUDIT_KEY_VARIABLE,
    AuditKeyMissing,
    audit_chain_from,
    new_audit_key,
)
from linkbay_customers.domain import AuditChain, ModelFit, StorageError, StorageRejected
from linkbay_customers.ports import IdReservations, Storage, UnitOfWork
from linkbay_customers_sqlalchemy._driver import DriverStatement, driver_in_transaction
from linkbay_customers_sqlalchemy._engine import (
    READ_ONLY,
    begin_settings,
    create_engine,
    send_with_begin,
    unit_of_work_checkout,
)
from linkbay_customers_sqlalchemy._errors import storage_error, translate_errors
from linkbay_customers_sqlalchemy._models import ModelSet, default_models
from linkbay_customers_sqlalchemy._repositories import (
    PostgresFeatures,
    SqlAddressRepository,
    SqlAuditRepository,
    SqlConsentRepository,
    SqlCustomerRepository,
    SqlMergeAliasRepository,
    SqlNoteRepository,
    SqlOrderRepository,
)
from linkbay_customers_sqlalchemy._repositories._fits import SqlModelFitRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import DEFAULT_INDEX_BUILD_MEMORY

__all__ = ("TENANT_SETTING", "SqlAlchemyStorage", "SqlAlchemyUnitOfWork")

TENANT_SETTING = "linkbay.tenant_id"
"""The PostgreSQL setting the row-level security policies compare ``tenant_id`` with."""

_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")
# The same, for a transaction that only reads: PostgreSQL refuses its writes.
_SET_TENANT_READ_ONLY = text(
    f"SELECT set_config('{TENANT_SETTING}', :tenant, true),"
    " set_config('transaction_read_only', 'on', true)"
)


def _reserve_ids(dialect: str, counters: Table, kinds: int) -> Any:
    """Advance one tenant's counters of ``kinds`` kinds, each by its count; the new
    last id of each.

    ``INSERT ... VALUES (:tenant, :kind_0, :count_0), ... ON CONFLICT (tenant_id, kind)
    DO UPDATE SET last_id = last_id + count RETURNING kind, last_id``: one statement
    whatever the counts, starting the tenant's ids at 1. The rows are taken in the
    order given, and stay locked until the transaction ends.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(counters).values(
        [
            {
                "tenant_id": bindparam("tenant"),
                "kind": bindparam(f"kind_{n}"),
                "last_id": bindparam(f"count_{n}", type_=BigInteger),
            }
            for n in range(kinds)
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=[counters.c.tenant_id, counters.c.kind],
        set_={"last_id": counters.c.last_id + statement.excluded.last_id},
    ).returning(counters.c.kind, counters.c.last_id)


_logger = logging.getLogger("linkbay_customers_sqlalchemy")
_DRIVER_STATEMENTS = 1024
_MAX_MAINTENANCE_MEMORY = 2147483647 * 1024  # PostgreSQL's largest maintenance_work_mem


def _only_reads(statement: Any) -> bool:
    """Whether ``statement`` is a SELECT that locks nothing: one that can run outside a
    transaction and read what it would read inside one."""
    return isinstance(statement, Select) and statement._for_update_arg is None


class SqlAlchemyUnitOfWork(UnitOfWork, IdReservations):
    """One database transaction bound to one tenant.

    The transaction begins lazily at the first statement. On PostgreSQL it starts
    with ``set_config('linkbay.tenant_id', tenant, true)`` (a ``SET LOCAL``), which
    the row-level security policies check: a second wall behind the ``tenant_id``
    filter every query carries.

    On SQLite, a transaction that erased personal data (see ``note_erasure``) is
    followed, once committed, by a checkpoint that truncates the write-ahead log.

    A ``read_only`` unit of work runs read-only transactions: on SQLite they begin
    deferred (readers run beside the one writer of WAL mode, where a write
    transaction begins ``IMMEDIATE``, taking the write lock) with ``PRAGMA
    query_only``; on PostgreSQL ``transaction_read_only`` is on. The database
    refuses their writes, and ``commit`` refuses too. On PostgreSQL, the adapter's
    own SELECTs of the hot paths (``fetch``) run there outside a transaction
    instead, each in its statement's implicit one (what a transaction of READ
    COMMITTED, PostgreSQL's default, sees too: a snapshot per statement), with
    the tenant set for the connection's session (``TenantConnection.use_tenant``):
    a read of a customer is one round trip, not three (BEGIN with the tenant
    setting, the SELECT, ROLLBACK).
    """

    def __init__(
        self, storage: SqlAlchemyStorage, tenant_id: str, *, read_only: bool = False
    ) -> None:
        self.tenant_id = tenant_id
        self.storage = storage
        self.read_only = read_only
        self._connection: AsyncConnection | None = None
        self._entered = False
        self._erased = False
        self.customers = SqlCustomerRepository(self)
        self.addresses = SqlAddressRepository(self)
        self.notes = SqlNoteRepository(self)
        self.orders = SqlOrderRepository(self)
        self.consents = SqlConsentRepository(self)
        self.audit = SqlAuditRepository(self)
        self.aliases = SqlMergeAliasRepository(self)

    @property
    def audit_chain(self) -> AuditChain:
        """The storage's audit chain; a SQLite file database's key file is read, or
        made, only when the trail is first written or verified."""
        return self.storage.audit_chain

    @property
    def models(self) -> ModelSet:
        """The models this storage reads and writes."""
        return self.storage.models

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.storage.dialect

    @property
    def postgresql(self) -> PostgresFeatures | None:
        """COPY and the similarity search on PostgreSQL; None on SQLite."""
        return self.storage.postgresql

    async def __aenter__(self) -> Self:
        """Check a connection out of the pool (not pinged: see ``connection``)."""
        if self._entered:
            raise RuntimeError("a unit of work can be entered only once")
        self._entered = True
        with translate_errors("connecting"), unit_of_work_checkout():
            self._connection = await self.storage.engine.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back what was not committed and return the connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._erased = False
        send_with_begin(connection, None)
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    def _active(self) -> AsyncConnection:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the unit of work is not active: use it inside 'async with'")
        return connection

    async def connection(self) -> AsyncConnection:
        """The connection, inside a transaction of this unit of work's tenant."""
        connection = self._active()
        if not connection.in_transaction():
            with translate_errors("beginning a transaction"):
                try:
                    await self._begin(connection)
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                    await self._begin(await self._replace(connection))
        return self._active()

    async def _replace(self, stale: AsyncConnection) -> AsyncConnection:
        """A new connection for one the server dropped (a restart, a failover), before
        anything ran in its transaction: the pool replaced the stale ones."""
        send_with_begin(stale, None)
        self._connection = None
        await stale.close()
        with unit_of_work_checkout():
            self._connection = connection = await self.storage.engine.connect()
        return connection

    async def _begin(self, connection: AsyncConnection) -> None:
        """Begin the transaction; on PostgreSQL, set its tenant (and read-only mode)."""
        if self.read_only and self.dialect == "sqlite":
            connection.info[READ_ONLY] = True  # read by the engine's begin hook
        await connection.begin()
        if self.dialect == "postgresql":
            await connection.execute(
                _SET_TENANT_READ_ONLY if self.read_only else _SET_TENANT,
                {"tenant": self.tenant_id},
            )

    async def _first(self, connection: AsyncConnection, statement: Any, parameters: Any) -> Any:
        """Run the first statement of a transaction on PostgreSQL, the tenant setting
        sent with its BEGIN (one round trip for both); False where the connection
        cannot carry it (an engine not from ``create_engine``, an odd tenant id)."""
        settings = begin_settings(self.tenant_id, read_only=self.read_only)
        if settings is None or not send_with_begin(connection, settings):
            return False
        await connection.begin()
        return await connection.execute(statement, parameters)

    async def execute(self, statement: Any, parameters: Any = None, *, action: str) -> Any:
        """Run a statement in the transaction, wrapping driver errors."""
        connection = self._active()
        with translate_errors(action):
            if self.dialect == "postgresql" and not connection.in_transaction():
                try:
                    result = await self._first(connection, statement, parameters)
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                    result = await self._first(
                        await self._replace(connection), statement, parameters
                    )
                if result is not False:
                    return result
            connection = await self.connection()
            return await connection.execute(statement, parameters)

    async def fetch(
        self, statement: Any, parameters: Mapping[str, Any], *, action: str
    ) -> Sequence[Mapping[str, Any]]:
        """The rows of a hot statement, as mappings by column name.

        On PostgreSQL the statement runs on the asyncpg connection itself, compiled
        once (``DriverStatement``), in this unit of work's transaction (begun here
        with its tenant setting when it is the first statement): the same values in
        and out as through SQLAlchemy, the same errors, at a fraction of the CPU.
        Elsewhere, and while anything observes the engine's statements (``echo``, a
        ``before_cursor_execute`` or ``after_cursor_execute`` listener: logging,
        tracing), it runs as ``execute`` runs it, so they see every statement.
        """
        if self.dialect != "postgresql" or self.storage._statements_observed():
            result = await self.execute(statement, parameters, action=action)
            return [row._mapping for row in result] if result.returns_rows else []
        import asyncpg  # PostgreSQL storages have it

        prepared = self.storage._driver_statement(
            statement, tuple(parameters) if statement.is_dml else None
        )
        with translate_errors(action):
            if self.read_only and _only_reads(statement):
                rows = await self._read(prepared, parameters, action)
                if rows is not None:
                    return rows
            driver = await self._driver()
            try:
                return await prepared.fetch(driver, parameters)
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise storage_error(f"{action} failed: {exc}", exc) from exc

    async def _read(
        self, prepared: DriverStatement, parameters: Mapping[str, Any], action: str
    ) -> list[dict[str, Any]] | None:
        """Run a SELECT outside a transaction, the session's tenant this unit of
        work's (see the class); None where it cannot (inside a transaction, on a
        connection of an engine not from ``create_engine``, on an autocommit
        connection). A pooled connection the server dropped is replaced and the read
        sent again."""
        import asyncpg  # PostgreSQL storages have it

        from linkbay_customers_sqlalchemy._connection import TenantConnection

        for attempt in (1, 2):
            connection = self._active()
            sync = connection.sync_connection
            if connection.in_transaction() or sync is None or sync.invalidated:
                return None
            driver = sync.connection.driver_connection
            if not isinstance(driver, TenantConnection) or driver.is_in_transaction():
                return None
            if getattr(sync.connection.dbapi_connection, "autocommit", False):
                # No BEGIN carries a transaction's tenant there: a session's tenant
                # left by a read would stand for every later statement's.
                return None
            try:
                await driver.use_tenant(self.tenant_id)
                return await prepared.fetch(driver, parameters)
            except (
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # an operation cut short by the server
                OSError,
            ) as exc:
                if attempt == 2 or not driver.is_closed():
                    raise storage_error(f"{action} failed: {exc}", exc) from exc
            # The server dropped the pooled connection (a restart, a failover).
            await connection.invalidate()
            await self._replace(connection)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _driver(self) -> Any:
        """The asyncpg connection, inside this unit of work's transaction."""
        connection = self._active()
        if connection.in_transaction():
            return await driver_in_transaction(connection)
        settings = begin_settings(self.tenant_id, read_only=self.read_only)
        if settings is None or not send_with_begin(connection, settings):
            # The tenant setting goes as a statement of its own.
            return await driver_in_transaction(await self.connection())
        await connection.begin()
        try:
            return await driver_in_transaction(connection)
        except self.storage.engine.dialect.loaded_dbapi.Error as exc:
            if not self.storage.engine.dialect.is_disconnect(exc, None, None):
                raise storage_error(f"beginning a transaction failed: {exc}", exc) from exc
        # The server dropped the pooled connection (a restart, a failover) before
        # anything ran in this transaction: begin again on a new one.
        await connection.invalidate()
        connection = await self._replace(connection)
        send_with_begin(connection, settings)
        await connection.begin()
        return await driver_in_transaction(connection)

    async def next_ids(self, table_name: str, count: int = 1) -> list[int]:
        """Reserve the tenant's next ``count`` ids of a table, consecutive, in one statement.

        Each tenant counts its own ids (``IdCounterMixin``), so no id says anything
        about another tenant's activity.
        """
        (ids,) = await self._reserve([(table_name, count)])
        return ids

    async def next_ids_of(self, counts: Sequence[tuple[str, int]]) -> list[list[int]]:
        """Reserve new ids of several repositories' tables in one statement (see
        ``IdReservations``): their counter rows are locked in the order given."""
        return await self._reserve(
            [(getattr(self, repository)._table.name, count) for repository, count in counts]
        )

    async def _reserve(self, counts: Sequence[tuple[str, int]]) -> list[list[int]]:
        kinds = [kind for kind, _ in counts]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each table's ids are reserved at most once per statement")
        parameters: dict[str, Any] = {"tenant": self.tenant_id}
        for n, (kind, count) in enumerate(counts):
            parameters |= {f"kind_{n}": kind, f"count_{n}": count}
        rows = await self.fetch(
            self.storage._reserve_ids(len(counts)), parameters, action="reserving ids"
        )
        last = {row["kind"]: int(row["last_id"]) for row in rows}
        return [list(range(last[kind] - count + 1, last[kind] + 1)) for kind, count in counts]

    def note_erasure(self) -> None:
        """Record that this transaction deletes or overwrites personal data.

        The repositories' erasure statements call it. On SQLite, ``commit`` then
        truncates the write-ahead log: its frames hold earlier images of the
        changed pages, the erased values in them, until the log is truncated.
        """
        self._erased = True

    async def commit(self) -> None:
        """Commit the transaction; the next statement begins a new one.

        On SQLite, after a transaction that erased personal data, the write-ahead
        log is checkpointed into the database file and truncated to zero bytes
        before this returns. That waits, up to the busy timeout, for the other
        connections' transactions to end; if one still holds a read transaction
        then, the log cannot be truncated: a warning is logged, and every later
        commit tries again without waiting until one succeeds.

        Raises:
            StorageRejected: the unit of work is read-only.
            StorageError: the commit failed; or, after it succeeded, the checkpoint
                failed (the change is durable; a later commit tries again).
        """
        if self.read_only:
            raise StorageRejected("a read-only unit of work cannot commit")
        connection = self._connection
        if connection is not None and connection.in_transaction():
            with translate_errors("committing"):
                await connection.commit()
            erased, self._erased = self._erased, False
            if self.dialect == "sqlite" and (erased or self.storage._wal_truncation_owed):
                await self.storage._truncate_wal(connection, wait=erased)

    async def rollback(self) -> None:
        """Roll the transaction back; the next statement begins a new one."""
        self._erased = False
        connection = self._connection
        if connection is not None and connection.in_transaction():
            await connection.rollback()


def _check_index_build_memory(value: int | None) -> None:
    if value is not None and (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 << 20 <= value <= _MAX_MAINTENANCE_MEMORY
    ):
        raise ValueError(
            "index_build_memory must be None or a number of bytes from 1 MiB to 2147483647 kB"
        )


class SqlAlchemyStorage(Storage):
    """Storage in a SQL database through async SQLAlchemy.

    Args:
        engine: An async engine; see ``create_engine`` for the recommended setup.
        models: The mapped classes to use; the shipped default models unless given.
        owns_engine: Dispose of the engine on ``close()``.
        audit_key: The audit trail's HMAC key (at least 32 bytes), or its chain.
            Without one: the ``LINKBAY_AUDIT_KEY`` environment variable, or the
            file ``LINKBAY_AUDIT_KEY_FILE`` names; failing both, a SQLite file
            database keeps a generated key in ``<database>.audit-key`` beside it
            (created on first use, readable by its owner only), an in-memory one
            a random key, and PostgreSQL refuses to start.
        index_build_memory: PostgreSQL: the most ``maintenance_work_mem``, in bytes,
            that building a large tenant's own HNSW index at its first scoring may
            raise the server's setting to, for that transaction, where the graph
            needs it (1 GiB by default: the graph of about 1,100,000 embeddings);
            None keeps the server's setting. If the server cannot give that memory,
            the build runs at its setting instead.

    Raises:
        AuditKeyMissing: PostgreSQL without a key, or a key that is too short.
        ValueError: ``index_build_memory`` is not a whole number of bytes from
            1 MiB to 2,147,483,647 kB (PostgreSQL's largest ``maintenance_work_mem``).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        models: ModelSet | None = None,
        owns_engine: bool = False,
        audit_key: bytes | str | AuditChain | None = None,
        index_build_memory: int | None = DEFAULT_INDEX_BUILD_MEMORY,
    ) -> None:
        _check_index_build_memory(index_build_memory)
        self.engine = engine
        self.models = models or default_models()
        self.dialect = engine.dialect.name
        self._audit_chain = audit_chain_from(audit_key)
        self._audit_key_file: Path | None = None
        if self._audit_chain is None:
            database = engine.url.database
            if self.dialect != "sqlite":
                raise AuditKeyMissing(
                    f"PostgreSQL needs an audit key: set {AUDIT_KEY_VARIABLE} (at least 32"
                    f" characters, e.g. the output of `linkbay-customers audit key`) or"
                    f" {AUDIT_KEY_FILE_VARIABLE}, or pass audit_key="
                )
            if database in (None, "", ":memory:"):
                self._audit_chain = AuditChain(new_audit_key().encode())
            else:
                self._audit_key_file = Path(f"{database}.audit-key")
        self._owns_engine = owns_engine
        self._reserve_ids = functools.cache(
            functools.partial(
                _reserve_ids,
                self.dialect,
                self.models.id_counter.__table__,  # type: ignore[attr-defined]
            )
        )
        self.postgresql = (
            PostgresFeatures(engine.dialect, index_build_memory=index_build_memory)
            if self.dialect == "postgresql"
            else None
        )
        """COPY and the similarity search, with their caches; None on SQLite."""
        # An erasure's write-ahead log could not be truncated yet (SQLite).
        self._wal_truncation_owed = False
        # The hot statements compiled for the driver, by statement (PostgreSQL), the
        # least recently used dropped beyond _DRIVER_STATEMENTS (statements built per
        # large tenant and limit come and go).
        self._driver_statements: OrderedDict[
            tuple[int, tuple[str, ...] | None], tuple[Any, DriverStatement]
        ] = OrderedDict()

    def _statements_observed(self) -> bool:
        """Whether anything watches the statements SQLAlchemy sends (see ``fetch``)."""
        dispatch = self.engine.sync_engine.dispatch
        return bool(
            self.engine.echo or dispatch.before_cursor_execute or dispatch.after_cursor_execute
        )

    def _driver_statement(
        self, statement: Any, column_keys: tuple[str, ...] | None
    ) -> DriverStatement:
        """``statement`` compiled for the driver, once per statement and set of
        columns written (each statement is built once and cached by its module, so
        it is found by identity)."""
        key = (id(statement), column_keys)
        statements = self._driver_statements
        found = statements.get(key)
        if found is not None and found[0] is statement:
            statements.move_to_end(key)
            return found[1]
        found = (statement, DriverStatement(statement, self.engine.dialect, column_keys))
        statements[key] = found
        statements.move_to_end(key)
        if len(statements) > _DRIVER_STATEMENTS:
            statements.popitem(last=False)
        return found[1]

    @classmethod
    def from_url(
        cls,
        database_url: str,
        *,
        models: ModelSet | None = None,
        audit_key: bytes | str | AuditChain | None = None,
        index_build_memory: int | None = DEFAULT_INDEX_BUILD_MEMORY,
        **engine_options: Any,
    ) -> SqlAlchemyStorage:
        """Open a storage on a URL with a configured engine it owns."""
        _check_index_build_memory(index_build_memory)  # before an engine is made
        return cls(
            create_engine(database_url, **engine_options),
            models=models,
            owns_engine=True,
            audit_key=audit_key,
            index_build_memory=index_build_memory,
        )

    @property
    def audit_chain(self) -> AuditChain:
        """The chain sealing this storage's audit events (its key file read or made
        on first use)."""
        if self._audit_chain is None:
            self._audit_chain = audit_chain_from(default_file=self._audit_key_file)
            assert self._audit_chain is not None  # a default file always yields a key
        return self._audit_chain

    async def _truncate_wal(self, connection: AsyncConnection, *, wait: bool) -> None:
        """Checkpoint SQLite's write-ahead log into the database file and truncate it.

        Runs on the driver's connection outside any transaction: SQLite refuses a
        checkpoint inside one, and SQLAlchemy would begin one for a statement.

        Args:
            connection: A connection of this storage with no open transaction.
            wait: Wait up to the connection's busy timeout for other transactions
                to end (right after an erasure), or not at all (a retry: waiting on
                every commit would stall a server whose database another process
                keeps a read transaction open on).
        """
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is None:  # pragma: no cover - the pool always hands out a connection
            raise StorageError("truncating the write-ahead log failed: no database connection")
        try:
            if wait:
                busy = await _checkpoint(driver)
            else:
                (timeout,) = await _pragma(driver, "busy_timeout")
                await _pragma(driver, "busy_timeout = 0")
                try:
                    busy = await _checkpoint(driver)
                finally:
                    await _pragma(driver, f"busy_timeout = {int(timeout)}")
        except sqlite3.Error as exc:
            self._wal_truncation_owed = True
            raise StorageError(f"truncating the write-ahead log failed: {exc}") from exc
        if busy and wait:
            _logger.warning(
                "erased data stays in the SQLite write-ahead log: another connection keeps"
                " a read transaction open; a later commit truncates the log"
            )
        self._wal_truncation_owed = busy

    def unit_of_work(self, tenant_id: str, *, read_only: bool = False) -> SqlAlchemyUnitOfWork:
        """A new unit of work for one tenant (``read_only``: see ``SqlAlchemyUnitOfWork``)."""
        return SqlAlchemyUnitOfWork(self, tenant_id, read_only=read_only)

    async def ping(self) -> None:
        """Check the database answers and holds the schema the storage uses: a
        connection from the pool and one statement, outside any transaction, naming
        every column of every table of the models and reading no row (so it takes no
        write lock, on SQLite either); a pooled connection the server dropped is
        replaced and the statement sent again.

        Raises:
            SchemaNotMigrated: a table or column of the models is missing (the schema
                was never migrated, or is of an older revision).
            StorageError: the database does not answer now.
        """
        with translate_errors("checking the database"):
            try:
                await self._ping_once()
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                await self._ping_once()  # the pool replaced the connection the server dropped

    async def _ping_once(self) -> None:
        async with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                connection.info[READ_ONLY] = True  # a deferred BEGIN: no write lock
            await connection.execute(self._schema_probe)

    @functools.cached_property
    def _schema_probe(self) -> Any:
        # Planning the statement needs every table and column it names; ``LIMIT 0``
        # reads nothing. Joined on ``tenant_id`` and pinned to a tenant id no tenant
        # can have, it is routed to one shard on Citus, as every statement is.
        first, *rest = self.models.tables().values()
        joined = first
        for table in rest:
            joined = joined.join(table, table.c.tenant_id == first.c.tenant_id)
        columns = [column for table in (first, *rest) for column in table.columns]
        return select(*columns).select_from(joined).where(first.c.tenant_id == "").limit(0)

    async def load_model_fit(self, tenant_id: str, model: str) -> ModelFit | None:
        """The tenant's fit of a model, or None (``linkbay_customers_clv.ModelFitStorage``).

        Raises:
            StorageError: the database failed.
        """
        async with self.unit_of_work(tenant_id, read_only=True) as uow:
            return await SqlModelFitRepository(uow).get(model)

    async def save_model_fit(self, tenant_id: str, fit: ModelFit) -> None:
        """Store a fit, replacing the tenant's previous fit of that model.

        Raises:
            StorageRejected: the fit belongs to another tenant.
            StorageError: the database failed.
        """
        async with self.unit_of_work(tenant_id) as uow:
            await SqlModelFitRepository(uow).save(fit)
            await uow.commit()

    async def close(self) -> None:
        """Dispose of the engine if this storage created it."""
        if self._owns_engine:
            await self.engine.dispose()


async def _pragma(driver: Any, pragma: str) -> Any:
    """Run a PRAGMA on an aiosqlite connection; its first row (None when it has none)."""
    async with driver.execute(f"PRAGMA {pragma}") as cursor:
        return await cursor.fetchone()


async def _checkpoint(driver: Any) -> bool:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` on an aiosqlite connection: whether it was busy.

    Busy means another connection kept a transaction open beyond the busy timeout:
    the log was then neither fully checkpointed nor truncated. Outside WAL mode
    (an in-memory database) the pragma does nothing and is never busy.
    """
    busy, _, _ = await _pragma(driver, "wal_checkpoint(TRUNCATE)")
    return bool(busy)
