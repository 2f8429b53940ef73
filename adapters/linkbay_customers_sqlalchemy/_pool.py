"""A connection pool that serves its waiters in the order they came.

SQLAlchemy's asyncio pool (``AsyncAdaptedQueuePool``) keeps its connections in an
``asyncio.Queue`` and takes one without waiting whenever one is there. A returned
connection wakes the oldest waiter, but the waiter runs only on the event loop's
next turn; a unit of work that asks in between takes the connection first, and the
woken waiter queues again at the back. Under a steady load with more requests than
connections, a few requests then wait for seconds, up to the pool timeout, while
the others are served at once (sqlalchemy/sqlalchemy#7679 describes the same for
threads; asyncpg's own pool behaves alike, MagicStack/asyncpg#1247).

``FairQueue`` hands a returned connection straight to the oldest waiter, so no one
can take it first, and a connection lies idle only while nobody waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_only  # await_ from SQLAlchemy 2.1 on
from sqlalchemy.util.queue import Empty, Full, QueueCommon

__all__ = ("FairAsyncPool", "FairQueue")

_T = TypeVar("_T")


class FairQueue(QueueCommon[_T]):
    """A first-come, first-served queue of pooled connections for one event loop.

    ``put`` gives the item to the oldest waiter still waiting, or keeps it when none
    is; ``get`` takes a kept item, or waits behind those already waiting (raising
    ``Empty`` after ``timeout`` seconds). Kept items and waiters never coexist, so
    taking a kept item never passes anyone. ``put`` never waits: the pool returns at
    most as many connections as it opened, and a full queue raises ``Full`` (the
    pool then closes the connection).
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        """No item is kept."""
        return not self._items

    def full(self) -> bool:
        """As many items are kept as the queue holds."""
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        """The items kept."""
        return len(self._items)

    def put_nowait(self, item: _T) -> None:
        """Give ``item`` to the oldest waiter, or keep it.

        Raises:
            Full: nobody waits and the queue is full.
        """
        if self._hand_over(item):
            return
        if self.full():
            raise Full()
        self._items.append(item)

    def _hand_over(self, item: _T) -> bool:
        """Give ``item`` to the oldest waiter still waiting; False when there is none."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # not timed out or cancelled meanwhile
                waiter.set_result(item)
                return True
        return False

    def _give_back(self, item: _T) -> None:
        """Pass on an item a cancelled waiter was handed, or keep it first in line:
        the pool counted it out, so it is kept even where the queue is full (filled
        meanwhile by another's return)."""
        if not self._hand_over(item):
            self._items.appendleft(item)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """``put_nowait``: returning a connection never waits."""
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        """A kept item (the newest with ``use_lifo``, else the oldest).

        Raises:
            Empty: none is kept.
        """
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """A kept item, or (``block``) the next one returned after those waiting
        before this call have theirs; called from SQLAlchemy's greenlet.

        Raises:
            Empty: none is kept and ``block`` is False, or ``timeout`` passed.
        """
        if self._items or not block:
            return self.get_nowait()
        return await_only(self._wait_at_most(timeout))

    async def _wait_at_most(self, seconds: float | None) -> _T:
        try:
            async with asyncio.timeout(seconds):
                return await self._wait()
        except TimeoutError as exc:
            raise Empty() from exc

    async def _wait(self) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:  # cancelled, by the timeout or by the caller
            if waiter.done() and not waiter.cancelled():
                # Handed an item in the moment this call was cancelled.
                self._give_back(waiter.result())
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise


class FairAsyncPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool on a ``FairQueue``: connections go to the
    units of work in the order they asked for one."""

    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = FairQueue
