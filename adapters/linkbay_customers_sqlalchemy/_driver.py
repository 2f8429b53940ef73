"""The hot statements on PostgreSQL, run on the asyncpg connection itself.

A unit of work sends most statements through SQLAlchemy's execution layer. On the
routes a request takes most often (reading a customer by id, creating one), that
layer costs more CPU than the driver and the database together: the execution
context, the cursor adaptation, the result object. ``DriverStatement`` compiles a
SQLAlchemy statement once, for the asyncpg dialect, and keeps what SQLAlchemy
would do to its values: the bind processors of its parameters and the result
processors of its columns (the columns' own types: ``UTCDateTime``, ``Money``,
``Embedding``, JSON). Run on the connection's asyncpg connection, inside the
transaction SQLAlchemy tracks (``driver_in_transaction``), it stores and returns
exactly what the SQLAlchemy path stores and returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:  # PostgreSQL only: a SQLite installation has no asyncpg
    import asyncpg

__all__ = ("DriverStatement", "driver_in_transaction")

Processor = Callable[[Any], Any]


class DriverStatement:
    """A SQLAlchemy statement compiled once for asyncpg, with its value processing.

    Args:
        statement: A SELECT, a textual statement, or an INSERT with RETURNING (or
            none), whose parameters are named bind parameters.
        dialect: The engine's dialect (``postgresql+asyncpg``).
        column_keys: The columns an INSERT is given values for (as SQLAlchemy
            compiles it for the keys of its parameters); the other columns with a
            Python default get it, as SQLAlchemy gives it.

    Raises:
        ValueError: a statement this cannot run as SQLAlchemy would (a default
            computed by SQL or a sequence, an UPDATE's ``onupdate``, columns of
            the same name).
    """

    def __init__(
        self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
        )
        self.sql: str = compiled.string
        self._dialect = dialect
        if compiled.update_prefetch:
            raise ValueError("a driver statement cannot compute onupdate values")
        self._defaults: dict[str, Any] = {}
        for column in compiled.insert_prefetch:
            default = column.default
            if default is None or not (default.is_scalar or default.is_callable):
                raise ValueError(f"column {column.key} has a default the driver cannot compute")
            self._defaults[column.key] = default
        names = tuple(compiled.positiontup or ())
        self._names = names
        binds = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        ]
        self._binds: tuple[tuple[int, Processor], ...] = tuple(
            (index, process) for index, process in enumerate(binds) if process is not None
        )
        columns = list(getattr(statement, "exported_columns", ()))
        self.columns: tuple[str, ...] = tuple(column.name for column in columns)
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("a driver statement needs distinct column names")
        self._types = tuple(column.type for column in columns)
        # Result processors depend on the type the server reports for each column
        # (its OID), known once the statement is first prepared.
        self._results: tuple[tuple[str, Processor], ...] | None = None

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``parameters``, processed as SQLAlchemy binds them."""
        values = [
            parameters[name] if name in parameters else self._default(name) for name in self._names
        ]
        for index, process in self._binds:
            values[index] = process(values[index])
        return values

    def _default(self, name: str) -> Any:
        default = self._defaults[name]
        # SQLAlchemy wraps a callable default to take the execution context.
        return default.arg(None) if default.is_callable else default.arg

    def _processors(self, attributes: Sequence[Any]) -> tuple[tuple[str, Processor], ...]:
        if not self._types:  # a textual statement: its values as the driver reads them
            return ()
        found = []
        for name, type_, attribute in zip(self.columns, self._types, attributes, strict=True):
            impl = type_.dialect_impl(self._dialect)
            process = impl.result_processor(self._dialect, attribute.type.oid)
            if process is not None:
                found.append((name, process))
        return tuple(found)

    async def fetch(
        self, driver: asyncpg.Connection, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Run the statement; its rows as dictionaries of processed values."""
        arguments = self.arguments(parameters)
        if self._results is None:
            prepared = await driver.prepare(self.sql)
            self._results = self._processors(prepared.get_attributes())
            records = await prepared.fetch(*arguments)
        else:
            records = await driver.fetch(self.sql, *arguments)
        results = self._results
        rows = []
        for record in records:
            row = dict(record.items())
            for name, process in results:
                row[name] = process(row[name])
            rows.append(row)
        return rows


async def driver_in_transaction(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``connection``, inside its transaction.

    SQLAlchemy's asyncpg adaptation begins the database transaction lazily, at the
    first statement of a transaction SQLAlchemy has begun; this begins it the same
    way (``BEGIN``, carrying what ``send_with_begin`` gave), so SQLAlchemy's
    ``commit`` and ``rollback`` end it as they end their own. The caller has begun
    the SQLAlchemy transaction (``connection.begin()``).

    Raises:
        DBAPIError-like errors of the adaptation: the BEGIN failed.
    """
    sync = connection.sync_connection
    assert sync is not None
    assert connection.in_transaction()
    adapted = sync.connection.dbapi_connection
    if adapted._transaction is None:  # type: ignore[union-attr]
        await adapted._start_transaction()  # type: ignore[union-attr]
    driver: asyncpg.Connection = adapted.driver_connection  # type: ignore[union-attr]
    return driver
