"""ORM mixins a host extends, and the ready-made default models.

Every table carries ``tenant_id``, and every primary key, unique constraint and
foreign key leads with it: the database itself refuses a row that points at
another tenant's row, and the schema distributes by ``tenant_id`` unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from linkbay_customers.domain import Customer, ExtraErasure
from linkbay_customers_sqlalchemy._audit_triggers import (
    AUDIT_CHAINS_INFO,
    AUDIT_TABLE_LISTENERS,
    create_triggers_of_table,
    drop_triggers_of_table,
)
from linkbay_customers_sqlalchemy._types import Embedding, JSONDocument, Money, UTCDateTime

__all__ = (
    "CUSTOMER_FIELDS",
    "INFO_KEY",
    "SEARCH_COLUMNS",
    "AddressMixin",
    "AuditChainMixin",
    "AuditEventMixin",
    "ConsentEventMixin",
    "CustomerEmbeddingMixin",
    "CustomerMixin",
    "CustomerNoteMixin",
    "DuplicateDecisionMixin",
    "IdCounterMixin",
    "LinkbayBase",
    "MergeAliasMixin",
    "ModelFitMixin",
    "ModelSet",
    "OrderLineMixin",
    "OrderMixin",
    "build_models",
    "create_audit_triggers",
    "customer_extra_columns",
    "default_models",
    "drop_audit_triggers",
    "extra_erasure",
    "not_personal",
    "personal",
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_NOT_DELETED = text("deleted_at IS NULL")


def _tenant_column() -> Mapped[str]:
    return mapped_column(String(64), primary_key=True, sort_order=-20)


class _HasTenantId:
    """An ``id`` unique within the tenant, handed out by the tenant's counter
    (``IdCounterMixin``): no sequence shared by every tenant."""

    @declared_attr
    @classmethod
    def id(cls) -> Mapped[int]:
        return mapped_column(BigInteger, primary_key=True, autoincrement=False, sort_order=-19)


CUSTOMER_FIELDS = tuple(f.name for f in dataclasses.fields(Customer) if f.name != "extra")
"""The fields of a customer the library knows."""

SEARCH_COLUMNS = {
    "search_email": "email",
    "search_first_name": "first_name",
    "search_last_name": "last_name",
}
"""The customer table's search columns, each the ``search_key`` of the field it names.

With ``CUSTOMER_FIELDS`` the columns of the library; the other columns of the
table are the host's extras."""

INFO_KEY = "linkbay"
"""The key of a column's ``info`` holding what the library is told about the column."""

_DECLARATION_KEYS = frozenset({"personal", "anonymized"})


def personal(*, anonymized: Any = None) -> dict[str, Any]:
    """Column ``info`` declaring an extra customer column personal, and what erasure writes.

    Every extra column is personal unless declared otherwise; the declaration is
    needed for a NOT NULL column, which anonymization cannot empty::

        company_name = Column(String(255), nullable=False, info=personal(anonymized=""))

    Args:
        anonymized: The value anonymization writes to the column (None: NULL).

    Returns:
        The ``info`` mapping to pass to ``Column`` or ``mapped_column``; merge it
        into an ``info`` of your own with ``{**personal(...), ...}``.
    """
    return {INFO_KEY: {"personal": True, "anonymized": anonymized}}


def not_personal() -> dict[str, Any]:
    """Column ``info`` declaring an extra customer column not personal: erasure keeps it.

    For a value that identifies no one, such as a plan or an account tier::

        plan = Column(String(20), nullable=False, info=not_personal())

    Returns:
        The ``info`` mapping to pass to ``Column`` or ``mapped_column``.
    """
    return {INFO_KEY: {"personal": False}}


@functools.cache
def customer_extra_columns(table: Table) -> tuple[str, ...]:
    """The columns a host's customer model adds to the library's: the ``extra`` fields."""
    return tuple(
        c.name
        for c in table.columns
        if c.name not in CUSTOMER_FIELDS and c.name not in SEARCH_COLUMNS
    )


def _constant_default(column: Column[Any]) -> tuple[bool, Any]:
    """Whether a column has a constant default, and the value it stores."""
    default = column.default
    if default is not None and getattr(default, "is_scalar", False):
        return True, getattr(default, "arg", None)
    # A server default given as a plain string is stored as that text; SQL
    # expressions (``text(...)``) could not be written as a bound value.
    server_default = getattr(column.server_default, "arg", None)
    if isinstance(server_default, str) and isinstance(column.type, String):
        return True, server_default
    return False, None


@functools.cache
def extra_erasure(table: Table) -> ExtraErasure:
    """What anonymization writes to a customer table's extra columns, as they are declared.

    A column declared ``not_personal()`` is kept; a personal one (any other) gets
    its declared ``anonymized`` value, else NULL if it is nullable, else its
    constant default (``default=...``, or a string ``server_default``).

    Raises:
        ValueError: A NOT NULL personal column with nothing to write, or a
            malformed declaration; the message names the column.
    """
    kept: set[str] = set()
    values: dict[str, Any] = {}
    for name in customer_extra_columns(table):
        column = table.c[name]
        where = f"{table.name}.{name}"
        declared = column.info.get(INFO_KEY, {})
        if not isinstance(declared, Mapping) or not set(declared) <= _DECLARATION_KEYS:
            raise ValueError(
                f"{where}: info[{INFO_KEY!r}] takes the keys 'personal' and 'anonymized';"
                " write it with personal(anonymized=...) or not_personal()"
            )
        if declared.get("personal", True) is False:
            if "anonymized" in declared:
                raise ValueError(
                    f"{where} is declared not personal and anonymized: anonymization"
                    " keeps a column that is not personal, so drop 'anonymized'"
                )
            kept.add(name)
            continue
        value = declared.get("anonymized")
        if value is None and not column.nullable:
            has_default, value = _constant_default(column)
            if not has_default or value is None:
                raise ValueError(
                    f"{where} is NOT NULL and personal, so anonymization must write a value"
                    " to it: declare it with info=personal(anonymized=...), or mark it"
                    " info=not_personal() if it identifies no one"
                )
        if value is not None:
            values[name] = value
    return ExtraErasure(kept=frozenset(kept), values=values)


def _customer_fk(
    cls: Any, column: str = "customer_id", ondelete: str | None = None
) -> ForeignKeyConstraint:
    target = getattr(cls, "__customer_tablename__", "customers")
    return ForeignKeyConstraint(
        ["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"], ondelete=ondelete
    )


class CustomerMixin(_HasTenantId):
    """Columns of a customer (the seed's CustomerMixin and more).

    Subclass it with a declarative base and a ``__tablename__`` (``customers`` for
    the shipped migrations). Columns a subclass adds are the customer's ``extra``
    fields: accepted on create and update and returned on read and export.

    They are personal unless declared otherwise: anonymization sets them NULL, or
    writes the value declared with ``info=personal(anonymized=...)`` (needed for a
    NOT NULL column without a constant default), and keeps the columns declared
    ``info=not_personal()``.
    """

    tenant_id: Mapped[str] = _tenant_column()
    email: Mapped[str | None] = mapped_column(String(254))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    birthday: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(32))
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    currency: Mapped[str | None] = mapped_column(String(3))
    total_orders: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    average_order_value: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customer_lifetime_value: Mapped[Decimal | None] = mapped_column(Money)
    churn_risk_score: Mapped[float | None] = mapped_column(Float)
    segment: Mapped[str | None] = mapped_column(String(64))
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score_source: Mapped[str | None] = mapped_column(String(64))
    consent_data: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    is_anonymized: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The email and names as search compares them (``search_key``), written with
    # every row from the customer's own fields; never read back into a customer.
    search_email: Mapped[str | None] = mapped_column(Text)
    search_first_name: Mapped[str | None] = mapped_column(Text)
    search_last_name: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("tenant_id", "email"),
            # One index per listing filter and sort; live customers only, which
            # is what listings ask for unless told otherwise.
            Index(
                f"ix_{name}_tenant_created",
                "tenant_id",
                "created_at",
                "id",
                postgresql_where=_NOT_DELETED,
                sqlite_where=_NOT_DELETED,
            ),
            Index(
                f"ix_{name}_tenant_segment_spent",
                "tenant_id",
                "segment",
                "total_spent",
                postgresql_where=_NOT_DELETED,
                sqlite_where=_NOT_DELETED,
            ),
            Index(
                f"ix_{name}_tenant_spent",
                "tenant_id",
                "total_spent",
                "id",
                postgresql_where=_NOT_DELETED,
                sqlite_where=_NOT_DELETED,
            ),
            Index(
                f"ix_{name}_tenant_last_order",
                "tenant_id",
                "last_order_at",
                "id",
                postgresql_where=_NOT_DELETED,
                sqlite_where=_NOT_DELETED,
            ),
            # Latest order first with customers who never ordered last: a backward
            # scan of the index above would put them first, so this order has its
            # own (PostgreSQL only: SQLite indexes cannot say NULLS LAST).
            Index(
                f"ix_{name}_tenant_last_order_desc",
                "tenant_id",
                text("last_order_at DESC NULLS LAST"),
                text("id DESC"),
                postgresql_where=_NOT_DELETED,
            ).ddl_if(dialect="postgresql"),
            Index(f"ix_{name}_tenant_deleted", "tenant_id", "deleted_at"),
            Index(f"ix_{name}_tags_gin", "tags", postgresql_using="gin").ddl_if(
                dialect="postgresql"
            ),
        )


class CustomerEmbeddingMixin:
    """A customer's behavioural embedding, in a table of its own beside the customer's.

    Every new version of a row costs an entry in each index of its table, and an
    HNSW entry is dearer than all the others together (on the reference machine
    about 1.7 ms against well under 0.1 ms for the b-tree ones). Kept apart, the
    vector index is written only when an embedding is: recording an order,
    editing a profile or refreshing a segment leaves it alone. The row goes with
    its customer.
    """

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-19)
    embedding: Mapped[list[float]] = mapped_column(Embedding())
    version: Mapped[str | None] = mapped_column(String(32))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls, ondelete="CASCADE"),
            Index(
                f"ix_{name}_embedding_hnsw",
                "embedding",
                postgresql_using="hnsw",
                postgresql_with={"m": 16, "ef_construction": 64},
                postgresql_ops={"embedding": "vector_cosine_ops"},
            ).ddl_if(dialect="postgresql"),
        )


class AddressMixin(_HasTenantId):
    """Columns of a customer address (the seed's AddressMixin).

    Set ``__customer_tablename__`` when the customer table is not ``customers``.
    """

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls),
            CheckConstraint("type IN ('billing', 'shipping', 'other')", name="type"),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id"),
            Index(
                f"uq_{name}_one_default_per_type",
                "tenant_id",
                "customer_id",
                "type",
                unique=True,
                postgresql_where=text("is_default"),
                sqlite_where=text("is_default"),
            ),
        )


class CustomerNoteMixin(_HasTenantId):
    """Columns of a customer note (the seed's CustomerNoteMixin)."""

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id", "created_at"),
        )


class OrderMixin(_HasTenantId):
    """Columns of an order recorded from the host's order system."""

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str] = mapped_column(String(128))
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shipping: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls),
            UniqueConstraint("tenant_id", "order_id"),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id", "created_at"),
        )


class OrderLineMixin:
    """Columns of one order line. Set ``__order_tablename__`` if orders live elsewhere."""

    __order_tablename__: ClassVar[str] = "customer_orders"

    tenant_id: Mapped[str] = _tenant_column()
    order_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-19)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-18)
    product_id: Mapped[str] = mapped_column(String(128))
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        orders = cls.__order_tablename__
        return (
            ForeignKeyConstraint(
                ["tenant_id", "order_pk"], [f"{orders}.tenant_id", f"{orders}.id"]
            ),
            Index(f"ix_{name}_tenant_product", "tenant_id", "product_id"),
        )


class ConsentEventMixin(_HasTenantId):
    """Columns of one consent ledger entry."""

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger)
    consent_type: Mapped[str] = mapped_column(String(64))
    consented: Mapped[bool] = mapped_column(Boolean)
    previous: Mapped[bool | None] = mapped_column(Boolean)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id", "occurred_at"),
        )


class AuditEventMixin(_HasTenantId):
    """Columns of one audit record. No foreign key: the trail outlives the customer.

    The trail is append-only for the application (it gets SELECT and INSERT only)
    and hash-chained per customer: ``chain_id`` (the customer id, 0 for events
    about no customer), ``sequence`` (the position in the chain) and ``hash``
    (see ``AuditChain``). A trigger moves the chain's tip (in the table
    ``__audit_chain_tablename__`` names) with each insert, and on PostgreSQL
    stamps each event with the database's time (see ``create_audit_triggers``);
    ``metadata.create_all`` creates it with the table. A subclass that sets its
    own ``__table_args__`` must keep the ``info`` and ``listeners`` entries of
    these, or create the trigger itself.
    """

    __audit_chain_tablename__: ClassVar[str] = "customer_audit_chains"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_fields: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("tenant_id", "chain_id", "sequence"),
            Index(f"ix_{name}_tenant_time", "tenant_id", "occurred_at", "id"),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id", "occurred_at"),
            {
                "info": {AUDIT_CHAINS_INFO: cls.__audit_chain_tablename__},
                "listeners": list(AUDIT_TABLE_LISTENERS),
            },
        )


class AuditChainMixin:
    """The tip of each audit chain: its last position and hash.

    Appending locks the tip's row, so the writers of one customer's trail take
    turns while other customers' writers go on; ``audit verify`` checks that each
    chain ends at its tip (nothing removed from the end).
    """

    tenant_id: Mapped[str] = _tenant_column()
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-19)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class MergeAliasMixin:
    """A merged-away customer id and the customer it resolves to."""

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    alias_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-19)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls, "alias_id"),
            _customer_fk(cls),
            Index(f"ix_{name}_tenant_customer", "tenant_id", "customer_id"),
        )


class DuplicateDecisionMixin:
    """Two customers a user judged to be two people, in canonical order
    (``customer_id < other_id``): the pair is never suggested as a duplicate again.
    The row goes with either customer (erasure removes it first)."""

    __customer_tablename__: ClassVar[str] = "customers"

    tenant_id: Mapped[str] = _tenant_column()
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-19)
    other_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-18)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            _customer_fk(cls),
            _customer_fk(cls, "other_id"),
            CheckConstraint("customer_id < other_id", name="canonical_order"),
            # The pair's lower id leads the key; this finds it by the higher one.
            Index(f"ix_{name}_tenant_other", "tenant_id", "other_id"),
        )


class IdCounterMixin:
    """The last id handed out per tenant and kind (the table the ids are of).

    Reserving ids advances the tenant's row by the number reserved in one
    statement (an upsert returning the new last id); the row stays locked until
    the transaction ends, so concurrent writers of one tenant take turns on it
    while other tenants never wait. A rolled-back transaction gives its ids back.
    """

    tenant_id: Mapped[str] = _tenant_column()
    kind: Mapped[str] = mapped_column(String(128), primary_key=True, sort_order=-19)
    last_id: Mapped[int] = mapped_column(BigInteger)


class ModelFitMixin:
    """A statistical model fitted to one tenant: its parameters, date and sample size."""

    tenant_id: Mapped[str] = _tenant_column()
    model: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-19)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sample_size: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class ModelSet:
    """The mapped classes the storage reads and writes; all on one metadata.

    Raises:
        ValueError: The customer model has a NOT NULL personal column without a
            value for anonymization to write (see ``personal``), named in the message.
    """

    customer: type[CustomerMixin]
    address: type[AddressMixin]
    note: type[CustomerNoteMixin]
    order: type[OrderMixin]
    order_line: type[OrderLineMixin]
    consent_event: type[ConsentEventMixin]
    audit_event: type[AuditEventMixin]
    audit_chain: type[AuditChainMixin]
    merge_alias: type[MergeAliasMixin]
    model_fit: type[ModelFitMixin]
    embedding: type[CustomerEmbeddingMixin]
    id_counter: type[IdCounterMixin]
    duplicate_decision: type[DuplicateDecisionMixin]

    def __post_init__(self) -> None:
        # Refused here, when the models are bound, rather than at the first erasure,
        # which would fail on the constraint and could never succeed.
        extra_erasure(self.customer.__table__)  # type: ignore[attr-defined]

    @property
    def metadata(self) -> MetaData:
        """The metadata holding every table of the set."""
        return self.customer.__table__.metadata  # type: ignore[attr-defined, no-any-return]

    def tables(self) -> dict[str, Any]:
        """Each role's ``Table``, by role name."""
        return {f.name: getattr(self, f.name).__table__ for f in fields(self)}


_DEFAULT_NAMES = {
    "customer": ("Customer", CustomerMixin, "customers"),
    "address": ("Address", AddressMixin, "customer_addresses"),
    "note": ("CustomerNote", CustomerNoteMixin, "customer_notes"),
    "order": ("Order", OrderMixin, "customer_orders"),
    "order_line": ("OrderLine", OrderLineMixin, "customer_order_lines"),
    "consent_event": ("ConsentEvent", ConsentEventMixin, "customer_consent_events"),
    "audit_event": ("AuditEvent", AuditEventMixin, "customer_audit_events"),
    "audit_chain": ("AuditChain", AuditChainMixin, "customer_audit_chains"),
    "merge_alias": ("MergeAlias", MergeAliasMixin, "customer_merge_aliases"),
    "model_fit": ("ModelFit", ModelFitMixin, "customer_model_fits"),
    "embedding": ("CustomerEmbedding", CustomerEmbeddingMixin, "customer_embeddings"),
    "id_counter": ("IdCounter", IdCounterMixin, "customer_id_counters"),
    "duplicate_decision": (
        "DuplicateDecision",
        DuplicateDecisionMixin,
        "customer_duplicate_decisions",
    ),
}


def build_models(base: type[Any], **given: type[Any]) -> ModelSet:
    """Complete a host's models with default ones declared on the host's base.

    Args:
        base: The host's declarative base.
        **given: Models the host declared itself, by role (``customer=...``,
            ``address=...``, ...). The others are created on ``base`` with the
            shipped table names, pointing at the given customer table.

    Returns:
        The full set, ready for ``SqlAlchemyStorage``.
    """
    unknown = set(given) - set(_DEFAULT_NAMES)
    if unknown:
        raise TypeError(f"unknown model roles: {', '.join(sorted(unknown))}")
    customer_table = (
        given["customer"].__tablename__ if "customer" in given else _DEFAULT_NAMES["customer"][2]
    )
    order_table = given["order"].__tablename__ if "order" in given else "customer_orders"
    chain_table = (
        given["audit_chain"].__tablename__
        if "audit_chain" in given
        else _DEFAULT_NAMES["audit_chain"][2]
    )
    models: dict[str, type[Any]] = {}
    for role, (class_name, mixin, table_name) in _DEFAULT_NAMES.items():
        if role in given:
            models[role] = given[role]
            continue
        namespace: dict[str, Any] = {
            "__tablename__": table_name,
            "__customer_tablename__": customer_table,
            "__order_tablename__": order_table,
            "__audit_chain_tablename__": chain_table,
        }
        models[role] = type(class_name, (base, mixin), namespace)
    return ModelSet(**models)


class LinkbayBase(DeclarativeBase):
    """The declarative base of the default models."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@functools.cache
def default_models() -> ModelSet:
    """The shipped models on ``LinkbayBase`` (created once)."""
    return build_models(LinkbayBase)


def create_audit_triggers(connection: Connection, models: ModelSet) -> None:
    """Create (or replace) the triggers of a model set's audit table: the database's
    time on PostgreSQL, and the chains' tips on both databases.

    For a host that manages its schema itself, in one of its own migrations (as
    the role owning the tables): ``create_audit_triggers(op.get_bind(), models)``.
    The shipped migrations create them for the default tables, and
    ``metadata.create_all`` creates them for any model set.

    Args:
        connection: A synchronous connection (``op.get_bind()``, or inside ``run_sync``).
        models: The model set whose audit table to equip.
    """
    create_triggers_of_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]


def drop_audit_triggers(connection: Connection, models: ModelSet) -> None:
    """Drop the triggers of a model set's audit table, if they exist."""
    drop_triggers_of_table(models.audit_event.__table__, connection)  # type: ignore[attr-defined]
