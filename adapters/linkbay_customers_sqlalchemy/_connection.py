"""The asyncpg connection of PostgreSQL engines: a transaction's tenant sent with its
BEGIN, and the session's tenant for the reads that run outside a transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ("TenantConnection",)

_SET_SESSION_TENANT = "SELECT set_config('linkbay.tenant_id', $1, false)"
_RESET_SESSION_TENANT = "RESET linkbay.tenant_id"


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that can send a statement with the next BEGIN, and that
    knows the tenant its session is set to.

    SQLAlchemy begins a transaction with a simple query (``BEGIN;``) just before
    its first statement. A unit of work hands its tenant setting over with
    ``send_with_begin``; the BEGIN then carries it, in the same round trip, and the
    setting is forgotten. ``send_with_begin(None)`` forgets it without a BEGIN.

    A read-only unit of work runs the adapter's own SELECTs outside any transaction,
    each in the implicit transaction of its statement, with the tenant set for the
    session (``use_tenant``): set once, it serves every later read of that tenant
    on this connection without a round trip of its own. A transaction's own setting
    (``SET LOCAL``) takes precedence inside it; ``forget_tenant`` resets the
    session's before the connection serves anything but a unit of work.
    """

    __slots__ = ("_may_hold_tenant", "_session_tenant", "_with_begin")

    def send_with_begin(self, statement: str | None) -> None:
        """Send ``statement`` with the next BEGIN (None: nothing)."""
        self._with_begin = statement

    @property
    def session_tenant(self) -> str | None:
        """The tenant the session is known to be set to (``use_tenant``); None when
        not set, or not known (see ``may_hold_tenant``)."""
        return getattr(self, "_session_tenant", None)

    @property
    def may_hold_tenant(self) -> bool:
        """Whether the session may be set to a tenant: from the first ``use_tenant``
        (even one cut short, which the server may have carried out) until a
        ``forget_tenant`` succeeds."""
        return bool(getattr(self, "_may_hold_tenant", False))

    async def use_tenant(self, tenant_id: str) -> None:
        """Set the session's tenant, unless it is set to ``tenant_id`` already.

        Only outside a transaction: there the setting takes effect at once, where a
        transaction rolled back would take it back.
        """
        if self.session_tenant == tenant_id:
            return
        if self.is_in_transaction():
            raise RuntimeError("the session's tenant is set outside a transaction only")
        self._session_tenant = None  # unknown until the statement succeeds
        self._may_hold_tenant = True
        await super().execute(_SET_SESSION_TENANT, tenant_id)
        self._session_tenant = tenant_id

    async def forget_tenant(self) -> None:
        """Reset the session's tenant, if it may be set (outside a transaction)."""
        if not self.may_hold_tenant:
            return
        self._session_tenant = None
        await super().execute(_RESET_SESSION_TENANT)
        self._may_hold_tenant = False

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        """Run ``query``; a BEGIN carries the statement ``send_with_begin`` gave."""
        statement = getattr(self, "_with_begin", None)
        if statement is not None and not args and query.startswith("BEGIN"):
            self._with_begin = None
            query = f"{query} {statement}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status
