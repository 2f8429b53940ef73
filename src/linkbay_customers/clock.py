"""The system clock: the Clock port's default adapter, the one place that reads real time."""

from __future__ import annotations

from datetime import UTC, datetime

from linkbay_customers.ports import Clock

__all__ = ("SystemClock",)


class SystemClock(Clock):
    """The real, current UTC time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)
