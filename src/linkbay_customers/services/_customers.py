"""CustomerService: customers, addresses, notes, orders and merges of one tenant at a time."""

from __future__ import annotations

from linkbay_customers.domain import (
    CURRENCY_CODES,
    DEFAULT_MAX_ADDRESSES,
    DEFAULT_PROFILING_POLICY,
    ProfilingPolicies,
    ProfilingPolicy,
    check_phone_region,
)
from linkbay_customers.heuristics import EMBEDDING_VERSION
from linkbay_customers.ports import Clock, CustomerIntelligence
from linkbay_customers.services._addresses_notes import AddressesAndNotes
from linkbay_customers.services._change import Transactions, UnitOfWorkFactory
from linkbay_customers.services._customer_records import CustomerRecords
from linkbay_customers.services._derived import Embedder, ProfilingGate
from linkbay_customers.services._duplicate_decisions import CustomerDuplicateDecisions
from linkbay_customers.services._duplicates import CustomerDuplicates
from linkbay_customers.services._merge import CustomerMerges
from linkbay_customers.services._orders import CustomerOrders, RecordedOrder

__all__ = ("CustomerService", "RecordedOrder", "UnitOfWorkFactory")


class CustomerService(
    CustomerRecords,
    AddressesAndNotes,
    CustomerOrders,
    CustomerMerges,
    CustomerDuplicates,
    CustomerDuplicateDecisions,
):
    """Customer management for every tenant of a storage.

    Every method takes the tenant first and works inside one unit of work of that
    tenant: another tenant's ids behave exactly like unknown ones. Every change is
    audited in the same transaction. An id that was merged away resolves to the
    customer it was merged into, for reads and changes alike.

    Args:
        uow_factory: Opens a unit of work for a tenant (``storage.unit_of_work``).
        clock: Source of the current time.
        intelligence: Keeps the segment and the embedding current as customers arrive,
            order and merge.
        default_currency: Currency of a customer's first order when it names none.
        profiling_policy: Whose segment and embedding the intelligence may compute: one
            policy for every tenant or a function giving each tenant's. A customer it
            excludes (who withdrew ``analytics`` consent, by default; who never gave it,
            with ``require_opt_in``) gets neither, and every write of them (create,
            import, update, order, merge, delete, restore) clears their derived data.
        default_phone_region: ISO 3166-1 alpha-2 code of the country whose numbering
            plan reads a phone number written without its country code
            (``"333 123 4567"`` with ``"IT"`` is stored as ``"+393331234567"``).
            None, the default, accepts only numbers that start with ``+``.
        max_addresses_per_customer: The most addresses a customer may have (50 by
            default); adding one more, or a merge that would move the target past
            it, raises ``TooManyAddresses``.
        embedding_version: Stored beside every embedding a change computes; the same
            as ``AIService``'s, which batch scoring stores.

    Raises:
        ValueError: ``default_phone_region`` names no region with a numbering plan,
            ``default_currency`` is not an ISO 4217 code, or
            ``max_addresses_per_customer`` is not a positive integer.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        intelligence: CustomerIntelligence,
        *,
        default_currency: str = "EUR",
        profiling_policy: ProfilingPolicy | ProfilingPolicies = DEFAULT_PROFILING_POLICY,
        default_phone_region: str | None = None,
        max_addresses_per_customer: int = DEFAULT_MAX_ADDRESSES,
        embedding_version: str = EMBEDDING_VERSION,
    ) -> None:
        self._phone_region = check_phone_region(default_phone_region)
        if (
            isinstance(max_addresses_per_customer, bool)
            or not isinstance(max_addresses_per_customer, int)
            or max_addresses_per_customer < 1
        ):
            raise ValueError("max_addresses_per_customer must be a positive integer")
        self._max_addresses = max_addresses_per_customer
        if default_currency not in CURRENCY_CODES:
            raise ValueError(
                f"default_currency must be an ISO 4217 currency code such as 'EUR',"
                f" not {default_currency!r}"
            )
        self._default_currency = default_currency
        self._tx = Transactions(
            uow_factory,
            clock,
            ProfilingGate(profiling_policy),
            intelligence,
            Embedder(intelligence, embedding_version),
        )
