"""Duplicate detection: precision, recall and F1 on generated customers with known
duplicates, beside plain baselines, and the time and peak memory of a tenant.

Run by hand (not part of the test suite):

    python benchmarks/duplicates.py                      # 10,000 people on SQLite
    python benchmarks/duplicates.py --people 100000 --postgres

The generator makes ``--people`` distinct people (names, birthdays, phones, emails,
an address) and, for a share of them, a second record of the same person with
what really happens to such records: a typo in a name, first and last names
swapped, the email rewritten (``+tag``, Gmail dots, another provider), the phone
changed or missing, a moved address, a missing birthday. The ground truth is
which records come from one person; no label is used for fitting.

Measured on the same data, in the same run:

- ``fellegi_sunter``: ``CustomerService.list_duplicates`` at probability 0.5.
- the floors: exact match on the normalized email; on the phone; on the
  (case-folded) first name, last name and birthday.

Prints a table and writes ``benchmarks/results/duplicates.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _harness import new_database, postgres_admin, report

from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers.domain import Address, AddressType, Customer, normalize_email
from linkbay_customers.ports import bulk_import
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, upgrade

TARGETS = {"fellegi_sunter_f1": (">=", 0.9)}
TENANT = "bench"

FIRST = [
    "Mario", "Anna", "Luca", "Giulia", "Marco", "Sara", "John", "Emma", "Noah", "Olivia",
    "Liam", "Sofia", "Paolo", "Chiara", "Peter", "Laura", "David", "Elena", "Tom", "Marta",
]  # fmt: skip
LAST = [
    "Rossi", "Bianchi", "Smith", "Jones", "Muller", "Garcia", "Brown", "Ferrari", "Russo",
    "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "Costa",
    "Taylor", "Wilson", "Moore", "White", "Martin", "Clark", "Lewis", "Walker", "Hall",
]  # fmt: skip
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "libero.it", "example.org"]
CITIES = ["Milano", "Roma", "Torino", "Napoli", "Bologna", "Firenze"]


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word))
    kind = rng.randrange(3)
    if kind == 0 and len(word) > 3:
        return word[:i] + word[i + 1 :]
    if kind == 1 and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeioulnrst") + word[i + 1 :]


def people(count: int, duplicate_share: float, seed: int) -> list[dict[str, Any]]:
    """Records of ``count`` people, some twice; ``person`` is the ground truth."""
    rng = random.Random(seed)
    records = []
    for person in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(18_000))
        local = f"{first}.{last}{rng.randrange(1000)}".lower()
        record = {
            "person": person,
            "first_name": first,
            "last_name": last,
            "birthday": born if rng.random() < 0.7 else None,
            "email": f"{local}@{rng.choice(DOMAINS)}",
            "phone": f"+3934{rng.randrange(10**8):08d}" if rng.random() < 0.8 else None,
            "postal_code": f"{rng.randrange(10_000, 99_999)}",
            "street": f"Via {rng.choice(LAST)} {rng.randrange(1, 200)}",
            "city": rng.choice(CITIES),
        }
        records.append(record)
        if rng.random() >= duplicate_share:
            continue
        twin = dict(record)
        if rng.random() < 0.3:
            twin["first_name"] = _typo(rng, first)
        if rng.random() < 0.2:
            twin["last_name"] = _typo(rng, last)
        if rng.random() < 0.15:
            twin["first_name"], twin["last_name"] = twin["last_name"], twin["first_name"]
        mailbox, _, domain = record["email"].partition("@")
        roll = rng.random()
        if roll < 0.25:
            twin["email"] = f"{mailbox}+shop@{domain}"
        elif roll < 0.4 and domain == "gmail.com":
            twin["email"] = f"{mailbox.replace('.', '')}@googlemail.com"
        elif roll < 0.7:
            twin["email"] = f"{mailbox}@{rng.choice(DOMAINS)}"
        elif roll < 0.85:
            twin["email"] = f"{first.lower()}{rng.randrange(10**6)}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.3:
            twin["phone"] = f"+3934{rng.randrange(10**8):08d}" if rng.random() < 0.5 else None
        if rng.random() < 0.3:
            twin["postal_code"] = f"{rng.randrange(10_000, 99_999)}"
            twin["street"] = f"Via {rng.choice(LAST)} {rng.randrange(1, 200)}"
        if rng.random() < 0.3:
            twin["birthday"] = None
        records.append(twin)
    rng.shuffle(records)
    return records


def true_pairs(records: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """The pairs of record indexes (their ids are index + 1) of one person."""
    by_person: dict[int, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_person[record["person"]].append(index + 1)
    return {(min(ids), max(ids)) for ids in by_person.values() if len(ids) == 2}


def exact_pairs(
    records: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]
) -> set[tuple[int, int]]:
    """A floor: every pair of records with the same non-empty ``key``."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        value = key(record)
        if value is not None:
            groups[value].append(index + 1)
    return {(a, b) for ids in groups.values() for a in ids for b in ids if a < b}


def scores(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


async def load(storage: SqlAlchemyStorage, records: list[dict[str, Any]]) -> None:
    """Store the records as customers 1..n with one address each, in chunks."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    emails: set[str] = set()
    for start in range(0, len(records), 2000):
        chunk = records[start : start + 2000]
        async with storage.unit_of_work(TENANT) as uow:
            ids = await bulk_import(uow).next_ids(len(chunk))
            customers = []
            for customer_id, r in zip(ids, chunk, strict=True):
                # An email is unique in a tenant: a twin with the same one goes without.
                email = r["email"] if r["email"] not in emails else None
                emails.add(r["email"])
                customers.append(
                    Customer(
                        id=customer_id,
                        tenant_id=TENANT,
                        email=email,
                        first_name=r["first_name"],
                        last_name=r["last_name"],
                        phone=r["phone"],
                        birthday=r["birthday"],
                        created_at=now,
                        updated_at=now,
                    )
                )
            refused = await bulk_import(uow).add_many(customers)
            assert not refused, refused
            for customer_id, r in zip(ids, chunk, strict=True):
                await uow.addresses.add(
                    Address(
                        id=await uow.addresses.next_id(),
                        tenant_id=TENANT,
                        customer_id=customer_id,
                        type=AddressType.SHIPPING,
                        address_line1=r["street"],
                        city=r["city"],
                        postal_code=r["postal_code"],
                        country="IT",
                        created_at=now,
                        updated_at=now,
                    )
                )
            await uow.commit()


def _fold(text: str | None) -> str | None:
    return text.casefold() if text else None


async def run(url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    storage = SqlAlchemyStorage.from_url(url)
    try:
        await load(storage, records)
        service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
        tracemalloc.start()
        started = time.perf_counter()
        found = await service.list_duplicates(TENANT, min_probability=0.5)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await storage.close()
    truth = true_pairs(records)
    results: dict[str, Any] = {"customers": len(records), "true_pairs": len(truth)}
    pairs = {(s.customer_id, s.other_id) for s in found}
    floors: dict[str, Iterable[tuple[int, int]]] = {
        "fellegi_sunter": pairs,
        "exact_email": exact_pairs(records, lambda r: normalize_email(r["email"])),
        "exact_phone": exact_pairs(records, lambda r: r["phone"]),
        "exact_name_birthday": exact_pairs(
            records,
            lambda r: (
                (_fold(r["first_name"]), _fold(r["last_name"]), r["birthday"])
                if r["birthday"]
                else None
            ),
        ),
    }
    for name, found_pairs in floors.items():
        for measure, value in scores(set(found_pairs), truth).items():
            results[f"{name}_{measure}"] = value
    results["seconds"] = round(seconds, 2)
    results["peak_mib"] = round(peak / 2**20, 1)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--duplicate-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--postgres", action="store_true", help="Run on PostgreSQL too.")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    records = people(args.people, args.duplicate_share, args.seed)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await upgrade(url)
        sqlite = await run(url, records)
    report("duplicates", "Duplicate detection on SQLite", TARGETS, sqlite)
    if args.postgres or args.postgres_url:
        with postgres_admin(args.postgres_url) as admin:
            postgres = await run(await new_database(admin), records)
        report("duplicates_postgres", "Duplicate detection on PostgreSQL", TARGETS, postgres)


if __name__ == "__main__":
    asyncio.run(main())
