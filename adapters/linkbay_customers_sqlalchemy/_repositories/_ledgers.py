"""The ledgers in SQL: consent events, the audit trail, merge aliases."""

from __future__ import annotations

import builtins
import dataclasses
import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, func, or_, select, text, tuple_

from linkbay_customers.domain import (
    AuditAction,
    AuditEvent,
    ChainLock,
    ChainTip,
    ConsentEvent,
    MergeAlias,
    Page,
    StorageRejected,
    chain_of,
)
from linkbay_customers.ports import AuditRepository, ConsentRepository, MergeAliasRepository
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._statements import page_of, plain_insert

__all__ = ("SqlAuditRepository", "SqlConsentRepository", "SqlMergeAliasRepository")


@functools.cache
def _lock_chains(dialect: str, tips: Table) -> Any:
    """Create the tip rows missing among ``:chains`` and lock them all, in chain order.

    The no-op update takes the row lock, waiting for a concurrent appender of the
    chain to commit, and then returns that appender's tip. On PostgreSQL it also
    returns the transaction's time.
    """
    name = _quoted_table(tips)
    if dialect == "postgresql":
        chains, moment = "unnest(CAST(:chains AS bigint[])) AS chain(value)", ", now()"
    else:
        chains, moment = "json_each(:chains)", ""
    return text(
        f"INSERT INTO {name} (tenant_id, chain_id, sequence, hash)"
        f" SELECT :tenant, value, 0, '' FROM {chains} WHERE true ORDER BY value"
        f" ON CONFLICT (tenant_id, chain_id) DO UPDATE SET sequence = {name}.sequence"
        f" RETURNING chain_id, sequence, hash{moment}"
    )


@functools.cache
def _reserve_and_lock(counters: Table, tips: Table) -> Any:
    """PostgreSQL: ``_reserve_ids`` of the storage and ``_lock_chains`` in one statement.

    The counter is advanced first, then the chains are locked in chain order, as
    ``next_ids`` then ``lock_chains`` would: the main query reads the counter's CTE
    first, which runs it first. The counter's row has the time; the chains' rows
    have none, and only the chains with events come back: a bulk import locks a
    chain per new customer, created empty here, and reading 5,000 empty tips a
    chunk back cost more than locking them (a data-modifying CTE runs to the end,
    locking every chain, whatever the query reads of it).
    """
    c, t = _quoted_table(counters), _quoted_table(tips)
    return text(
        f"WITH reserved AS (INSERT INTO {c} (tenant_id, kind, last_id)"
        " VALUES (:tenant, :kind, :count)"
        f" ON CONFLICT (tenant_id, kind) DO UPDATE SET last_id = {c}.last_id + excluded.last_id"
        " RETURNING last_id),"
        f" locked AS (INSERT INTO {t} (tenant_id, chain_id, sequence, hash)"
        " SELECT :tenant, value, 0, '' FROM unnest(CAST(:chains AS bigint[])) AS chain(value)"
        f" WHERE true ORDER BY value ON CONFLICT (tenant_id, chain_id) DO UPDATE"
        f" SET sequence = {t}.sequence RETURNING chain_id, sequence, hash)"
        " SELECT last_id, CAST(NULL AS bigint), CAST(NULL AS text), now() FROM reserved"
        " UNION ALL SELECT chain_id, sequence, hash, NULL FROM locked WHERE sequence > 0"
    )


def _quoted_table(table: Table) -> str:
    return f'"{table.name}"' if table.schema is None else f'"{table.schema}"."{table.name}"'


class SqlConsentRepository(SqlRepository, ConsentRepository):
    """The consent ledger in SQL."""

    role = "consent_event"

    async def append(self, event: ConsentEvent) -> None:
        """Append an event."""
        self._own(event)
        await self._execute(
            plain_insert(self._table), dataclasses.asdict(event), action="recording consent"
        )

    async def list_for_customer(self, customer_id: int) -> builtins.list[ConsentEvent]:
        """A customer's consent events, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[ConsentEvent]:
        """The consent events of any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.occurred_at, t.c.id),
            action="reading consent history",
        )
        return [ConsentEvent(**row._mapping) for row in rows]

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the customers' ledgers."""
        return await self._delete_for_customers(customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the source, IP address and user agent of the customers' events; count
        those changed."""
        t = self._table
        return await self._scrub_for_customers(
            customer_ids,
            {"source": None, "ip_address": None, "user_agent": None},
            or_(t.c.source.is_not(None), t.c.ip_address.is_not(None), t.c.user_agent.is_not(None)),
        )


class SqlAuditRepository(SqlRepository, AuditRepository):
    """The audit trail in SQL: events, and the tip of each chain."""

    role = "audit_event"

    @property
    def _tips(self) -> Table:
        return self._session.models.audit_chain.__table__  # type: ignore[attr-defined, no-any-return]

    def _values(
        self, event: AuditEvent, field_lists: dict[tuple[str, ...], builtins.list[str]]
    ) -> dict[str, Any]:
        """The event's row; events naming the same fields share one list of them
        (a batch's encoder then encodes it once)."""
        self._own(event)
        if event.sequence is None or event.hash is None:
            raise StorageRejected("an audit event must be sealed before it is appended")
        return {
            "tenant_id": event.tenant_id,
            "id": event.id,
            "customer_id": event.customer_id,
            "actor": event.actor,
            "action": event.action.value,
            "occurred_at": event.occurred_at,
            "changed_fields": field_lists.get(event.changed_fields)
            or field_lists.setdefault(event.changed_fields, list(event.changed_fields)),
            "details": event.details,
            "chain_id": chain_of(event.customer_id),
            "sequence": event.sequence,
            "hash": event.hash,
        }

    async def lock_chains(self, chains: Sequence[int]) -> ChainLock:
        """Lock the chains' tip rows (creating empty ones) in chain order; on PostgreSQL
        return the transaction's time, which the audit table's trigger stamps."""
        if not chains:
            return ChainLock(tips={})
        ordered = sorted(set(chains))
        postgresql = self._session.dialect == "postgresql"
        rows = await self._session.fetch(
            _lock_chains(self._session.dialect, self._tips),
            {
                "tenant": self._session.tenant_id,
                "chains": ordered if postgresql else json.dumps(ordered),
            },
            action="locking the audit trail",
        )
        return ChainLock(
            tips={
                int(row["chain_id"]): ChainTip(int(row["sequence"]), row["hash"])
                for row in rows
                if row["sequence"]
            },
            now=rows[0]["now"] if postgresql else None,
        )

    async def reserve_and_lock(
        self, count: int, chains: Sequence[int]
    ) -> tuple[builtins.list[int], ChainLock]:
        """``next_ids`` then ``lock_chains``; on PostgreSQL in one statement."""
        if self._session.dialect != "postgresql" or not count or not chains:
            return await self.next_ids(count), await self.lock_chains(chains)
        counters = self._session.models.id_counter.__table__  # type: ignore[attr-defined]
        rows = (
            await self._execute(
                _reserve_and_lock(counters, self._tips),
                {
                    "tenant": self._session.tenant_id,
                    "kind": self._table.name,
                    "count": count,
                    "chains": sorted(set(chains)),
                },
                action="locking the audit trail",
            )
        ).all()
        ((last, now),) = ((row[0], row[3]) for row in rows if row[3] is not None)
        tips = {int(r[0]): ChainTip(int(r[1]), r[2]) for r in rows if r[3] is None}
        return list(range(last - count + 1, last + 1)), ChainLock(tips=tips, now=now)

    async def append(self, event: AuditEvent) -> None:
        """Append a sealed event."""
        await self.append_many([event])

    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Append sealed events in one batched statement (COPY on PostgreSQL when
        allowed); the table's trigger moves their chains' tips."""
        if not events:
            return
        field_lists: dict[tuple[str, ...], builtins.list[str]] = {}
        rows = [self._values(e, field_lists) for e in events]
        if await self._copy(rows, action="writing the audit trail"):
            return
        # Fewer rows than COPY pays for, SQLite, or COPY refused (a taken id or
        # position, which the INSERT reports, or row-level security binding the role).
        if len(rows) == 1:  # a change's one event: the hot statement's path
            await self._session.fetch(
                plain_insert(self._table), rows[0], action="writing the audit trail"
            )
        else:
            await self._execute(plain_insert(self._table), rows, action="writing the audit trail")

    @staticmethod
    def _event(row: Any) -> AuditEvent:
        m = row._mapping
        return AuditEvent(
            id=m["id"],
            tenant_id=m["tenant_id"],
            customer_id=m["customer_id"],
            actor=m["actor"],
            action=AuditAction(m["action"]),
            occurred_at=m["occurred_at"],
            changed_fields=tuple(m["changed_fields"] or ()),
            details=m["details"] or {},
            sequence=m["sequence"],
            hash=m["hash"],
        )

    async def list(
        self,
        *,
        customer_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> Page[AuditEvent]:
        """Events oldest first, filtered by customer and ``[since, until)``."""
        t = self._table
        where: builtins.list[ColumnElement[bool]] = [self._mine]
        if customer_id is not None:
            where.append(t.c.customer_id == customer_id)
        if since is not None:
            where.append(t.c.occurred_at >= since)
        if until is not None:
            where.append(t.c.occurred_at < until)
        return await self._listed(where, page=page, page_size=page_size)

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[AuditEvent]:
        """One page of the events about any of the customers, oldest first."""
        where = [self._mine, self._one_of(self._table.c.customer_id, customer_ids)]
        return await self._listed(where, page=page, page_size=page_size)

    async def _listed(
        self, where: Sequence[ColumnElement[bool]], *, page: int, page_size: int
    ) -> Page[AuditEvent]:
        t = self._table
        rows = await self._execute(
            select(t)
            .where(*where)
            .order_by(t.c.occurred_at, t.c.id)
            .limit(page_size)
            .offset((page - 1) * page_size),
            action="reading the audit trail",
        )
        events = [self._event(row) for row in rows]
        count = await self._execute(
            select(func.count()).select_from(t).where(*where), action="counting audit events"
        )
        return page_of(events, int(count.scalar_one()), page, page_size)

    async def chained(
        self, *, after: tuple[int, int] | None = None, limit: int
    ) -> builtins.list[tuple[AuditEvent, ChainTip | None]]:
        """Events by chain then position, each with its chain's tip (one statement,
        so both come from one snapshot)."""
        t, tips = self._table, self._tips
        statement = (
            select(t, tips.c.sequence.label("tip_sequence"), tips.c.hash.label("tip_hash"))
            .outerjoin(
                tips, and_(tips.c.tenant_id == t.c.tenant_id, tips.c.chain_id == t.c.chain_id)
            )
            .where(self._mine)
            .order_by(t.c.chain_id, t.c.sequence)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(tuple_(t.c.chain_id, t.c.sequence) > tuple_(*after))
        rows = await self._execute(statement, action="reading the audit chains")
        return [
            (
                self._event(row),
                None if row.tip_sequence is None else ChainTip(row.tip_sequence, row.tip_hash),
            )
            for row in rows
        ]

    async def orphan_tips(self, *, limit: int) -> builtins.list[int]:
        """Chains whose tip names an event, but that have none."""
        t, tips = self._table, self._tips
        rows = await self._execute(
            select(tips.c.chain_id)
            .where(
                tips.c.tenant_id == self._session.tenant_id,
                tips.c.sequence > 0,  # locked once, never appended to: an empty chain
                ~exists().where(t.c.tenant_id == tips.c.tenant_id, t.c.chain_id == tips.c.chain_id),
            )
            .order_by(tips.c.chain_id)
            .limit(limit),
            action="reading the audit chains",
        )
        return [int(row[0]) for row in rows]


class SqlMergeAliasRepository(SqlRepository, MergeAliasRepository):
    """Merge aliases in SQL."""

    role = "merge_alias"

    async def add(self, alias: MergeAlias) -> None:
        """Record an alias."""
        self._own(alias)
        await self._execute(
            plain_insert(self._table), dataclasses.asdict(alias), action="recording a merge"
        )

    async def resolve(self, alias_id: int) -> int | None:
        """The customer an alias resolves to."""
        t = self._table
        result = await self._execute(
            select(t.c.customer_id).where(self._mine, t.c.alias_id == alias_id),
            action="resolving an alias",
        )
        value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def repoint(self, from_customer_id: int, to_customer_id: int) -> int:
        """Make the aliases of one customer resolve to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    async def list_for_customer(self, customer_id: int) -> builtins.list[MergeAlias]:
        """The aliases resolving to a customer, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[MergeAlias]:
        """The aliases resolving to any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.merged_at, t.c.alias_id),
            action="listing aliases",
        )
        return [MergeAlias(**row._mapping) for row in rows]

    async def delete_for_customer(self, customer_id: int) -> int:
        """Remove the aliases resolving to a customer."""
        return await self._delete_for_customers([customer_id])
