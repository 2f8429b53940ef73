"""Duplicate detection of ``CustomerService``: candidate pairs from the storage's
blocking, compared field by field, scored by a Fellegi-Sunter model the tenant's own
pairs fit, each suggestion with the merge request that would fold it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from linkbay_customers.domain import (
    COMPARISONS,
    Customer,
    CustomerFilters,
    InvalidInput,
    MatchModel,
    MatchRecord,
    Page,
    compare_records,
    fit_match_model,
)
from linkbay_customers.ports import DuplicateCandidates, UnitOfWork, duplicate_candidates
from linkbay_customers.schemas import CustomerMergeRequest
from linkbay_customers.services._boundary import check_page
from linkbay_customers.services._change import Transactions, load_customer
from linkbay_customers.services._duplicate_decisions import drop_decided
from linkbay_customers.services._progress import ProgressCallback, report_progress

__all__ = ("CustomerDuplicates", "DuplicateSuggestion")

_CHUNK = 5000  # candidate pairs read and compared at a time
# The fit reads the pairs whose lower id is one of about this many customers: all of a
# tenant up to that size, a sample of the same size (every n-th id) beyond.
_SAMPLE_CUSTOMERS = 10_000
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


async def _tenant_size(uow: UnitOfWork) -> int:
    return (await uow.customers.list(CustomerFilters(), page=1, page_size=1)).total


def _sample_every(customers: int) -> int:
    """One pair in how many the fit reads: every pair up to ``_SAMPLE_CUSTOMERS``."""
    return max(1, math.ceil(customers / _SAMPLE_CUSTOMERS))


class _Scorer:
    """A fitted model's probabilities, computed once per distinct comparison vector."""

    def __init__(self, model: MatchModel) -> None:
        self._model = model
        self._known: dict[_Vector, float] = {}

    def __call__(self, vector: _Vector) -> float:
        probability = self._known.get(vector)
        if probability is None:
            probability = self._known[vector] = self._model.probability(vector)
        return probability


_Scored = tuple[int, int, float, _Vector]


def _most_probable(rows: Iterable[_Scored]) -> list[_Scored]:
    return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))


async def _undecided(
    uow: UnitOfWork, batch: Sequence[tuple[MatchRecord, MatchRecord]]
) -> list[tuple[MatchRecord, MatchRecord]]:
    """The batch without the pairs marked as two people: they are neither suggested
    nor fitted on."""
    kept = set(await drop_decided(uow, [(a.customer_id, b.customer_id) for a, b in batch]))
    return [(a, b) for a, b in batch if (a.customer_id, b.customer_id) in kept]


async def _fitted(
    uow: UnitOfWork, candidates: DuplicateCandidates, every: int
) -> tuple[_Scorer, list[tuple[int, int, _Vector]]]:
    """The tenant's model, fitted once on the pairs whose lower id is a multiple of
    ``every``, and those pairs' comparison vectors."""
    sample = [
        (a.customer_id, b.customer_id, compare_records(a, b))
        async for batch in candidates.candidate_records(every=every, batch_size=_CHUNK)
        for a, b in await _undecided(uow, batch)
    ]
    return _Scorer(fit_match_model(Counter(vector for *_, vector in sample))), sample


class CustomerDuplicates:
    """Duplicate detection (part of ``CustomerService``)."""

    _tx: Transactions

    async def _suggestions(
        self, uow: UnitOfWork, scored: Sequence[_Scored]
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
    ) -> list[_Scored]:
        """The tenant's candidate pairs at ``threshold`` or above, most probable first.

        One fit on a sample whose size does not grow with the tenant (every pair of a
        tenant of up to ``_SAMPLE_CUSTOMERS`` customers, then compared only once);
        then every pair streamed, compared and scored, and those at the threshold kept.
        """
        candidates = duplicate_candidates(uow)
        customers = await _tenant_size(uow)
        every = _sample_every(customers)
        score, sample = await _fitted(uow, candidates, every)
        if every == 1:
            await report_progress(on_progress, customers)
            return _most_probable(
                (a, b, p, vector) for a, b, vector in sample if (p := score(vector)) >= threshold
            )
        del sample
        kept: list[_Scored] = []
        compared: set[int] = set()
        async for batch in candidates.candidate_records(batch_size=_CHUNK):
            for a, b in await _undecided(uow, batch):
                vector = compare_records(a, b)
                if (p := score(vector)) >= threshold:
                    kept.append((a.customer_id, b.customer_id, p, vector))
                compared.add(a.customer_id)
            await report_progress(on_progress, min(len(compared), customers))
        await report_progress(on_progress, customers)
        return _most_probable(kept)

    async def list_duplicates(
        self,
        tenant_id: str,
        *,
        min_probability: float = 0.8,
        on_progress: ProgressCallback[int] | None = None,
    ) -> list[DuplicateSuggestion]:
        """Every likely duplicate pair of the tenant, as ``find_duplicates`` orders them
        (one fit and one pass for all of them, where paging through ``find_duplicates``
        fits and passes per page).

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
        all pairs; the model is fitted once per call, without labels, on the tenant's
        candidate pairs (a sample of the same pairs at each call once the tenant has
        more than 10,000 customers). Deleted (merged included) and erased customers
        never appear. The profiling policy does not apply: matching keeps records
        accurate (GDPR art. 5(1)(d)) and derives nothing about the person (see
        docs/gdpr.md).

        Args:
            tenant_id: The tenant.
            min_probability: The least match probability of a pair listed, 0 to 1.
            page: The page, from 1.
            page_size: Pairs per page, 1 to 100.
            on_progress: Called as pairs are compared with the number of customers
                done, the tenant's count at the end.

        Raises:
            InvalidInput: ``min_probability`` out of 0..1, or a bad page.
            StorageRoleMissing: the storage has no ``DuplicateCandidates``.
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

        The model is the tenant's, fitted as ``find_duplicates`` fits it; only this
        customer's pairs are compared beyond the fit's sample.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            InvalidInput: ``min_probability`` out of 0..1, or ``limit`` not in 1..100.
            StorageRoleMissing: as for ``find_duplicates``.
        """
        threshold = _check_probability(min_probability)
        check_page(1, limit)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            candidates = duplicate_candidates(uow)
            score, _ = await _fitted(uow, candidates, _sample_every(await _tenant_size(uow)))
            own = [
                (a.customer_id, b.customer_id, p, vector)
                async for batch in candidates.candidate_records(customer_ids=[customer.id])
                for a, b in await _undecided(uow, batch)
                if (p := score(vector := compare_records(a, b))) >= threshold
            ]
            scored = sorted(own, key=lambda row: (-row[2], row[1]))
            return await self._suggestions(uow, scored[:limit])
