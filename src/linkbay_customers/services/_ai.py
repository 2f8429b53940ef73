"""AIService: segments, churn risk, lifetime value, similar customers, recommendations
and batch scoring, over the ``CustomerIntelligence`` port and the storage ports."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from linkbay_customers.domain import (
    DEFAULT_PROFILING_POLICY,
    MAX_SEARCH_LIMIT,
    AuditAction,
    Customer,
    DerivedData,
    InvalidInput,
    ProductPurchases,
    ProfilingPolicies,
    ProfilingPolicy,
    check_actor,
    check_tenant,
    cosine_similarity,
    embedding_values,
    is_audit_label,
    quantize_money,
)
from linkbay_customers.heuristics import EMBEDDING_VERSION
from linkbay_customers.ports import (
    Clock,
    CustomerIntelligence,
    CustomerProfile,
    CustomerScores,
    EmbeddingBulkLoad,
    NeighboursOfCustomer,
    UnitOfWork,
    derived_data,
    nearest_neighbours,
    purchase_history,
)
from linkbay_customers.services._boundary import check_id
from linkbay_customers.services._change import Transactions, UnitOfWorkFactory, load_customer
from linkbay_customers.services._derived import Embedder, ProfilingGate, products_by_customer
from linkbay_customers.services._progress import ProgressCallback, report_progress

__all__ = (
    "MAX_PREDICTION_MONTHS",
    "AIService",
    "ChurnPrediction",
    "ClvPrediction",
    "ProductRecommendation",
    "RiskLevel",
    "ScoringSummary",
    "SimilarCustomer",
)

RiskLevel = Literal["low", "medium", "high"]
MAX_PREDICTION_MONTHS = 120
CHURN_BUCKETS = ("0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")
_NEIGHBOURS_FOR_RECOMMENDATIONS = 20
DEFAULT_EMBEDDING_TOLERANCE = 1e-6
"""Cosine distance a stored embedding may lie from the one its history gives before
``score_tenant`` rewrites it (see ``AIService``)."""


def risk_level(score: float) -> RiskLevel:
    """The seed's reading of a churn risk: low below 0.3, high from 0.6."""
    return "low" if score < 0.3 else "medium" if score < 0.6 else "high"


@dataclass(frozen=True, slots=True)
class ChurnPrediction:
    """A customer's churn risk, how to read it, and what computed it."""

    customer_id: int
    churn_risk_score: float
    risk_level: RiskLevel
    source: str


@dataclass(frozen=True, slots=True)
class ClvPrediction:
    """Expected revenue from a customer over the next ``prediction_months``."""

    customer_id: int
    predicted_clv: Decimal
    prediction_months: int
    source: str


@dataclass(frozen=True, slots=True)
class SimilarCustomer:
    """A customer and its cosine similarity to the reference customer."""

    customer: Customer
    similarity_score: float


@dataclass(frozen=True, slots=True)
class ProductRecommendation:
    """A product to suggest (the seed's shape), with why."""

    product_id: str
    product_name: str
    score: float
    reason: str


@dataclass(slots=True)
class ScoringSummary:
    """What ``score_tenant`` did."""

    customers: int = 0
    skipped_without_consent: int = 0
    per_segment: dict[str, int] = field(default_factory=dict)
    churn_risk_distribution: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(CHURN_BUCKETS, 0)
    )
    total_predicted_clv: Decimal = Decimal(0)
    sources: dict[str, int] = field(default_factory=dict)
    embeddings_written: int = 0
    """Embeddings stored anew or removed; those found current are left as they are."""


def _bucket(score: float) -> str:
    return CHURN_BUCKETS[min(int(score * len(CHURN_BUCKETS)), len(CHURN_BUCKETS) - 1)]


def _check_limit(limit: object, name: str = "limit") -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise InvalidInput.single(name, f"must be an integer from 1 to {MAX_SEARCH_LIMIT}")
    return limit


def _check_months(months: object) -> int:
    if (
        not isinstance(months, int)
        or isinstance(months, bool)
        or not 1 <= months <= MAX_PREDICTION_MONTHS
    ):
        raise InvalidInput.single("months", f"must be an integer from 1 to {MAX_PREDICTION_MONTHS}")
    return months


class AIService:
    """Customer intelligence for every tenant of a storage.

    The numbers come from the injected ``CustomerIntelligence`` (the seed's
    heuristics by default, or a statistical model); this service gathers what it
    needs, applies the tenant's profiling policy, and stores the results. A
    customer the policy excludes is never scored, is not offered as similar to
    anyone, and gets non-personalized recommendations (the best sellers).

    Args:
        uow_factory: Opens a unit of work for a tenant (``storage.unit_of_work``).
        clock: Source of the current time.
        intelligence: Computes segments, churn risk, lifetime value and embeddings.
        profiling_policy: Whom profiling may touch (see ``ProfilingPolicy``).
        embedding_version: Stored beside every embedding this service writes (the
            same as ``CustomerService``'s, which stores them as customers change).
        embedding_tolerance: How far (cosine distance) a stored embedding may lie
            from the one the customer's history gives before ``score_tenant``
            rewrites it. An embedding depends on the history only and every change
            of history stores its own, so a stored one differs only by the
            storage's precision (pgvector keeps 32-bit floats, about 1e-14 away);
            every rewrite costs an entry in the vector index. 0 rewrites any
            difference.
        chunk_size: Customers per transaction in ``score_tenant``.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        intelligence: CustomerIntelligence,
        *,
        profiling_policy: ProfilingPolicy | ProfilingPolicies = DEFAULT_PROFILING_POLICY,
        embedding_version: str = EMBEDDING_VERSION,
        embedding_tolerance: float = DEFAULT_EMBEDDING_TOLERANCE,
        chunk_size: int = 1000,
    ) -> None:
        if not 1 <= chunk_size <= 10_000:
            raise ValueError("chunk_size must be from 1 to 10000")
        if not 0.0 <= embedding_tolerance < 1.0:
            raise ValueError("embedding_tolerance must be at least 0 and below 1")
        if not is_audit_label(intelligence.name):
            # The name goes into the audit trail as the source of the scores.
            raise ValueError(
                f"the intelligence's name {intelligence.name!r} must be 1 to 64 letters,"
                " digits or _ . : / - (it is recorded in the audit trail)"
            )
        self._embedding_tolerance = embedding_tolerance
        self._clock = clock
        self._intelligence = intelligence
        self._profiling = ProfilingGate(profiling_policy)
        self._embedder = Embedder(intelligence, embedding_version)
        self._tx = Transactions(uow_factory, clock, self._profiling, intelligence, self._embedder)
        self._embedding_version = embedding_version
        self._chunk_size = chunk_size

    # ------------------------------------------------------------- one customer

    async def _assess(self, customer: Customer, months: int = 12) -> CustomerScores:
        """Every score of one customer from one call of the intelligence, so the source
        reported is the one that produced them (an adapter may fall back per call)."""
        self._profiling.require(customer)
        (scores,) = await self._intelligence.score_many(
            [CustomerProfile(customer)], now=self._clock.now(), months=months
        )
        return scores

    async def update_customer_segment(
        self, tenant_id: str, customer_id: int, *, actor: str | None = None
    ) -> Customer:
        """Recompute and store a customer's segment.

        The intelligence is asked outside the transaction, so a slow model holds no
        row lock.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            ProfilingNotAllowed: the tenant's policy excludes the customer.
        """
        actor = check_actor(actor)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
        scores = await self._assess(customer)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer.id)
            self._profiling.require(customer)
            if scores.segment != customer.segment:
                customer.segment = scores.segment
                await change.save(customer)
                change.audit(
                    AuditAction.SCORES_UPDATED,
                    customer_id=customer.id,
                    changed_fields=["segment"],
                    details={"source": scores.source},
                )
        return customer

    async def calculate_churn_risk(self, tenant_id: str, customer_id: int) -> ChurnPrediction:
        """A customer's churn risk in [0, 1] and its level (low, medium, high).

        A customer without orders gets an answer too (the intelligence decides what
        no history means).

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            ProfilingNotAllowed: the tenant's policy excludes the customer.
        """
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
        scores = await self._assess(customer)
        return ChurnPrediction(
            customer_id=customer.id,
            churn_risk_score=scores.churn_risk,
            risk_level=risk_level(scores.churn_risk),
            source=scores.source,
        )

    async def predict_clv(
        self, tenant_id: str, customer_id: int, *, prediction_months: int = 12
    ) -> ClvPrediction:
        """Expected revenue from a customer over the next ``prediction_months`` (1-120).

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            ProfilingNotAllowed: the tenant's policy excludes the customer.
            InvalidInput: months out of range.
        """
        months = _check_months(prediction_months)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
        scores = await self._assess(customer, months)
        return ClvPrediction(
            customer_id=customer.id,
            predicted_clv=quantize_money(scores.lifetime_value),
            prediction_months=months,
            source=scores.source,
        )

    async def _embedding(self, uow: UnitOfWork, customer: Customer) -> Sequence[float] | None:
        if customer.embedding is not None and customer.embedding_version == (
            self._embedding_version
        ):
            return customer.embedding
        return await self._embedder.embedding(uow, customer, now=self._clock.now())

    async def find_similar_customers(
        self, tenant_id: str, customer_id: int, *, limit: int = 10
    ) -> list[SimilarCustomer]:
        """The customers behaving most like this one, most similar first.

        Compares the stored embeddings: every change of a customer's history (an
        order, a merge) stores theirs in its own transaction, so no batch run is
        needed first. The reference customer's own is computed on the fly when
        missing or of another version. A customer without orders has no behaviour to
        compare and gets none; customers the policy excludes carry no embedding and
        are never returned. A storage with ``NeighboursOfCustomer`` reads the customer
        and their nearest customers together where it can.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            ProfilingNotAllowed: the tenant's policy excludes the customer.
            InvalidInput: limit out of range.
            StorageRoleMissing: the storage has no ``NearestNeighbours`` (or, for a
                customer without a current embedding, no ``PurchaseHistory``).
        """
        limit = _check_limit(limit)
        async with self._tx.read(tenant_id) as uow:
            customer, found = None, None
            if isinstance(uow.customers, NeighboursOfCustomer) and check_id(customer_id):
                # The customer and their neighbours by the stored embedding, together.
                customer, found = await uow.customers.neighbours_of(
                    customer_id, embedding_version=self._embedding_version, limit=limit
                )
            if customer is None or customer.is_deleted:
                customer, found = await load_customer(uow, customer_id), None
            self._profiling.require(customer)
            if found is None:
                search = nearest_neighbours(uow)
                embedding = await self._embedding(uow, customer)
                if embedding is None:
                    return []
                found = await search.nearest(embedding, limit=limit, exclude=[customer.id])
        # An embedding stored before the policy excluded its customer (an opt-in policy
        # adopted since the last scoring) is never offered.
        return [
            SimilarCustomer(customer=c, similarity_score=round(s, 6))
            for c, s in found
            if self._profiling.allows(c)
        ]

    async def generate_recommendations(
        self, tenant_id: str, customer_id: int, *, limit: int = 5
    ) -> list[ProductRecommendation]:
        """Products the most similar customers bought and this one did not.

        Each product scores the similarity-weighted share of the nearest customers
        who bought it. A customer with no orders, or one the policy excludes from
        profiling, gets the tenant's best sellers instead.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            InvalidInput: limit out of range.
            StorageRoleMissing: the storage has no ``PurchaseHistory``, or no
                ``NearestNeighbours`` for a customer with orders.
        """
        limit = _check_limit(limit)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            own = {p.product_id for p in await purchase_history(uow).purchases([customer.id])}
            embedding = None
            if self._profiling.allows(customer) and customer.total_orders:
                embedding = await self._embedding(uow, customer)
            if embedding is not None:
                found = await nearest_neighbours(uow).nearest(
                    embedding, limit=_NEIGHBOURS_FOR_RECOMMENDATIONS, exclude=[customer.id]
                )
                # As in find_similar_customers: excluded customers are no one's neighbours.
                neighbours = [(c, s) for c, s in found if self._profiling.allows(c)]
                purchases = await purchase_history(uow).purchases([c.id for c, _ in neighbours])
                picks = _similar_picks(neighbours, purchases, own, limit)
                if picks:
                    return picks
            sales = await purchase_history(uow).best_sellers(limit=limit + len(own))
        tenant_buyers = max((s.buyers for s in sales), default=0) or 1
        return [
            ProductRecommendation(
                product_id=s.product_id,
                product_name=s.product_name,
                score=round(s.buyers / tenant_buyers, 6),
                reason=f"a best seller in this shop ({_buyers(s.buyers)})",
            )
            for s in sales
            if s.product_id not in own
        ][:limit]

    # ---------------------------------------------------------------- batch work

    async def score_tenant(
        self,
        tenant_id: str,
        *,
        months: int = 12,
        on_progress: ProgressCallback[int] | None = None,
    ) -> ScoringSummary:
        """Refresh segment, churn risk, lifetime value and embedding of every customer.

        Walks the tenant by id in chunks: each is read (customers, their purchases)
        in one short transaction, scored outside any, and written in another with
        one batched update — a fixed number of statements per chunk. The next
        chunk is read and the previous one written while one is scored.

        Embeddings: every change of a customer's history stores the embedding it
        gives and stamps ``updated_at``, so the embedding of a customer unchanged
        since their last scoring, stored under the current version, is taken as it
        is (neither their purchases read nor the embedding computed). Every other
        customer's is computed and rewritten only when it lies further than the
        tolerance from the stored one: those of another version, of customers never
        scored, and what a path outside the services left behind on a customer it
        changed (``ScoringSummary.embeddings_written`` counts them).
        ``on_progress`` gets the number of customers written so far, after every
        chunk; an async callback is awaited.
        Customers the policy excludes have their derived data cleared instead.

        Raises:
            InvalidInput: months out of range.
            StorageRoleMissing: the storage has no ``DerivedDataStore`` or no
                ``PurchaseHistory``; nothing was written.
        """
        months = _check_months(months)
        check_tenant(tenant_id)  # here, not inside the first read's task
        summary = ScoringSummary()
        since = self._clock.now()
        loading = await self._embedding_load(tenant_id, None)
        complete = False
        # A pipeline: while one chunk is scored here, the database reads the next
        # and writes the previous one.
        reading = asyncio.ensure_future(self._read_chunk(tenant_id, 0))
        writing: asyncio.Future[None] | None = None
        try:
            while True:
                chunk, allowed, settled, purchases = await reading
                if not chunk:
                    break
                reading = asyncio.ensure_future(self._read_chunk(tenant_id, chunk[-1].id))
                rows = await self._score_chunk(chunk, allowed, settled, purchases, months, summary)
                if writing is not None:
                    await writing
                    await report_progress(on_progress, summary.customers - len(chunk))
                writing = asyncio.ensure_future(self._write_chunk(tenant_id, rows))
            if writing is not None:
                await writing
                await report_progress(on_progress, summary.customers)
            complete = True
        finally:
            for pending in (reading, writing):
                if pending is not None and not pending.done():
                    pending.cancel()
            if loading:
                await self._embedding_load(tenant_id, (since, complete))
        return summary

    async def _embedding_load(self, tenant_id: str, end: tuple[datetime, bool] | None) -> bool:
        """Begin (``end`` None) or end a load of the tenant's embeddings, where the
        storage offers one (``EmbeddingBulkLoad``); whether one began."""
        async with self._tx.uow_factory(tenant_id) as uow:
            store = uow.customers
            if not isinstance(store, EmbeddingBulkLoad):
                return False
            if end is None:
                began = await store.begin_embedding_load(version=self._embedding_version)
            else:
                began = False
                await store.end_embedding_load(since=end[0], complete=end[1])
            await uow.commit()
        return began

    async def _read_chunk(
        self, tenant_id: str, after_id: int
    ) -> tuple[Sequence[Customer], list[Customer], set[int], Sequence[ProductPurchases]]:
        """The next customers by id, those profiling may touch, the ids of those whose
        stored embedding is settled (``_embedding_settled``), and the purchases of the
        others with orders: one short transaction (the intelligence, maybe a slow
        model or one that reads the storage itself, runs between transactions)."""
        async with self._tx.read(tenant_id) as uow:
            chunk = await derived_data(uow).list_after(after_id, limit=self._chunk_size)
            history = purchase_history(uow)  # needed even when no customer needs it
            allowed = self._profiling.profiled(chunk)
            settled = {c.id for c in allowed if self._embedding_settled(c)}
            # No orders, nothing bought: no purchases to read (as ``Embedder``).
            wanted = [c.id for c in allowed if c.total_orders and c.id not in settled]
            purchases = await history.purchases(wanted) if wanted else []
        return chunk, allowed, settled, purchases

    def _embedding_settled(self, customer: Customer) -> bool:
        """Whether the customer's stored embedding is theirs without computing it: stored
        under the current version, and the customer unchanged since their last
        scoring (a change of history stores its embedding and stamps ``updated_at``)."""
        return (
            customer.embedding is not None
            and customer.embedding_version == self._embedding_version
            and customer.scored_at is not None
            and customer.updated_at < customer.scored_at
        )

    async def _write_chunk(self, tenant_id: str, rows: Sequence[DerivedData]) -> None:
        async with self._tx.change(tenant_id) as change:
            await change.write_derived(rows)

    def _embedding_current(self, customer: Customer, embedding: Sequence[float] | None) -> bool:
        """Whether the customer's stored embedding is within the tolerance of ``embedding``."""
        stored = customer.embedding
        if stored is None or embedding is None:
            return stored is None and embedding is None
        if customer.embedding_version != self._embedding_version or len(stored) != len(embedding):
            return False
        return list(stored) == list(embedding) or (
            1.0 - cosine_similarity(stored, embedding) <= self._embedding_tolerance
        )

    async def _score_chunk(
        self,
        chunk: Sequence[Customer],
        allowed: Sequence[Customer],
        settled: set[int],
        purchases: Sequence[ProductPurchases],
        months: int,
        summary: ScoringSummary,
    ) -> list[DerivedData]:
        now = self._clock.now()
        quantities = products_by_customer(purchases)
        profiles = [
            CustomerProfile(c, quantities.get(c.id, {}), embed=c.id not in settled) for c in allowed
        ]
        scores: Sequence[CustomerScores] = (
            await self._intelligence.score_many(profiles, now=now, months=months)
            if profiles
            else []
        )
        stored = {c.id: c for c in allowed}
        rows = []
        for s in scores:
            customer = stored[s.customer_id]
            if customer.id in settled:
                embedding, keep = customer.embedding, True
            else:
                embedding = None if s.embedding is None else embedding_values(s.embedding)
                keep = self._embedding_current(customer, embedding)
            rows.append(
                DerivedData(
                    customer_id=s.customer_id,
                    segment=s.segment,
                    churn_risk_score=s.churn_risk,
                    customer_lifetime_value=quantize_money(s.lifetime_value),
                    embedding=embedding,
                    embedding_version=self._embedding_version if embedding else None,
                    scored_at=now,
                    score_source=s.source,
                    keep_embedding=keep,
                )
            )
        summary.embeddings_written += sum(not row.keep_embedding for row in rows)
        scored = {s.customer_id for s in scores}
        cleared = [c for c in chunk if c.id not in scored]
        rows += [self._profiling.cleared(c.id) for c in cleared]
        summary.embeddings_written += sum(c.embedding is not None for c in cleared)
        summary.customers += len(chunk)
        summary.skipped_without_consent += len(chunk) - len(scores)
        segments = Counter(s.segment for s in scores)
        sources = Counter(s.source for s in scores)
        for name, count in segments.items():
            summary.per_segment[name] = summary.per_segment.get(name, 0) + count
        for name, count in sources.items():
            summary.sources[name] = summary.sources.get(name, 0) + count
        for s in scores:
            summary.churn_risk_distribution[_bucket(s.churn_risk)] += 1
        summary.total_predicted_clv += sum(
            (quantize_money(s.lifetime_value) for s in scores), Decimal(0)
        )
        return rows


def _buyers(count: int) -> str:
    return "1 buyer" if count == 1 else f"{count} buyers"


def _similar_picks(
    neighbours: Sequence[tuple[Customer, float]],
    purchases: Sequence[ProductPurchases],
    own: set[str],
    limit: int,
) -> list[ProductRecommendation]:
    similarity = {c.id: max(s, 0.0) for c, s in neighbours}
    total = sum(similarity.values())
    if not total:
        return []
    weight: dict[str, float] = defaultdict(float)
    buyers: Counter[str] = Counter()
    names: dict[str, str] = {}
    for p in purchases:
        if p.product_id in own:
            continue
        weight[p.product_id] += similarity.get(p.customer_id, 0.0)
        buyers[p.product_id] += 1
        names[p.product_id] = p.product_name
    ranked = sorted(weight, key=lambda pid: (-weight[pid], -buyers[pid], pid))[:limit]
    return [
        ProductRecommendation(
            product_id=pid,
            product_name=names[pid],
            score=round(weight[pid] / total, 6),
            reason=(
                f"bought by {buyers[pid]} of the {len(neighbours)} customers most similar"
                " to this one"
                if len(neighbours) > 1
                else "bought by the customer most similar to this one"
            ),
        )
        for pid in ranked
    ]
