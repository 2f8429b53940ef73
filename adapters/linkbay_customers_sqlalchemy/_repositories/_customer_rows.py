"""Customers as rows: the customer table, its embeddings table, and the mapping between
them and ``Customer``."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, delete, or_

from linkbay_customers.domain import ConsentState, Customer, InvalidInput, search_key
from linkbay_customers_sqlalchemy._models import (
    CUSTOMER_FIELDS,
    SEARCH_COLUMNS,
    customer_extra_columns,
)
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import (
    column_arrays,
    upsert_from_arrays,
)
from linkbay_customers_sqlalchemy._repositories._session import SqlSession
from linkbay_customers_sqlalchemy._repositories._statements import (
    customer_select,
    insert_with_conflicts,
)

__all__ = ("EMBEDDING_FIELDS", "CustomerRows", "embedding_entry")

# The embedding lives in a table of its own (see CustomerEmbeddingMixin).
EMBEDDING_FIELDS = ("embedding", "embedding_version")
_ROW_FIELDS = tuple(name for name in CUSTOMER_FIELDS if name not in EMBEDDING_FIELDS)
_row_fields = operator.attrgetter(*_ROW_FIELDS)
_EMBEDDING_COLUMNS = ("customer_id", "embedding", "version")
_UNREAD = object()  # an embedding this unit of work has not read


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


def embedding_entry(customer: Customer) -> tuple[int, Any, Any]:
    """``(customer id, embedding, version)``, as ``CustomerRows.write_embeddings`` takes them."""
    return customer.id, customer.embedding, customer.embedding_version


@functools.cache
def _upsert_embedding(dialect: str, embeddings: Table) -> Any:
    """Insert a customer's embedding, or replace it only if it differs."""
    statement = insert_with_conflicts(dialect, embeddings)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=("tenant_id", "customer_id"),
        set_={"embedding": new.embedding, "version": new.version},
        where=or_(
            embeddings.c.embedding.is_distinct_from(new.embedding),
            embeddings.c.version.is_distinct_from(new.version),
        ),
    )


class CustomerRows(SqlRepository):
    """Reads and writes customer rows; the host's extra columns are the ``extra`` fields."""

    role = "customer"

    def __init__(self, session: SqlSession) -> None:
        super().__init__(session)
        # Each customer's embedding and version as this unit of work read or
        # wrote them: writing a customer writes its embedding only when it differs.
        self._embeddings_read: dict[int, tuple[Any, Any]] = {}

    @property
    def _extra_columns(self) -> tuple[str, ...]:
        return customer_extra_columns(self._table)

    @property
    def _embeddings(self) -> Table:
        return self._session.models.embedding.__table__  # type: ignore[attr-defined, no-any-return]

    def _select(self) -> Select[Any]:
        return customer_select(self._table, self._embeddings)

    def _values(self, customer: Customer) -> dict[str, Any]:
        """The customer's row (the embedding is written apart, see ``_write_embeddings``)."""
        self._own(customer)
        values = dict(zip(_ROW_FIELDS, _row_fields(customer), strict=True))
        for column, field in SEARCH_COLUMNS.items():
            value = values[field]
            values[column] = None if value is None else search_key(value)
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
        return self._entity_of(row._mapping)

    def _entity_of(self, data: Mapping[str, Any]) -> Customer:
        """The customer a row's values (by column name) describe."""
        values = {name: data[name] for name in CUSTOMER_FIELDS}
        values["preferences"] = values["preferences"] or {}
        values["tags"] = values["tags"] or []
        values["consent_data"] = _consent_from_json(values["consent_data"])
        values["extra"] = {name: data[name] for name in self._extra_columns}
        self._embeddings_read[values["id"]] = (values["embedding"], values["embedding_version"])
        return Customer(**values)

    def _written(self, customers: Iterable[Customer]) -> None:
        """Record that the customers were just inserted, with no embedding yet."""
        self._embeddings_read.update((c.id, (None, None)) for c in customers)

    async def _write_embeddings(
        self, items: Iterable[tuple[int, Any, Any]], *, into: Table | None = None
    ) -> None:
        """Store ``(customer id, embedding, version)`` where it differs from what was read.

        An embedding is upserted (rewritten only if it changed: an unchanged row
        costs no new HNSW entry), a missing one deleted; customers whose embedding
        is as read cost no statement at all. ``into``: the table a load of the
        tenant's embeddings writes to instead (deletions go to both).
        """
        changed = [
            (customer_id, embedding, version)
            for customer_id, embedding, version in items
            if self._embeddings_read.get(customer_id, _UNREAD) != (embedding, version)
        ]
        if not changed:
            return
        e, tenant = self._embeddings, self._session.tenant_id
        present = [
            {"tenant_id": tenant, "customer_id": i, "embedding": v, "version": version}
            for i, v, version in changed
            if v is not None
        ]
        gone = [i for i, v, _ in changed if v is None]
        if present and self._session.dialect == "postgresql":
            # One set-based statement, whatever the number of embeddings.
            target = e if into is None else into
            await self._execute(
                upsert_from_arrays(target, ("tenant_id", "customer_id"), ("embedding", "version")),
                {
                    "key_tenant": tenant,
                    **column_arrays(_EMBEDDING_COLUMNS, present, operator.getitem),
                },
                action="writing embeddings",
            )
        elif present:
            await self._execute(
                _upsert_embedding(self._session.dialect, e), present, action="writing embeddings"
            )
        for table in (e,) if into is None else (e, into):
            if gone:
                await self._execute(
                    delete(table).where(
                        table.c.tenant_id == tenant, self._one_of(table.c.customer_id, gone)
                    ),
                    action="removing embeddings",
                )
        for customer_id, embedding, version in changed:
            self._embeddings_read[customer_id] = (embedding, version)
