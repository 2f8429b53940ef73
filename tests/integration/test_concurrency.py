"""Concurrent calls leave exact figures: no lost update, no double count."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal

import pytest
import sqlalchemy.exc
from sqlalchemy.util import greenlet_spawn

from linkbay_customers import (
    AIService,
    CustomerService,
    DuplicateEmail,
    HeuristicIntelligence,
    InvalidMerge,
)
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._pool import FairQueue


@pytest.fixture
async def concurrent_service(database_url: str) -> AsyncIterator[CustomerService]:
    storage = SqlAlchemyStorage.from_url(database_url, pool_size=20, max_overflow=0)
    yield CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    await storage.close()


async def test_fifty_concurrent_orders_with_retries_leave_exact_totals(
    concurrent_service: CustomerService,
) -> None:
    service = concurrent_service
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, {"email": "busy@example.com"})
    orders = [{"order_id": f"o-{i}", "total": f"{i + 1}.{i % 100:02d}"} for i in range(40)]
    calls = orders + random.Random(7).sample(orders, 10)  # ten orders sent twice at once
    random.Random(11).shuffle(calls)

    results = await asyncio.gather(
        *(service.record_order(tenant, customer.id, order) for order in calls)
    )

    assert sum(r.created for r in results) == 40
    stored = await service.get_customer(tenant, customer.id)
    expected = sum(Decimal(o["total"]) for o in orders)
    assert (stored.total_orders, stored.total_spent) == (40, expected)
    assert stored.average_order_value == (expected / 40).quantize(Decimal("0.0001"))
    assert (await service.list_orders(tenant, customer.id, page_size=100)).total == 40


async def test_concurrent_creates_of_one_email_yield_one_customer(
    concurrent_service: CustomerService,
) -> None:
    service = concurrent_service
    tenant = new_tenant_id()
    outcomes = await asyncio.gather(
        *(
            service.create_customer(tenant, {"email": "race@example.com", "first_name": f"n{i}"})
            for i in range(20)
        ),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(created) == 1
    assert len(refused) == 19
    assert all(isinstance(o, DuplicateEmail) for o in refused), refused
    assert (await service.list_customers(tenant, {"include_deleted": True})).total == 1


async def test_opposite_merges_at_once_do_not_deadlock(
    concurrent_service: CustomerService,
) -> None:
    service = concurrent_service
    tenant = new_tenant_id()
    a = await service.create_customer(tenant, {"email": "a@example.com"})
    b = await service.create_customer(tenant, {"email": "b@example.com"})
    await service.record_order(tenant, a.id, {"order_id": "a1", "total": 3})
    await service.record_order(tenant, b.id, {"order_id": "b1", "total": 4})

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            service.merge_customers(
                tenant, {"source_customer_id": a.id, "target_customer_id": b.id}
            ),
            service.merge_customers(
                tenant, {"source_customer_id": b.id, "target_customer_id": a.id}
            ),
            return_exceptions=True,
        ),
        timeout=30,
    )

    merged = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(merged) == 1
    assert [type(o) for o in outcomes if isinstance(o, BaseException)] == [InvalidMerge]
    survivor = await service.get_customer(tenant, merged[0].id)
    assert (survivor.total_orders, survivor.total_spent) == (2, Decimal(7))


async def test_orders_and_profile_updates_at_once_lose_nothing(
    concurrent_service: CustomerService,
) -> None:
    service = concurrent_service
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, {"email": "mixed@example.com"})
    orders = [
        service.record_order(tenant, customer.id, {"order_id": f"m-{i}", "total": 2})
        for i in range(15)
    ]
    updates = [
        service.update_customer(tenant, customer.id, {"tags": [f"t{i}"], "first_name": f"N{i}"})
        for i in range(15)
    ]
    await asyncio.gather(*orders, *updates)
    stored = await service.get_customer(tenant, customer.id)
    assert (stored.total_orders, stored.total_spent) == (15, Decimal(30))
    # Each update is applied whole: the surviving tags and name come from one call.
    assert stored.first_name is not None
    assert stored.tags == [f"t{stored.first_name[1:]}"]


async def test_merges_in_a_cycle_at_once_end_merged_or_refused_never_in_a_storage_error(
    concurrent_service: CustomerService,
) -> None:
    # x -> y, y -> z and z -> x at once: locking the customers a merge reaches
    # through an alias out of order used to deadlock on PostgreSQL (a 503).
    service = concurrent_service
    for _ in range(20):
        tenant = new_tenant_id()
        ids = []
        for name in "xyz":
            customer = await service.create_customer(tenant, {"email": f"{name}@example.com"})
            await service.record_order(tenant, customer.id, {"order_id": name, "total": 1})
            ids.append(customer.id)
        pairs = list(zip(ids, ids[1:] + ids[:1], strict=True))

        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(
                    service.merge_customers(
                        tenant, {"source_customer_id": s, "target_customer_id": t}
                    )
                    for s, t in pairs
                ),
                return_exceptions=True,
            ),
            timeout=60,
        )

        refused = [type(o) for o in outcomes if isinstance(o, BaseException)]
        assert set(refused) <= {InvalidMerge}, outcomes
        assert len(refused) < 3
        live = (await service.list_customers(tenant)).items
        assert sum(c.total_orders for c in live) == 3


async def test_sqlite_readers_of_one_tenant_leave_another_tenants_writer_going(
    sqlite_url: str,
) -> None:
    # A reduced run of benchmarks/sqlite_readers.py: similarity searches and
    # listings at once in one tenant while, on its own connection and event loop
    # (a second server worker), another tenant creates customers.
    storage = SqlAlchemyStorage.from_url(sqlite_url, pool_size=25, max_overflow=0)
    clock, intelligence = FixedClock(), HeuristicIntelligence()
    service = CustomerService(storage.unit_of_work, clock, intelligence)
    ai = AIService(storage.unit_of_work, clock, intelligence)
    readers, writers = new_tenant_id(), new_tenant_id()
    await service.import_customers(
        readers, ({"email": f"r{i}@example.com", "tags": ["vip"] * (i % 2)} for i in range(2000))
    )
    await ai.score_tenant(readers)
    probe = (await service.list_customers(readers, page_size=1)).items[0].id
    done = threading.Event()

    async def write() -> list[float]:
        own = SqlAlchemyStorage.from_url(sqlite_url)
        writer = CustomerService(own.unit_of_work, FixedClock(), HeuristicIntelligence())
        waits: list[float] = []
        try:
            while not done.is_set():
                started = time.perf_counter()
                await writer.create_customer(writers, {"email": f"w{len(waits)}@example.com"})
                waits.append(time.perf_counter() - started)
        finally:
            await own.close()
        return waits

    writing = asyncio.ensure_future(asyncio.to_thread(asyncio.run, write()))
    try:
        for _ in range(2):
            calls: list[Awaitable[object]] = [
                ai.find_similar_customers(readers, probe) for _ in range(10)
            ]
            calls += [service.list_customers(readers, page_size=50) for _ in range(10)]
            await asyncio.gather(*calls)  # a StorageError fails the test
    finally:
        done.set()
        waits = await writing
        await storage.close()

    assert waits, "the writer created no customer"
    assert max(waits) < 10, max(waits)  # a writer waiting for the readers sat out seconds


async def test_a_busy_pool_serves_units_of_work_in_the_order_they_asked(database_url: str) -> None:
    # One connection; a unit of work waits for it. When it comes back, a unit of
    # work asking in the same moment (before the waiter has run) queues behind the
    # waiter instead of taking it: under load no request waits out the pool timeout
    # while later ones pass it.
    storage = SqlAlchemyStorage.from_url(database_url, pool_size=1, max_overflow=0)
    tenant, served = new_tenant_id(), []

    async def read(name: str) -> None:
        async with storage.unit_of_work(tenant, read_only=True) as uow:
            assert await uow.customers.get(1) is None
            served.append(name)

    try:
        held = await storage.engine.connect()
        waiting = asyncio.create_task(read("waiting"))
        await asyncio.sleep(0.05)  # it waits for the one connection
        await held.close()
        await read("asked after")
        await waiting
        assert served == ["waiting", "asked after"]
    finally:
        await storage.close()


async def test_a_cancelled_or_timed_out_wait_for_a_connection_loses_no_connection() -> None:
    storage = SqlAlchemyStorage.from_url("sqlite://", pool_timeout=0.05)
    engine = storage.engine
    try:
        held = await engine.connect()
        with pytest.raises(sqlalchemy.exc.TimeoutError, match="QueuePool limit"):
            await engine.connect()
        # Cancelled in the moment the connection is handed to it: it passes it on.
        handed = asyncio.create_task(engine.connect().start())
        await asyncio.sleep(0.01)
        await held.close()
        handed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handed
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("SELECT 1")).scalar() == 1
    finally:
        await storage.close()


async def test_a_wait_cancelled_as_a_full_pool_fills_keeps_every_connection() -> None:
    # One connection handed to a waiter whose request is cancelled, and another
    # returned in the same moment (with overflow, the pool holds both): the
    # cancellation stays a cancellation, and both connections stay usable.
    queue: FairQueue[str] = FairQueue(maxsize=1)
    waiting = asyncio.create_task(greenlet_spawn(queue.get, True, 30))
    await asyncio.sleep(0.01)
    queue.put_nowait("first")  # handed to the waiter
    waiting.cancel()
    queue.put_nowait("second")  # kept: the queue is full now
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert {queue.get_nowait(), queue.get_nowait()} == {"first", "second"}
