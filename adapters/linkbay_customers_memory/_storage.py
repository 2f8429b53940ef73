"""In-memory storage: dictionaries per tenant, with real commit and rollback."""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from linkbay_customers.audit_keys import audit_chain_from, new_audit_key
from linkbay_customers.domain import (
    Address,
    AddressNotFound,
    AuditChain,
    AuditEvent,
    ChainLock,
    ChainTip,
    ConsentEvent,
    Customer,
    CustomerFilters,
    CustomerNote,
    CustomerNotFound,
    CustomerSort,
    DerivedData,
    DuplicateDecision,
    DuplicateEmail,
    MatchRecord,
    MergeAlias,
    ModelFit,
    Order,
    OrderConflict,
    Page,
    ProductPurchases,
    ProductSales,
    StorageRejected,
    blocks,
    chain_of,
    cosine_similarity,
    match_record,
    matches_filters,
    search_rank,
)
from linkbay_customers.ports import (
    AddressRepository,
    AuditRepository,
    ConsentRepository,
    CustomerBulkImport,
    CustomerRepository,
    DerivedDataStore,
    DuplicateCandidates,
    DuplicateDecisions,
    MergeAliasRepository,
    NearestNeighbours,
    NoteRepository,
    OrderRepository,
    PurchaseHistory,
    Storage,
    UnitOfWork,
)

__all__ = ("InMemoryStorage", "InMemoryUnitOfWork")

T = TypeVar("T")
_MATCH_FIT = "duplicates"  # the stored duplicate model's name among the model fits


@dataclass
class _Tables:
    customers: dict[int, Customer] = field(default_factory=dict)
    addresses: dict[int, Address] = field(default_factory=dict)
    notes: dict[int, CustomerNote] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    consents: dict[int, ConsentEvent] = field(default_factory=dict)
    audit: dict[int, AuditEvent] = field(default_factory=dict)
    audit_tips: dict[int, ChainTip] = field(default_factory=dict)
    aliases: dict[int, MergeAlias] = field(default_factory=dict)
    decisions: dict[tuple[int, int], DuplicateDecision] = field(default_factory=dict)
    model_fits: dict[str, ModelFit] = field(default_factory=dict)
    id_counters: dict[str, int] = field(default_factory=dict)

    def copy(self) -> _Tables:
        # Rows are never mutated in place (they are replaced by copies), so a
        # shallow copy of each table is a consistent snapshot.
        return _Tables(**{f.name: dict(getattr(self, f.name)) for f in fields(self)})


class _Transaction:
    """The working tables of one unit of work, shared by its repositories."""

    def __init__(self, storage: InMemoryStorage, tenant_id: str) -> None:
        self.storage = storage
        self.tenant_id = tenant_id
        self._tables: _Tables | None = None

    @property
    def tables(self) -> _Tables:
        if self._tables is None:
            raise RuntimeError("the unit of work is not active: use it inside 'async with'")
        return self._tables

    def begin(self) -> None:
        self._tables = self.storage._committed(self.tenant_id).copy()

    def commit(self) -> None:
        self.storage._tenants[self.tenant_id] = self.tables.copy()

    def end(self) -> None:
        self._tables = None

    def next_id(self, table: str) -> int:
        # Each tenant counts its own ids, as the SQL adapters do: no id tells one
        # tenant anything about another's activity.
        # The counters are part of the tenant's tables: a rollback gives ids back.
        counters = self.tables.id_counters
        counters[table] = counters.get(table, 0) + 1
        return counters[table]

    def own(self, row: Any) -> None:
        # Mirrors the tenant wall of the SQL adapters: a row is written only under
        # the tenant of the unit of work that writes it.
        if row.tenant_id != self.tenant_id:
            raise StorageRejected("the row belongs to another tenant than the unit of work")

    def require_customer(self, customer_id: int) -> None:
        # Mirrors the composite foreign keys of the SQL schema.
        if customer_id not in self.tables.customers:
            raise StorageRejected(f"customer {customer_id} does not exist in this tenant")


def _copy(value: T) -> T:
    return copy.deepcopy(value)


def _page(rows: list[T], page: int, page_size: int) -> Page[T]:
    start = (page - 1) * page_size
    return Page(
        items=[_copy(r) for r in rows[start : start + page_size]],
        total=len(rows),
        page=page,
        page_size=page_size,
    )


def _sorted_customers(rows: Iterable[Customer], sort: CustomerSort) -> list[Customer]:
    column = sort.column
    present = [c for c in rows if getattr(c, column) is not None]
    missing = [c for c in rows if getattr(c, column) is None]
    present.sort(key=lambda c: (getattr(c, column), c.id), reverse=sort.descending)
    missing.sort(key=lambda c: c.id, reverse=sort.descending)
    return present + missing  # customers without a value sort last either way


def _reassign(table: dict[int, Any], from_id: int, to_id: int) -> int:
    moved = [key for key, row in table.items() if row.customer_id == from_id]
    for key in moved:
        row = copy.copy(table[key])
        row.customer_id = to_id
        table[key] = row
    return len(moved)


def _replace_for_customers(
    table: dict[int, Any], customer_ids: Sequence[int], **changes: Any
) -> int:
    wanted = set(customer_ids)
    keys = [key for key, row in table.items() if row.customer_id in wanted]
    for key in keys:
        table[key] = replace(table[key], **changes)
    return len(keys)


def _delete_for_customers(table: dict[int, Any], customer_ids: Sequence[int]) -> int:
    wanted = set(customer_ids)
    return _delete_where(table, lambda row: row.customer_id in wanted)


def _delete_where(table: dict[int, Any], predicate: Callable[[Any], bool]) -> int:
    doomed = [key for key, row in table.items() if predicate(row)]
    for key in doomed:
        del table[key]
    return len(doomed)


class _Repository:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    @property
    def _t(self) -> _Tables:
        return self._tx.tables


class InMemoryCustomerRepository(
    _Repository,
    CustomerRepository,
    CustomerBulkImport,
    DerivedDataStore,
    NearestNeighbours,
    DuplicateCandidates,
    DuplicateDecisions,
):
    """Customers in memory."""

    async def add_decision(self, decision: DuplicateDecision) -> bool:
        """Store a decision unless its pair has one."""
        self._tx.own(decision)
        self._tx.require_customer(decision.customer_id)
        self._tx.require_customer(decision.other_id)
        pair = (decision.customer_id, decision.other_id)
        if pair in self._t.decisions:
            return False
        self._t.decisions[pair] = decision
        return True

    async def remove_decision(self, customer_id: int, other_id: int) -> bool:
        """Remove the decision about a pair."""
        return self._t.decisions.pop((customer_id, other_id), None) is not None

    async def decisions_for_customers(
        self, customer_ids: Sequence[int]
    ) -> builtins.list[DuplicateDecision]:
        """The decisions naming any of the customers, oldest first."""
        wanted = set(customer_ids)
        return sorted(
            (d for pair, d in self._t.decisions.items() if wanted.intersection(pair)),
            key=lambda d: (d.decided_at, d.customer_id, d.other_id),
        )

    async def delete_decisions_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the decisions naming any of the customers."""
        wanted = set(customer_ids)
        doomed = [pair for pair in self._t.decisions if wanted.intersection(pair)]
        for pair in doomed:
            del self._t.decisions[pair]
        return len(doomed)

    def _match_records(self) -> dict[int, MatchRecord]:
        t = self._t
        addresses: dict[int, builtins.list[Address]] = {}
        for address in t.addresses.values():
            addresses.setdefault(address.customer_id, []).append(address)
        return {
            c.id: match_record(c, addresses.get(c.id, ()))
            for c in t.customers.values()
            if not c.is_deleted and not c.is_anonymized
        }

    def _pairs(
        self,
        records: Mapping[int, MatchRecord],
        customer_ids: Sequence[int] | None,
        later_only: bool,
    ) -> builtins.list[tuple[int, int]]:
        wanted = None if customer_ids is None else set(customer_ids)
        pairs = {
            (a, b)
            for ids in blocks(records.values()).values()
            for a in ids
            if wanted is None or a in wanted
            for b in ids
            if b != a and (b > a or not later_only)
        }
        return sorted(pairs)

    async def candidate_pairs(
        self, customer_ids: Sequence[int], *, later_only: bool = True
    ) -> builtins.list[tuple[int, int]]:
        """Candidate pairs of the customers: the tenant's blocks (``blocks``)."""
        if not customer_ids:
            return []
        return self._pairs(self._match_records(), customer_ids, later_only)

    async def candidate_records(
        self,
        *,
        every: int = 1,
        customer_ids: Sequence[int] | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[Sequence[tuple[MatchRecord, MatchRecord]]]:
        """Candidate pairs with both sides' match records, from the tenant's blocks."""
        records = self._match_records()
        pairs = [
            (records[a], records[b])
            for a, b in self._pairs(records, customer_ids, customer_ids is None)
            if customer_ids is not None or a % every == 0
        ]
        for start in range(0, len(pairs), batch_size):
            yield pairs[start : start + batch_size]

    async def load_match_fit(self) -> ModelFit | None:
        """The tenant's stored fit of the duplicate model."""
        return _copy(self._t.model_fits.get(_MATCH_FIT))

    async def save_match_fit(self, fit: ModelFit) -> None:
        """Store a fit of the duplicate model, replacing the previous one."""
        self._tx.own(fit)
        self._t.model_fits[_MATCH_FIT] = replace(fit, model=_MATCH_FIT)

    async def next_id(self) -> int:
        """Reserve a new customer id."""
        return self._tx.next_id("customers")

    def _check_email(self, customer: Customer) -> None:
        if customer.email is None:
            return
        for other in self._t.customers.values():
            if other.email == customer.email and other.id != customer.id:
                raise DuplicateEmail(customer.email, existing_is_deleted=other.is_deleted)

    async def next_ids(self, count: int) -> builtins.list[int]:
        """Reserve ``count`` new customer ids."""
        return [self._tx.next_id("customers") for _ in range(count)]

    async def add_many(self, customers: Sequence[Customer]) -> builtins.list[str]:
        """Insert many customers; return the emails refused as taken."""
        refused = []
        for customer in customers:
            try:
                await self.add(customer)
            except DuplicateEmail:
                refused.append(customer.email or "")
        return refused

    async def get_many_by_email(self, emails: Sequence[str]) -> dict[str, Customer]:
        """The customers holding any of ``emails``, deleted ones included."""
        wanted = set(emails)
        return {
            c.email: _copy(c)
            for c in self._t.customers.values()
            if c.email is not None and c.email in wanted
        }

    async def update_many(self, customers: Sequence[Customer]) -> None:
        """Write many existing customers."""
        for customer in customers:
            await self.update(customer)

    async def add(self, customer: Customer) -> None:
        """Insert a customer."""
        self._tx.own(customer)
        if customer.id in self._t.customers:
            raise StorageRejected(f"customer {customer.id} already exists")
        self._check_email(customer)
        self._t.customers[customer.id] = _copy(customer)

    async def get(
        self, customer_id: int, *, include_deleted: bool = False, for_update: bool = False
    ) -> Customer | None:
        """Fetch a customer (the tenant lock already serializes writers)."""
        customer = self._t.customers.get(customer_id)
        if customer is None or (customer.is_deleted and not include_deleted):
            return None
        return _copy(customer)

    async def get_many(self, customer_ids: Sequence[int]) -> builtins.list[Customer]:
        """The customers with any of ``customer_ids``, deleted ones included, by id."""
        wanted = set(customer_ids)
        return [_copy(c) for _, c in sorted(self._t.customers.items()) if c.id in wanted]

    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> Customer | None:
        """Fetch a customer by normalized email."""
        for customer in self._t.customers.values():
            if customer.email == email and (include_deleted or not customer.is_deleted):
                return _copy(customer)
        return None

    async def update(self, customer: Customer) -> None:
        """Write every field of an existing customer."""
        self._tx.own(customer)
        if customer.id not in self._t.customers:
            raise CustomerNotFound(customer.id)
        self._check_email(customer)
        self._t.customers[customer.id] = _copy(customer)

    async def delete(self, customer_id: int) -> None:
        """Remove a customer row; its dependants must be gone first."""
        await self.delete_many([customer_id])

    async def delete_many(self, customer_ids: Sequence[int]) -> None:
        """Remove customer rows; their dependants must be gone first (nothing is removed
        otherwise)."""
        t = self._t
        doomed = set(customer_ids)
        for table in (t.addresses, t.notes, t.orders, t.consents):
            if any(row.customer_id in doomed for row in table.values()):
                raise StorageRejected("a customer to delete still has dependent rows")
        if any(a.customer_id in doomed for a in t.aliases.values()):
            raise StorageRejected("a customer to delete still has merge aliases")
        if any(doomed.intersection(pair) for pair in t.decisions):
            raise StorageRejected("a customer to delete still has duplicate decisions")
        for customer_id in doomed:
            t.customers.pop(customer_id, None)

    async def list(self, filters: CustomerFilters, *, page: int, page_size: int) -> Page[Customer]:
        """One page of the customers passing ``filters``."""
        rows = [c for c in self._t.customers.values() if matches_filters(c, filters)]
        return _page(_sorted_customers(rows, filters.sort), page, page_size)

    async def list_after(self, after_id: int, *, limit: int) -> builtins.list[Customer]:
        """Non-deleted customers with ids above ``after_id``, by id."""
        rows = sorted(
            (c for c in self._t.customers.values() if c.id > after_id and not c.is_deleted),
            key=lambda c: c.id,
        )
        return [_copy(c) for c in rows[:limit]]

    async def update_derived(self, rows: Sequence[DerivedData]) -> None:
        """Write the derived fields of many customers."""
        for row in rows:
            current = self._t.customers.get(row.customer_id)
            if current is None:
                continue
            updated = _copy(current)
            updated.segment = row.segment
            updated.churn_risk_score = row.churn_risk_score
            updated.customer_lifetime_value = row.customer_lifetime_value
            if not row.keep_embedding:
                updated.embedding = None if row.embedding is None else list(row.embedding)
                updated.embedding_version = row.embedding_version
            updated.scored_at = row.scored_at
            updated.score_source = row.score_source
            self._t.customers[row.customer_id] = updated

    async def nearest(
        self, embedding: Sequence[float], *, limit: int, exclude: Sequence[int] = ()
    ) -> builtins.list[tuple[Customer, float]]:
        """Exact cosine search over the tenant's embeddings."""
        skip = set(exclude)
        scored = [
            (cosine_similarity(embedding, c.embedding), c.id, c)
            for c in self._t.customers.values()
            if c.embedding is not None and not c.is_deleted and c.id not in skip
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [(_copy(c), score) for score, _, c in scored[:limit]]

    async def list_inactive(
        self, cutoff: datetime, *, after_id: int, limit: int
    ) -> builtins.list[Customer]:
        """Customers not anonymized, unchanged and without orders since before ``cutoff``."""
        rows = sorted(
            (
                c
                for c in self._t.customers.values()
                if c.id > after_id
                and not c.is_anonymized
                and c.updated_at < cutoff
                and (c.last_order_at is None or c.last_order_at < cutoff)
            ),
            key=lambda c: c.id,
        )
        return [_copy(c) for c in rows[:limit]]

    async def search(self, query: str, *, limit: int) -> builtins.list[Customer]:
        """Non-deleted customers matching ``query``, best first."""
        ranked: list[tuple[int, int, Customer]] = []
        for customer in self._t.customers.values():
            if customer.is_deleted:
                continue
            rank = search_rank(customer, query)
            if rank is not None:
                ranked.append((rank, customer.id, customer))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [_copy(c) for _, _, c in ranked[:limit]]


class InMemoryAddressRepository(_Repository, AddressRepository):
    """Addresses in memory."""

    async def next_id(self) -> int:
        """Reserve a new address id."""
        return self._tx.next_id("addresses")

    def _check(self, address: Address) -> None:
        self._tx.require_customer(address.customer_id)
        if address.is_default and any(
            other.is_default
            and other.customer_id == address.customer_id
            and other.type == address.type
            and other.id != address.id
            for other in self._t.addresses.values()
        ):
            raise StorageRejected(f"customer {address.customer_id} already has a default address")

    async def add(self, address: Address) -> None:
        """Insert an address."""
        self._tx.own(address)
        if address.id in self._t.addresses:
            raise StorageRejected(f"address {address.id} already exists")
        self._check(address)
        self._t.addresses[address.id] = _copy(address)

    async def get(self, address_id: int) -> Address | None:
        """Fetch an address."""
        address = self._t.addresses.get(address_id)
        return None if address is None else _copy(address)

    async def list_for_customer(self, customer_id: int) -> list[Address]:
        """A customer's addresses, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> list[Address]:
        """The addresses of any of the customers, oldest first."""
        return [_copy(a) for a in self._of(customer_ids)]

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Address]:
        """One page of the addresses of any of the customers, oldest first."""
        return _page(self._of(customer_ids), page, page_size)

    def _of(self, customer_ids: Sequence[int]) -> list[Address]:
        wanted = set(customer_ids)
        return sorted(
            (a for a in self._t.addresses.values() if a.customer_id in wanted),
            key=lambda a: a.id,
        )

    async def update(self, address: Address) -> None:
        """Write every field of an existing address."""
        self._tx.own(address)
        if address.id not in self._t.addresses:
            raise AddressNotFound(address.id)
        self._check(address)
        self._t.addresses[address.id] = _copy(address)

    async def delete(self, address_id: int) -> None:
        """Remove an address."""
        self._t.addresses.pop(address_id, None)

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every address of one customer to another."""
        self._tx.require_customer(to_customer_id)
        return _reassign(self._t.addresses, from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every address of the customers."""
        return _delete_for_customers(self._t.addresses, customer_ids)


class InMemoryNoteRepository(_Repository, NoteRepository):
    """Notes in memory."""

    async def next_id(self) -> int:
        """Reserve a new note id."""
        return self._tx.next_id("notes")

    async def add(self, note: CustomerNote) -> None:
        """Insert a note."""
        self._tx.own(note)
        self._tx.require_customer(note.customer_id)
        if note.id in self._t.notes:
            raise StorageRejected(f"note {note.id} already exists")
        self._t.notes[note.id] = _copy(note)

    async def list_for_customer(self, customer_id: int) -> list[CustomerNote]:
        """A customer's notes, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> list[CustomerNote]:
        """The notes of any of the customers, oldest first."""
        return [_copy(n) for n in self._of(customer_ids)]

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[CustomerNote]:
        """One page of the notes of any of the customers, oldest first."""
        return _page(self._of(customer_ids), page, page_size)

    def _of(self, customer_ids: Sequence[int]) -> list[CustomerNote]:
        wanted = set(customer_ids)
        return sorted(
            (n for n in self._t.notes.values() if n.customer_id in wanted),
            key=lambda n: (n.created_at, n.id),
        )

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every note of one customer to another."""
        self._tx.require_customer(to_customer_id)
        return _reassign(self._t.notes, from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every note of the customers."""
        return _delete_for_customers(self._t.notes, customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Empty the text of the customers' notes."""
        return _replace_for_customers(self._t.notes, customer_ids, note="")


class InMemoryOrderRepository(_Repository, OrderRepository, PurchaseHistory):
    """Orders in memory."""

    async def next_id(self) -> int:
        """Reserve a new internal order id."""
        return self._tx.next_id("orders")

    async def add(self, order: Order) -> None:
        """Insert an order and its lines."""
        self._tx.own(order)
        self._tx.require_customer(order.customer_id)
        if any(o.order_id == order.order_id for o in self._t.orders.values()):
            raise OrderConflict(f"order {order.order_id!r} is already recorded")
        if order.id in self._t.orders:
            raise StorageRejected(f"order {order.id} already exists")
        self._t.orders[order.id] = _copy(order)

    async def get_by_order_id(self, order_id: str) -> Order | None:
        """Fetch an order by the host's order id."""
        for order in self._t.orders.values():
            if order.order_id == order_id:
                return _copy(order)
        return None

    async def list_for_customer(
        self, customer_id: int, *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of a customer's orders, newest first."""
        return await self.list_for_customers([customer_id], page=page, page_size=page_size)

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of the orders of any of the customers, newest first."""
        wanted = set(customer_ids)
        rows = sorted(
            (o for o in self._t.orders.values() if o.customer_id in wanted),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        return _page(rows, page, page_size)

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every order of one customer to another."""
        self._tx.require_customer(to_customer_id)
        return _reassign(self._t.orders, from_customer_id, to_customer_id)

    async def purchases(self, customer_ids: Sequence[int]) -> builtins.list[ProductPurchases]:
        """Units bought per customer and product."""
        wanted = set(customer_ids)
        units: dict[tuple[int, str], int] = {}
        names: dict[tuple[int, str], str] = {}
        for order in self._t.orders.values():
            if order.customer_id not in wanted:
                continue
            for item in order.items:
                key = (order.customer_id, item.product_id)
                units[key] = units.get(key, 0) + item.quantity
                names[key] = max(names.get(key, item.product_name), item.product_name)
        return [
            ProductPurchases(
                customer_id=cid, product_id=pid, product_name=names[(cid, pid)], quantity=qty
            )
            for (cid, pid), qty in sorted(units.items())
        ]

    async def best_sellers(self, *, limit: int) -> builtins.list[ProductSales]:
        """The products with the most distinct buyers, then units."""
        units: dict[str, int] = {}
        buyers: dict[str, set[int]] = {}
        names: dict[str, str] = {}
        for order in self._t.orders.values():
            for item in order.items:
                pid = item.product_id
                units[pid] = units.get(pid, 0) + item.quantity
                buyers.setdefault(pid, set()).add(order.customer_id)
                names[pid] = max(names.get(pid, item.product_name), item.product_name)
        ranked = sorted(units, key=lambda pid: (-len(buyers[pid]), -units[pid], pid))
        return [
            ProductSales(
                product_id=pid,
                product_name=names[pid],
                quantity=units[pid],
                buyers=len(buyers[pid]),
            )
            for pid in ranked[:limit]
        ]

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every order of the customers."""
        return _delete_for_customers(self._t.orders, customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the shipping details and line product names of the customers' orders;
        count the orders that had any."""
        wanted = set(customer_ids)
        changed = 0
        for key, order in self._t.orders.items():
            if order.customer_id not in wanted:
                continue
            if order.shipping is None and all(i.product_name == "" for i in order.items):
                continue
            items = tuple(replace(i, product_name="") for i in order.items)
            self._t.orders[key] = replace(order, shipping=None, items=items)
            changed += 1
        return changed


class InMemoryConsentRepository(_Repository, ConsentRepository):
    """The consent ledger in memory."""

    async def next_id(self) -> int:
        """Reserve a new consent event id."""
        return self._tx.next_id("consents")

    async def append(self, event: ConsentEvent) -> None:
        """Append an event."""
        self._tx.own(event)
        self._tx.require_customer(event.customer_id)
        if event.id in self._t.consents:
            raise StorageRejected(f"consent event {event.id} already exists")
        self._t.consents[event.id] = _copy(event)

    async def list_for_customer(self, customer_id: int) -> list[ConsentEvent]:
        """A customer's consent events, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> list[ConsentEvent]:
        """The consent events of any of the customers, oldest first."""
        wanted = set(customer_ids)
        rows = sorted(
            (e for e in self._t.consents.values() if e.customer_id in wanted),
            key=lambda e: (e.occurred_at, e.id),
        )
        return [_copy(e) for e in rows]

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the customers' ledgers."""
        return _delete_for_customers(self._t.consents, customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove the source, IP address and user agent of the customers' events."""
        return _replace_for_customers(
            self._t.consents, customer_ids, source=None, ip_address=None, user_agent=None
        )


class InMemoryAuditRepository(_Repository, AuditRepository):
    """The audit trail in memory."""

    async def next_id(self) -> int:
        """Reserve a new audit event id."""
        return self._tx.next_id("audit")

    async def next_ids(self, count: int) -> builtins.list[int]:
        """Reserve ``count`` new audit event ids."""
        return [self._tx.next_id("audit") for _ in range(count)]

    async def lock_chains(self, chains: Sequence[int]) -> ChainLock:
        """The chains' tips; the tenant's lock already keeps other writers out."""
        tips = self._t.audit_tips
        return ChainLock(tips={c: tips[c] for c in chains if c in tips})

    async def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Append many sealed events."""
        for event in events:
            await self.append(event)

    async def append(self, event: AuditEvent) -> None:
        """Append a sealed event and make it its chain's tip."""
        self._tx.own(event)
        if event.sequence is None or event.hash is None:
            raise StorageRejected("an audit event must be sealed before it is appended")
        if event.id in self._t.audit:
            raise StorageRejected(f"audit event {event.id} already exists")
        chain = chain_of(event.customer_id)
        tip = self._t.audit_tips.get(chain, ChainTip())
        if event.sequence != tip.sequence + 1:
            raise StorageRejected(f"position {event.sequence} of audit chain {chain} is taken")
        self._t.audit[event.id] = _copy(event)
        self._t.audit_tips[chain] = ChainTip(event.sequence, event.hash)

    async def list(
        self,
        *,
        customer_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> Page[AuditEvent]:
        """Events oldest first, filtered by customer and ``[since, until)``."""
        rows = sorted(
            (
                e
                for e in self._t.audit.values()
                if (customer_id is None or e.customer_id == customer_id)
                and (since is None or e.occurred_at >= since)
                and (until is None or e.occurred_at < until)
            ),
            key=lambda e: (e.occurred_at, e.id),
        )
        return _page(rows, page, page_size)

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[AuditEvent]:
        """One page of the events about any of the customers, oldest first."""
        wanted = set(customer_ids)
        rows = sorted(
            (e for e in self._t.audit.values() if e.customer_id in wanted),
            key=lambda e: (e.occurred_at, e.id),
        )
        return _page(rows, page, page_size)

    async def chained(
        self, *, after: tuple[int, int] | None = None, limit: int
    ) -> builtins.list[tuple[AuditEvent, ChainTip | None]]:
        """Events by chain then position, with their chain's tip."""
        rows = sorted(
            ((chain_of(e.customer_id), e.sequence or 0), e) for e in self._t.audit.values()
        )
        tips = self._t.audit_tips
        return [
            (event, tips.get(position[0]))
            for position, event in rows
            if after is None or position > after
        ][:limit]

    async def orphan_tips(self, *, limit: int) -> builtins.list[int]:
        """Chains with a tip and no event."""
        chains = {chain_of(e.customer_id) for e in self._t.audit.values()}
        return sorted(c for c in self._t.audit_tips if c not in chains)[:limit]


class InMemoryMergeAliasRepository(_Repository, MergeAliasRepository):
    """Merge aliases in memory."""

    async def add(self, alias: MergeAlias) -> None:
        """Record an alias."""
        self._tx.own(alias)
        self._tx.require_customer(alias.alias_id)
        self._tx.require_customer(alias.customer_id)
        if alias.alias_id in self._t.aliases:
            raise StorageRejected(f"customer {alias.alias_id} is already an alias")
        self._t.aliases[alias.alias_id] = alias

    async def resolve(self, alias_id: int) -> int | None:
        """The customer an alias resolves to."""
        alias = self._t.aliases.get(alias_id)
        return None if alias is None else alias.customer_id

    async def repoint(self, from_customer_id: int, to_customer_id: int) -> int:
        """Make the aliases of one customer resolve to another."""
        self._tx.require_customer(to_customer_id)
        moved = [a for a in self._t.aliases.values() if a.customer_id == from_customer_id]
        for alias in moved:
            self._t.aliases[alias.alias_id] = MergeAlias(
                tenant_id=alias.tenant_id,
                alias_id=alias.alias_id,
                customer_id=to_customer_id,
                merged_at=alias.merged_at,
            )
        return len(moved)

    async def list_for_customer(self, customer_id: int) -> list[MergeAlias]:
        """The aliases resolving to a customer, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> list[MergeAlias]:
        """The aliases resolving to any of the customers, oldest first."""
        wanted = set(customer_ids)
        return sorted(
            (a for a in self._t.aliases.values() if a.customer_id in wanted),
            key=lambda a: (a.merged_at, a.alias_id),
        )

    async def delete_for_customer(self, customer_id: int) -> int:
        """Remove the aliases resolving to a customer."""
        return _delete_where(self._t.aliases, lambda a: a.customer_id == customer_id)


class InMemoryUnitOfWork(UnitOfWork):
    """A transaction over one tenant's in-memory tables.

    Units of work of one tenant run one at a time (serializable); the changes of a
    unit of work become visible to others only when it commits. A read-only one
    refuses to commit.
    """

    def __init__(
        self, storage: InMemoryStorage, tenant_id: str, *, read_only: bool = False
    ) -> None:
        self.tenant_id = tenant_id
        self.read_only = read_only
        self._storage = storage
        self._tx = _Transaction(storage, tenant_id)
        self._entered = False
        self.customers = InMemoryCustomerRepository(self._tx)
        self.addresses = InMemoryAddressRepository(self._tx)
        self.notes = InMemoryNoteRepository(self._tx)
        self.orders = InMemoryOrderRepository(self._tx)
        self.consents = InMemoryConsentRepository(self._tx)
        self.audit = InMemoryAuditRepository(self._tx)
        self.aliases = InMemoryMergeAliasRepository(self._tx)

    @property
    def audit_chain(self) -> AuditChain:
        """The storage's audit chain."""
        return self._storage.audit_chain

    async def __aenter__(self) -> Self:
        """Wait for the tenant's lock and take a snapshot of its tables."""
        if self._entered:
            raise RuntimeError("a unit of work can be entered only once")
        self._entered = True
        await self._storage._lock(self.tenant_id).acquire()
        self._tx.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drop uncommitted changes and release the tenant's lock."""
        self._tx.end()
        self._storage._lock(self.tenant_id).release()

    async def commit(self) -> None:
        """Publish the changes made so far.

        Raises:
            StorageRejected: the unit of work is read-only.
        """
        if self.read_only:
            raise StorageRejected("a read-only unit of work cannot commit")
        self._tx.commit()

    async def rollback(self) -> None:
        """Discard the changes made since the last commit."""
        self._tx.begin()


class InMemoryStorage(Storage):
    """Storage in process memory, for tests and prototyping.

    Each tenant counts its own ids from 1, as in SQL storage; a rollback gives the
    ids it reserved back.

    Args:
        audit_key: The audit trail's HMAC key (at least 32 bytes), or its chain.
            Without one, the ``LINKBAY_AUDIT_KEY`` (or ``LINKBAY_AUDIT_KEY_FILE``)
            environment variable's, else a random key that lives as long as this
            storage, like its data.
    """

    def __init__(self, *, audit_key: bytes | str | AuditChain | None = None) -> None:
        self.audit_chain = audit_chain_from(audit_key) or AuditChain(new_audit_key().encode())
        self._tenants: dict[str, _Tables] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_url(
        cls, url: str = "memory://", *, audit_key: bytes | str | AuditChain | None = None
    ) -> InMemoryStorage:
        """A new, empty storage for a ``memory://`` URL (the factory of that scheme).

        Raises:
            ValueError: the URL is not ``memory://``; nothing may follow it.
        """
        if url.lower() != "memory://":
            raise ValueError(f"the in-memory storage's URL is memory://, not {url!r}")
        return cls(audit_key=audit_key)

    def _committed(self, tenant_id: str) -> _Tables:
        return self._tenants.get(tenant_id) or _Tables()

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant_id, asyncio.Lock())

    def unit_of_work(self, tenant_id: str, *, read_only: bool = False) -> InMemoryUnitOfWork:
        """A new unit of work for one tenant (``read_only``: one that cannot commit)."""
        return InMemoryUnitOfWork(self, tenant_id, read_only=read_only)

    async def ping(self) -> None:
        """Always answers: the data is in this process."""

    async def load_model_fit(self, tenant_id: str, model: str) -> ModelFit | None:
        """The tenant's fit of a model, or None (``linkbay_customers_clv.ModelFitStorage``)."""
        async with self.unit_of_work(tenant_id, read_only=True) as uow:
            return _copy(uow._tx.tables.model_fits.get(model))

    async def save_model_fit(self, tenant_id: str, fit: ModelFit) -> None:
        """Store a fit, replacing the tenant's previous fit of that model.

        Raises:
            StorageRejected: the fit belongs to another tenant.
        """
        async with self.unit_of_work(tenant_id) as uow:
            uow._tx.own(fit)
            uow._tx.tables.model_fits[fit.model] = _copy(fit)
            await uow.commit()

    async def close(self) -> None:
        """Nothing to release; the data stays until the object is dropped."""
