"""What every SQL repository does: its table, the tenant filter, ids, moves and erasure."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, update

from linkbay_customers.domain import StorageRejected
from linkbay_customers_sqlalchemy._repositories._postgresql import one_of_array
from linkbay_customers_sqlalchemy._repositories._session import SqlSession

__all__ = ("SqlRepository",)


class SqlRepository:
    """A repository over the table of one model role, in one tenant's transaction."""

    role: str

    def __init__(self, session: SqlSession) -> None:
        self._session = session

    @property
    def _table(self) -> Table:
        return getattr(self._session.models, self.role).__table__  # type: ignore[no-any-return]

    @property
    def _mine(self) -> ColumnElement[bool]:
        return self._table.c.tenant_id == self._session.tenant_id

    def _own(self, row: Any) -> None:
        if row.tenant_id != self._session.tenant_id:
            raise StorageRejected("the row belongs to another tenant than the unit of work")

    def _one_of(self, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
        """``column`` is one of ``values`` (one array parameter on PostgreSQL)."""
        if self._session.dialect == "postgresql":
            return one_of_array(column, values)
        return column.in_(list(values))  # type: ignore[no-any-return]

    async def _execute(self, statement: Any, parameters: Any = None, *, action: str) -> Any:
        return await self._session.execute(statement, parameters, action=action)

    async def next_id(self) -> int:
        """Reserve the tenant's next id of this repository's table."""
        (new_id,) = await self._session.next_ids(self._table.name)
        return new_id

    async def next_ids(self, count: int) -> builtins.list[int]:
        """Reserve the tenant's next ``count`` ids of this repository's table at once."""
        return await self._session.next_ids(self._table.name, count) if count else []

    async def _copy(self, rows: Sequence[Mapping[str, Any]], *, action: str) -> bool:
        """COPY the rows into the table on PostgreSQL; False where it did not (SQLite,
        a conflict, or COPY refused), so the caller inserts them another way."""
        postgresql = self._session.postgresql
        if postgresql is None:
            return False
        connection = await self._session.connection()
        return await postgresql.copy_rows(
            connection, self._table, list(rows[0]), rows, action=action
        )

    async def _reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        result = await self._execute(
            update(self._table)
            .where(self._mine, self._table.c.customer_id == from_customer_id)
            .values(customer_id=to_customer_id),
            action=f"moving {self._table.name}",
        )
        return int(result.rowcount)

    async def _delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        if not customer_ids:
            return 0
        self._session.note_erasure()
        t = self._table
        result = await self._execute(
            delete(t).where(self._mine, self._one_of(t.c.customer_id, customer_ids)),
            action=f"deleting {t.name}",
        )
        return int(result.rowcount)

    async def _scrub_for_customers(
        self,
        customer_ids: Sequence[int],
        values: Mapping[str, Any],
        holding: ColumnElement[bool],
    ) -> int:
        """Overwrite ``values`` in the customers' rows ``holding`` personal data.

        Only those rows are written, so the count is of rows that changed and a
        repeated erasure writes nothing.
        """
        if not customer_ids:
            return 0
        self._session.note_erasure()
        t = self._table
        result = await self._execute(
            update(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids), holding)
            .values(values),
            action=f"scrubbing {t.name}",
        )
        return int(result.rowcount)
