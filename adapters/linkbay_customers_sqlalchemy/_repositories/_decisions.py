"""Duplicate decisions in SQL: pairs of customers marked as distinct people."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, or_, select

from linkbay_customers.domain import DuplicateDecision
from linkbay_customers.ports import DuplicateDecisions
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._statements import insert_ignoring_conflict

__all__ = ("SqlDuplicateDecisions",)


class SqlDuplicateDecisions(SqlRepository, DuplicateDecisions):
    """The ``duplicate_decisions`` role of the customer repository, over the model set's
    ``duplicate_decision`` table."""

    @property
    def _decisions(self) -> Table:
        return self._session.models.duplicate_decision.__table__  # type: ignore[attr-defined, no-any-return]

    def _naming(self, customer_ids: Sequence[int]) -> Any:
        t = self._decisions
        return (
            t.c.tenant_id == self._session.tenant_id,
            or_(
                self._one_of(t.c.customer_id, customer_ids),
                self._one_of(t.c.other_id, customer_ids),
            ),
        )

    async def add_decision(self, decision: DuplicateDecision) -> bool:
        """Store a decision unless its pair has one (one statement, no abort)."""
        self._own(decision)
        t = self._decisions
        result = await self._execute(
            insert_ignoring_conflict(
                self._session.dialect, t, ("tenant_id", "customer_id", "other_id"), "customer_id"
            ),
            dataclasses.asdict(decision),
            action="recording a duplicate decision",
        )
        return result.first() is not None

    async def remove_decision(self, customer_id: int, other_id: int) -> bool:
        """Remove the decision about a pair."""
        t = self._decisions
        result = await self._execute(
            delete(t).where(
                t.c.tenant_id == self._session.tenant_id,
                t.c.customer_id == customer_id,
                t.c.other_id == other_id,
            ),
            action="removing a duplicate decision",
        )
        return bool(result.rowcount)

    async def decisions_for_customers(
        self, customer_ids: Sequence[int]
    ) -> builtins.list[DuplicateDecision]:
        """The decisions naming any of the customers, oldest first."""
        if not customer_ids:
            return []
        t = self._decisions
        rows = await self._execute(
            select(t.c.tenant_id, t.c.customer_id, t.c.other_id, t.c.decided_by, t.c.decided_at)
            .where(*self._naming(customer_ids))
            .order_by(t.c.decided_at, t.c.customer_id, t.c.other_id),
            action="reading duplicate decisions",
        )
        return [DuplicateDecision(**row._mapping) for row in rows]

    async def delete_decisions_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the decisions naming any of the customers."""
        if not customer_ids:
            return 0
        result = await self._execute(
            delete(self._decisions).where(*self._naming(customer_ids)),
            action="deleting duplicate decisions",
        )
        return int(result.rowcount)
