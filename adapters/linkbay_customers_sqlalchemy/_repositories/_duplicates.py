"""Candidate pairs of duplicate customers: the blocking keys of ``blocking_keys`` in SQL,
derived once per statement and joined to themselves on the key."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
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

from linkbay_customers.domain import MAX_BLOCK_SIZE, MatchRecord, ModelFit
from linkbay_customers.ports import DuplicateCandidates
from linkbay_customers_sqlalchemy._errors import translate_errors
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._fits import SqlModelFitRepository

__all__ = ("SqlDuplicateCandidates",)

# Joins a customer's postcodes (streets, cities) into one column; no address holds it.
_SEPARATOR = "\x1f"
_FIELDS = ("email", "phone", "first_name", "last_name", "birthday")
_ADDRESS_FIELDS = ("postal_codes", "streets", "cities")
_COLUMNS = ("id", *_FIELDS, *_ADDRESS_FIELDS)
_WORK_MEM = "64MB"
_FIT_MODEL = "duplicates"  # the stored fit's name among the tenant's model fits


def _split(joined: str | None) -> frozenset[str]:
    if not joined:
        return frozenset()
    return frozenset(joined.split(_SEPARATOR)) if _SEPARATOR in joined else frozenset((joined,))


def _record(row: Any, start: int) -> MatchRecord:
    """The match record of the side of ``row`` whose columns (``_COLUMNS``) begin at
    ``start``."""
    return MatchRecord(
        customer_id=int(row[start]),
        email=row[start + 1],
        phone=row[start + 2],
        first_name=row[start + 3],
        last_name=row[start + 4],
        birthday=row[start + 5],
        postal_codes=_split(row[start + 6]),
        streets=_split(row[start + 7]),
        cities=_split(row[start + 8]),
    )


def _pairs_of(rows: Sequence[Any]) -> builtins.list[tuple[MatchRecord, MatchRecord]]:
    """The pairs of a batch of rows, each customer's record made once per batch (a
    customer is in many pairs; the rows come by the first side's id)."""
    made: dict[int, MatchRecord] = {}
    pairs = []
    width = len(_COLUMNS)
    for row in rows:
        a = made.get(row[0]) or made.setdefault(row[0], _record(row, 0))
        b = made.get(row[width]) or made.setdefault(row[width], _record(row, width))
        pairs.append((a, b))
    return pairs


class SqlDuplicateCandidates(SqlRepository, DuplicateCandidates):
    """Candidate pairs by blocking, set-based: the keys of the tenant's live customers in
    one common table expression, the keys too many hold dropped, joined to itself on
    the key, in one statement."""

    @property
    def _postgresql(self) -> bool:
        return self._session.dialect == "postgresql"

    @property
    def _materialized(self) -> tuple[str, ...]:
        """The hint that computes a common table expression once, where the database
        knows it (PostgreSQL 12, SQLite 3.35 on)."""
        if self._postgresql or sqlite3.sqlite_version_info >= (3, 35):
            return ("MATERIALIZED",)
        return ()

    def _position(self, text: Any, needle: str) -> Any:
        return func.strpos(text, needle) if self._postgresql else func.instr(text, needle)

    def _mail_parts(self, email: Any) -> tuple[Any, Any]:
        """The local part and the domain of ``email``, lower case (None without ``@``)."""
        lowered = func.lower(email)
        at = self._position(lowered, "@")
        local = case((at > 0, func.substr(lowered, 1, at - 1)), else_=None)
        return local, case((at > 0, func.substr(lowered, at + 1)), else_=None)

    def _mailbox(self, local: Any, domain: Any) -> tuple[Any, Any]:
        """The mailbox of an email and its local part without dots, as ``blocking_keys``,
        from the parts ``_mail_parts`` gives (computed once per customer)."""
        plus = self._position(local, "+")
        before_plus = case((plus > 0, func.substr(local, 1, plus - 1)), else_=local)
        gmail = domain.in_(("gmail.com", "googlemail.com"))
        mailbox = case(
            (gmail, func.replace(before_plus, ".", "") + "@gmail.com"),
            else_=before_plus + "@" + domain,
        )
        return mailbox, func.replace(before_plus, ".", "")

    def _joined(self, column: Any) -> Any:
        if self._postgresql:
            return func.string_agg(column, _SEPARATOR)
        return func.group_concat(column, _SEPARATOR)

    def _records(self) -> CTE:
        """The tenant's live customers with the fields matching compares, and the parts
        of the email its blocking keys are made of."""
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
        local, domain = self._mail_parts(c.c.email)
        return (
            select(
                c.c.id,
                *(c.c[field] for field in _FIELDS),
                c.c.search_first_name,
                c.c.search_last_name,
                local.label("email_local"),
                domain.label("email_domain"),
                *(joined.c[field] for field in _ADDRESS_FIELDS),
            )
            .select_from(c.outerjoin(joined, joined.c.customer_id == c.c.id))
            .where(self._mine, c.c.deleted_at.is_(None), c.c.is_anonymized.is_(False))
            .cte("match_records")
            .prefix_with(*self._materialized)
        )

    def _keys(self, records: CTE) -> CTE:
        """Every (customer, key) of the tenant's live customers, each once by
        construction (no key is made twice, so no DISTINCT over them all)."""
        r = records.c
        addresses: Table = self._session.models.address.__table__  # type: ignore[attr-defined]
        # Names folded as search folds them (``search_key``), stored with each row;
        # ordered by code point, as Python orders them, not by a collation.
        first: Any = r.search_first_name
        last: Any = r.search_last_name
        if self._postgresql:
            first, last = first.collate("C"), last.collate("C")
        first_initial, last_initial = func.substr(first, 1, 1), func.substr(last, 1, 1)
        # The last initial's keys where it is not the first initial's (the same key).
        other_initial = case(
            (last_initial.is_distinct_from(first_initial), last_initial), else_=None
        )
        least, greatest = (func.least, func.greatest) if self._postgresql else (func.min, func.max)
        mailbox, local = self._mailbox(r.email_local, r.email_domain)
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
            literal("b:") + born + "|" + other_initial,
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
            literal("a:") + addresses.c.postal_code + "|" + other_initial,
            literal("d:") + born + "|" + addresses.c.postal_code,
        ):
            # Each postcode of a customer once, however many of its addresses have it.
            statements.append(
                select(r.id.label("id"), key.label("key")).select_from(located).distinct()
            )
        every_key = union_all(*statements).subquery("every_key")
        return (
            select(every_key.c.id, every_key.c.key)
            .where(every_key.c.key.is_not(None))
            .cte("blocking_keys")
            .prefix_with(*self._materialized)
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
        proposing = select(keys.c.key).group_by(keys.c.key)
        if customer_ids is not None:
            # Only the keys the customers hold are counted.
            wanted = select(keys.c.key).where(self._one_of(keys.c.id, customer_ids))
            proposing = proposing.where(keys.c.key.in_(wanted))
        held_keys = proposing.having(func.count().between(2, MAX_BLOCK_SIZE)).cte("proposing_keys")
        # Only the holders of proposing keys meet each other: a fraction of all keys.
        held = (
            select(keys.c.id, keys.c.key)
            .select_from(keys.join(held_keys, held_keys.c.key == keys.c.key))
            .cte("held_keys")
            .prefix_with(*self._materialized)
        )
        mine, theirs = held.alias("mine"), held.alias("theirs")
        other = theirs.c.id > mine.c.id if later_only else theirs.c.id != mine.c.id
        statement = (
            select(mine.c.id.label("a"), theirs.c.id.label("b"))
            .select_from(mine.join(theirs, and_(theirs.c.key == mine.c.key, other)))
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
        first, second = records.alias("first_side"), records.alias("second_side")
        statement = (
            select(
                *(first.c[name].label(f"a_{name}") for name in _COLUMNS),
                *(second.c[name].label(f"b_{name}") for name in _COLUMNS),
            )
            .select_from(
                pairs.join(first, first.c.id == pairs.c.a).join(second, second.c.id == pairs.c.b)
            )
            .order_by(pairs.c.a, pairs.c.b)
            # A batch a fetch: a server-side cursor on PostgreSQL fetches that many rows
            # a round trip.
            .execution_options(yield_per=batch_size)
        )
        connection = await self._session.connection()
        with translate_errors("finding candidate pairs"):
            if self._postgresql:
                # The keys' grouping and the pairs' joins hash in memory rather than spill
                # to disk at the default 4 MB (as SET LOCAL: until the transaction ends).
                await connection.execute(select(func.set_config("work_mem", _WORK_MEM, True)))
            async with connection.stream(statement) as result:
                async for partition in result.partitions(batch_size):
                    yield _pairs_of(partition)

    async def load_match_fit(self) -> ModelFit | None:
        """The tenant's stored fit of the duplicate model, from the model fits' table."""
        return await SqlModelFitRepository(self._session).get(_FIT_MODEL)

    async def save_match_fit(self, fit: ModelFit) -> None:
        """Store a fit of the duplicate model, replacing the previous one."""
        await SqlModelFitRepository(self._session).save(replace(fit, model=_FIT_MODEL))
