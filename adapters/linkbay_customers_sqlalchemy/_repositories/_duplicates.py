"""Candidate pairs of duplicate customers: the blocking keys of ``blocking_keys`` in SQL,
one self-join of the tenant's keys."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, Table, and_, case, cast, func, literal, select, union_all

from linkbay_customers.ports import DuplicateCandidates
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository

__all__ = ("SqlDuplicateCandidates",)


class SqlDuplicateCandidates(SqlRepository, DuplicateCandidates):
    """Candidate pairs by blocking, set-based: every key of the tenant's live customers
    in one derived table, joined to itself on the key."""

    def _position(self, text: Any, needle: str) -> Any:
        if self._session.dialect == "postgresql":
            return func.strpos(text, needle)
        return func.instr(text, needle)

    def _mailbox(self, email: Any) -> Any:
        lowered = func.lower(email)
        at = self._position(lowered, "@")
        local = func.substr(lowered, 1, at - 1)
        domain = func.substr(lowered, at + 1)
        plus = self._position(local, "+")
        before_plus = case((plus > 0, func.substr(local, 1, plus - 1)), else_=local)
        return case(
            (at == 0, None),
            (
                domain.in_(("gmail.com", "googlemail.com")),
                func.replace(before_plus, ".", "") + "@gmail.com",
            ),
            else_=before_plus + "@" + domain,
        )

    def _keys(self) -> Any:
        c = self._table
        addresses: Table = self._session.models.address.__table__  # type: ignore[attr-defined]
        first, last = func.lower(c.c.first_name), func.lower(c.c.last_name)
        least, greatest = (
            (func.least, func.greatest)
            if self._session.dialect == "postgresql"
            else (func.min, func.max)
        )
        live = and_(self._mine, c.c.deleted_at.is_(None), c.c.is_anonymized.is_(False))
        keyed = [
            literal("e:") + self._mailbox(c.c.email),
            literal("p:") + c.c.phone,
            literal("n:") + last + "|" + func.substr(first, 1, 1),
            literal("s:") + least(first, last) + "|" + greatest(first, last),
            literal("b:") + cast(c.c.birthday, String) + "|" + func.substr(last, 1, 1),
        ]
        statements = [select(c.c.id.label("id"), key.label("key")).where(live) for key in keyed]
        statements.append(
            select(
                c.c.id.label("id"),
                (literal("a:") + addresses.c.postal_code + "|" + last).label("key"),
            )
            .join(
                addresses,
                and_(addresses.c.tenant_id == c.c.tenant_id, addresses.c.customer_id == c.c.id),
            )
            .where(live, addresses.c.tenant_id == self._session.tenant_id)
        )
        return union_all(*statements).subquery("blocking_keys")

    async def candidate_pairs(
        self, customer_ids: Sequence[int], *, later_only: bool = True
    ) -> builtins.list[tuple[int, int]]:
        """Candidate pairs of the customers: the holders of the customers' keys, in one
        query (a semi-join on the key, which both databases answer from a hash or an
        index of the customers' keys rather than by comparing every key with every
        other), paired by key here."""
        if not customer_ids:
            return []
        keys = self._keys()
        theirs = select(keys.c.key).where(self._one_of(keys.c.id, customer_ids))
        statement = select(keys.c.id, keys.c.key).where(keys.c.key.in_(theirs))
        rows = await self._execute(statement, action="finding candidate pairs")
        holders: dict[str, set[int]] = {}
        for customer_id, key in rows:
            holders.setdefault(key, set()).add(int(customer_id))
        wanted = set(customer_ids)
        pairs = {
            (a, b)
            for ids in holders.values()
            for a in ids & wanted
            for b in ids
            if b != a and (b > a or not later_only)
        }
        return sorted(pairs)
