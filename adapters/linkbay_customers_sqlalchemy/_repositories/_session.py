"""What a SQL repository needs of its unit of work, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from linkbay_customers_sqlalchemy._models import ModelSet
from linkbay_customers_sqlalchemy._repositories._postgresql import PostgresFeatures

__all__ = ("SqlSession",)


class SqlSession(Protocol):
    """One tenant's transaction, as the repositories see it (``SqlAlchemyUnitOfWork``)."""

    @property
    def tenant_id(self) -> str:
        """The tenant every statement filters on."""
        ...

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    @property
    def models(self) -> ModelSet:
        """The models the storage reads and writes."""
        ...

    @property
    def postgresql(self) -> PostgresFeatures | None:
        """COPY and the similarity search on PostgreSQL; None on SQLite."""
        ...

    async def connection(self) -> AsyncConnection:
        """The connection, inside a transaction of the tenant."""
        ...

    async def execute(self, statement: Any, parameters: Any = None, *, action: str) -> Any:
        """Run a statement in the transaction, wrapping driver errors."""
        ...

    async def fetch(
        self, statement: Any, parameters: Mapping[str, Any], *, action: str
    ) -> Sequence[Mapping[str, Any]]:
        """The rows of a hot statement, as mappings by column name (on PostgreSQL
        run on the driver itself)."""
        ...

    async def next_ids(self, table_name: str, count: int = 1) -> list[int]:
        """Reserve ``count`` new ids of a table."""
        ...

    def note_erasure(self) -> None:
        """Record that the transaction deletes or overwrites personal data."""
        ...
