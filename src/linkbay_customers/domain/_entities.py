"""The entities: plain dataclasses with timezone-aware datetimes and Decimal money."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from linkbay_customers.domain._audit import check_audit_content
from linkbay_customers.domain._values import AddressType

__all__ = (
    "Address",
    "AuditAction",
    "AuditEvent",
    "ConsentEvent",
    "ConsentState",
    "Customer",
    "CustomerNote",
    "DuplicateDecision",
    "MergeAlias",
    "Order",
    "OrderItem",
    "OrderShipping",
)

_ZERO = Decimal("0")


@dataclass(kw_only=True, slots=True)
class ConsentState:
    """The current state of one consent type (the seed's ``consent_data`` entries)."""

    consented: bool
    date: datetime
    source: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(kw_only=True, slots=True)
class Customer:
    """A customer of one tenant.

    ``extra`` carries the values of columns a host application adds to its own
    customer model; the core passes them through untouched.
    """

    id: int
    tenant_id: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    birthday: date | None = None
    gender: str | None = None
    preferences: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # Order analytics, maintained by record_order and merge.
    currency: str | None = None
    total_orders: int = 0
    total_spent: Decimal = _ZERO
    average_order_value: Decimal = _ZERO
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    # Derived intelligence and its provenance.
    customer_lifetime_value: Decimal | None = None
    churn_risk_score: float | None = None
    segment: str | None = None
    embedding: list[float] | None = None
    embedding_version: str | None = None
    scored_at: datetime | None = None
    score_source: str | None = None
    # GDPR.
    consent_data: dict[str, ConsentState] = field(default_factory=dict)
    is_anonymized: bool = False
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_deleted(self) -> bool:
        """True once the customer is soft-deleted (or merged away)."""
        return self.deleted_at is not None


@dataclass(kw_only=True)
class Address:
    """A postal address of a customer; at most one default per type."""

    id: int
    tenant_id: str
    customer_id: int
    type: AddressType
    address_line1: str
    city: str
    postal_code: str
    country: str
    address_line2: str | None = None
    state: str | None = None
    is_default: bool = False
    created_at: datetime
    updated_at: datetime


@dataclass(kw_only=True)
class CustomerNote:
    """A free-text note about a customer, written by a user of the host application."""

    id: int
    tenant_id: str
    customer_id: int
    note: str
    created_by: str | None
    created_at: datetime


@dataclass(kw_only=True, frozen=True, slots=True)
class OrderItem:
    """One line of an order (the seed's ``order_data`` names)."""

    product_id: str
    product_name: str
    quantity: int
    unit_price: Decimal


@dataclass(kw_only=True, frozen=True, slots=True)
class OrderShipping:
    """Where an order was shipped; personal data, removed on erasure."""

    recipient_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None


@dataclass(kw_only=True)
class Order:
    """An order from the host's order system, recorded once per ``order_id``."""

    id: int
    tenant_id: str
    customer_id: int
    order_id: str
    total: Decimal
    currency: str
    created_at: datetime
    recorded_at: datetime
    items: tuple[OrderItem, ...] = ()
    shipping: OrderShipping | None = None


@dataclass(kw_only=True, frozen=True)
class ConsentEvent:
    """One immutable entry of the consent ledger."""

    id: int
    tenant_id: str
    customer_id: int
    consent_type: str
    consented: bool
    occurred_at: datetime
    previous: bool | None = None
    source: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


class AuditAction(StrEnum):
    """What an audit event records."""

    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    CUSTOMER_HARD_DELETED = "customer.hard_deleted"
    CUSTOMER_RESTORED = "customer.restored"
    CUSTOMER_MERGED = "customer.merged"
    CUSTOMER_MERGED_INTO = "customer.merged_into"
    ADDRESS_ADDED = "address.added"
    ADDRESS_UPDATED = "address.updated"
    ADDRESS_DELETED = "address.deleted"
    NOTE_ADDED = "note.added"
    ORDER_RECORDED = "order.recorded"
    CONSENT_UPDATED = "consent.updated"
    DATA_EXPORTED = "data.exported"
    DATA_ANONYMIZED = "data.anonymized"
    DATA_ERASED = "data.erased"
    PAIR_MARKED_DISTINCT = "pair.marked_distinct"
    PAIR_UNMARKED_DISTINCT = "pair.unmarked_distinct"
    SCORES_UPDATED = "scores.updated"


@dataclass(kw_only=True, frozen=True, slots=True)
class AuditEvent:
    """One append-only audit record.

    ``changed_fields`` holds field names only; ``details`` holds identifiers,
    flags and the library's own labels, never personal values: building an event
    that breaks this raises ``ValueError`` (see ``AUDIT_DETAIL_KEYS``).
    ``sequence`` and ``hash`` place the event in its chain (see ``AuditChain``);
    they are set when the event is appended.
    """

    id: int
    tenant_id: str
    customer_id: int | None
    actor: str | None
    action: AuditAction
    occurred_at: datetime
    changed_fields: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    sequence: int | None = None
    hash: str | None = None

    def __post_init__(self) -> None:
        check_audit_content(self.changed_fields, self.details)

    @classmethod
    def of_checked_content(
        cls,
        *,
        id: int,
        tenant_id: str,
        customer_id: int | None,
        actor: str | None,
        action: AuditAction,
        occurred_at: datetime,
        changed_fields: tuple[str, ...],
        details: dict[str, Any],
    ) -> AuditEvent:
        """An unsealed event whose fields and details ``check_audit_content`` has
        accepted already: built without checking them again (a batch of events)."""
        event = object.__new__(cls)
        put = object.__setattr__
        put(event, "id", id)
        put(event, "tenant_id", tenant_id)
        put(event, "customer_id", customer_id)
        put(event, "actor", actor)
        put(event, "action", action)
        put(event, "occurred_at", occurred_at)
        put(event, "changed_fields", changed_fields)
        put(event, "details", details)
        put(event, "sequence", None)
        put(event, "hash", None)
        return event

    def sealed(self, occurred_at: datetime, sequence: int, hash: str) -> AuditEvent:
        """This event placed in its chain: at ``sequence``, with its ``hash``, dated
        ``occurred_at`` (``AuditChain.seal`` computes them); its content, checked
        when it was built, is not checked again."""
        event = object.__new__(type(self))
        put = object.__setattr__
        for name in _AUDIT_CONTENT:
            put(event, name, getattr(self, name))
        put(event, "occurred_at", occurred_at)
        put(event, "sequence", sequence)
        put(event, "hash", hash)
        return event


_AUDIT_CONTENT = ("id", "tenant_id", "customer_id", "actor", "action", "changed_fields", "details")


@dataclass(kw_only=True, frozen=True, slots=True)
class MergeAlias:
    """A merged-away customer id that now resolves to ``customer_id``."""

    tenant_id: str
    alias_id: int
    customer_id: int
    merged_at: datetime


@dataclass(kw_only=True, frozen=True, slots=True)
class DuplicateDecision:
    """Two customers a user judged to be two people: the pair is never suggested as a
    duplicate again. The pair is in canonical order, ``customer_id < other_id``.

    Attributes:
        tenant_id: The tenant of both customers.
        customer_id: The lower id of the two.
        other_id: The higher id.
        decided_by: The user who decided (the acting user), if known.
        decided_at: When.
    """

    tenant_id: str
    customer_id: int
    other_id: int
    decided_by: str | None
    decided_at: datetime

    def __post_init__(self) -> None:
        if not self.customer_id < self.other_id:
            raise ValueError("a decision names its pair in order: customer_id < other_id")

    def other_than(self, customer_id: int) -> int:
        """The customer of the pair that is not ``customer_id``."""
        return self.other_id if customer_id == self.customer_id else self.customer_id
