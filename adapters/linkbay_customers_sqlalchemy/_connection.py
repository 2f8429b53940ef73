"""The asyncpg connection of PostgreSQL engines: a transaction's tenant sent with its BEGIN."""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ("TenantConnection",)


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that can send a statement with the next BEGIN.

    SQLAlchemy begins a transaction with a simple query (``BEGIN;``) just before
    its first statement. A unit of work hands its tenant setting over with
    ``send_with_begin``; the BEGIN then carries it, in the same round trip, and the
    setting is forgotten. ``send_with_begin(None)`` forgets it without a BEGIN.
    """

    __slots__ = ("_with_begin",)

    def send_with_begin(self, statement: str | None) -> None:
        """Send ``statement`` with the next BEGIN (None: nothing)."""
        self._with_begin = statement

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        """Run ``query``; a BEGIN carries the statement ``send_with_begin`` gave."""
        statement = getattr(self, "_with_begin", None)
        if statement is not None and not args and query.startswith("BEGIN"):
            self._with_begin = None
            query = f"{query} {statement}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status
