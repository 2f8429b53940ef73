"""Duplicate detection of ``CustomerService``: candidate pairs from the storage's
blocking, compared field by field, scored by a Fellegi-Sunter model the tenant's own
pairs fit, each suggestion with the merge request that would fold it.

A tenant beyond ``CustomerDuplicates.duplicate_sample_customers`` customers is fitted
on a sample of its pairs, and that fit is stored (``DuplicateCandidates.save_match_fit``)
and reused until the tenant has changed: see ``_reusable``."""

from __future__ import annotations

import functools
import logging
import math
import zlib
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from linkbay_customers.domain import (
    COMPARISONS,
    Customer,
    CustomerFilters,
    InvalidInput,
    MatchModel,
    MatchRecord,
    ModelFit,
    Page,
    StorageError,
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

_logger = logging.getLogger(__name__)

_CHUNK = 5000  # candidate pairs read and compared at a time
# A stored fit is reused while the changes since (audit events, customers come or gone)
# are at most this share of the customers it was fitted on, and it is younger than:
_STALE_SHARE = 0.01
_STALE_AGE = timedelta(days=1)
# The comparisons a stored fit was made for: another set of comparisons or levels
# (another version of the library) makes it unusable.
_COMPARISONS_CHECK = float(zlib.crc32(repr(COMPARISONS).encode()))
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


def _sample_every(customers: int, sample: int) -> int:
    """One pair in how many the fit reads: every pair up to ``sample`` customers."""
    return max(1, math.ceil(customers / sample))


async def _audit_events(uow: UnitOfWork) -> int:
    """How many audit events the tenant has: every change adds some, none is removed."""
    return (await uow.audit.list(page=1, page_size=1)).total


def _parameters(model: MatchModel, customers: int, events: int) -> dict[str, float]:
    """A fitted model as a ``ModelFit``'s parameters, with what ``_reusable`` checks."""
    parameters = {
        "prior": model.prior,
        "iterations": float(model.iterations),
        "customers": float(customers),
        "audit_events": float(events),
        "comparisons": _COMPARISONS_CHECK,
    }
    for comparison, m, u in zip(COMPARISONS, model.m, model.u, strict=True):
        for level, (m_level, u_level) in enumerate(zip(m, u, strict=True)):
            parameters[f"m.{comparison.name}.{level}"] = m_level
            parameters[f"u.{comparison.name}.{level}"] = u_level
    return parameters


def _model(parameters: Mapping[str, float]) -> MatchModel | None:
    """The model of stored parameters, or None if they are of other comparisons."""
    if parameters.get("comparisons") != _COMPARISONS_CHECK or not (
        {"customers", "audit_events"} <= parameters.keys()
    ):
        return None
    try:
        m, u = (
            tuple(
                tuple(
                    parameters[f"{kind}.{comparison.name}.{level}"]
                    for level in range(len(comparison.levels))
                )
                for comparison in COMPARISONS
            )
            for kind in ("m", "u")
        )
        return MatchModel(
            m=m, u=u, prior=parameters["prior"], iterations=int(parameters["iterations"])
        )
    except KeyError:
        return None


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
_Stamp = tuple[int, int]  # the tenant's customers and audit events


class _Listings:
    """The scored pairs of the tenants paged through last, each kept while its tenant
    has not changed: the next page of an unchanged tenant is cut from the same list,
    where it would otherwise take another pass over every candidate pair.

    A tenant's stamp is its number of live customers and of audit events: every change
    through the services appends events and none is ever removed, so an unchanged
    stamp means the same customers, addresses and decisions. An entry also ends when
    a stored fit would (``_STALE_AGE``).
    """

    KEPT = 4  # tenants (and thresholds) at a time
    MOST_PAIRS = 200_000  # a longer list is not kept

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[str, float], tuple[_Stamp, datetime, list[_Scored]]] = (
            OrderedDict()
        )

    def get(
        self, tenant_id: str, threshold: float, stamp: _Stamp, now: datetime
    ) -> list[_Scored] | None:
        key = (tenant_id, threshold)
        found = self._kept.get(key)
        if found is None or found[0] != stamp or now - found[1] > _STALE_AGE:
            self._kept.pop(key, None)
            return None
        self._kept.move_to_end(key)
        return found[2]

    def put(
        self, tenant_id: str, threshold: float, stamp: _Stamp, now: datetime, scored: list[_Scored]
    ) -> None:
        if len(scored) > self.MOST_PAIRS:
            return
        self._kept[tenant_id, threshold] = (stamp, now, scored)
        self._kept.move_to_end((tenant_id, threshold))
        while len(self._kept) > self.KEPT:
            self._kept.popitem(last=False)


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
) -> tuple[MatchModel, list[tuple[int, int, _Vector]]]:
    """The tenant's model, fitted once on the pairs whose lower id is a multiple of
    ``every``, and those pairs' comparison vectors."""
    sample = [
        (a.customer_id, b.customer_id, compare_records(a, b))
        async for batch in candidates.candidate_records(every=every, batch_size=_CHUNK)
        for a, b in await _undecided(uow, batch)
    ]
    return fit_match_model(Counter(vector for *_, vector in sample)), sample


@dataclass(slots=True)
class _Fit:
    """The model a call scores with; ``store`` is a new fit to keep for later calls."""

    score: _Scorer
    sample: list[tuple[int, int, _Vector]] | None = None
    store: ModelFit | None = None


class CustomerDuplicates:
    """Duplicate detection (part of ``CustomerService``)."""

    _tx: Transactions

    duplicate_sample_customers: int = 10_000
    """Up to this many customers, a tenant's duplicate model is fitted on all its
    candidate pairs at each call. Beyond, on the pairs whose lower id is one of about
    this many customers (every n-th id), and the fit is stored and reused while the
    tenant changes by at most 1% of its customers (audited changes, customers come or
    gone) and for at most a day."""

    async def _reusable(
        self, candidates: DuplicateCandidates, customers: int, events: int
    ) -> MatchModel | None:
        """The tenant's stored fit, unless the tenant changed since (or it is stale)."""
        stored = await candidates.load_match_fit()
        if stored is None or (model := _model(stored.parameters)) is None:
            return None
        if self._tx.clock.now() - stored.fitted_at > _STALE_AGE:
            return None
        changes = abs(customers - stored.parameters["customers"]) + (
            events - stored.parameters["audit_events"]
        )
        return model if changes <= _STALE_SHARE * stored.parameters["customers"] else None

    async def _fit(self, uow: UnitOfWork, customers: int, events: int | None = None) -> _Fit:
        """The model to score the tenant's pairs with: fitted on every pair of a tenant
        up to ``duplicate_sample_customers`` (``sample`` holds them, compared), else
        the stored fit while it holds, else one fitted on a sample (to be stored).
        ``events`` is the tenant's count of audit events, when the caller has it."""
        candidates = duplicate_candidates(uow)
        every = _sample_every(customers, self.duplicate_sample_customers)
        if every == 1:
            model, sample = await _fitted(uow, candidates, every)
            return _Fit(_Scorer(model), sample=sample)
        if events is None:
            events = await _audit_events(uow)
        if stored := await self._reusable(candidates, customers, events):
            return _Fit(_Scorer(stored))
        model, sample = await _fitted(uow, candidates, every)
        fit = ModelFit(
            tenant_id=uow.tenant_id,
            model="duplicates",
            parameters=_parameters(model, customers, events),
            fitted_at=self._tx.clock.now(),
            sample_size=len(sample),
        )
        return _Fit(_Scorer(model), store=fit)

    async def _keep_fit(self, tenant_id: str, fit: _Fit) -> None:
        """Store a new sample fit for the calls to come (its own transaction, after the
        reading one: on SQLite a write waits for no reader of the same task); a storage
        error is logged, not raised."""
        if fit.store is None:
            return
        try:
            async with self._tx.uow_factory(tenant_id) as uow:
                await duplicate_candidates(uow).save_match_fit(fit.store)
                await uow.commit()
        except StorageError as error:
            # The pairs are found already: a storage that cannot keep the fit now (a
            # role that may only read, a busy database) costs the next call a refit,
            # not this call its answer.
            _logger.warning("the duplicate model of tenant %r was not stored: %s", tenant_id, error)

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

    @functools.cached_property
    def _listings(self) -> _Listings:
        return _Listings()

    async def _scored(
        self,
        uow: UnitOfWork,
        threshold: float,
        on_progress: ProgressCallback[int] | None,
        stamp: _Stamp | None = None,
    ) -> tuple[list[_Scored], _Fit]:
        """The tenant's candidate pairs at ``threshold`` or above, most probable first,
        and the fit that scored them.

        One fit on a sample whose size does not grow with the tenant (every pair of a
        tenant of up to ``duplicate_sample_customers`` customers, then compared only
        once), or the stored one; then every pair streamed, compared and scored, and
        those at the threshold kept. ``stamp``: the tenant's counts, when the caller
        has read them.
        """
        customers, events = stamp if stamp is not None else (await _tenant_size(uow), None)
        fit = await self._fit(uow, customers, events)
        score = fit.score
        if fit.sample is not None:
            await report_progress(on_progress, customers)
            return _most_probable(
                (a, b, p, vector)
                for a, b, vector in fit.sample
                if (p := score(vector)) >= threshold
            ), fit
        kept: list[_Scored] = []
        compared: set[int] = set()
        async for batch in duplicate_candidates(uow).candidate_records(batch_size=_CHUNK):
            for a, b in await _undecided(uow, batch):
                vector = compare_records(a, b)
                if (p := score(vector)) >= threshold:
                    kept.append((a.customer_id, b.customer_id, p, vector))
                compared.add(a.customer_id)
            await report_progress(on_progress, min(len(compared), customers))
        await report_progress(on_progress, customers)
        return _most_probable(kept), fit

    async def list_duplicates(
        self,
        tenant_id: str,
        *,
        min_probability: float = 0.8,
        on_progress: ProgressCallback[int] | None = None,
    ) -> list[DuplicateSuggestion]:
        """Every likely duplicate pair of the tenant, as ``find_duplicates`` orders them
        (one fit and one pass for all of them, kept by no cache).

        Raises:
            InvalidInput: ``min_probability`` out of 0..1.
            StorageRoleMissing: as for ``find_duplicates``.
        """
        threshold = _check_probability(min_probability)
        async with self._tx.read(tenant_id) as uow:
            scored, fit = await self._scored(uow, threshold, on_progress)
            suggestions: list[DuplicateSuggestion] = []
            for start in range(0, len(scored), _CHUNK):
                suggestions += await self._suggestions(uow, scored[start : start + _CHUNK])
        await self._keep_fit(tenant_id, fit)
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
        all pairs; the model is fitted without labels on the tenant's candidate pairs:
        all of them at each call, or, once the tenant has more than
        ``duplicate_sample_customers`` (10,000), a sample of them, whose fit is stored
        and reused by the calls to come until the tenant changes. Deleted (merged
        included) and erased customers never appear. The profiling policy does not
        apply: matching keeps records accurate (GDPR art. 5(1)(d)) and derives nothing
        about the person (see docs/gdpr.md).

        A pass over the candidate pairs ranks them all; the service keeps the ranking
        of the last few tenants (and thresholds) it listed, so the next page of a
        tenant with the same customers and audit events since (any change through the
        services adds some) is cut from it without another pass.

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
        fit: _Fit | None = None
        async with self._tx.read(tenant_id) as uow:
            customers = await _tenant_size(uow)
            stamp = (customers, await _audit_events(uow))
            now = self._tx.clock.now()
            scored = self._listings.get(tenant_id, threshold, stamp, now)
            if scored is None:
                scored, fit = await self._scored(uow, threshold, on_progress, stamp)
                self._listings.put(tenant_id, threshold, stamp, now, scored)
            else:
                await report_progress(on_progress, customers)
            start = (page - 1) * page_size
            items = await self._suggestions(uow, scored[start : start + page_size])
        if fit is not None:
            await self._keep_fit(tenant_id, fit)
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

        The model is the tenant's, fitted as ``find_duplicates`` fits it (the stored
        fit of a large tenant, when it holds, with no pairs read to fit); only this
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
            fit = await self._fit(uow, await _tenant_size(uow))
            own = [
                (a.customer_id, b.customer_id, p, vector)
                async for batch in duplicate_candidates(uow).candidate_records(
                    customer_ids=[customer.id]
                )
                for a, b in await _undecided(uow, batch)
                if (p := fit.score(vector := compare_records(a, b))) >= threshold
            ]
            scored = sorted(own, key=lambda row: (-row[2], row[1]))
            suggestions = await self._suggestions(uow, scored[:limit])
        await self._keep_fit(tenant_id, fit)
        return suggestions
