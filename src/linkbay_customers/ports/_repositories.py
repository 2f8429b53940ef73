"""Repository ports. Every repository is bound to one tenant by its unit of work.

Ids (``next_id``, ``next_ids``) are counted per tenant: each tenant's ids of a kind
are consecutive, whatever other tenants create, so no id tells a tenant anything
about another's activity. An id once committed is never handed out again in its
tenant; ``next_ids`` reserves a consecutive range at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from linkbay_customers.domain import (
    Address,
    AuditEvent,
    ChainLock,
    ChainTip,
    ConsentEvent,
    Customer,
    CustomerFilters,
    CustomerNote,
    DerivedData,
    DuplicateDecision,
    ExtraErasure,
    MatchRecord,
    MergeAlias,
    ModelFit,
    Order,
    Page,
    ProductPurchases,
    ProductSales,
)

__all__ = (
    "AddressRepository",
    "AuditRepository",
    "ConsentRepository",
    "CustomerBulkImport",
    "CustomerRepository",
    "DerivedDataStore",
    "EmbeddingBulkLoad",
    "NeighboursOfCustomer",
    "DuplicateCandidates",
    "DuplicateDecisions",
    "MergeAliasRepository",
    "NearestNeighbours",
    "NoteRepository",
    "OrderRepository",
    "PurchaseHistory",
)


@runtime_checkable
class CustomerRepository(Protocol):
    """Customers of the unit of work's tenant: what every storage must implement.

    The optional roles of the same object (``uow.customers``) are
    ``CustomerBulkImport``, ``DerivedDataStore`` and ``NearestNeighbours``.
    Every method may also raise ``StorageError`` when the storage fails, and
    ``StorageRejected`` when it would fail again (a constraint, a missing table).
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next customer id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def add(self, customer: Customer) -> None:
        """Insert a customer.

        Raises:
            DuplicateEmail: the email is taken in the tenant, with ``existing_is_deleted``
                telling whether its holder is soft-deleted; nothing was written.
            StorageRejected: the customer belongs to another tenant.
        """
        ...

    async def get(
        self, customer_id: int, *, include_deleted: bool = False, for_update: bool = False
    ) -> Customer | None:
        """Fetch a customer (None if there is none); ``for_update`` locks it until the
        transaction ends.

        Raises:
            StorageError: the storage failed (or the lock was not granted in time).
        """
        ...

    async def get_many(self, customer_ids: Sequence[int]) -> Sequence[Customer]:
        """The customers with any of ``customer_ids``, deleted ones included, by id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> Customer | None:
        """Fetch a customer by normalized (lower-case) email; None if there is none.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def update(self, customer: Customer) -> None:
        """Write every field of an existing customer.

        Raises:
            DuplicateEmail: the new email is taken in the tenant.
            CustomerNotFound: no such customer in the tenant.
            StorageRejected: the customer belongs to another tenant.
        """
        ...

    async def update_many(self, customers: Sequence[Customer]) -> None:
        """Write every field of many existing customers at once.

        Raises:
            StorageRejected: a customer belongs to another tenant.
        """
        ...

    def extra_erasure(self) -> ExtraErasure:
        """What anonymization writes to the extra fields; by default every one is personal.

        Raises:
            ValueError: the storage's schema declares an extra field that cannot be erased.
        """
        # A body, not ``...``: an adapter without a schema of extra fields inherits it.
        return ExtraErasure()

    async def delete(self, customer_id: int) -> None:
        """Remove a customer row for good (its dependants must be gone first).

        Raises:
            StorageRejected: addresses, notes, orders or other rows still point at it.
        """
        ...

    async def delete_many(self, customer_ids: Sequence[int]) -> None:
        """Remove many customer rows for good at once (their dependants must be gone first).

        Raises:
            StorageRejected: rows still point at one of them.
        """
        ...

    async def list(self, filters: CustomerFilters, *, page: int, page_size: int) -> Page[Customer]:
        """One page of the customers passing ``filters``, in ``filters.sort`` order.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def search(self, query: str, *, limit: int) -> Sequence[Customer]:
        """Non-deleted customers matching ``query``, best first (see ``search_rank``).

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_inactive(
        self, cutoff: datetime, *, after_id: int, limit: int
    ) -> Sequence[Customer]:
        """Customers not yet anonymized, deleted ones included, unchanged since before
        ``cutoff`` and with no order since then: up to ``limit`` with ids above
        ``after_id``, by id.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class CustomerBulkImport(Protocol):
    """The ``bulk_import`` role of ``uow.customers``: many customers per statement.

    ``CustomerService.import_customers`` needs it.
    """

    async def next_ids(self, count: int) -> Sequence[int]:
        """Reserve the tenant's next ``count`` customer ids at once, consecutive.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def add_many(self, customers: Sequence[Customer]) -> Sequence[str]:
        """Insert many customers at once; return the emails refused as already taken
        (those customers were not written, the others were).

        Raises:
            StorageRejected: a customer belongs to another tenant.
        """
        ...

    async def get_many_by_email(self, emails: Sequence[str]) -> Mapping[str, Customer]:
        """The customers (deleted ones included) holding any of ``emails``, by email.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class DerivedDataStore(Protocol):
    """The ``derived_data`` role of ``uow.customers``: the tenant walked in chunks, and the
    fields the intelligence derives written in batches.

    ``AIService.score_tenant`` and ``BetaGeoIntelligence.fit`` need it.
    """

    async def list_after(self, after_id: int, *, limit: int) -> Sequence[Customer]:
        """Up to ``limit`` non-deleted customers with ids above ``after_id``, by id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def update_derived(self, rows: Sequence[DerivedData]) -> None:
        """Write the derived fields of many customers at once (nothing else changes);
        a row with ``keep_embedding`` leaves the stored embedding as it is.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class EmbeddingBulkLoad(Protocol):
    """What a ``DerivedDataStore`` may add: most of a tenant's embeddings loaded at once.

    ``AIService.score_tenant`` begins a load before its first chunk and ends it after
    its last, when the repository has these methods; a storage whose vector index
    is cheaper built at once than grown row by row indexes what ``update_derived``
    wrote in between at the end.
    """

    async def begin_embedding_load(self, *, version: str) -> bool:
        """Start taking the embeddings ``update_derived`` writes aside, where the tenant
        has no embedding of ``version`` yet (a first scoring, or the first after the
        embeddings' layout changed); False when the storage does not (they are
        written as usual).

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def end_embedding_load(self, *, since: datetime, complete: bool) -> None:
        """Index and publish the embeddings taken aside (``complete``), or drop them;
        a customer changed after ``since`` keeps none of them.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class NearestNeighbours(Protocol):
    """The ``similarity`` role of ``uow.customers``: customers by embedding.

    ``AIService.find_similar_customers`` and ``generate_recommendations`` need it.
    """

    async def nearest(
        self, embedding: Sequence[float], *, limit: int, exclude: Sequence[int] = ()
    ) -> Sequence[tuple[Customer, float]]:
        """Non-deleted customers with an embedding, most similar first by cosine
        similarity to ``embedding``, with that similarity; ``exclude`` ids left out.
        Returns ``limit`` of them whenever that many exist.

        Raises:
            ValueError: ``embedding`` has another number of dimensions than the stored ones.
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class NeighboursOfCustomer(Protocol):
    """What a ``NearestNeighbours`` may add: a customer and their nearest customers read
    together, by the embedding stored for them.

    ``AIService.find_similar_customers`` asks it first when the repository has this
    method; a storage that reads both in one statement saves a round trip per search.
    """

    async def neighbours_of(
        self, customer_id: int, *, embedding_version: str, limit: int
    ) -> tuple[Customer | None, Sequence[tuple[Customer, float]] | None]:
        """The customer (deleted ones included) and, when they are live with a stored
        embedding of ``embedding_version``, the ``limit`` customers ``nearest`` would
        give for it, the customer left out (None instead when they are not so).
        ``(None, None)`` when the storage cannot read them together, or has no such
        customer: the caller then reads the customer and asks ``nearest``.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class DuplicateCandidates(Protocol):
    """The ``duplicates`` role of ``uow.customers``: candidate pairs by blocking, and the
    tenant's stored fit of the model that scores them.

    ``CustomerService.find_duplicates`` and ``find_duplicates_of`` need it. Two live
    (neither deleted nor erased) customers are a candidate pair when they share a
    blocking key of ``linkbay_customers.domain.blocking_keys`` that at most
    ``MAX_BLOCK_SIZE`` live customers hold: the mailbox of their email (lower case,
    ``+tag`` and, for Gmail, dots dropped) or its local part alone, the last nine
    characters of the phone, the last name and first initial, the first name and
    last initial, swapped first and last names, the birthday and either initial, or
    a postcode and either initial.
    """

    async def candidate_pairs(
        self, customer_ids: Sequence[int], *, later_only: bool = True
    ) -> Sequence[tuple[int, int]]:
        """The candidate pairs ``(a, b)`` with ``a`` one of ``customer_ids`` (live ones
        only), ``b`` a live customer other than ``a`` — with a greater id when
        ``later_only`` — each pair once, ordered by ``a`` then ``b``.

        Raises:
            StorageError: the storage failed.
        """
        ...

    def candidate_records(
        self,
        *,
        every: int = 1,
        customer_ids: Sequence[int] | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[Sequence[tuple[MatchRecord, MatchRecord]]]:
        """The candidate pairs with the match records of both customers, in batches of
        at most ``batch_size``, ordered by the first customer's id then the other's,
        from one pass over the tenant's keys (memory bounded by a batch).

        Without ``customer_ids``: each pair once, the lower id first, only those whose
        lower id is a multiple of ``every`` (a sample of about one pair in ``every``
        that is the same at each call). With ``customer_ids``: the pairs of those
        customers, each of them first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def load_match_fit(self) -> ModelFit | None:
        """The tenant's stored fit of the duplicate model (named ``duplicates``), or None.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def save_match_fit(self, fit: ModelFit) -> None:
        """Store a fit as the tenant's fit of the duplicate model (whatever its
        ``model`` says), replacing the previous one.

        Raises:
            StorageRejected: the fit belongs to another tenant.
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class DuplicateDecisions(Protocol):
    """The ``duplicate_decisions`` role of ``uow.customers``: pairs of customers a user
    judged to be two people, each stored once in canonical order
    (``customer_id < other_id``).

    ``CustomerService.mark_distinct``, ``undo_distinct`` and ``list_duplicate_decisions``
    need it; duplicate detection leaves out the pairs it holds when the storage has it.
    """

    async def add_decision(self, decision: DuplicateDecision) -> bool:
        """Store a decision; False (and nothing written) when the pair has one already.

        Raises:
            StorageRejected: a customer of the pair does not exist in the tenant, or the
                decision belongs to another tenant.
        """
        ...

    async def remove_decision(self, customer_id: int, other_id: int) -> bool:
        """Remove the decision about a pair (given in canonical order); False when there
        is none.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def decisions_for_customers(
        self, customer_ids: Sequence[int]
    ) -> Sequence[DuplicateDecision]:
        """The decisions naming any of the customers (on either side), oldest first
        (ties by the pair's ids).

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def delete_decisions_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the decisions naming any of the customers; return how many.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class AddressRepository(Protocol):
    """Addresses of the unit of work's tenant.

    Every method may also raise ``StorageError`` when the storage fails.
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next address id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def add(self, address: Address) -> None:
        """Insert an address.

        Raises:
            StorageRejected: the customer has a default address of that type already
                (one default per type), the customer does not exist in the tenant, or
                the address belongs to another tenant.
        """
        ...

    async def get(self, address_id: int) -> Address | None:
        """Fetch an address by id; None if there is none.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customer(self, customer_id: int) -> Sequence[Address]:
        """A customer's addresses, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(self, customer_ids: Sequence[int]) -> Sequence[Address]:
        """The addresses of any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Address]:
        """One page of the addresses of any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def update(self, address: Address) -> None:
        """Write every field of an existing address.

        Raises:
            AddressNotFound: no such address in the tenant.
            StorageRejected: a second default address of its type, or the address
                belongs to another tenant.
        """
        ...

    async def delete(self, address_id: int) -> None:
        """Remove an address (nothing happens if there is none).

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every address of one customer to another; return how many moved.

        Raises:
            StorageRejected: the target customer does not exist in the tenant.
        """
        ...

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every address of the customers; return how many were removed.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class NoteRepository(Protocol):
    """Customer notes of the unit of work's tenant.

    Every method may also raise ``StorageError`` when the storage fails.
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next note id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def add(self, note: CustomerNote) -> None:
        """Insert a note.

        Raises:
            StorageRejected: the customer does not exist in the tenant, or the note
                belongs to another tenant.
        """
        ...

    async def list_for_customer(self, customer_id: int) -> Sequence[CustomerNote]:
        """A customer's notes, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(self, customer_ids: Sequence[int]) -> Sequence[CustomerNote]:
        """The notes of any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[CustomerNote]:
        """One page of the notes of any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every note of one customer to another; return how many moved.

        Raises:
            StorageRejected: the target customer does not exist in the tenant.
        """
        ...

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every note of the customers; return how many were removed.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Empty the text of every note of the customers; return how many changed.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class OrderRepository(Protocol):
    """Orders (with their lines) of the unit of work's tenant.

    Its optional role, on the same object (``uow.orders``), is ``PurchaseHistory``.
    Every method may also raise ``StorageError`` when the storage fails.
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next internal order id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def add(self, order: Order) -> None:
        """Insert an order and its lines.

        Raises:
            OrderConflict: the tenant has an order of that ``order_id``; nothing was written.
            StorageRejected: the customer does not exist in the tenant, or the order
                belongs to another tenant.
        """
        ...

    async def get_by_order_id(self, order_id: str) -> Order | None:
        """Fetch an order by the host's order id; None if there is none.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customer(
        self, customer_id: int, *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of a customer's orders, newest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of the orders of any of the customers, newest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every order of one customer to another; return how many moved.

        Raises:
            StorageRejected: the target customer does not exist in the tenant.
        """
        ...

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every order (and its lines) of the customers; return how many.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the shipping details of every order of the customers and empty the
        product names of their lines; return how many orders changed.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class PurchaseHistory(Protocol):
    """The ``purchases`` role of ``uow.orders``: what customers bought, summed.

    ``AIService.score_tenant``, ``find_similar_customers`` (for a customer with no
    current embedding) and ``generate_recommendations`` need it.
    """

    async def purchases(self, customer_ids: Sequence[int]) -> Sequence[ProductPurchases]:
        """Units bought per customer and product over every order of the customers
        (the greatest of the names its lines carry), by customer and product id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def best_sellers(self, *, limit: int) -> Sequence[ProductSales]:
        """The tenant's products with the most distinct buyers, then units, then id.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class ConsentRepository(Protocol):
    """The consent ledger of the unit of work's tenant (append-only).

    Every method may also raise ``StorageError`` when the storage fails.
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next consent event id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def append(self, event: ConsentEvent) -> None:
        """Append an event to the ledger.

        Raises:
            StorageRejected: the customer does not exist in the tenant, or the event
                belongs to another tenant.
        """
        ...

    async def list_for_customer(self, customer_id: int) -> Sequence[ConsentEvent]:
        """A customer's consent events, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(self, customer_ids: Sequence[int]) -> Sequence[ConsentEvent]:
        """The consent events of any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the customers' ledgers (hard erasure only); return how many events.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the source, IP address and user agent of the customers' events (erasure
        only); return how many events changed.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class AuditRepository(Protocol):
    """The audit trail of the unit of work's tenant: append-only, hash-chained.

    There is no way to change or remove an event: erasure keeps the trail, whose
    events hold no personal values. Events arrive sealed (``AuditChain.seal``),
    after ``lock_chains`` (or ``reserve_and_lock``) for their chains in the same
    transaction. Every method may also raise ``StorageError`` when the storage fails.
    """

    async def next_id(self) -> int:
        """Reserve the tenant's next audit event id.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def next_ids(self, count: int) -> Sequence[int]:
        """Reserve the tenant's next ``count`` audit event ids at once, consecutive.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def lock_chains(self, chains: Sequence[int]) -> ChainLock:
        """Lock chains (customer ids, ``TENANT_CHAIN``) against concurrent appends until
        the transaction ends; return their tips and the time new events must carry
        when the storage assigns it (None otherwise).

        Raises:
            StorageError: the storage failed (or the locks were not granted in time).
        """
        ...

    async def reserve_and_lock(
        self, count: int, chains: Sequence[int]
    ) -> tuple[Sequence[int], ChainLock]:
        """Reserve ``count`` event ids and lock ``chains``: ``next_ids`` then
        ``lock_chains``, which a storage may do in one round trip.

        Raises:
            StorageError: the storage failed (or the locks were not granted in time).
        """
        return await self.next_ids(count), await self.lock_chains(chains)

    async def append(self, event: AuditEvent) -> None:
        """Append a sealed event to its chain.

        Raises:
            StorageRejected: the event is not sealed, its id or position is taken, or it
                belongs to another tenant.
        """
        ...

    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Append many sealed events at once, in chain order.

        Raises:
            StorageRejected: as ``append``, for any of the events.
        """
        ...

    async def list(
        self,
        *,
        customer_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> Page[AuditEvent]:
        """Events oldest first, optionally of one customer, in ``[since, until)``.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[AuditEvent]:
        """One page of the events about any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def chained(
        self, *, after: tuple[int, int] | None = None, limit: int
    ) -> Sequence[tuple[AuditEvent, ChainTip | None]]:
        """Up to ``limit`` events by chain then position, after ``(chain, position)``,
        each with its chain's recorded tip read in the same statement.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def orphan_tips(self, *, limit: int) -> Sequence[int]:
        """Up to ``limit`` chains that have a recorded tip but no event, by chain id.

        Raises:
            StorageError: the storage failed.
        """
        ...


@runtime_checkable
class MergeAliasRepository(Protocol):
    """Merged-away customer ids and the customer each now resolves to.

    Every method may also raise ``StorageError`` when the storage fails.
    """

    async def add(self, alias: MergeAlias) -> None:
        """Record an alias.

        Raises:
            StorageRejected: the id is an alias already, the customer it resolves to
                does not exist in the tenant, or the alias belongs to another tenant.
        """
        ...

    async def resolve(self, alias_id: int) -> int | None:
        """The customer id an alias resolves to, or None if ``alias_id`` is no alias.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def repoint(self, from_customer_id: int, to_customer_id: int) -> int:
        """Make every alias of one customer resolve to another; return how many changed.

        Raises:
            StorageRejected: the target customer does not exist in the tenant.
        """
        ...

    async def list_for_customer(self, customer_id: int) -> Sequence[MergeAlias]:
        """The aliases resolving to a customer, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def list_for_customers(self, customer_ids: Sequence[int]) -> Sequence[MergeAlias]:
        """The aliases resolving to any of the customers, oldest first.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def delete_for_customer(self, customer_id: int) -> int:
        """Remove the aliases resolving to a customer; return how many were removed.

        Raises:
            StorageError: the storage failed.
        """
        ...
