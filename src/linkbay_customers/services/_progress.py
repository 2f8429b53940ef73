"""How batch work (import, scoring, retention) reports its progress."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ("ProgressCallback", "report_progress")

P = TypeVar("P")

ProgressCallback = Callable[[P], Awaitable[object] | None]
"""A callback batch work calls with how far it has come, after every chunk.

It may be a plain function or a coroutine function: what it returns is awaited when it
is awaitable, so the work waits for an async callback before going on.
``import_customers`` passes an ``ImportProgress`` (``ProgressCallback[ImportProgress]``);
``score_tenant`` and ``purge_inactive`` pass the number of customers done so far
(``ProgressCallback[int]``).
"""


async def report_progress(on_progress: ProgressCallback[P] | None, progress: P) -> None:
    """Call ``on_progress`` (when given) with ``progress``, awaiting it if it is async."""
    if on_progress is None:
        return
    outcome = on_progress(progress)
    if inspect.isawaitable(outcome):
        await outcome
