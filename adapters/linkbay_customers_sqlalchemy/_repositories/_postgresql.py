"""What only PostgreSQL does: COPY, the HNSW similarity search, and their caches.

A storage on PostgreSQL holds one ``PostgresFeatures``, which keeps what it learns
about the database (tables COPY is refused on, the size class of each tenant) for
the storage's lifetime. The statement variants below are PostgreSQL's way of
writing what the repositories write another way on SQLite.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    MetaData,
    Select,
    String,
    Table,
    all_,
    and_,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, array
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from linkbay_customers.domain import StorageError, TagMatch, TransactionConflict
from linkbay_customers_sqlalchemy._engine import MIN_EF_SEARCH, SIMILARITY_SESSION_SETTINGS
from linkbay_customers_sqlalchemy._errors import sqlstate, storage_error, translate_errors
from linkbay_customers_sqlalchemy._migrate import PARTITION_MARK
from linkbay_customers_sqlalchemy._models import SEARCH_COLUMNS
from linkbay_customers_sqlalchemy._repositories._statements import embedding_of
from linkbay_customers_sqlalchemy._types import vector_dimensions

__all__ = (
    "COPY_MIN_ROWS",
    "DEFAULT_INDEX_BUILD_MEMORY",
    "EXACT_SEARCH_MAX_ROWS",
    "FRESH_PLANS",
    "GENERIC_PLAN",
    "MIN_EF_SEARCH",
    "OWN_PARTITION_MIN_ROWS",
    "PLAN_MODE",
    "SIMILARITY_SEARCH_SETTINGS",
    "PostgresFeatures",
    "column_arrays",
    "emails_probed_by_key",
    "hnsw_build_memory",
    "has_tags",
    "lines_by_order_key",
    "one_of_array",
    "update_from_arrays",
    "upsert_from_arrays",
)


class _TenantReads(Protocol):
    """What ``neighbours_of`` needs of the unit of work (a part of ``SqlSession``,
    which is written in terms of this module)."""

    @property
    def tenant_id(self) -> str: ...

    async def connection(self) -> AsyncConnection: ...

    async def fetch(
        self, statement: Any, parameters: Mapping[str, Any], *, action: str
    ) -> Sequence[Mapping[str, Any]]: ...


_Encoder = Callable[[Any], Any]
_EMPTY_DOCUMENTS = (dict, list)
_SESSION_CONFIGURED = "linkbay.similarity_session"  # in a connection's info: see nearest
_logger = logging.getLogger("linkbay_customers_sqlalchemy")

# Candidates per pass of the HNSW scan. Among a million random vectors, pgvector's
# default of 40 found 6 of the true nearest 10 on average; 100 found 8.4. On
# behavioural embeddings (benchmarks/intelligence.py, a tenant of 100,000 beside
# 100,000 more) 100 gave a recall@10 of 0.946 in 15.6 ms, 160 gave 0.972 in 17.7 ms.
# MIN_EF_SEARCH (in _engine) is 160: every connection starts with it.
MAX_EF_SEARCH = 1000  # the largest hnsw.ef_search pgvector accepts
# Tenants with fewer live customers are ranked exactly. In a table of a million
# customers, reading 20,000 of them took a third of the time the index took to
# pick 10 out from the others (and found the true nearest, where the index
# found 8); at 50,000 the two cost about the same; at 500,000 the index is 10x faster.
EXACT_SEARCH_MAX_ROWS = 50_000
# A tenant's first scoring gets the tenant a partition of its own from this many
# live customers: the size from which its searches take the index.
OWN_PARTITION_MIN_ROWS = EXACT_SEARCH_MAX_ROWS
TENANT_SIZE_SECONDS = 300.0  # how long a tenant's size class is trusted
# Candidates per insertion when a tenant's own partition is indexed at its first
# scoring (the shared index keeps the migrations' 64). Many customers with similar
# orders lie close together, and a graph built with few candidates leaves some of
# them unreachable, whatever hnsw.ef_search. On behavioural embeddings
# (benchmarks/hnsw_graph.py, 1,000,000 customers, m = 16) the share of the true
# nearest ten found at ef_search 160 was 95.3% with 128, 97.4% with 256 (98.2% at
# ef_search 400), for a build of 186 s against 130 s; m = 24 or 32 with 128 found
# 96.1% and 96.0% in 206 s and 302 s. At 100,000 customers 64 found 95.2%, 128 98.5%.
OWN_PARTITION_EF_CONSTRUCTION = 256
COPY_MIN_ROWS = 16
"""Fewer rows are inserted rather than copied: COPY costs a round trip more."""
DEFAULT_INDEX_BUILD_MEMORY = 1 << 30
"""The most ``maintenance_work_mem`` (bytes) a tenant partition's index build raises
the server's setting to, unless the storage is told otherwise: the graph of about
1,100,000 embeddings (see ``hnsw_build_memory``)."""
# pgvector could not have the memory: a parallel build's shared memory is
# maintenance_work_mem at once (a container's /dev/shm is often 64 MB), or the server's.
_BUILD_MEMORY_REFUSED = frozenset({"53100", "53200"})  # disk_full, out_of_memory
# The setting and the largest the server takes (smaller on some platforms), in bytes.
_SERVER_MAINTENANCE_MEMORY = text(
    "SELECT setting::bigint * 1024, max_val::bigint * 1024 FROM pg_settings"
    " WHERE name = 'maintenance_work_mem'"
)
_MAINTENANCE_MEMORY = text("SELECT set_config('maintenance_work_mem', :value, true)")
_PGVECTOR_M = 16  # an HNSW index's neighbours per element where its definition sets none

# Set for the rest of the transaction (set_config's ``true`` is SET LOCAL).
# Custom plans: a generic plan knows neither the tenant nor its size, and would
# sort every row of a large tenant rather than walk the index. No parallel
# workers: the planner gives the exact way a parallel plan, and its workers were
# launched even when the way was not taken: 6 of the 8.5 ms a search took at
# 100,000 customers, against 0.8 ms for the index scan itself.
SIMILARITY_SEARCH_SETTINGS = text(
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.ef_search', :ef_search, true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def one_of_array(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter, whatever the number of values.

    A single array keeps the statement text and its prepared plan the same for
    any number of values; a long IN list can get a poor generic plan.
    """
    element_type = column.type.impl if hasattr(column.type, "impl") else column.type
    array_type = ARRAY(element_type)
    return column == any_(bindparam(None, list(values), type_=array_type))  # type: ignore[no-any-return]


def column_arrays(
    columns: Sequence[str], rows: Sequence[Any], value: Callable[[Any, str], Any]
) -> dict[str, list[Any]]:
    """The parameters of ``update_from_arrays`` and ``upsert_from_arrays``: each
    column's values over ``rows``, ``value(row, column)`` each."""
    return {f"all_{column}": [value(row, column) for row in rows] for column in columns}


def _unnest(table: Table, columns: Sequence[str], name: str) -> Any:
    """``unnest(:c1, :c2, ...) AS name(c1, c2, ...)``: one array parameter per column,
    typed as the column (so its bind processing applies to every element)."""
    arrays = [
        # One dimension: an element may itself be a list (an embedding).
        bindparam(f"all_{column}", type_=ARRAY(table.c[column].type, dimensions=1))
        for column in columns
    ]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


@functools.cache
def update_from_arrays(table: Table, columns: tuple[str, ...]) -> Any:
    """``UPDATE table SET c = v.c ... FROM unnest(:all_id, ...) AS v WHERE tenant_id =
    :key_tenant AND id = v.id AND id BETWEEN :key_first AND :key_last``: many rows'
    ``columns`` in one set-based statement (``key_first``, ``key_last``: the least and
    the greatest of the ids).

    One array per column whatever the number of rows: the statement, and its plan,
    stay the same, and PostgreSQL joins the rows by key at once instead of running
    one UPDATE per row. The range of the ids bounds the rows the join reads to
    theirs: without it PostgreSQL hashed every row of the tenant for each chunk of a
    keyset walk (a sixth of a 5,000-row chunk's time at 100,000 customers, and
    growing with the tenant).
    """
    values = _unnest(table, ("id", *columns), "v")
    return (
        table.update()
        .where(
            table.c.tenant_id == bindparam("key_tenant"),
            table.c.id == values.c.id,
            table.c.id.between(bindparam("key_first"), bindparam("key_last")),
        )
        .values({name: values.c[name] for name in columns})
    )


@functools.cache
def upsert_from_arrays(table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """``INSERT INTO table SELECT :key_tenant, v.* FROM unnest(...) AS v ON CONFLICT (key)
    DO UPDATE SET columns``, only where one of them differs: many rows inserted or
    replaced in one statement (an unchanged row is not written again)."""
    from sqlalchemy.dialects.postgresql import insert

    names = tuple(name for name in key if name != "tenant_id") + columns
    values = _unnest(table, names, "v")
    tenant = bindparam("key_tenant", type_=table.c.tenant_id.type)
    statement = insert(table).from_select(
        ("tenant_id", *names), select(tenant, *(values.c[name] for name in names))
    )
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=key,
        set_={name: new[name] for name in columns},
        where=or_(*(table.c[name].is_distinct_from(new[name]) for name in columns)),
    )


def emails_probed_by_key(
    customers: Select[Any], table: Table, mine: ColumnElement[bool], emails: Sequence[str]
) -> Select[Any]:
    """The ``customers`` holding any of ``emails``, one unique-key probe per email.

    Statistics gathered while a tenant is small (as during a bulk load) would
    otherwise make scanning all of the tenant's rows look cheaper, and every
    chunk slower than the last. Run it under ``GENERIC_PLAN`` (see there).
    """
    email = (
        func.unnest(bindparam(None, list(emails), type_=ARRAY(String)))
        .table_valued("email")
        .render_derived(name="wanted")
    )
    found = customers.where(mine, table.c.email == email.c.email).limit(1).lateral("found")
    return select(found).select_from(email).join(found, true())


GENERIC_PLAN = text(
    "SELECT current_setting('plan_cache_mode') AS mode,"
    " set_config('plan_cache_mode', 'force_generic_plan', true)"
)
"""Plan the transaction's next statements for any tenant (``plan_cache_mode`` until
``PLAN_MODE`` restores the one it returns).

A custom plan sizes the tenant from the statistics: a tenant absent from them (a
new one loaded beside others, until the next ANALYZE) is taken for one row, and
the probes of ``emails_probed_by_key`` then walk the index of ``(tenant_id,
deleted_at)``, reading every row of the tenant for each email. A generic plan
sizes any tenant as an average one and takes the unique key. Importing 100,000
customers beside a tenant of 100,000 (benchmarks/import_floor.py), the server
spent 98.6 s in the 20 chunks' probes on custom plans (pg_stat_statements), 0.97 s
on generic ones.
"""
PLAN_MODE = text("SELECT set_config('plan_cache_mode', :mode, true)")

FRESH_PLANS = text("DISCARD PLANS")
"""Plan the session's prepared statements anew at their next run (they stay prepared).

A generic plan is kept for as long as its statement stays prepared on the connection
(asyncpg keeps it for up to five minutes), unless an ANALYZE or a change of schema
invalidates it. The probes of ``emails_probed_by_key`` are first planned during an
import's first chunk, on a table that may still be empty and never analyzed: every
index then looks alike, and the plan walks the primary key of ``(tenant_id, id)``,
reading every customer of the tenant for each email. Kept for the chunks that
follow, it made an import into a new database quadratic: 20,000 customers took
17.7 s (the server 15.9 s), 50,000 took 91 s, against 0.5 s for their COPY
(benchmarks/import_floor.py, no neighbouring tenant). Planned again for each
chunk (well under a millisecond, once per chunk), the probe takes the unique key
as soon as the table has grown to a few thousand rows: the same 20,000 took 2.97 s
(the server 1.03 s).
"""


def has_tags(column: Any, tags: Sequence[str], match: TagMatch) -> ColumnElement[bool]:
    """``?|`` (any) or ``?&`` (all) on the JSONB tags, which the GIN index answers."""
    document: Any = type_coerce(column, JSONB)
    values = array(list(tags))
    matched: ColumnElement[bool] = (
        document.has_all(values) if match is TagMatch.ALL else document.has_any(values)
    )
    return matched


def lines_by_order_key(orders: Table, lines: Table) -> Any:
    """Each order's lines looked up by their key: a LATERAL subquery the planner
    may not flatten (joined flat, it would hash every order line of the tenant for
    each chunk of customers, a cost that grows with the tenant, not the chunk)."""
    return (
        select(lines.c.product_id, lines.c.product_name, lines.c.quantity)
        .where(lines.c.tenant_id == orders.c.tenant_id, lines.c.order_pk == orders.c.id)
        .offset(literal_column("0"))  # keeps it a subquery: one lookup per order
        .lateral("order_lines")
    )


@functools.cache
def _nearest_by_index(table: Table, embeddings: Table) -> Any:
    """The live customers of ``tenant`` nearest to ``query`` by cosine distance.

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
        .select_from(e.join(t, embedding_of(t, e)))
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
                e, embedding_of(t, e)
            )
        )
        .order_by(chosen.c.distance, t.c.id)
    )


@functools.cache
def _nearest_in_index(table: Table, embeddings: Table) -> Any:
    """The live customers of a large ``tenant`` nearest to ``query``, through the HNSW
    index alone: the first way of ``_nearest_by_index`` without the other, a
    statement PostgreSQL plans in a fraction of the time. Fewer than ``limit`` rows
    mean the index found too few (see ``PostgresFeatures.nearest``)."""
    t, e = table, embeddings
    query = bindparam("query", type_=e.c.embedding.type)
    distance = e.c.embedding.op("<=>", return_type=Float())(query)
    tenant: Any = bindparam("tenant")
    nearest = (
        select(t, e.c.embedding, e.c.version.label("embedding_version"), distance.label("distance"))
        .select_from(e.join(t, embedding_of(t, e)))
        .where(
            e.c.tenant_id == tenant,
            e.c.customer_id != all_(bindparam("exclude", type_=ARRAY(BigInteger()))),
            t.c.tenant_id == tenant,
            t.c.deleted_at.is_(None),
        )
        .order_by(distance)
        # Written into the statement: a plan cached for the statement (generic) then
        # knows how few rows are wanted, and walks the index as a custom plan does.
        .limit(bindparam("limit", type_=BigInteger(), literal_execute=True))
        .subquery("nearest")
    )
    # The scan runs in relaxed order: the order is restored here, ties by id.
    return select(nearest).order_by(nearest.c.distance, nearest.c.id)


# Bounded: one statement per large tenant and limit asked for.
@functools.lru_cache(maxsize=512)
def _neighbours_of_in_index(table: Table, embeddings: Table, tenant_id: str, limit: int) -> Any:
    """A customer's row and, through the HNSW index, the live customers of a large
    tenant nearest to the embedding stored for them (when it is of ``version``): the
    reading of the customer and ``_nearest_in_index`` in one statement.

    The customer's row comes first, with no distance, and ``searched`` true when the
    connection has the similarity settings. Their stored embedding is an InitPlan the
    index scan starts from; without one of ``version``, or without the settings, a
    one-time filter keeps the scan from starting at all.

    The tenant and the limit are written into the statement (one statement per
    large tenant and limit): its plan then needs neither, and PostgreSQL keeps one
    plan for it (a generic plan of a parameter tenant would span every partition,
    and the statement would be planned anew, half a millisecond, each time it runs).
    """
    t, e = table, embeddings
    # True where the connection started with ``SIMILARITY_SESSION_SETTINGS`` (an engine
    # of the host's own may not have): the index scan needs them.
    configured = and_(
        *(
            func.current_setting(literal_column(_literal(name)), true())
            == literal_column(_literal(value))
            for name, value in SIMILARITY_SESSION_SETTINGS.items()
        )
    )
    tenant: Any = literal_column(_literal(tenant_id), type_=t.c.tenant_id.type)
    customer = bindparam("customer", type_=BigInteger())
    own = (
        select(e.c.embedding)
        .where(
            e.c.tenant_id == tenant,
            e.c.customer_id == customer,
            e.c.version == bindparam("version", type_=e.c.version.type),
        )
        .scalar_subquery()
    )
    distance = e.c.embedding.op("<=>", return_type=Float())(own)
    # Every column a customer is read from (``customer_select``'s), search keys aside.
    columns = (
        *(c for c in t.columns if c.name not in SEARCH_COLUMNS),
        e.c.embedding,
        e.c.version.label("embedding_version"),
    )
    reference = (
        select(*columns, null().cast(Float()).label("distance"), configured.label("searched"))
        .select_from(t.outerjoin(e, embedding_of(t, e)))
        .where(t.c.tenant_id == tenant, t.c.id == customer)
    )
    nearest = (
        select(*columns, distance.label("distance"), true().label("searched"))
        .select_from(e.join(t, embedding_of(t, e)))
        .where(
            own.is_not(None),
            configured,
            e.c.tenant_id == tenant,
            e.c.customer_id != customer,
            t.c.tenant_id == tenant,
            t.c.deleted_at.is_(None),
        )
        .order_by(distance)
        .limit(literal_column(str(int(limit))))
        .subquery("nearest")
    )
    both = union_all(reference, select(nearest)).subquery("both")
    # The scan runs in relaxed order: the order is restored here, ties by id.
    return select(both).order_by(both.c.distance.asc().nulls_first(), both.c.id)


class PostgresFeatures:
    """COPY and the similarity search of one storage on PostgreSQL, with their caches.

    Args:
        dialect: The engine's dialect, whose bind processing COPY applies.
        index_build_memory: The most ``maintenance_work_mem`` (bytes) a tenant
            partition's HNSW build may raise the server's setting to, or None to
            keep the server's (see ``build_hnsw_index``).
    """

    def __init__(
        self, dialect: Dialect, *, index_build_memory: int | None = DEFAULT_INDEX_BUILD_MEMORY
    ) -> None:
        self._dialect = dialect
        self._index_build_memory = index_build_memory
        self._build_memory_refused = False  # see build_hnsw_index
        self._copy_refused: set[str] = set()
        self._copy_allowed: set[str] = set()  # tables COPY succeeded on
        self._copy_conflicted: set[str] = set()  # their next load is an INSERT
        self._encoders: dict[tuple[str, tuple[str, ...]], list[_Encoder | None]] = {}
        # tenant -> (has many live customers, when that was counted): see ``nearest``
        self._large_tenants: dict[str, tuple[bool, float]] = {}
        # tenant -> the table its embeddings are loaded into: see ``begin_embedding_load``
        self._loading: dict[str, Table] = {}

    @property
    def copy_refused(self) -> frozenset[str]:
        """The tables PostgreSQL refused COPY FROM on (row-level security binding the role)."""
        return frozenset(self._copy_refused)

    def _copy_encoders(self, table: Table, columns: Sequence[str]) -> list[_Encoder | None]:
        """Each column's bind processing, as a statement would apply it (cached)."""
        key = (table.name, tuple(columns))
        encoders = self._encoders.get(key)
        if encoders is None:
            dialect = self._dialect
            encoders = [
                table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
            ]
            self._encoders[key] = encoders
        return encoders

    async def copy_rows(
        self,
        connection: AsyncConnection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        action: str,
    ) -> bool:
        """Bulk-load rows' ``columns`` with COPY, inside the connection's transaction.

        The values go through the columns' own bind processing, so they are stored
        exactly as an INSERT would store them. Fewer than ``COPY_MIN_ROWS`` rows are
        left to the caller's INSERT (False), which costs fewer round trips.

        PostgreSQL refuses COPY FROM into a table whose row-level security binds
        the role, as it binds an application role. Until COPY has once succeeded on
        a table, it runs in a savepoint: if PostgreSQL refuses it, the result is
        False, and COPY is not tried on that table again. Once it has succeeded it
        runs without one (two round trips fewer), so a unique violation aborts the
        transaction: it raises ``TransactionConflict``, and the table's next load,
        whether the caller reruns the transaction or not, is left to the INSERT,
        which resolves the conflicts.

        Returns:
            True when every row was copied; False when the caller must insert them
            (few rows, COPY not allowed, or a unique violation in the savepoint).

        Raises:
            TransactionConflict: a unique violation outside a savepoint.
            StorageError: any other refusal of the database.
        """
        import asyncpg

        name = table.name
        if len(rows) < COPY_MIN_ROWS or name in self._copy_refused:
            return False
        if name in self._copy_conflicted:
            self._copy_conflicted.discard(name)
            return False
        records = self._copy_records(table, columns, rows)
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is None:  # pragma: no cover - the pool always hands out a connection
            raise StorageError(f"{action} failed: no database connection")
        copy = functools.partial(
            driver.copy_records_to_table,
            name,
            records=records,
            columns=columns,
            schema_name=table.schema,
        )
        try:
            if name in self._copy_allowed:
                await copy()
            else:
                async with driver.transaction():  # a savepoint: the transaction is open
                    await copy()
                self._copy_allowed.add(name)
        except asyncpg.UniqueViolationError as exc:
            if name not in self._copy_allowed:
                return False
            self._copy_conflicted.add(name)
            detail = str(exc).strip().splitlines()[0]
            raise TransactionConflict(f"{action} failed: {detail}") from exc
        except asyncpg.FeatureNotSupportedError:
            self._copy_refused.add(name)
            return False
        except asyncpg.PostgresError as exc:
            detail = str(exc).strip().splitlines()[0]
            raise storage_error(f"{action} failed: {detail}", exc) from exc
        return True

    def _copy_records(
        self, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """The rows' ``columns`` as COPY records, each value bind-processed."""
        pick = operator.itemgetter(*columns)
        encoders = [
            (index, encode)
            for index, encode in enumerate(self._copy_encoders(table, columns))
            if encode is not None
        ]
        # Rows of one batch share many values (timestamps, zero amounts): encode
        # a value once while the next row holds the very same object.
        # Empty documents (no tags, no consents) are encoded once per column.
        last_in: list[Any] = [None] * len(columns)
        last_out: list[Any] = [None] * len(columns)
        empty: dict[tuple[int, type], Any] = {}
        records = []
        for row in rows:
            values = list(pick(row)) if len(columns) > 1 else [pick(row)]
            for index, encode in encoders:
                value = values[index]
                if value is None:
                    continue
                if value is last_in[index]:
                    values[index] = last_out[index]
                elif not value and (kind := type(value)) in _EMPTY_DOCUMENTS:
                    encoded = empty.get((index, kind))
                    if encoded is None:
                        encoded = empty[index, kind] = encode(value)
                    values[index] = encoded
                else:
                    last_in[index] = value
                    values[index] = last_out[index] = encode(value)
            records.append(tuple(values))
        return records

    async def nearest(
        self,
        connection: AsyncConnection,
        table: Table,
        embeddings: Table,
        *,
        tenant_id: str,
        embedding: Sequence[float],
        limit: int,
        exclude: Sequence[int],
    ) -> Sequence[Row[Any]]:
        """The rows of the live customers nearest to ``embedding``, with their ``distance``
        (cosine; NaN for a zero vector), nearest first, ties by id."""
        # ef_search below limit would end each pass of the scan short of limit rows.
        ef_search = min(max(limit, MIN_EF_SEARCH), MAX_EF_SEARCH)
        # A tenant known to be large skips the size count (0: count nothing, take
        # the index); the answer is remembered for a while, as sizes change slowly.
        large = await self._is_large_tenant(connection, table, tenant_id)
        exact_max = 0 if large else EXACT_SEARCH_MAX_ROWS
        parameters = {
            "tenant": tenant_id,
            "query": list(embedding),
            "limit": limit,
            "exclude": list(exclude),
        }
        # A large tenant's search needs no setting of its own when the connection
        # started with the similarity settings and ef_search is theirs: one round trip.
        if large and ef_search == MIN_EF_SEARCH and await self._session_configured(connection):
            with translate_errors("finding similar customers"):
                found = (
                    await connection.execute(_nearest_in_index(table, embeddings), parameters)
                ).all()
            if len(found) == limit:
                return found
        with translate_errors("configuring the similarity search"):
            await connection.execute(SIMILARITY_SEARCH_SETTINGS, {"ef_search": str(ef_search)})
        with translate_errors("finding similar customers"):
            result = await connection.execute(
                _nearest_by_index(table, embeddings), {**parameters, "exact_max": exact_max}
            )
            return result.all()

    async def neighbours_of(
        self,
        session: _TenantReads,
        table: Table,
        embeddings: Table,
        *,
        customer_id: int,
        embedding_version: str,
        limit: int,
    ) -> Sequence[Mapping[str, Any]] | None:
        """The customer's row (no ``distance``; ``searched``: whether the index was
        asked) and then, nearest first, the rows of the live customers nearest to the
        embedding stored for them, in one statement run as the transaction's first
        (its tenant setting goes with its BEGIN): only for a large tenant (None
        elsewhere, and nothing is read)."""
        tenant_id = session.tenant_id
        if limit > MIN_EF_SEARCH:
            return None
        large = self._known_size(tenant_id)
        if large is None:
            large = await self._is_large_tenant(await session.connection(), table, tenant_id)
        if not large:
            return None
        return await session.fetch(
            _neighbours_of_in_index(table, embeddings, tenant_id, limit),
            {"customer": customer_id, "version": embedding_version},
            action="finding similar customers",
        )

    async def _session_configured(self, connection: AsyncConnection) -> bool:
        """Whether the connection started with ``SIMILARITY_SESSION_SETTINGS`` (an engine
        of the host's own may not have), asked once per connection."""
        known = connection.info.get(_SESSION_CONFIGURED)
        if known is None:
            checks = [
                f"current_setting({_literal(name)}, true) = {_literal(value)}"
                for name, value in SIMILARITY_SESSION_SETTINGS.items()
            ]
            with translate_errors("reading the similarity settings"):
                known = bool(await connection.scalar(text("SELECT " + " AND ".join(checks))))
            connection.info[_SESSION_CONFIGURED] = known
        return bool(known)

    def _known_size(self, tenant_id: str) -> bool | None:
        """Whether the tenant is large, as counted in the last ``TENANT_SIZE_SECONDS``
        (None: not counted since)."""
        known = self._large_tenants.get(tenant_id)
        if known is not None and time.monotonic() - known[1] < TENANT_SIZE_SECONDS:
            return known[0]
        return None

    async def _is_large_tenant(
        self, connection: AsyncConnection, table: Table, tenant_id: str
    ) -> bool:
        """Whether the tenant has ``EXACT_SEARCH_MAX_ROWS`` live customers or more,
        counted at most once per ``TENANT_SIZE_SECONDS`` in this storage."""
        known = self._known_size(tenant_id)
        if known is not None:
            return known
        now = time.monotonic()
        some = (
            select(literal_column("1"))
            .where(table.c.tenant_id == tenant_id, table.c.deleted_at.is_(None))
            .limit(EXACT_SEARCH_MAX_ROWS)
            .subquery()
        )
        with translate_errors("sizing the tenant"):
            rows = await connection.execute(select(func.count()).select_from(some))
        large = int(rows.scalar_one()) >= EXACT_SEARCH_MAX_ROWS
        self._large_tenants[tenant_id] = (large, now)
        return large

    # ------------------------------------------------------------ embedding loads

    def loading(self, tenant_id: str) -> Table | None:
        """The table the tenant's scoring writes its embeddings into, while a load runs."""
        return self._loading.get(tenant_id)

    async def begin_embedding_load(
        self,
        connection: AsyncConnection,
        table: Table,
        embeddings: Table,
        tenant_id: str,
        *,
        version: str,
    ) -> bool:
        """Start loading a large tenant's embeddings into a partition of its own.

        Only where it pays and is allowed: the embeddings table is partitioned by
        tenant (revision 0011) and owned by the connected role, the tenant has no
        embedding of ``version`` yet (its first scoring, or its first since the
        embeddings' layout changed, whichever partition holds the older ones), and at
        least ``OWN_PARTITION_MIN_ROWS`` live customers. Then a table is created for
        the tenant's partition, with the keys of the partitioned table and no vector
        index: what ``update_derived`` writes goes there until ``end_embedding_load``
        indexes it at once and puts it in place. Nothing reads it before: the
        tenant's searches find the embeddings they found before the scoring.

        Returns:
            Whether the load started (in the connection's transaction, to commit).
        """
        if tenant_id in self._loading:
            return False
        parent = _qualified(embeddings)
        with translate_errors("preparing the embeddings' load"):
            partitioned = await connection.scalar(
                text(
                    "SELECT c.relkind = 'p' AND pg_has_role(c.relowner, 'USAGE')"
                    " FROM pg_class AS c WHERE c.oid = to_regclass(:name)"
                ),
                {"name": parent},
            )
            if not partitioned:
                return False
            # The cheaper question first: every scoring after the first stops here.
            e = embeddings
            current = await connection.scalar(
                select(literal_column("1"))
                .where(e.c.tenant_id == tenant_id, e.c.version == version)
                .limit(1)
            )
            if current is not None:
                return False
            some = (
                select(literal_column("1"))
                .where(table.c.tenant_id == tenant_id, table.c.deleted_at.is_(None))
                .limit(OWN_PARTITION_MIN_ROWS)
                .subquery()
            )
            live = await connection.scalar(select(func.count()).select_from(some))
            if int(live or 0) < OWN_PARTITION_MIN_ROWS:
                return False
            load = _load_of(embeddings, tenant_id)
            name = _qualified(load)
            # Left by a load that did not end (its process stopped): start again.
            await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
            await connection.execute(
                text(
                    f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS,"
                    " PRIMARY KEY (tenant_id, customer_id),"
                    f" FOREIGN KEY (tenant_id, customer_id) REFERENCES {_qualified(table)}"
                    " (tenant_id, id) ON DELETE CASCADE,"
                    # The partition's bound, so attaching it needs no scan of its rows.
                    f" CHECK (tenant_id = {_literal(tenant_id)}))"
                )
            )
        self._loading[tenant_id] = load
        return True

    async def end_embedding_load(
        self,
        connection: AsyncConnection,
        table: Table,
        embeddings: Table,
        tenant_id: str,
        *,
        since: datetime,
        complete: bool,
    ) -> None:
        """End the tenant's load: index its table at once and make it the tenant's
        partition (``complete``), or drop it.

        What changed meanwhile wins over the load: a customer changed or deleted
        after ``since`` keeps no loaded embedding, but the one their change wrote
        where the tenant's embeddings were (the default partition, or the tenant's
        former partition, which the loaded table replaces). Every other embedding
        found there is older than the load and gives way to it. That table is locked
        only to move those rows and swap the partitions.
        """
        load = self._loading.pop(tenant_id, None)
        if load is None:
            return
        name, parent = _qualified(load), _qualified(embeddings)
        part = _partition_of(embeddings, tenant_id)
        with translate_errors("ending the embeddings' load"):
            if not complete:
                await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
                return
            definition = await connection.scalar(
                text(
                    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
                    " JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS a ON"
                    " a.oid = c.relam WHERE i.indrelid = to_regclass(:name) AND a.amname = 'hnsw'"
                ),
                {"name": parent},
            )
            if definition is not None:  # the partitioned table's index, with more candidates
                using = _with_ef_construction(definition[definition.index(" USING ") :])
                dimensions = vector_dimensions(embeddings.c.embedding.type)
                await self.build_hnsw_index(connection, name, using, dimensions)
            former = await connection.scalar(
                text("SELECT c.relispartition FROM pg_class AS c WHERE c.oid = to_regclass(:name)"),
                {"name": _qualified(part)},
            )
            source = (
                _qualified(part)
                if former
                else await connection.scalar(
                    text(
                        "SELECT partdefid::regclass::text FROM pg_partitioned_table"
                        " WHERE partrelid = to_regclass(:name) AND partdefid <> 0"
                    ),
                    {"name": parent},
                )
            )
            t = table
            changed = select(t.c.id).where(
                t.c.tenant_id == tenant_id,
                or_(t.c.updated_at > since, t.c.deleted_at.is_not(None)),
            )
            await connection.execute(
                load.delete().where(load.c.tenant_id == tenant_id, load.c.customer_id.in_(changed))
            )
            await connection.execute(text(f"ANALYZE {name}"))
            literal = _literal(tenant_id)
            if source is not None:
                # Detaching the former partition locks the partitioned table: take that
                # lock first, so no search holding it waits on the partition meanwhile.
                locked = parent if former else source
                await connection.execute(text(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE"))
                await connection.execute(
                    text(
                        f"INSERT INTO {name} SELECT s.* FROM {source} AS s"
                        f" WHERE s.tenant_id = {literal} AND s.customer_id IN (SELECT c.id"
                        f" FROM {_qualified(table)} AS c WHERE c.tenant_id = {literal}"
                        " AND (c.updated_at > :since OR c.deleted_at IS NOT NULL))"
                        " ON CONFLICT (tenant_id, customer_id) DO NOTHING"
                    ),
                    {"since": since},
                )
            if former:
                await connection.execute(text(f"ALTER TABLE {parent} DETACH PARTITION {source}"))
                await connection.execute(text(f"DROP TABLE {source}"))
            elif source is not None:
                await connection.execute(text(f"DELETE FROM {source} WHERE tenant_id = {literal}"))
            await connection.execute(text(f"ALTER TABLE {name} RENAME TO {_quote(part.name)}"))
            await connection.execute(
                text(
                    f"ALTER TABLE {parent} ATTACH PARTITION {_qualified(part)}"
                    f" FOR VALUES IN ({literal})"
                )
            )

    async def build_hnsw_index(
        self, connection: AsyncConnection, name: str, using: str, dimensions: int | None
    ) -> None:
        """``CREATE INDEX ON name USING hnsw ...`` with the memory its graph needs.

        Where the server's ``maintenance_work_mem`` cannot hold the graph of the
        table's rows (``hnsw_build_memory``), it is raised for this transaction, up
        to ``index_build_memory``. Should the server refuse that memory (a parallel
        build takes it as shared memory at once: a container's ``/dev/shm`` may be
        smaller), the build runs again at the server's setting, slower, and a
        warning says so; later builds of this storage then keep the server's setting.
        """
        create = text(f"CREATE INDEX ON {name}{using}")
        ceiling = self._index_build_memory
        if ceiling is not None and dimensions is not None and not self._build_memory_refused:
            rows = int(await connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)
            found = _index_parameter(using, "m")
            m = int(found.group(1)) if found else _PGVECTOR_M
            server, largest = (await connection.execute(_SERVER_MAINTENANCE_MEMORY)).one()
            wanted = min(ceiling, int(largest), hnsw_build_memory(rows, dimensions, m))
            if wanted > int(server):
                try:
                    async with connection.begin_nested():
                        await connection.execute(
                            _MAINTENANCE_MEMORY, {"value": f"{wanted // 1024}kB"}
                        )
                        await connection.execute(create)
                    return
                except DBAPIError as exc:
                    if sqlstate(exc) not in _BUILD_MEMORY_REFUSED:
                        raise
                    # Refused once, refused again: later builds keep the server's setting.
                    self._build_memory_refused = True
                    _logger.warning(
                        "building %s's HNSW index with %d MiB of maintenance_work_mem"
                        " failed (%s); building it with the server's %d MiB instead,"
                        " which takes longer, and every later build of this storage"
                        " too: lower index_build_memory, or give the server the memory"
                        " (shared memory for a parallel build)",
                        name,
                        wanted >> 20,
                        exc.orig,
                        int(server) >> 20,
                    )
        await connection.execute(create)


def hnsw_build_memory(rows: int, dimensions: int, m: int) -> int:
    """Bytes of ``maintenance_work_mem`` that hold the whole HNSW graph of ``rows``
    vectors while pgvector builds it.

    An element holds its vector (4 bytes a dimension), its neighbours (``2 m`` on the
    ground layer, its share of ``m`` on the upper ones, 16 bytes each) and pgvector's
    bookkeeping: measured at about 830 bytes for 32 dimensions and ``m = 16`` (with
    64 MB the graph stopped fitting after 77,632 elements, with 1 MB after 1,244),
    counted here as 840, with 15% to spare, and 4 MiB more: the 3 MiB a parallel
    build keeps aside, and one to spare. A graph that does not fit is finished on
    disk, one insertion at a time: twice as long at 200,000 embeddings (94.8 s
    against 49.6 s), more beyond.
    """
    element = 4 * dimensions + 32 * m + 200
    return int(rows * element * 1.15) + (4 << 20)


def _index_parameter(using: str, name: str) -> re.Match[str] | None:
    """Where an index's ``USING ...`` clause sets the whole-number storage parameter
    ``name`` (``pg_get_indexdef`` quotes its value), its value the match's group 1."""
    return re.search(rf"\b{name}\s*=\s*'?(\d+)'?", using)


def _with_ef_construction(using: str) -> str:
    """An HNSW index's ``USING ...`` clause with ``ef_construction`` at least
    ``OWN_PARTITION_EF_CONSTRUCTION`` (a partition's index attaches to the partitioned
    table's whatever its storage parameters)."""
    match = _index_parameter(using, "ef_construction")
    wanted = f"ef_construction='{OWN_PARTITION_EF_CONSTRUCTION}'"
    if match is None:
        if " WITH (" in using:
            return using.replace(" WITH (", f" WITH ({wanted}, ", 1)
        return f"{using} WITH ({wanted})"
    if int(match.group(1)) >= OWN_PARTITION_EF_CONSTRUCTION:
        return using
    return using[: match.start()] + wanted + using[match.end() :]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _qualified(table: Table) -> str:
    name = _quote(table.name)
    return name if table.schema is None else f"{_quote(table.schema)}.{name}"


def _literal(value: str) -> str:
    """A string constant of SQL (DDL takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _partition_of(embeddings: Table, tenant_id: str) -> Table:
    """The table of the tenant's own partition of the embeddings: the partitioned
    table's name, ``PARTITION_MARK``, and a digest of the tenant id."""
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:20]
    return embeddings.to_metadata(MetaData(), name=f"{embeddings.name}{PARTITION_MARK}{digest}")


def _load_of(embeddings: Table, tenant_id: str) -> Table:
    """The table a load of the tenant's embeddings fills (``_partition_of``'s name, marked
    as a load): it takes that name when the load ends."""
    part = _partition_of(embeddings, tenant_id)
    return part.to_metadata(MetaData(), name=f"{part.name}_load")
