"""Duplicate detection of ``CustomerService``: candidate pairs from the storage's
blocking, compared field by field, scored by a Fellegi-Sunter model the tenant's own
pairs fit, each suggestion with the merge request that would fold it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from linkbay_customers.domain import (
    COMPARISONS,
    Address,
    Customer,
    InvalidInput,
    Page,
    compare_records,
    fit_match_model,
    match_record,
)
from linkbay_customers.ports import UnitOfWork, derived_data, duplicate_candidates
from linkbay_customers.schemas import CustomerMergeRequest
from linkbay_customers.services._boundary import check_page
from linkbay_customers.services._change import Transactions, load_customer
from linkbay_customers.services._duplicate_decisions import drop_decided
from linkbay_customers.services._progress import ProgressCallback, report_progress

__all__ = ("CustomerDuplicates", "DuplicateSuggestion")

_CHUNK = 5000  # customers whose candidate pairs are read and compared at a time
_Vector = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class DuplicateSuggestion:
    """Two customers likely to be the same person.

    Attributes:
        customer_id: The lower id of the two (for ``find_duplicates_of``: the customer asked
            about).
        other_id: The other customer.
        match_probability: The probability, from 0 to 1, that they are one person.
        agreeing: The compared fields that agree, each as ``field: level``.
        disagreeing: The compared fields both customers have that disagree.
        merge_request: The merge that would fold the pair: the customer kept is the
            target.
        keep_reason: Why the merge keeps the target.
    """

    customer_id: int
    other_id: int
    match_probability: float
    agreeing: tuple[str, ...]
    disagreeing: tuple[str, ...]
    merge_request: CustomerMergeRequest
    keep_reason: str


def _check_probability(min_probability: object) -> float:
    if (
        not isinstance(min_probability, int | float)
        or isinstance(min_probability, bool)
        or not math.isfinite(min_probability)
        or not 0 <= min_probability <= 1
    ):
        raise InvalidInput.single("min_probability", "must be a number from 0 to 1")
    return float(min_probability)


def _keep(a: Customer, b: Customer) -> tuple[Customer, Customer, str]:
    """Which of two duplicates a merge keeps: the one with more orders, else the older."""
    if a.total_orders != b.total_orders:
        kept, gone = (a, b) if a.total_orders > b.total_orders else (b, a)
        return kept, gone, "more orders"
    if a.created_at != b.created_at:
        kept, gone = (a, b) if a.created_at < b.created_at else (b, a)
        return kept, gone, "older customer"
    kept, gone = (a, b) if a.id < b.id else (b, a)
    return kept, gone, "lower id"


def _fields(vector: _Vector) -> tuple[tuple[str, ...], tuple[str, ...]]:
    agreeing, disagreeing = [], []
    for comparison, level in zip(COMPARISONS, vector, strict=True):
        if level is None:
            continue
        if level == 0:
            disagreeing.append(comparison.name)
        else:
            agreeing.append(f"{comparison.name}: {comparison.levels[level]}")
    return tuple(agreeing), tuple(disagreeing)


async def _compared(
    uow: UnitOfWork, customers: Sequence[Customer], *, later_only: bool
) -> list[tuple[int, int, _Vector]]:
    """The comparison vectors of the candidate pairs of ``customers``: one query for the
    pairs, one for the other sides, one for everybody's addresses."""
    pairs = await duplicate_candidates(uow).candidate_pairs(
        [c.id for c in customers], later_only=later_only
    )
    # Pairs marked as two people are neither suggested nor fitted on.
    pairs = await drop_decided(uow, pairs)
    if not pairs:
        return []
    known = {c.id: c for c in customers}
    others = sorted({b for _, b in pairs} - known.keys())
    known.update({c.id: c for c in await uow.customers.get_many(others)})
    addresses = await uow.addresses.list_for_customers(sorted(known))
    by_customer: dict[int, list[Address]] = {}
    for address in addresses:
        by_customer.setdefault(address.customer_id, []).append(address)
    records = {cid: match_record(c, by_customer.get(cid, ())) for cid, c in known.items()}
    return [
        (a, b, compare_records(records[a], records[b]))
        for a, b in pairs
        if a in records and b in records
    ]


class CustomerDuplicates:
    """Duplicate detection (part of ``CustomerService``)."""

    _tx: Transactions

    async def _tenant_pairs(
        self, uow: UnitOfWork, on_progress: ProgressCallback[int] | None
    ) -> list[tuple[int, int, _Vector]]:
        compared: list[tuple[int, int, _Vector]] = []
        duplicate_candidates(uow)  # a storage without the role fails before any work
        walk = derived_data(uow)
        after, done = 0, 0
        while chunk := await walk.list_after(after, limit=_CHUNK):
            live = [c for c in chunk if not c.is_anonymized]
            compared += await _compared(uow, live, later_only=True)
            after, done = chunk[-1].id, done + len(chunk)
            await report_progress(on_progress, done)
        return compared

    async def _suggestions(
        self,
        uow: UnitOfWork,
        scored: list[tuple[int, int, float, _Vector]],
    ) -> list[DuplicateSuggestion]:
        ids = sorted({a for a, *_ in scored} | {b for _, b, *_ in scored})
        customers = {c.id: c for c in await uow.customers.get_many(ids)}
        suggestions = []
        for a, b, probability, vector in scored:
            kept, gone, reason = _keep(customers[a], customers[b])
            agreeing, disagreeing = _fields(vector)
            suggestions.append(
                DuplicateSuggestion(
                    customer_id=a,
                    other_id=b,
                    match_probability=probability,
                    agreeing=agreeing,
                    disagreeing=disagreeing,
                    merge_request=CustomerMergeRequest(
                        source_customer_id=gone.id, target_customer_id=kept.id
                    ),
                    keep_reason=reason,
                )
            )
        return suggestions

    async def _scored(
        self, uow: UnitOfWork, threshold: float, on_progress: ProgressCallback[int] | None
    ) -> list[tuple[int, int, float, _Vector]]:
        """The tenant's candidate pairs at ``threshold`` or above, most probable first."""
        compared = await self._tenant_pairs(uow, on_progress)
        model = fit_match_model(Counter(vector for *_, vector in compared))
        return sorted(
            (
                (a, b, p, vector)
                for a, b, vector in compared
                if (p := model.probability(vector)) >= threshold
            ),
            key=lambda row: (-row[2], row[0], row[1]),
        )

    async def list_duplicates(
        self,
        tenant_id: str,
        *,
        min_probability: float = 0.8,
        on_progress: ProgressCallback[int] | None = None,
    ) -> list[DuplicateSuggestion]:
        """Every likely duplicate pair of the tenant, as ``find_duplicates`` orders them
        (one fit for all of them, where paging through ``find_duplicates`` fits per page).

        Raises:
            InvalidInput: ``min_probability`` out of 0..1.
            StorageRoleMissing: as for ``find_duplicates``.
        """
        threshold = _check_probability(min_probability)
        async with self._tx.read(tenant_id) as uow:
            scored = await self._scored(uow, threshold, on_progress)
            suggestions: list[DuplicateSuggestion] = []
            for start in range(0, len(scored), _CHUNK):
                suggestions += await self._suggestions(uow, scored[start : start + _CHUNK])
            return suggestions

    async def find_duplicates(
        self,
        tenant_id: str,
        *,
        min_probability: float = 0.8,
        page: int = 1,
        page_size: int = 20,
        on_progress: ProgressCallback[int] | None = None,
    ) -> Page[DuplicateSuggestion]:
        """The tenant's likely duplicate pairs, most probable first (ties by ids).

        Candidate pairs come from the storage's blocking (``DuplicateCandidates``), never
        all pairs; the model is fitted on the tenant's candidate pairs each call, without
        labels. Deleted (merged included) and erased customers never appear. The
        profiling policy does not apply: matching keeps records accurate (GDPR art.
        5(1)(d)) and derives nothing about the person (see docs/gdpr.md).

        Args:
            tenant_id: The tenant.
            min_probability: The least match probability of a pair listed, 0 to 1.
            page: The page, from 1.
            page_size: Pairs per page, 1 to 100.
            on_progress: Called after each chunk with the number of customers read.

        Raises:
            InvalidInput: ``min_probability`` out of 0..1, or a bad page.
            StorageRoleMissing: the storage has no ``DuplicateCandidates`` (or no
                ``DerivedDataStore``, to walk the tenant).
        """
        threshold = _check_probability(min_probability)
        check_page(page, page_size)
        async with self._tx.read(tenant_id) as uow:
            scored = await self._scored(uow, threshold, on_progress)
            start = (page - 1) * page_size
            items = await self._suggestions(uow, scored[start : start + page_size])
        return Page(items=items, total=len(scored), page=page, page_size=page_size)

    async def find_duplicates_of(
        self,
        tenant_id: str,
        customer_id: int,
        *,
        min_probability: float = 0.8,
        limit: int = 20,
    ) -> list[DuplicateSuggestion]:
        """The likely duplicates of one customer, most probable first; each suggestion's
        ``customer_id`` is this customer (merge aliases followed).

        The model is the tenant's, fitted as ``find_duplicates`` fits it.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            InvalidInput: ``min_probability`` out of 0..1, or ``limit`` not in 1..100.
            StorageRoleMissing: as for ``find_duplicates``.
        """
        threshold = _check_probability(min_probability)
        check_page(1, limit)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            model = fit_match_model(
                Counter(vector for *_, vector in await self._tenant_pairs(uow, None))
            )
            own = await _compared(uow, [customer], later_only=False)
            scored = sorted(
                (
                    (a, b, p, vector)
                    for a, b, vector in own
                    if (p := model.probability(vector)) >= threshold
                ),
                key=lambda row: (-row[2], row[1]),
            )
            return await self._suggestions(uow, scored[:limit])
