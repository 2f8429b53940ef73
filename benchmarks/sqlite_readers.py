"""Readers beside a writer on one SQLite file: does one tenant's reading stall another's writes?

Run by hand (not part of the test suite):

    python benchmarks/sqlite_readers.py                        # 20,000 embedded customers
    python benchmarks/sqlite_readers.py --customers 5000 --readers 20

One tenant holds ``--customers`` customers with embeddings (``score_tenant``); while
``--readers`` concurrent similarity searches and listings run in it, round after
round, another process (a second server worker) creates customers of another
tenant one after the other. Prints the writer's waits and how many calls failed
with ``StorageError`` (a 503).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import customer_rows, percentile

from linkbay_customers import AIService, CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers.domain import StorageError
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, upgrade


async def _run(customers: int, readers: int, rounds: int, directory: Path) -> None:
    url = f"sqlite+aiosqlite:///{directory / 'readers.db'}"
    await upgrade(url)
    storage = SqlAlchemyStorage.from_url(url, pool_size=readers + 5, max_overflow=0)
    clock, intelligence = SystemClock(), HeuristicIntelligence()
    service = CustomerService(storage.unit_of_work, clock, intelligence)
    ai = AIService(storage.unit_of_work, clock, intelligence)
    await service.import_customers("readers", customer_rows(customers, seed=1))
    await ai.score_tenant("readers")
    probe = (await service.list_customers("readers", page_size=1)).items[0].id

    failures = 0
    stop, results = multiprocessing.Event(), multiprocessing.Queue()
    writer = multiprocessing.Process(target=_writer, args=(url, stop, results))
    writer.start()

    async def read() -> None:
        nonlocal failures
        for _ in range(rounds):
            calls = [ai.find_similar_customers("readers", probe) for _ in range(readers // 2)]
            calls += [
                service.list_customers("readers", page_size=50)
                for _ in range(readers - readers // 2)
            ]
            for outcome in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(outcome, StorageError):
                    failures += 1
                elif isinstance(outcome, BaseException):
                    raise outcome

    started = time.perf_counter()
    try:
        await read()
    finally:
        stop.set()
        await storage.close()
    waits, writer_failures = results.get()
    writer.join()
    failures += writer_failures
    elapsed = time.perf_counter() - started
    print(f"{customers} embedded customers, {readers} concurrent readers x {rounds} rounds")
    print(f"  readers' time:           {elapsed:8.2f} s")
    print(f"  writer's creates:        {len(waits):8d}")
    print(f"  writer's wait p50 / max: {percentile(waits, 0.5):8.3f} s / {max(waits):.3f} s")
    print(f"  StorageError (503):      {failures:8d}")


def _writer(url: str, stop: Any, results: Any) -> None:
    asyncio.run(_write(url, stop, results))


async def _write(url: str, stop: Any, results: Any) -> None:
    storage = SqlAlchemyStorage.from_url(url)
    service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
    waits: list[float] = []
    failures = 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            await service.create_customer("writer", {"email": f"w{len(waits)}@example.com"})
        except StorageError:
            failures += 1
        waits.append(time.perf_counter() - started)
    await storage.close()
    results.put((waits, failures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--readers", type=int, default=45)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_run(args.customers, args.readers, args.rounds, Path(directory)))


if __name__ == "__main__":
    main()
