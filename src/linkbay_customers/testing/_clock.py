"""A clock for tests: it shows the time it is set to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from linkbay_customers.ports import Clock

__all__ = ("FixedClock",)


class FixedClock(Clock):
    """A clock that stands still until told to move.

    Args:
        start: The time to show; must be timezone-aware. Defaults to 2025-01-01 UTC.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The time the clock is set to."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; return the new time."""
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now
