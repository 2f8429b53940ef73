"""Statements every repository builds: each compiled once per table and cached."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, insert, select, update

from linkbay_customers.domain import Page
from linkbay_customers_sqlalchemy._models import SEARCH_COLUMNS

__all__ = (
    "ESCAPE",
    "customer_select",
    "customers_after",
    "embedding_of",
    "insert_ignoring_conflict",
    "insert_with_conflicts",
    "keyed",
    "like_escape",
    "page_of",
    "plain_insert",
    "update_by_key",
)

ESCAPE = "\\"


def like_escape(value: str) -> str:
    """Escape LIKE wildcards so ``%`` and ``_`` match themselves."""
    return value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def page_of(items: Sequence[Any], total: int, page: int, page_size: int) -> Page[Any]:
    """A page of ``items`` out of ``total``."""
    return Page(items=list(items), total=total, page=page, page_size=page_size)


def embedding_of(table: Table, embeddings: Table) -> ColumnElement[bool]:
    """The join of a customer row to its embedding row."""
    return and_(embeddings.c.tenant_id == table.c.tenant_id, embeddings.c.customer_id == table.c.id)


@functools.cache
def customer_select(table: Table, embeddings: Table) -> Select[Any]:
    """Customers with their embeddings: every column a customer is read from."""
    columns = [c for c in table.columns if c.name not in SEARCH_COLUMNS]
    return select(
        *columns, embeddings.c.embedding, embeddings.c.version.label("embedding_version")
    ).select_from(table.outerjoin(embeddings, embedding_of(table, embeddings)))


@functools.cache
def customers_after(table: Table, embeddings: Table) -> Select[Any]:
    """``customer_select`` of the live customers with ids above the ``after`` parameter,
    by id. The bound is on both sides of the join: a merge join would otherwise read
    the tenant's embeddings from its first one for every chunk of a walk."""
    after: Any = bindparam("after")
    joined = and_(embedding_of(table, embeddings), embeddings.c.customer_id > after)
    return (
        select(table, embeddings.c.embedding, embeddings.c.version.label("embedding_version"))
        .select_from(table.outerjoin(embeddings, joined))
        .where(table.c.id > after, table.c.deleted_at.is_(None))
        .order_by(table.c.id)
    )


@functools.cache
def plain_insert(table: Table) -> Any:
    """A plain INSERT; the values go as parameters, so the compiled form is cached."""
    return insert(table)


@functools.cache
def update_by_key(table: Table, columns: tuple[str, ...]) -> Any:
    """UPDATE of ``columns`` for the row whose key is the ``key_tenant``/``key_id`` parameters."""
    return (
        update(table)
        .where(table.c.tenant_id == bindparam("key_tenant"), table.c.id == bindparam("key_id"))
        .values({name: bindparam(name) for name in columns})
    )


def keyed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values with the key parameters ``update_by_key`` reads."""
    return {**row, "key_tenant": row["tenant_id"], "key_id": row["id"]}


def insert_with_conflicts(dialect: str, table: Table) -> Any:
    """An INSERT of the dialect, which can say what a conflict does."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@functools.cache
def insert_ignoring_conflict(
    dialect: str, table: Table, columns: tuple[str, ...], returning: str = "id"
) -> Any:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING RETURNING <returning>`` for the dialect.

    The values go as parameters; a row refused by the conflict returns nothing.
    """
    return (
        insert_with_conflicts(dialect, table)
        .on_conflict_do_nothing(index_elements=columns)
        .returning(table.c[returning])
    )
