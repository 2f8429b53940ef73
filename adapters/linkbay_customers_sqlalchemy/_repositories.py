"""Repositories over SQLAlchemy Core statements on the model set's tables."""

from __future__ import annotations

import builtins
import dataclasses
import functools
import heapq
import json
import math
import operator
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Float,
    Select,
    String,
    Table,
    all_,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, array
from sqlalchemy.exc import IntegrityError

from linkbay_customers.domain import (
    Address,
    AddressNotFound,
    AddressType,
    AuditAction,
    AuditEvent,
    ChainLock,
    ChainTip,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerFilters,
    CustomerNote,
    CustomerNotFound,
    DerivedData,
    DuplicateEmail,
    ExtraErasure,
    InvalidInput,
    MergeAlias,
    Order,
    OrderConflict,
    OrderItem,
    OrderShipping,
    Page,
    ProductPurchases,
    ProductSales,
    StorageError,
    StorageRejected,
    TagMatch,
    chain_of,
    phone_query,
)
from linkbay_customers.ports import (
    AddressRepository,
    AuditRepository,
    ConsentRepository,
    CustomerRepository,
    MergeAliasRepository,
    NoteRepository,
    OrderRepository,
)
from linkbay_customers_sqlalchemy._errors import is_unique_violation, translate_errors
from linkbay_customers_sqlalchemy._models import (
    CUSTOMER_FIELDS,
    customer_extra_columns,
    extra_erasure,
)

if TYPE_CHECKING:
    from linkbay_customers_sqlalchemy._storage import SqlAlchemyUnitOfWork

__all__ = (
    "SqlAddressRepository",
    "SqlAuditRepository",
    "SqlConsentRepository",
    "SqlCustomerRepository",
    "SqlMergeAliasRepository",
    "SqlNoteRepository",
    "SqlOrderRepository",
    "like_escape",
)

# The embedding lives in a table of its own (see CustomerEmbeddingMixin).
_EMBEDDING_FIELDS = ("embedding", "embedding_version")
_ROW_FIELDS = tuple(name for name in CUSTOMER_FIELDS if name not in _EMBEDDING_FIELDS)
_row_fields = operator.attrgetter(*_ROW_FIELDS)
_UNREAD = object()  # an embedding this unit of work has not read
_ESCAPE = "\\"


def like_escape(value: str) -> str:
    """Escape LIKE wildcards so ``%`` and ``_`` match themselves."""
    return (
        value.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )


def _consent_to_json(states: Mapping[str, ConsentState]) -> dict[str, Any]:
    return {
        kind: {
            "consented": s.consented,
            "date": s.date.isoformat(),
            "source": s.source,
            "ip_address": s.ip_address,
            "user_agent": s.user_agent,
        }
        for kind, s in states.items()
    }


def _consent_from_json(data: Mapping[str, Any] | None) -> dict[str, ConsentState]:
    return {
        kind: ConsentState(
            consented=bool(s["consented"]),
            date=datetime.fromisoformat(s["date"]),
            source=s.get("source"),
            ip_address=s.get("ip_address"),
            user_agent=s.get("user_agent"),
        )
        for kind, s in (data or {}).items()
    }


class _Repository:
    role: str

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        self._uow = uow

    @property
    def _table(self) -> Table:
        return getattr(self._uow.models, self.role).__table__  # type: ignore[no-any-return]

    @property
    def _mine(self) -> ColumnElement[bool]:
        return self._table.c.tenant_id == self._uow.tenant_id

    def _own(self, row: Any) -> None:
        if row.tenant_id != self._uow.tenant_id:
            raise StorageRejected("the row belongs to another tenant than the unit of work")

    def _one_of(self, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
        """``column`` is one of ``values``: one array parameter on PostgreSQL.

        A single array keeps the statement text and its prepared plan the same for
        any number of values; a long IN list can get a poor generic plan there.
        """
        if self._uow.dialect == "postgresql":
            element_type = column.type.impl if hasattr(column.type, "impl") else column.type
            array_type = ARRAY(element_type)
            return column == any_(bindparam(None, list(values), type_=array_type))  # type: ignore[no-any-return]
        return column.in_(list(values))  # type: ignore[no-any-return]

    async def _execute(self, statement: Any, parameters: Any = None, *, action: str) -> Any:
        return await self._uow.execute(statement, parameters, action=action)

    async def next_id(self) -> int:
        """Reserve a new id of this repository's table."""
        (new_id,) = await self._uow.next_ids(self._table.name)
        return new_id

    async def next_ids(self, count: int) -> builtins.list[int]:
        """Reserve ``count`` new ids of this repository's table at once."""
        return await self._uow.next_ids(self._table.name, count) if count else []

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
        self._uow.note_erasure()
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
        self._uow.note_erasure()
        t = self._table
        result = await self._execute(
            update(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids), holding)
            .values(values),
            action=f"scrubbing {t.name}",
        )
        return int(result.rowcount)


def _embedding_entry(customer: Customer) -> tuple[int, Any, Any]:
    return customer.id, customer.embedding, customer.embedding_version


def _embedding_of(table: Table, embeddings: Table) -> ColumnElement[bool]:
    return and_(embeddings.c.tenant_id == table.c.tenant_id, embeddings.c.customer_id == table.c.id)


@functools.cache
def _customer_select(table: Table, embeddings: Table) -> Select[Any]:
    """Customers with their embeddings: every column ``_entity`` reads."""
    return select(
        table, embeddings.c.embedding, embeddings.c.version.label("embedding_version")
    ).select_from(table.outerjoin(embeddings, _embedding_of(table, embeddings)))


@functools.cache
def _customer_by_id(
    table: Table, embeddings: Table, include_deleted: bool, for_update: bool
) -> Any:
    """Reading a customer by id is the hottest query: build its statement once."""
    statement = _customer_select(table, embeddings).where(
        table.c.tenant_id == bindparam("tenant"), table.c.id == bindparam("id")
    )
    if not include_deleted:
        statement = statement.where(table.c.deleted_at.is_(None))
    # Locks the customer's row only (an embedding row may not exist).
    return statement.with_for_update(of=table) if for_update else statement


@functools.cache
def _insert(table: Table) -> Any:
    """A plain INSERT; the values go as parameters, so the compiled form is cached."""
    return insert(table)


@functools.cache
def _update_by_key(table: Table, columns: tuple[str, ...]) -> Any:
    """UPDATE of ``columns`` for the row whose key is the ``key_tenant``/``key_id`` parameters."""
    return (
        update(table)
        .where(table.c.tenant_id == bindparam("key_tenant"), table.c.id == bindparam("key_id"))
        .values({name: bindparam(name) for name in columns})
    )


def _keyed(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "key_tenant": row["tenant_id"], "key_id": row["id"]}


_SCORE_COLUMNS = tuple(
    f.name
    for f in dataclasses.fields(DerivedData)
    if f.name not in ("customer_id", "keep_embedding", *_EMBEDDING_FIELDS)
)

# Candidates per pass of the HNSW scan. Among a million random vectors, pgvector's
# default of 40 found 6 of the true nearest 10 on average; 100 found 8.4. On
# behavioural embeddings (benchmarks/intelligence.py, a tenant of 100,000 beside
# 100,000 more) 100 gave a recall@10 of 0.946 in 15.6 ms, 160 gave 0.972 in 17.7 ms.
_MIN_EF_SEARCH = 160
_MAX_EF_SEARCH = 1000  # the largest hnsw.ef_search pgvector accepts
# Tenants with fewer live customers are ranked exactly. In a table of a million
# customers, reading 20,000 of them took a third of the time the index took to
# pick 10 out from the others (and found the true nearest, where the index
# found 8); at 50,000 the two cost about the same; at 500,000 the index is 10x faster.
_EXACT_SEARCH_MAX_ROWS = 50_000
_TENANT_SIZE_SECONDS = 300.0  # how long a tenant's size class is trusted
_EXACT_SEARCH_BATCH = 5000  # embeddings read at a time by the exact search on SQLite

# Set for the rest of the transaction (set_config's ``true`` is SET LOCAL).
# Custom plans: a generic plan knows neither the tenant nor its size, and would
# sort every row of a large tenant rather than walk the index. No parallel
# workers: the planner gives the exact way a parallel plan, and its workers were
# launched even when the way was not taken: 6 of the 8.5 ms a search took at
# 100,000 customers, against 0.8 ms for the index scan itself.
_SIMILARITY_SEARCH_SETTINGS = text(
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.ef_search', :ef_search, true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


@functools.cache
def _nearest_by_index(table: Table, embeddings: Table) -> Any:
    """The live customers of ``tenant`` nearest to ``query`` by cosine distance (PostgreSQL).

    One statement, two ways; one-time filters run only the one that applies.

    - A tenant of fewer than ``exact_max`` live customers is ranked exactly:
      reading its rows costs less than walking an index shared with every other
      tenant to pick out its few.
    - A larger tenant asks the HNSW index. The index spans every tenant, so the
      scan runs iteratively (``hnsw.iterative_scan``) until ``limit`` rows pass
      the filters, in relaxed order, which the outer query restores. The scan
      gives up after ``hnsw.max_scan_tuples`` index tuples: if it found fewer
      than ``limit`` (a tenant with few embeddings), the exact way runs instead.
    """
    t, e = table, embeddings
    query = bindparam("query", type_=e.c.embedding.type)
    limit = bindparam("limit", type_=BigInteger())
    exact_max = bindparam("exact_max", type_=BigInteger())
    distance = e.c.embedding.op("<=>", return_type=Float())(query)
    tenant: Any = bindparam("tenant")
    live = (t.c.tenant_id == tenant, t.c.deleted_at.is_(None))
    embedded = (
        e.c.tenant_id == tenant,
        e.c.customer_id != all_(bindparam("exclude", type_=ARRAY(BigInteger()))),
    )
    # Counted only up to exact_max, from the (tenant_id, deleted_at) index.
    some_rows = select(literal_column("1")).where(*live).limit(exact_max).subquery("some_rows")
    size = select(func.count().label("rows")).select_from(some_rows).cte("tenant_size")
    small = select(size.c.rows).scalar_subquery() < exact_max
    # Both ways rank ids and distances only; the chosen few rows are read at the end.
    relaxed = (
        select(e.c.customer_id, distance.label("distance"))
        .select_from(e.join(t, _embedding_of(t, e)))
        .where(*embedded, *live)
        .order_by(distance)
        .limit(limit)
        .cte("relaxed")
        .prefix_with("MATERIALIZED")
    )
    found = select(func.count()).select_from(relaxed).scalar_subquery()
    # The cosine distance to a zero vector is NaN: similarity 0, as in the domain.
    exact_distance = func.coalesce(
        func.nullif(distance, literal_column("'NaN'::float8")), literal_column("1.0")
    )
    # AND and OR stop at their first operand when it decides: a small tenant
    # never starts the index scan.
    by_index = select(relaxed).where(and_(~small, found == limit))
    is_live = exists(select(literal_column("1")).where(*live, t.c.id == e.c.customer_id))
    exact = (
        select(e.c.customer_id, exact_distance.label("distance"))
        .where(*embedded, is_live, or_(small, found < limit))
        .order_by(exact_distance, e.c.customer_id)
        .limit(limit)
    )
    chosen = union_all(by_index, exact).subquery("chosen")
    return (
        select(t, e.c.embedding, e.c.version.label("embedding_version"), chosen.c.distance)
        .select_from(
            chosen.join(t, and_(t.c.tenant_id == tenant, t.c.id == chosen.c.customer_id)).join(
                e, _embedding_of(t, e)
            )
        )
        .order_by(chosen.c.distance, t.c.id)
    )


def _similarity(distance: float) -> float:
    return 0.0 if math.isnan(distance) else 1.0 - distance


def _cosine(query: Sequence[float], query_norm: float, vector: Sequence[float]) -> float:
    """``cosine_similarity`` with the query's norm computed once (0 for a zero vector)."""
    norm = query_norm * math.hypot(*vector)
    return sum(map(operator.mul, query, vector)) / norm if norm else 0.0


def _page(items: Sequence[Any], total: int, page: int, page_size: int) -> Page[Any]:
    return Page(items=list(items), total=total, page=page, page_size=page_size)


class SqlCustomerRepository(_Repository, CustomerRepository):
    """Customers in SQL; columns a host adds to its model are the ``extra`` fields."""

    role = "customer"

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        super().__init__(uow)
        # Each customer's embedding and version as this unit of work read or
        # wrote them: writing a customer writes its embedding only when it differs.
        self._embeddings_read: dict[int, tuple[Any, Any]] = {}

    @property
    def _extra_columns(self) -> tuple[str, ...]:
        return customer_extra_columns(self._table)

    def extra_erasure(self) -> ExtraErasure:
        """What anonymization writes to the host's extra columns, as the model declares them."""
        return extra_erasure(self._table)

    @property
    def _embeddings(self) -> Table:
        return self._uow.models.embedding.__table__  # type: ignore[attr-defined, no-any-return]

    def _select(self) -> Select[Any]:
        return _customer_select(self._table, self._embeddings)

    def _values(self, customer: Customer) -> dict[str, Any]:
        """The customer's row (the embedding is written apart, see ``_write_embeddings``)."""
        self._own(customer)
        values = dict(zip(_ROW_FIELDS, _row_fields(customer), strict=True))
        if customer.consent_data:
            values["consent_data"] = _consent_to_json(customer.consent_data)
        if customer.extra:
            extra_columns = self._extra_columns
            for name, value in customer.extra.items():
                if name not in extra_columns:
                    raise InvalidInput.single(name, "is not a column of the customer table")
                values[name] = value
        return values

    def _entity(self, row: Any) -> Customer:
        data = row._mapping
        values = {name: data[name] for name in CUSTOMER_FIELDS}
        values["preferences"] = values["preferences"] or {}
        values["tags"] = values["tags"] or []
        values["consent_data"] = _consent_from_json(values["consent_data"])
        values["extra"] = {name: data[name] for name in self._extra_columns}
        self._embeddings_read[values["id"]] = (values["embedding"], values["embedding_version"])
        return Customer(**values)

    async def _write_embeddings(self, items: Iterable[tuple[int, Any, Any]]) -> None:
        """Store ``(customer id, embedding, version)`` where it differs from what was read.

        An embedding is upserted (rewritten only if it changed: an unchanged row
        costs no new HNSW entry), a missing one deleted; customers whose embedding
        is as read cost no statement at all.
        """
        changed = [
            (customer_id, embedding, version)
            for customer_id, embedding, version in items
            if self._embeddings_read.get(customer_id, _UNREAD) != (embedding, version)
        ]
        if not changed:
            return
        e, tenant = self._embeddings, self._uow.tenant_id
        present = [
            {"tenant_id": tenant, "customer_id": i, "embedding": v, "version": version}
            for i, v, version in changed
            if v is not None
        ]
        gone = [i for i, v, _ in changed if v is None]
        if present:
            await self._execute(
                _upsert_embedding(self._uow.dialect, e), present, action="writing embeddings"
            )
        if gone:
            await self._execute(
                delete(e).where(e.c.tenant_id == tenant, self._one_of(e.c.customer_id, gone)),
                action="removing embeddings",
            )
        for customer_id, embedding, version in changed:
            self._embeddings_read[customer_id] = (embedding, version)

    async def add(self, customer: Customer) -> None:
        """Insert a customer; a taken email raises DuplicateEmail without aborting."""
        result = await self._execute(
            _insert_ignoring_conflict(self._uow.dialect, self._table, ("tenant_id", "email")),
            self._values(customer),
            action="adding a customer",
        )
        if result.first() is None:
            holder = await self.get_by_email(customer.email or "", include_deleted=True)
            if holder is None:
                raise StorageError(f"customer {customer.id} could not be added")
            raise DuplicateEmail(customer.email or "", existing_is_deleted=holder.is_deleted)
        self._embeddings_read[customer.id] = (None, None)
        await self._write_embeddings([_embedding_entry(customer)])

    async def add_many(self, customers: Sequence[Customer]) -> builtins.list[str]:
        """Insert many customers in multi-row statements; return the emails refused as taken."""
        if not customers:
            return []
        table = self._table
        rows = [self._values(c) for c in customers]
        # COPY when every row has the same columns; a conflict with a concurrent
        # writer falls back to the INSERT below, which skips the taken emails.
        refused: builtins.list[str] = []
        if not (
            self._uow.dialect == "postgresql"
            and len({frozenset(c.extra) for c in customers}) == 1
            and await self._uow.copy_rows(table, list(rows[0]), rows, action="adding customers")
        ):
            result = await self._execute(
                _insert_ignoring_conflict(
                    self._uow.dialect, table, ("tenant_id", "email"), "email"
                ),
                rows,
                action="adding customers",
            )
            inserted = set(result.scalars())
            refused = [c.email or "" for c in customers if c.email not in inserted]
        added = [c for c in customers if c.email not in refused]
        self._embeddings_read.update((c.id, (None, None)) for c in added)
        await self._write_embeddings(map(_embedding_entry, added))
        return refused

    async def get_many_by_email(self, emails: Sequence[str]) -> dict[str, Customer]:
        """The customers holding any of ``emails``, deleted ones included."""
        if not emails:
            return {}
        table = self._table
        wanted = sorted(set(emails))
        if self._uow.dialect == "postgresql":
            # One unique-key probe per email. Statistics gathered while a tenant is
            # small (as during a bulk load) would otherwise make scanning all of the
            # tenant's rows look cheaper, and every chunk slower than the last.
            email = (
                func.unnest(bindparam(None, wanted, type_=ARRAY(String)))
                .table_valued("email")
                .render_derived(name="wanted")
            )
            match = self._select().where(self._mine, table.c.email == email.c.email).limit(1)
            found = match.lateral("found")
            statement = select(found).select_from(email).join(found, true())
        else:
            statement = self._select().where(self._mine, table.c.email.in_(wanted))
        rows = await self._execute(statement, action="reading customers")
        return {row.email: self._entity(row) for row in rows}

    async def update_many(self, customers: Sequence[Customer]) -> None:
        """Write many existing customers in one batched statement."""
        if not customers:
            return
        rows = [self._values(c) for c in customers]
        columns = tuple(name for name in rows[0] if name not in ("tenant_id", "id"))
        await self._execute(
            _update_by_key(self._table, columns),
            [_keyed(row) for row in rows],
            action="updating customers",
        )
        await self._write_embeddings(map(_embedding_entry, customers))

    async def get(
        self, customer_id: int, *, include_deleted: bool = False, for_update: bool = False
    ) -> Customer | None:
        """Fetch a customer; ``for_update`` locks the row (SQLite already holds the write lock)."""
        statement = _customer_by_id(
            self._table,
            self._embeddings,
            include_deleted,
            for_update and self._uow.dialect == "postgresql",
        )
        row = (
            await self._execute(
                statement,
                {"tenant": self._uow.tenant_id, "id": customer_id},
                action="reading a customer",
            )
        ).first()
        return None if row is None else self._entity(row)

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
        connection = await self._uow.connection()
        with translate_errors("updating a customer"):
            try:
                result = await connection.execute(
                    _update_by_key(self._table, columns), _keyed(values)
                )
            except IntegrityError as exc:
                if is_unique_violation(exc, "email"):
                    raise DuplicateEmail(customer.email or "") from exc
                raise
        if result.rowcount == 0:
            raise CustomerNotFound(customer.id)
        await self._write_embeddings([_embedding_entry(customer)])

    async def delete(self, customer_id: int) -> None:
        """Remove a customer row; foreign keys refuse it while dependants remain."""
        await self.delete_many([customer_id])

    async def delete_many(self, customer_ids: Sequence[int]) -> None:
        """Remove customer rows in one statement; foreign keys refuse it while dependants
        remain."""
        if not customer_ids:
            return
        self._uow.note_erasure()
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
            pattern = f"%{like_escape(filters.email_contains.lower())}%"
            where.append(t.c.email.like(pattern, escape=_ESCAPE))
        if filters.created_after is not None:
            where.append(t.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            where.append(t.c.created_at < filters.created_before)
        return where

    def _tag_filter(self, tags: Sequence[str], match: TagMatch) -> ColumnElement[bool]:
        column = self._table.c.tags
        wanted = sorted(set(tags))
        if self._uow.dialect == "postgresql":
            # ?| and ?& on JSONB, which the GIN index on tags answers.
            document: Any = type_coerce(column, JSONB)
            values = array(wanted)
            matched: ColumnElement[bool] = (
                document.has_all(values) if match is TagMatch.ALL else document.has_any(values)
            )
            return matched
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
        return _page(items, int(count.scalar_one()), page, page_size)

    async def search(self, query: str, *, limit: int) -> builtins.list[Customer]:
        """Live customers matching ``query``, ranked as ``search_rank`` defines."""
        t = self._table
        q = query.strip().lower()
        contains = f"%{like_escape(q)}%"
        prefix = f"{like_escape(q)}%"
        first, last = func.lower(t.c.first_name), func.lower(t.c.last_name)
        full = func.lower(
            func.coalesce(t.c.first_name, "") + " " + func.coalesce(t.c.last_name, "")
        )
        starts = [c.like(prefix, escape=_ESCAPE) for c in (t.c.email, first, last)]
        inside = [c.like(contains, escape=_ESCAPE) for c in (t.c.email, first, last, full)]
        phone = phone_query(q)
        if phone:
            starts.append(t.c.phone.like(f"{like_escape(phone)}%", escape=_ESCAPE))
            inside.append(t.c.phone.like(f"%{like_escape(phone)}%", escape=_ESCAPE))
        rank = case((t.c.email == q, 0), (or_(*starts), 1), else_=2)
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
        t = self._table
        rows = await self._execute(
            self._select()
            .where(self._mine, t.c.id > after_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit),
            action="listing customers",
        )
        return [self._entity(row) for row in rows]

    async def update_derived(self, rows: Sequence[DerivedData]) -> None:
        """Write the derived fields of many customers: one batched UPDATE, and the
        embeddings that changed."""
        if not rows:
            return
        tenant = self._uow.tenant_id
        await self._execute(
            _update_by_key(self._table, _SCORE_COLUMNS),
            [
                {
                    "key_tenant": tenant,
                    "key_id": row.customer_id,
                    "segment": row.segment,
                    "churn_risk_score": row.churn_risk_score,
                    "customer_lifetime_value": row.customer_lifetime_value,
                    "scored_at": row.scored_at,
                    "score_source": row.score_source,
                }
                for row in rows
            ],
            action="writing derived data",
        )
        await self._write_embeddings(
            (row.customer_id, row.embedding, row.embedding_version)
            for row in rows
            if not row.keep_embedding
        )

    async def nearest(
        self, embedding: Sequence[float], *, limit: int, exclude: Sequence[int] = ()
    ) -> builtins.list[tuple[Customer, float]]:
        """Live customers most similar to ``embedding``, ties by id.

        PostgreSQL asks the HNSW index (approximate, see ``_nearest_by_index``);
        SQLite ranks every embedded customer of the tenant exactly.
        """
        if limit <= 0:
            return []
        if self._uow.dialect == "postgresql":
            return await self._nearest_by_index(embedding, limit, exclude)
        return await self._nearest_exactly(embedding, limit, exclude)

    async def _nearest_by_index(
        self, embedding: Sequence[float], limit: int, exclude: Sequence[int]
    ) -> builtins.list[tuple[Customer, float]]:
        # ef_search below limit would end each pass of the scan short of limit rows.
        ef_search = min(max(limit, _MIN_EF_SEARCH), _MAX_EF_SEARCH)
        # A tenant known to be large skips the size count (0: count nothing, take
        # the index); the answer is remembered for a while, as sizes change slowly.
        exact_max = 0 if await self._is_large_tenant() else _EXACT_SEARCH_MAX_ROWS
        await self._execute(
            _SIMILARITY_SEARCH_SETTINGS,
            {"ef_search": str(ef_search)},
            action="configuring the similarity search",
        )
        rows = await self._execute(
            _nearest_by_index(self._table, self._embeddings),
            {
                "tenant": self._uow.tenant_id,
                "query": list(embedding),
                "limit": limit,
                "exclude": list(exclude),
                "exact_max": exact_max,
            },
            action="finding similar customers",
        )
        return [(self._entity(row), _similarity(row.distance)) for row in rows]

    async def _is_large_tenant(self) -> bool:
        """Whether the tenant has ``_EXACT_SEARCH_MAX_ROWS`` live customers or more,
        counted at most once per ``_TENANT_SIZE_SECONDS`` in this storage."""
        sizes = self._uow.storage._large_tenants
        tenant = self._uow.tenant_id
        known = sizes.get(tenant)
        now = time.monotonic()
        if known is not None and now - known[1] < _TENANT_SIZE_SECONDS:
            return known[0]
        t = self._table
        some = (
            select(literal_column("1"))
            .where(self._mine, t.c.deleted_at.is_(None))
            .limit(_EXACT_SEARCH_MAX_ROWS)
            .subquery()
        )
        rows = await self._execute(
            select(func.count()).select_from(some), action="sizing the tenant"
        )
        large = int(rows.scalar_one()) >= _EXACT_SEARCH_MAX_ROWS
        sizes[tenant] = (large, now)
        return large

    async def _nearest_exactly(
        self, embedding: Sequence[float], limit: int, exclude: Sequence[int]
    ) -> builtins.list[tuple[Customer, float]]:
        t, e = self._table, self._embeddings
        query = [float(v) for v in embedding]
        dimensions = getattr(e.c.embedding.type, "dimensions", len(query))
        if len(query) != dimensions:
            raise ValueError(f"embeddings have {dimensions} dimensions, not {len(query)}")
        query_norm = math.hypot(*query)
        where = [self._mine, t.c.deleted_at.is_(None)]
        if exclude:
            where.append(t.c.id.not_in(list(exclude)))
        # Only ids and vectors, streamed in batches: memory stays flat however
        # large the tenant, and only the best ``limit`` survive each batch.
        vectors = (
            select(t.c.id, type_coerce(e.c.embedding, JSON))
            .select_from(t.join(e, _embedding_of(t, e)))
            .where(*where)
        )
        best: builtins.list[tuple[float, int]] = []
        connection = await self._uow.connection()
        with translate_errors("finding similar customers"):
            result = await connection.stream(vectors)
            async for batch in result.partitions(_EXACT_SEARCH_BATCH):
                scored = [
                    (_cosine(query, query_norm, vector), -customer_id)
                    for customer_id, vector in batch
                    if vector is not None
                ]
                best = heapq.nlargest(limit, best + scored)
        if not best:
            return []
        rows = await self._execute(
            self._select().where(self._mine, self._one_of(t.c.id, [-key for _, key in best])),
            action="reading similar customers",
        )
        found = {row.id: self._entity(row) for row in rows}
        return [(found[-key], score) for score, key in best if -key in found]


def _insert_with_conflicts(dialect: str, table: Table) -> Any:
    """An INSERT of the dialect, which can say what a conflict does."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.cache
def _insert_ignoring_conflict(
    dialect: str, table: Table, columns: tuple[str, ...], returning: str = "id"
) -> Any:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING RETURNING <returning>`` for the dialect.

    The values go as parameters; a row refused by the conflict returns nothing.
    """
    return (
        _insert_with_conflicts(dialect, table)
        .on_conflict_do_nothing(index_elements=columns)
        .returning(table.c[returning])
    )


@functools.cache
def _upsert_embedding(dialect: str, embeddings: Table) -> Any:
    """Insert a customer's embedding, or replace it only if it differs."""
    statement = _insert_with_conflicts(dialect, embeddings)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=("tenant_id", "customer_id"),
        set_={"embedding": new.embedding, "version": new.version},
        where=or_(
            embeddings.c.embedding.is_distinct_from(new.embedding),
            embeddings.c.version.is_distinct_from(new.version),
        ),
    )


@functools.cache
def _lock_chains(dialect: str, tips: Table) -> Any:
    """Create the tip rows missing among ``:chains`` and lock them all, in chain order.

    The no-op update takes the row lock, waiting for a concurrent appender of the
    chain to commit, and then returns that appender's tip. On PostgreSQL it also
    returns the transaction's time.
    """
    name = f'"{tips.name}"' if tips.schema is None else f'"{tips.schema}"."{tips.name}"'
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


class SqlAddressRepository(_Repository, AddressRepository):
    """Addresses in SQL."""

    role = "address"

    def _values(self, address: Address) -> dict[str, Any]:
        self._own(address)
        values = dataclasses.asdict(address)
        values["type"] = address.type.value
        return values

    @staticmethod
    def _entity(row: Any) -> Address:
        data = dict(row._mapping)
        data["type"] = AddressType(data["type"])
        return Address(**data)

    async def add(self, address: Address) -> None:
        """Insert an address."""
        await self._execute(_insert(self._table), self._values(address), action="adding an address")

    async def get(self, address_id: int) -> Address | None:
        """Fetch an address."""
        t = self._table
        row = (
            await self._execute(
                select(t).where(self._mine, t.c.id == address_id), action="reading an address"
            )
        ).first()
        return None if row is None else self._entity(row)

    async def list_for_customer(self, customer_id: int) -> builtins.list[Address]:
        """A customer's addresses, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[Address]:
        """The addresses of any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.id),
            action="listing addresses",
        )
        return [self._entity(row) for row in rows]

    async def update(self, address: Address) -> None:
        """Write every field of an existing address."""
        values = self._values(address)
        columns = tuple(name for name in values if name not in ("tenant_id", "id"))
        result = await self._execute(
            _update_by_key(self._table, columns), _keyed(values), action="updating an address"
        )
        if result.rowcount == 0:
            raise AddressNotFound(address.id)

    async def delete(self, address_id: int) -> None:
        """Remove an address."""
        t = self._table
        await self._execute(
            delete(t).where(self._mine, t.c.id == address_id), action="deleting an address"
        )

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every address of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every address of the customers."""
        return await self._delete_for_customers(customer_ids)


class SqlNoteRepository(_Repository, NoteRepository):
    """Notes in SQL."""

    role = "note"

    async def add(self, note: CustomerNote) -> None:
        """Insert a note."""
        self._own(note)
        await self._execute(_insert(self._table), dataclasses.asdict(note), action="adding a note")

    async def list_for_customer(self, customer_id: int) -> builtins.list[CustomerNote]:
        """A customer's notes, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[CustomerNote]:
        """The notes of any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.created_at, t.c.id),
            action="listing notes",
        )
        return [CustomerNote(**row._mapping) for row in rows]

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every note of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every note of the customers."""
        return await self._delete_for_customers(customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Empty the text of the customers' notes; count those that had any."""
        note = self._table.c.note
        return await self._scrub_for_customers(customer_ids, {"note": ""}, note != "")


class SqlOrderRepository(_Repository, OrderRepository):
    """Orders and their lines in SQL."""

    role = "order"

    @property
    def _lines(self) -> Table:
        return self._uow.models.order_line.__table__  # type: ignore[attr-defined, no-any-return]

    async def add(self, order: Order) -> None:
        """Insert an order and its lines; a taken order id raises OrderConflict."""
        self._own(order)
        t = self._table
        values = {
            "tenant_id": order.tenant_id,
            "id": order.id,
            "customer_id": order.customer_id,
            "order_id": order.order_id,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at,
            "recorded_at": order.recorded_at,
            "shipping": None if order.shipping is None else dataclasses.asdict(order.shipping),
        }
        result = await self._execute(
            _insert_ignoring_conflict(self._uow.dialect, t, ("tenant_id", "order_id")),
            values,
            action="adding an order",
        )
        if result.first() is None:
            raise OrderConflict(f"order {order.order_id!r} is already recorded")
        if order.items:
            await self._execute(
                _insert(self._lines),
                [
                    {
                        "tenant_id": order.tenant_id,
                        "order_pk": order.id,
                        "line_no": number,
                        "product_id": item.product_id,
                        "product_name": item.product_name,
                        "quantity": item.quantity,
                        "unit_price": item.unit_price,
                    }
                    for number, item in enumerate(order.items, start=1)
                ],
                action="adding order lines",
            )

    async def _with_lines(self, rows: Iterable[Any]) -> builtins.list[Order]:
        orders = [dict(row._mapping) for row in rows]
        if not orders:
            return []
        lines = self._lines
        found = await self._execute(
            select(lines)
            .where(
                lines.c.tenant_id == self._uow.tenant_id,
                self._one_of(lines.c.order_pk, [o["id"] for o in orders]),
            )
            .order_by(lines.c.order_pk, lines.c.line_no),
            action="reading order lines",
        )
        items: dict[int, builtins.list[OrderItem]] = {}
        for line in found:
            items.setdefault(line.order_pk, []).append(
                OrderItem(
                    product_id=line.product_id,
                    product_name=line.product_name,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                )
            )
        return [
            Order(
                **{
                    **o,
                    "shipping": None if o["shipping"] is None else OrderShipping(**o["shipping"]),
                },
                items=tuple(items.get(o["id"], ())),
            )
            for o in orders
        ]

    async def get_by_order_id(self, order_id: str) -> Order | None:
        """Fetch an order by the host's order id."""
        t = self._table
        rows = await self._execute(
            select(t).where(self._mine, t.c.order_id == order_id), action="reading an order"
        )
        orders = await self._with_lines(rows)
        return orders[0] if orders else None

    async def list_for_customer(
        self, customer_id: int, *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of a customer's orders, newest first."""
        return await self.list_for_customers([customer_id], page=page, page_size=page_size)

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of the orders of any of the customers, newest first."""
        t = self._table
        mine = and_(self._mine, self._one_of(t.c.customer_id, customer_ids))
        rows = await self._execute(
            select(t)
            .where(mine)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size),
            action="listing orders",
        )
        orders = await self._with_lines(rows)
        count = await self._execute(
            select(func.count()).select_from(t).where(mine), action="counting orders"
        )
        return _page(orders, int(count.scalar_one()), page, page_size)

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every order of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    def _lines_of_orders(self) -> Any:
        t, lines = self._table, self._lines
        return lines.join(t, and_(t.c.tenant_id == lines.c.tenant_id, t.c.id == lines.c.order_pk))

    async def purchases(self, customer_ids: Sequence[int]) -> builtins.list[ProductPurchases]:
        """Units per customer and product over the customers' order lines, in one GROUP BY.

        On PostgreSQL each order's lines are looked up by their key (a LATERAL
        subquery the planner may not flatten): joined flat, the planner would hash
        every order line of the tenant for each chunk of customers, a cost that
        grows with the tenant rather than with the chunk.
        """
        if not customer_ids:
            return []
        t, lines = self._table, self._lines
        if self._uow.dialect == "postgresql":
            order_lines = (
                select(lines.c.product_id, lines.c.product_name, lines.c.quantity)
                .where(lines.c.tenant_id == t.c.tenant_id, lines.c.order_pk == t.c.id)
                .offset(literal_column("0"))  # keeps it a subquery: one lookup per order
                .lateral("order_lines")
            )
            source: Any = t.join(order_lines, true())
            line: Any = order_lines.c
            where = [self._mine]
        else:
            source, line = self._lines_of_orders(), lines.c
            where = [self._mine, lines.c.tenant_id == self._uow.tenant_id]
        rows = await self._execute(
            select(
                t.c.customer_id,
                line.product_id,
                func.max(line.product_name).label("product_name"),
                func.sum(line.quantity).label("quantity"),
            )
            .select_from(source)
            .where(*where, self._one_of(t.c.customer_id, customer_ids))
            .group_by(t.c.customer_id, line.product_id)
            .order_by(t.c.customer_id, line.product_id),
            action="reading purchases",
        )
        return [
            ProductPurchases(
                customer_id=row.customer_id,
                product_id=row.product_id,
                product_name=row.product_name,
                quantity=int(row.quantity),
            )
            for row in rows
        ]

    async def best_sellers(self, *, limit: int) -> builtins.list[ProductSales]:
        """Products by distinct buyers, then units, then id, over every order line."""
        if limit <= 0:
            return []
        t, lines = self._table, self._lines
        buyers = func.count(func.distinct(t.c.customer_id))
        units = func.sum(lines.c.quantity)
        rows = await self._execute(
            select(
                lines.c.product_id,
                func.max(lines.c.product_name).label("product_name"),
                units.label("quantity"),
                buyers.label("buyers"),
            )
            .select_from(self._lines_of_orders())
            .where(self._mine, lines.c.tenant_id == self._uow.tenant_id)
            .group_by(lines.c.product_id)
            .order_by(buyers.desc(), units.desc(), lines.c.product_id)
            .limit(limit),
            action="reading best sellers",
        )
        return [
            ProductSales(
                product_id=row.product_id,
                product_name=row.product_name,
                quantity=int(row.quantity),
                buyers=int(row.buyers),
            )
            for row in rows
        ]

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every order of the customers, with its lines."""
        if not customer_ids:
            return 0
        t, lines = self._table, self._lines
        theirs = select(t.c.id).where(self._mine, self._one_of(t.c.customer_id, customer_ids))
        await self._execute(
            delete(lines).where(
                lines.c.tenant_id == self._uow.tenant_id, lines.c.order_pk.in_(theirs)
            ),
            action="deleting order lines",
        )
        return await self._delete_for_customers(customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Set the shipping details of the customers' orders to NULL and empty the product
        names of their lines; count the orders that had either.

        An order recorded without shipping holds a JSON ``null``, which compares
        unequal to nothing here, like SQL NULL: neither counts as a change. The
        orders are counted before either is written, so a repeated erasure counts
        none and writes nothing.
        """
        if not customer_ids:
            return 0
        t, lines = self._table, self._lines
        named = and_(
            lines.c.tenant_id == self._uow.tenant_id,
            lines.c.order_pk.in_(
                select(t.c.id).where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            ),
            lines.c.product_name != "",
        )
        named_line_of_order = exists().where(
            lines.c.tenant_id == t.c.tenant_id,
            lines.c.order_pk == t.c.id,
            lines.c.product_name != "",
        )
        counted = await self._execute(
            select(func.count())
            .select_from(t)
            .where(
                self._mine,
                self._one_of(t.c.customer_id, customer_ids),
                or_(t.c.shipping != JSON.NULL, named_line_of_order),
            ),
            action="counting orders to scrub",
        )
        await self._execute(
            update(lines).where(named).values(product_name=""), action="scrubbing order lines"
        )
        await self._scrub_for_customers(
            customer_ids, {"shipping": null()}, t.c.shipping != JSON.NULL
        )
        return int(counted.scalar_one())


class SqlConsentRepository(_Repository, ConsentRepository):
    """The consent ledger in SQL."""

    role = "consent_event"

    async def append(self, event: ConsentEvent) -> None:
        """Append an event."""
        self._own(event)
        await self._execute(
            _insert(self._table), dataclasses.asdict(event), action="recording consent"
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


class SqlAuditRepository(_Repository, AuditRepository):
    """The audit trail in SQL: events, and the tip of each chain."""

    role = "audit_event"

    @property
    def _tips(self) -> Table:
        return self._uow.models.audit_chain.__table__  # type: ignore[attr-defined, no-any-return]

    def _values(self, event: AuditEvent) -> dict[str, Any]:
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
            "changed_fields": list(event.changed_fields),
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
        postgresql = self._uow.dialect == "postgresql"
        rows = (
            await self._execute(
                _lock_chains(self._uow.dialect, self._tips),
                {
                    "tenant": self._uow.tenant_id,
                    "chains": ordered if postgresql else json.dumps(ordered),
                },
                action="locking the audit trail",
            )
        ).all()
        return ChainLock(
            tips={int(row[0]): ChainTip(int(row[1]), row[2]) for row in rows if row[1]},
            now=rows[0][3] if postgresql else None,
        )

    async def append(self, event: AuditEvent) -> None:
        """Append a sealed event."""
        await self.append_many([event])

    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Append sealed events in one batched statement (COPY on PostgreSQL when
        allowed); the table's trigger moves their chains' tips."""
        if not events:
            return
        rows = [self._values(e) for e in events]
        if self._uow.dialect == "postgresql" and await self._uow.copy_rows(
            self._table, list(rows[0]), rows, action="writing the audit trail"
        ):
            return
        # SQLite; or COPY was refused (a taken id or position, which the INSERT
        # reports, or row-level security binding the role).
        await self._execute(_insert(self._table), rows, action="writing the audit trail")

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
        return _page(events, int(count.scalar_one()), page, page_size)

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
                tips.c.tenant_id == self._uow.tenant_id,
                tips.c.sequence > 0,  # locked once, never appended to: an empty chain
                ~exists().where(t.c.tenant_id == tips.c.tenant_id, t.c.chain_id == tips.c.chain_id),
            )
            .order_by(tips.c.chain_id)
            .limit(limit),
            action="reading the audit chains",
        )
        return [int(row[0]) for row in rows]


class SqlMergeAliasRepository(_Repository, MergeAliasRepository):
    """Merge aliases in SQL."""

    role = "merge_alias"

    async def add(self, alias: MergeAlias) -> None:
        """Record an alias."""
        self._own(alias)
        await self._execute(
            _insert(self._table), dataclasses.asdict(alias), action="recording a merge"
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
