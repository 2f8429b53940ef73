"""Derived data under the profiling policy: the one place that decides whether a
customer's segment, scores and embedding may be computed, and clears them when not.

Every path that writes a customer (create, import, update, order, merge, restore,
consent, scoring) and every intelligence call goes through ``ProfilingGate``, so a
customer the tenant's policy excludes never has derived data computed or kept,
whichever way it was reached. ``Embedder`` is how a customer's embedding is computed
from their history, by a change that moves it and for a similarity search alike.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from linkbay_customers.domain import (
    Customer,
    DerivedData,
    ProductPurchases,
    ProfilingNotAllowed,
    ProfilingPolicies,
    ProfilingPolicy,
    embedding_values,
    policies_from,
    profiling_allowed,
)
from linkbay_customers.ports import (
    CustomerIntelligence,
    CustomerProfile,
    NearestNeighbours,
    PurchaseHistory,
    UnitOfWork,
    purchase_history,
)

__all__ = (
    "DERIVED_FIELDS",
    "Embedder",
    "EmbeddingRefresh",
    "ProfilingGate",
    "clear_derived",
    "products_by_customer",
)

DERIVED_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(DerivedData)
    if f.name not in ("customer_id", "keep_embedding")
)
"""The customer fields computed by profiling, provenance included (``DerivedData``'s)."""


def clear_derived(customer: Customer) -> list[str]:
    """Clear every derived field of a customer (``DERIVED_FIELDS``); return those that
    held a value."""
    changed = [name for name in DERIVED_FIELDS if getattr(customer, name) is not None]
    for name in changed:
        setattr(customer, name, None)
    return changed


def products_by_customer(purchases: Sequence[ProductPurchases]) -> dict[int, dict[str, int]]:
    """Units bought per product, by customer: the ``products`` of their profiles."""
    by_customer: dict[int, dict[str, int]] = defaultdict(dict)
    for p in purchases:
        by_customer[p.customer_id][p.product_id] = p.quantity
    return by_customer


EmbeddingRefresh = Callable[[Customer], Awaitable[list[str]]]
"""Stores in a customer the embedding their history gives; returns the fields changed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Embedder:
    """How a customer's embedding is computed: the intelligence's ``embed`` over the
    customer and what they bought, stored under ``version``.

    The embedding depends on the customer's history only, so a change that moves the
    history (an order, a merge) stores it in its own transaction, and batch scoring
    (``score_many`` gives the same vector) finds it current and leaves it alone.
    """

    intelligence: CustomerIntelligence
    version: str

    @staticmethod
    def can_embed(uow: UnitOfWork) -> bool:
        """Whether the storage reads purchases and searches embeddings (without either,
        an embedding could be neither computed nor used)."""
        return isinstance(uow.orders, PurchaseHistory) and isinstance(
            uow.customers, NearestNeighbours
        )

    async def embedding(
        self, uow: UnitOfWork, customer: Customer, *, now: datetime
    ) -> list[float] | None:
        """The embedding the customer's history gives, read in ``uow``; None when the
        intelligence has nothing to embed (the heuristics: no orders).

        Raises:
            StorageRoleMissing: the storage has no ``PurchaseHistory``.
        """
        products: Mapping[str, int] = {}
        if customer.total_orders:  # no orders, nothing bought: no query
            purchases = await purchase_history(uow).purchases([customer.id])
            products = products_by_customer(purchases).get(customer.id, {})
        vector = await self.intelligence.embed(CustomerProfile(customer, products), now=now)
        return None if vector is None else embedding_values(vector)

    async def refresh(self, uow: UnitOfWork, customer: Customer, *, now: datetime) -> list[str]:
        """Store in the customer the embedding their history gives (``embedding``), with
        its version; return the names of the fields that changed."""
        embedding = await self.embedding(uow, customer, now=now)
        version = None if embedding is None else self.version
        changed = [
            name
            for name, before, after in (
                ("embedding", customer.embedding, embedding),
                ("embedding_version", customer.embedding_version, version),
            )
            if before != after
        ]
        customer.embedding, customer.embedding_version = embedding, version
        return changed


class ProfilingGate:
    """The tenant's profiling policy, applied to derived data.

    Args:
        profiling_policy: One policy for every tenant, or a function giving each
            tenant's (see ``ProfilingPolicy``).
    """

    def __init__(self, profiling_policy: ProfilingPolicy | ProfilingPolicies) -> None:
        self._policies = policies_from(profiling_policy)

    def policy(self, tenant_id: str) -> ProfilingPolicy:
        """The profiling policy of a tenant."""
        return self._policies(tenant_id)

    def allows(self, customer: Customer) -> bool:
        """Whether the customer's tenant policy lets them be profiled."""
        return profiling_allowed(customer, self._policies(customer.tenant_id))

    def require(self, customer: Customer) -> None:
        """Refuse to profile a customer the policy excludes.

        Raises:
            ProfilingNotAllowed: the tenant's policy excludes the customer.
        """
        policy = self._policies(customer.tenant_id)
        if not profiling_allowed(customer, policy):
            raise ProfilingNotAllowed(customer.id, policy.consent_type)

    def profiled(self, customers: Sequence[Customer]) -> list[Customer]:
        """The customers the policy lets be profiled, in the order given."""
        # One policy lookup per tenant, not per customer: a chunk is one tenant's.
        policies = {tenant: self._policies(tenant) for tenant in {c.tenant_id for c in customers}}
        return [c for c in customers if profiling_allowed(c, policies[c.tenant_id])]

    async def settle(
        self,
        customer: Customer,
        *,
        now: datetime,
        segment_by: CustomerIntelligence | None = None,
        embed: EmbeddingRefresh | None = None,
    ) -> list[str]:
        """Bring a customer's derived data in line with the policy, before it is written.

        A customer the policy excludes loses every derived field (``DERIVED_FIELDS``)
        and the intelligence is not asked anything. A customer it allows gets the
        segment ``segment_by`` computes now and the embedding ``embed`` stores;
        without them (a change that moves neither) their derived data stays as it is.

        Args:
            customer: The customer about to be written; changed in place.
            now: The time the segment is computed at.
            segment_by: The intelligence that recomputes the segment, if the change
                calls for it.
            embed: Recomputes the embedding, if the change moves the customer's history.

        Returns:
            The names of the fields that changed.
        """
        if not self.allows(customer):
            return clear_derived(customer)
        changed = []
        if segment_by is not None:
            segment = await segment_by.segment(customer, now=now)
            if segment != customer.segment:
                customer.segment = segment
                changed.append("segment")
        if embed is not None:
            changed += await embed(customer)
        return changed

    def cleared(self, customer_id: int) -> DerivedData:
        """The batch write that clears a customer's derived data (``update_derived``)."""
        return DerivedData(customer_id, None, None, None, None, None, None, None)
