"""Candidate pairs of duplicate customers: the blocking keys of ``blocking_keys`` in SQL,
derived once per statement and joined to themselves on the key."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import (
    CTE,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)

from linkbay_customers.domain import MAX_BLOCK_SIZE, MatchRecord
from linkbay_customers.ports import DuplicateCandidates
from linkbay_customers_sqlalchemy._errors import translate_errors
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository

__all__ = ("SqlDuplicateCandidates",)

# Joins a customer's postcodes (streets, cities) into one column; no address holds it.
_SEPARATOR = "\x1f"
_FIELDS = ("email", "phone", "first_name", "last_name", "birthday")
_ADDRESS_FIELDS = ("postal_codes", "streets", "cities")


def _split(joined: str | None) -> frozenset[str]:
    if not joined:
        return frozenset()
    return frozenset(joined.split(_SEPARATOR)) if _SEPARATOR in joined else frozenset((joined,))


def _record(row: Any, side: str) -> MatchRecord:
    return MatchRecord(
        customer_id=int(row[f"{side}_id"]),
        email=row[f"{side}_email"],
        phone=row[f"{side}_phone"],
        first_name=row[f"{side}_first_name"],
        last_name=row[f"{side}_last_name"],
        birthday=row[f"{side}_birthday"],
        postal_codes=_split(row[f"{side}_postal_codes"]),
        streets=_split(row[f"{side}_streets"]),
        cities=_split(row[f"{side}_cities"]),
    )


class SqlDuplicateCandidates(SqlRepository, DuplicateCandidates):
    """Candidate pairs by blocking, set-based: the keys of the tenant's live customers in
    one common table expression, the keys too many hold dropped, joined to itself on
    the key, in one statement."""

    @property
    def _postgresql(self) -> bool:
        return self._session.dialect == "postgresql"

    def _position(self, text: Any, needle: str) -> Any:
        return func.strpos(text, needle) if self._postgresql else func.instr(text, needle)

    def _mailbox(self, email: Any) -> tuple[Any, Any]:
        """The mailbox of ``email`` and its local part without dots, as ``blocking_keys``."""
        lowered = func.lower(email)
        at = self._position(lowered, "@")
        local = func.substr(lowered, 1, at - 1)
        domain = func.substr(lowered, at + 1)
        plus = self._position(local, "+")
        before_plus = case((plus > 0, func.substr(local, 1, plus - 1)), else_=local)
        gmail = domain.in_(("gmail.com", "googlemail.com"))
        mailbox = case(
            (at == 0, None),
            (gmail, func.replace(before_plus, ".", "") + "@gmail.com"),
            else_=before_plus + "@" + domain,
        )
        return mailbox, case((at == 0, None), else_=func.replace(before_plus, ".", ""))

    def _joined(self, column: Any) -> Any:
        if self._postgresql:
            return func.string_agg(column, _SEPARATOR)
        return func.group_concat(column, _SEPARATOR)

    def _records(self) -> CTE:
        """The tenant's live customers with the fields matching compares."""
        c = self._table
        addresses: Table = self._session.models.address.__table__  # type: ignore[attr-defined]
        joined = (
            select(
                addresses.c.customer_id,
                self._joined(addresses.c.postal_code).label("postal_codes"),
                self._joined(addresses.c.address_line1).label("streets"),
                self._joined(addresses.c.city).label("cities"),
            )
            .where(addresses.c.tenant_id == self._session.tenant_id)
            .group_by(addresses.c.customer_id)
            .subquery("joined_addresses")
        )
        return (
            select(
                c.c.id,
                *(c.c[field] for field in _FIELDS),
                c.c.search_first_name,
                c.c.search_last_name,
                *(joined.c[field] for field in _ADDRESS_FIELDS),
            )
            .select_from(c.outerjoin(joined, joined.c.customer_id == c.c.id))
            .where(self._mine, c.c.deleted_at.is_(None), c.c.is_anonymized.is_(False))
            .cte("match_records")
        )

    def _keys(self, records: CTE) -> CTE:
        """Every (customer, key) of the tenant's live customers, once."""
        r = records.c
        addresses: Table = self._session.models.address.__table__  # type: ignore[attr-defined]
        # Names folded as search folds them (``search_key``), stored with each row;
        # ordered by code point, as Python orders them, not by a collation.
        first: Any = r.search_first_name
        last: Any = r.search_last_name
        if self._postgresql:
            first, last = first.collate("C"), last.collate("C")
        first_initial, last_initial = func.substr(first, 1, 1), func.substr(last, 1, 1)
        least, greatest = (func.least, func.greatest) if self._postgresql else (func.min, func.max)
        mailbox, local = self._mailbox(r.email)
        phone_tail = func.right(r.phone, 9) if self._postgresql else func.substr(r.phone, -9)
        born = cast(r.birthday, String)
        keyed = [
            literal("e:") + mailbox,
            literal("l:") + local,
            literal("p:") + phone_tail,
            literal("n:") + last + "|" + first_initial,
            literal("f:") + first + "|" + last_initial,
            # PostgreSQL's least and greatest skip a null; the key needs both names.
            case(
                (first.is_not(None) & last.is_not(None), literal("s:") + least(first, last)),
                else_=None,
            )
            + "|"
            + greatest(first, last),
            literal("b:") + born + "|" + first_initial,
            literal("b:") + born + "|" + last_initial,
        ]
        statements: list[Select[Any]] = [
            select(r.id.label("id"), key.label("key")) for key in keyed
        ]
        located = records.join(
            addresses,
            and_(
                addresses.c.tenant_id == self._session.tenant_id,
                addresses.c.customer_id == r.id,
            ),
        )
        for key in (
            literal("a:") + addresses.c.postal_code + "|" + first_initial,
            literal("a:") + addresses.c.postal_code + "|" + last_initial,
            literal("d:") + born + "|" + addresses.c.postal_code,
        ):
            statements.append(select(r.id.label("id"), key.label("key")).select_from(located))
        every_key = union_all(*statements).subquery("every_key")
        return (
            select(every_key.c.id, every_key.c.key)
            .where(every_key.c.key.is_not(None))
            .distinct()
            .cte("blocking_keys")
        )

    def _pairs(
        self,
        keys: CTE,
        *,
        customer_ids: Sequence[int] | None,
        later_only: bool,
        every: int,
    ) -> CTE:
        """The candidate pairs ``(a, b)``: customers sharing a key at most
        ``MAX_BLOCK_SIZE`` customers hold, ``a`` one of ``customer_ids`` when given."""
        held = (
            select(keys.c.key)
            .group_by(keys.c.key)
            .having(func.count().between(2, MAX_BLOCK_SIZE))
            .cte("proposing_keys")
        )
        mine, theirs = keys.alias("mine"), keys.alias("theirs")
        other = theirs.c.id > mine.c.id if later_only else theirs.c.id != mine.c.id
        statement = (
            select(mine.c.id.label("a"), theirs.c.id.label("b"))
            .select_from(
                mine.join(held, held.c.key == mine.c.key).join(
                    theirs, and_(theirs.c.key == mine.c.key, other)
                )
            )
            .distinct()
        )
        if customer_ids is not None:
            statement = statement.where(self._one_of(mine.c.id, customer_ids))
        if every > 1:
            statement = statement.where(mine.c.id % every == 0)
        return statement.cte("candidate_pairs")

    async def candidate_pairs(
        self, customer_ids: Sequence[int], *, later_only: bool = True
    ) -> builtins.list[tuple[int, int]]:
        """Candidate pairs of the customers, in one statement."""
        if not customer_ids:
            return []
        pairs = self._pairs(
            self._keys(self._records()), customer_ids=customer_ids, later_only=later_only, every=1
        )
        rows = await self._execute(
            select(pairs.c.a, pairs.c.b).order_by(pairs.c.a, pairs.c.b),
            action="finding candidate pairs",
        )
        return [(int(a), int(b)) for a, b in rows]

    async def candidate_records(
        self,
        *,
        every: int = 1,
        customer_ids: Sequence[int] | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[Sequence[tuple[MatchRecord, MatchRecord]]]:
        """Candidate pairs with both sides' fields, streamed from one statement (a
        server-side cursor on PostgreSQL)."""
        if customer_ids is not None and not customer_ids:
            return
        records = self._records()
        pairs = self._pairs(
            self._keys(records),
            customer_ids=customer_ids,
            later_only=customer_ids is None,
            every=every,
        )
        columns = ("id", *_FIELDS, *_ADDRESS_FIELDS)
        first, second = records.alias("first_side"), records.alias("second_side")
        statement = (
            select(
                *(first.c[name].label(f"a_{name}") for name in columns),
                *(second.c[name].label(f"b_{name}") for name in columns),
            )
            .select_from(
                pairs.join(first, first.c.id == pairs.c.a).join(second, second.c.id == pairs.c.b)
            )
            .order_by(pairs.c.a, pairs.c.b)
        )
        connection = await self._session.connection()
        with translate_errors("finding candidate pairs"):
            async with connection.stream(statement) as result:
                async for partition in result.mappings().partitions(batch_size):
                    yield [(_record(row, "a"), _record(row, "b")) for row in partition]
