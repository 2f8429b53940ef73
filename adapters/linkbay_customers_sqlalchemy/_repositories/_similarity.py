"""Nearest neighbours by embedding: the HNSW index on PostgreSQL, an exact scan on SQLite."""

from __future__ import annotations

import builtins
import heapq
import math
import operator
from collections.abc import Sequence

from sqlalchemy import JSON, select, type_coerce

from linkbay_customers.domain import Customer
from linkbay_customers.ports import NearestNeighbours, NeighboursOfCustomer
from linkbay_customers_sqlalchemy._errors import translate_errors
from linkbay_customers_sqlalchemy._repositories._customer_rows import CustomerRows
from linkbay_customers_sqlalchemy._repositories._statements import embedding_of
from linkbay_customers_sqlalchemy._types import vector_dimensions

__all__ = ("SqlNearestNeighbours",)

_EXACT_SEARCH_BATCH = 5000  # embeddings read at a time by the exact search on SQLite


def _similarity(distance: float) -> float:
    return 0.0 if math.isnan(distance) else 1.0 - distance


def _cosine(query: Sequence[float], query_norm: float, vector: Sequence[float]) -> float:
    """``cosine_similarity`` with the query's norm computed once (0 for a zero vector)."""
    norm = query_norm * math.hypot(*vector)
    return sum(map(operator.mul, query, vector)) / norm if norm else 0.0


class SqlNearestNeighbours(CustomerRows, NearestNeighbours, NeighboursOfCustomer):
    """The live customers most similar to an embedding, or to a customer's own."""

    async def neighbours_of(
        self, customer_id: int, *, embedding_version: str, limit: int
    ) -> tuple[Customer | None, builtins.list[tuple[Customer, float]] | None]:
        """The customer and their nearest customers by their stored embedding, read in
        one statement: on PostgreSQL, for a large tenant (see
        ``PostgresFeatures.neighbours_of``). Elsewhere nothing is read (None, None).
        """
        postgresql = self._session.postgresql
        if postgresql is None or limit <= 0:
            return None, None
        rows = await postgresql.neighbours_of(
            self._session,
            self._table,
            self._embeddings,
            customer_id=customer_id,
            embedding_version=embedding_version,
            limit=limit,
        )
        if not rows or rows[0]["distance"] is not None:
            return None, None  # not searched here, or no such customer
        customer = self._entity_of(rows[0])
        if (
            customer.is_deleted
            or customer.embedding is None
            or customer.embedding_version != embedding_version
        ):
            return customer, None
        found = [(self._entity_of(row), _similarity(row["distance"])) for row in rows[1:]]
        if len(found) < limit or not rows[0]["searched"]:
            # The index scan gave up short of limit, or the connection lacks the
            # similarity settings it needs: ``nearest`` ranks them another way.
            return customer, await self.nearest(
                customer.embedding, limit=limit, exclude=[customer.id]
            )
        return customer, found

    async def nearest(
        self, embedding: Sequence[float], *, limit: int, exclude: Sequence[int] = ()
    ) -> builtins.list[tuple[Customer, float]]:
        """Live customers most similar to ``embedding``, ties by id.

        PostgreSQL asks the HNSW index (approximate, see ``PostgresFeatures.nearest``);
        SQLite ranks every embedded customer of the tenant exactly.
        """
        if limit <= 0:
            return []
        postgresql = self._session.postgresql
        if postgresql is None:
            return await self._nearest_exactly(embedding, limit, exclude)
        rows = await postgresql.nearest(
            await self._session.connection(),
            self._table,
            self._embeddings,
            tenant_id=self._session.tenant_id,
            embedding=embedding,
            limit=limit,
            exclude=exclude,
        )
        return [(self._entity(row), _similarity(row.distance)) for row in rows]

    async def _nearest_exactly(
        self, embedding: Sequence[float], limit: int, exclude: Sequence[int]
    ) -> builtins.list[tuple[Customer, float]]:
        t, e = self._table, self._embeddings
        query = [float(v) for v in embedding]
        dimensions = vector_dimensions(e.c.embedding.type)
        if dimensions is not None and len(query) != dimensions:
            raise ValueError(f"embeddings have {dimensions} dimensions, not {len(query)}")
        query_norm = math.hypot(*query)
        where = [self._mine, t.c.deleted_at.is_(None)]
        if exclude:
            where.append(t.c.id.not_in(list(exclude)))
        # Only ids and vectors, streamed in batches: memory stays flat however
        # large the tenant, and only the best ``limit`` survive each batch.
        vectors = (
            select(t.c.id, type_coerce(e.c.embedding, JSON))
            .select_from(t.join(e, embedding_of(t, e)))
            .where(*where)
        )
        best: builtins.list[tuple[float, int]] = []
        connection = await self._session.connection()
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
