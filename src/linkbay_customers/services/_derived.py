"""Derived data under the profiling policy: the one place that decides whether a
customer's segment, scores and embedding may be computed, and clears them when not.

Every path that writes a customer (create, import, update, order, merge, restore,
consent, scoring) and every intelligence call goes through ``ProfilingGate``, so a
customer the tenant's policy excludes never has derived data computed or kept,
whichever way it was reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from linkbay_customers.domain import (
    Customer,
    DerivedData,
    ProfilingNotAllowed,
    ProfilingPolicies,
    ProfilingPolicy,
    policies_from,
    profiling_allowed,
)
from linkbay_customers.ports import CustomerIntelligence

__all__ = ("DERIVED_FIELDS", "ProfilingGate", "clear_derived")

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
    ) -> list[str]:
        """Bring a customer's derived data in line with the policy, before it is written.

        A customer the policy excludes loses every derived field (``DERIVED_FIELDS``)
        and the intelligence is not asked anything. A customer it allows gets the
        segment ``segment_by`` computes now; without ``segment_by`` (a change that
        does not move the segment) their derived data stays as it is.

        Args:
            customer: The customer about to be written; changed in place.
            now: The time the segment is computed at.
            segment_by: The intelligence that recomputes the segment, if the change
                calls for it.

        Returns:
            The names of the fields that changed.
        """
        if not self.allows(customer):
            return clear_derived(customer)
        if segment_by is None:
            return []
        segment = await segment_by.segment(customer, now=now)
        if segment == customer.segment:
            return []
        customer.segment = segment
        return ["segment"]

    def cleared(self, customer_id: int) -> DerivedData:
        """The batch write that clears a customer's derived data (``update_derived``)."""
        return DerivedData(customer_id, None, None, None, None, None, None, None)
