"""Customers in SQL: reads, writes, listing and search, bulk import, derived data."""

from __future__ import annotations

import builtins
import dataclasses
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from linkbay_customers.domain import (
    Customer,
    CustomerFilters,
    CustomerNotFound,
    DerivedData,
    DuplicateEmail,
    ExtraErasure,
    Page,
    StorageError,
    TagMatch,
    phone_query,
    search_key,
)
from linkbay_customers.ports import (
    CustomerBulkImport,
    CustomerRepository,
    DerivedDataStore,
    EmbeddingBulkLoad,
)
from linkbay_customers_sqlalchemy._errors import is_unique_violation, translate_errors
from linkbay_customers_sqlalchemy._models import extra_erasure
from linkbay_customers_sqlalchemy._repositories._customer_rows import (
    EMBEDDING_FIELDS,
    embedding_entry,
)
from linkbay_customers_sqlalchemy._repositories._decisions import SqlDuplicateDecisions
from linkbay_customers_sqlalchemy._repositories._duplicates import SqlDuplicateCandidates
from linkbay_customers_sqlalchemy._repositories._postgresql import (
    FRESH_PLANS,
    GENERIC_PLAN,
    PLAN_MODE,
    column_arrays,
    emails_probed_by_key,
    has_tags,
    update_from_arrays,
)
from linkbay_customers_sqlalchemy._repositories._similarity import SqlNearestNeighbours
from linkbay_customers_sqlalchemy._repositories._statements import (
    ESCAPE,
    customer_select,
    customers_after,
    insert_ignoring_conflict,
    keyed,
    like_escape,
    page_of,
    update_by_key,
)

__all__ = ("SqlCustomerRepository",)

_SCORE_COLUMNS = tuple(
    f.name
    for f in dataclasses.fields(DerivedData)
    if f.name not in ("customer_id", "keep_embedding", *EMBEDDING_FIELDS)
)


@functools.cache
def _customer_by_id(
    table: Table, embeddings: Table, include_deleted: bool, for_update: bool
) -> Any:
    """Reading a customer by id is the hottest query: build its statement once."""
    statement = customer_select(table, embeddings).where(
        table.c.tenant_id == bindparam("tenant"), table.c.id == bindparam("id")
    )
    if not include_deleted:
        statement = statement.where(table.c.deleted_at.is_(None))
    # Locks the customer's row only (an embedding row may not exist).
    return statement.with_for_update(of=table) if for_update else statement


class SqlCustomerRepository(
    SqlNearestNeighbours,
    SqlDuplicateCandidates,
    SqlDuplicateDecisions,
    CustomerRepository,
    CustomerBulkImport,
    DerivedDataStore,
    EmbeddingBulkLoad,
):
    """Customers in SQL; columns a host adds to its model are the ``extra`` fields."""

    def extra_erasure(self) -> ExtraErasure:
        """What anonymization writes to the host's extra columns, as the model declares them."""
        return extra_erasure(self._table)

    async def add(self, customer: Customer) -> None:
        """Insert a customer; a taken email raises DuplicateEmail without aborting."""
        inserted = await self._session.fetch(
            insert_ignoring_conflict(self._session.dialect, self._table, ("tenant_id", "email")),
            self._values(customer),
            action="adding a customer",
        )
        if not inserted:
            holder = await self.get_by_email(customer.email or "", include_deleted=True)
            if holder is None:
                raise StorageError(f"customer {customer.id} could not be added")
            raise DuplicateEmail(customer.email or "", existing_is_deleted=holder.is_deleted)
        self._written([customer])
        await self._write_embeddings([embedding_entry(customer)])

    async def add_many(self, customers: Sequence[Customer]) -> builtins.list[str]:
        """Insert many customers in multi-row statements; return the emails refused as taken."""
        if not customers:
            return []
        rows = [self._values(c) for c in customers]
        # COPY when every row has the same columns; a conflict with a concurrent
        # writer falls back to the INSERT below, which skips the taken emails.
        refused: builtins.list[str] = []
        if not (
            len({frozenset(c.extra) for c in customers}) == 1
            and await self._copy(rows, action="adding customers")
        ):
            result = await self._execute(
                insert_ignoring_conflict(
                    self._session.dialect, self._table, ("tenant_id", "email"), "email"
                ),
                rows,
                action="adding customers",
            )
            inserted = set(result.scalars())
            refused = [c.email or "" for c in customers if c.email not in inserted]
        added = [c for c in customers if c.email not in refused]
        self._written(added)
        await self._write_embeddings(map(embedding_entry, added))
        return refused

    async def get_many_by_email(self, emails: Sequence[str]) -> dict[str, Customer]:
        """The customers holding any of ``emails``, deleted ones included."""
        if not emails:
            return {}
        table = self._table
        wanted = sorted(set(emails))
        action = "reading customers"
        if self._session.dialect != "postgresql":
            rows = await self._execute(
                self._select().where(self._mine, table.c.email.in_(wanted)), action=action
            )
            return {row.email: self._entity(row) for row in rows}
        mode = (await self._execute(GENERIC_PLAN, action=action)).scalar_one()
        await self._execute(FRESH_PLANS, action=action)  # planned on the tenant as it is now
        rows = await self._execute(
            emails_probed_by_key(self._select(), table, self._mine, wanted), action=action
        )
        found = {row.email: self._entity(row) for row in rows}
        await self._execute(PLAN_MODE, {"mode": mode}, action=action)
        return found

    async def update_many(self, customers: Sequence[Customer]) -> None:
        """Write many existing customers in one batched statement."""
        if not customers:
            return
        rows = [self._values(c) for c in customers]
        columns = tuple(name for name in rows[0] if name not in ("tenant_id", "id"))
        await self._execute(
            update_by_key(self._table, columns),
            [keyed(row) for row in rows],
            action="updating customers",
        )
        await self._write_embeddings(map(embedding_entry, customers))

    async def get(
        self, customer_id: int, *, include_deleted: bool = False, for_update: bool = False
    ) -> Customer | None:
        """Fetch a customer; ``for_update`` locks the row (SQLite already holds the write lock)."""
        statement = _customer_by_id(
            self._table,
            self._embeddings,
            include_deleted,
            for_update and self._session.dialect == "postgresql",
        )
        rows = await self._session.fetch(
            statement,
            {"tenant": self._session.tenant_id, "id": customer_id},
            action="reading a customer",
        )
        return self._entity_of(rows[0]) if rows else None

    async def get_many(self, customer_ids: Sequence[int]) -> builtins.list[Customer]:
        """The customers with any of ``customer_ids``, deleted ones included, by id."""
        if not customer_ids:
            return []
        table = self._table
        rows = await self._execute(
            self._select()
            .where(self._mine, self._one_of(table.c.id, customer_ids))
            .order_by(table.c.id),
            action="reading customers",
        )
        return [self._entity(row) for row in rows]

    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> Customer | None:
        """Fetch a customer by normalized email."""
        table = self._table
        statement = self._select().where(self._mine, table.c.email == email)
        if not include_deleted:
            statement = statement.where(table.c.deleted_at.is_(None))
        row = (await self._execute(statement, action="reading a customer")).first()
        return None if row is None else self._entity(row)

    async def update(self, customer: Customer) -> None:
        """Write every field of an existing customer."""
        values = self._values(customer)
        columns = tuple(name for name in values if name not in ("tenant_id", "id"))
        connection = await self._session.connection()
        with translate_errors("updating a customer"):
            try:
                result = await connection.execute(
                    update_by_key(self._table, columns), keyed(values)
                )
            except IntegrityError as exc:
                if is_unique_violation(exc, "email"):
                    raise DuplicateEmail(customer.email or "") from exc
                raise
        if result.rowcount == 0:
            raise CustomerNotFound(customer.id)
        await self._write_embeddings([embedding_entry(customer)])

    async def delete(self, customer_id: int) -> None:
        """Remove a customer row; foreign keys refuse it while dependants remain."""
        await self.delete_many([customer_id])

    async def delete_many(self, customer_ids: Sequence[int]) -> None:
        """Remove customer rows in one statement; foreign keys refuse it while dependants
        remain."""
        if not customer_ids:
            return
        self._session.note_erasure()
        table = self._table
        await self._execute(
            delete(table).where(self._mine, self._one_of(table.c.id, customer_ids)),
            action="deleting customers",
        )

    def _filters(self, filters: CustomerFilters) -> builtins.list[ColumnElement[bool]]:
        t = self._table
        where: builtins.list[ColumnElement[bool]] = [self._mine]
        if not filters.include_deleted:
            where.append(t.c.deleted_at.is_(None))
        if filters.segment is not None:
            where.append(t.c.segment == filters.segment)
        if filters.min_total_spent is not None:
            where.append(t.c.total_spent >= filters.min_total_spent)
        if filters.max_total_spent is not None:
            where.append(t.c.total_spent <= filters.max_total_spent)
        if filters.tags:
            where.append(self._tag_filter(filters.tags, filters.tags_match))
        if filters.email_contains is not None:
            pattern = f"%{like_escape(search_key(filters.email_contains))}%"
            where.append(t.c.search_email.like(pattern, escape=ESCAPE))
        if filters.created_after is not None:
            where.append(t.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            where.append(t.c.created_at < filters.created_before)
        return where

    def _tag_filter(self, tags: Sequence[str], match: TagMatch) -> ColumnElement[bool]:
        column = self._table.c.tags
        wanted = sorted(set(tags))
        if self._session.dialect == "postgresql":
            return has_tags(column, wanted, match)
        each = func.json_each(column).table_valued("value")
        if match is TagMatch.ANY:
            return exists(select(literal(1)).select_from(each).where(each.c.value.in_(wanted)))
        matched = (
            select(func.count(func.distinct(each.c.value)))
            .select_from(each)
            .where(each.c.value.in_(wanted))
            .scalar_subquery()
        )
        return matched == len(wanted)

    async def list(self, filters: CustomerFilters, *, page: int, page_size: int) -> Page[Customer]:
        """One page of matching customers, ties broken by id, missing values last."""
        t = self._table
        where = self._filters(filters)
        column = t.c[filters.sort.column]
        # Missing values sort last. Say NULLS LAST only where values can be
        # missing: on a NOT NULL column it would stop a backward index scan.
        if filters.sort.descending:
            first = column.desc().nulls_last() if column.nullable else column.desc()
            order = [first, t.c.id.desc()]
        else:
            order = [column.asc().nulls_last() if column.nullable else column.asc(), t.c.id.asc()]
        rows = await self._execute(
            self._select()
            .where(*where)
            .order_by(*order)
            .limit(page_size)
            .offset((page - 1) * page_size),
            action="listing customers",
        )
        items = [self._entity(row) for row in rows]
        count = await self._execute(
            select(func.count()).select_from(t).where(*where), action="counting customers"
        )
        return page_of(items, int(count.scalar_one()), page, page_size)

    async def search(self, query: str, *, limit: int) -> builtins.list[Customer]:
        """Live customers matching ``query``, ranked as ``search_rank`` defines."""
        t = self._table
        q = search_key(query.strip())
        contains = f"%{like_escape(q)}%"
        prefix = f"{like_escape(q)}%"
        email, first, last = t.c.search_email, t.c.search_first_name, t.c.search_last_name
        full = func.coalesce(first, "") + " " + func.coalesce(last, "")
        starts = [c.like(prefix, escape=ESCAPE) for c in (email, first, last)]
        inside = [c.like(contains, escape=ESCAPE) for c in (email, first, last, full)]
        phone = phone_query(q)
        if phone:
            starts.append(t.c.phone.like(f"{like_escape(phone)}%", escape=ESCAPE))
            inside.append(t.c.phone.like(f"%{like_escape(phone)}%", escape=ESCAPE))
        rank = case((email == q, 0), (or_(*starts), 1), else_=2)
        rows = await self._execute(
            self._select()
            .where(self._mine, t.c.deleted_at.is_(None), or_(*inside))
            .order_by(rank, t.c.id)
            .limit(limit),
            action="searching customers",
        )
        return [self._entity(row) for row in rows]

    async def list_inactive(
        self, cutoff: datetime, *, after_id: int, limit: int
    ) -> builtins.list[Customer]:
        """Customers not anonymized, unchanged and without orders since ``cutoff``, by id.

        A keyset walk of the primary key ``(tenant_id, id)``: each chunk starts
        where the previous one ended, however many rows the filters skip.
        """
        t = self._table
        rows = await self._execute(
            self._select()
            .where(
                self._mine,
                t.c.id > after_id,
                t.c.is_anonymized.is_(false()),
                t.c.updated_at < cutoff,
                or_(t.c.last_order_at.is_(None), t.c.last_order_at < cutoff),
            )
            .order_by(t.c.id)
            .limit(limit),
            action="listing inactive customers",
        )
        return [self._entity(row) for row in rows]

    async def list_after(self, after_id: int, *, limit: int) -> builtins.list[Customer]:
        """Live customers with ids above ``after_id``, by id: a keyset walk of the primary key."""
        rows = await self._execute(
            customers_after(self._table, self._embeddings).where(self._mine).limit(limit),
            {"after": after_id},
            action="listing customers",
        )
        return [self._entity(row) for row in rows]

    async def update_derived(self, rows: Sequence[DerivedData]) -> None:
        """Write the derived fields of many customers: one set-based UPDATE on PostgreSQL
        (a batched one on SQLite), and the embeddings that changed."""
        if not rows:
            return
        tenant = self._session.tenant_id
        parameters: Any
        if self._session.dialect == "postgresql":
            ids = [row.customer_id for row in rows]
            statement, parameters = (
                update_from_arrays(self._table, _SCORE_COLUMNS),
                {
                    "key_tenant": tenant,
                    "key_first": min(ids),
                    "key_last": max(ids),
                    "all_id": ids,
                    **column_arrays(_SCORE_COLUMNS, rows, getattr),
                },
            )
        else:
            statement, parameters = (
                update_by_key(self._table, _SCORE_COLUMNS),
                [
                    {
                        "key_tenant": tenant,
                        "key_id": row.customer_id,
                        **{name: getattr(row, name) for name in _SCORE_COLUMNS},
                    }
                    for row in rows
                ],
            )
        await self._execute(statement, parameters, action="writing derived data")
        postgresql = self._session.postgresql
        await self._write_embeddings(
            (
                (row.customer_id, row.embedding, row.embedding_version)
                for row in rows
                if not row.keep_embedding
            ),
            into=postgresql.loading(tenant) if postgresql is not None else None,
        )

    async def begin_embedding_load(self, *, version: str) -> bool:
        """Take the embeddings ``update_derived`` writes aside, to index them at once at
        the end: on PostgreSQL, a large tenant's first scoring (or its first after an
        embedding of another ``version``) loads them into a partition of its own (see
        ``PostgresFeatures.begin_embedding_load``)."""
        postgresql = self._session.postgresql
        if postgresql is None:
            return False
        return await postgresql.begin_embedding_load(
            await self._session.connection(),
            self._table,
            self._embeddings,
            self._session.tenant_id,
            version=version,
        )

    async def end_embedding_load(self, *, since: datetime, complete: bool) -> None:
        """Index and publish the embeddings taken aside (``complete``), or drop them;
        those of customers changed after ``since`` are dropped either way."""
        postgresql = self._session.postgresql
        if postgresql is not None:
            await postgresql.end_embedding_load(
                await self._session.connection(),
                self._table,
                self._embeddings,
                self._session.tenant_id,
                since=since,
                complete=complete,
            )
