"""What a listing asks for and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = (
    "DEFAULT_MAX_ADDRESSES",
    "MAX_PAGE_SIZE",
    "MAX_SEARCH_LIMIT",
    "CustomerFilters",
    "CustomerSort",
    "Page",
    "TagMatch",
)

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_SEARCH_LIMIT = 100
# The most addresses a customer may have unless the service is configured otherwise.
DEFAULT_MAX_ADDRESSES = 50


class TagMatch(StrEnum):
    """Whether a customer must carry any or all of the requested tags."""

    ANY = "any"
    ALL = "all"


class CustomerSort(StrEnum):
    """The orders a listing can come in; ties are broken by id in the same direction."""

    CREATED_AT_DESC = "-created_at"
    CREATED_AT_ASC = "created_at"
    TOTAL_SPENT_DESC = "-total_spent"
    TOTAL_SPENT_ASC = "total_spent"
    LAST_ORDER_AT_DESC = "-last_order_at"
    LAST_ORDER_AT_ASC = "last_order_at"

    @property
    def column(self) -> str:
        """The customer attribute sorted on."""
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        """True for newest/largest first."""
        return self.value.startswith("-")


@dataclass(frozen=True, kw_only=True)
class CustomerFilters:
    """Filters of a customer listing; every filter given must hold.

    ``created_after`` is inclusive and ``created_before`` exclusive, so consecutive
    windows never count a customer twice. ``email_contains`` is a substring, compared
    as ``search_key`` folds text (case and accents ignored), in which ``%`` and ``_``
    are ordinary characters. Customers without orders sort last when sorting on
    ``last_order_at``.
    """

    segment: str | None = None
    min_total_spent: Decimal | None = None
    max_total_spent: Decimal | None = None
    tags: tuple[str, ...] = ()
    tags_match: TagMatch = TagMatch.ANY
    email_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_deleted: bool = False
    sort: CustomerSort = CustomerSort.CREATED_AT_DESC


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the total count across all pages."""

    items: Sequence[T]
    total: int
    page: int
    page_size: int

    @property
    def total_pages(self) -> int:
        """How many pages the listing has at this page size."""
        return -(-self.total // self.page_size) if self.total else 0
