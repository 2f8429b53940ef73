"""Pydantic DTOs at the service boundary: what callers send and what they get back.

Every string and JSON value accepted here can be stored by every supported backend:
NUL characters, lone surrogates and non-finite numbers are rejected with an error
naming the field, instead of failing later inside a database driver.

Host applications extend the schemas by subclassing: fields a subclass of
``CustomerCreate`` or ``CustomerUpdate`` adds travel to the storage as ``extra``
values (matching the columns the host added to its customer model), and a subclass
of ``CustomerResponse`` returns them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, Self, TypeVar

import email_validator
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    JsonValue,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from linkbay_customers.domain import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    MAX_ID,
    MAX_JSON_DOCUMENT_BYTES,
    Address,
    AddressType,
    AuditEvent,
    ConsentEvent,
    Customer,
    CustomerFilters,
    CustomerNote,
    CustomerSort,
    DuplicateDecision,
    MergeAlias,
    Order,
    OrderItem,
    OrderShipping,
    Page,
    TagMatch,
    is_international_phone,
    json_document_size,
    normalize_phone,
)

if TYPE_CHECKING:
    from linkbay_customers.services import (
        ChurnPrediction,
        ClvPrediction,
        ConsentHistory,
        DataExport,
        DuplicateSuggestion,
        Erasure,
        ProductRecommendation,
        ScoringSummary,
        SimilarCustomer,
    )

__all__ = (
    "AddressCreate",
    "AddressResponse",
    "AddressUpdate",
    "AuditEventResponse",
    "ChurnRiskResponse",
    "ClvResponse",
    "ConsentHistoryResponse",
    "ConsentEventResponse",
    "ConsentMetadata",
    "ConsentStateResponse",
    "CustomerAnalytics",
    "CustomerDataExport",
    "ErasureResult",
    "CustomerCreate",
    "CustomerMergeRequest",
    "CustomerNoteCreate",
    "CustomerNoteResponse",
    "CustomerResponse",
    "CustomerSearchFilters",
    "CustomerUpdate",
    "DuplicateDecisionResponse",
    "DuplicateSuggestionResponse",
    "MergeAliasResponse",
    "Money",
    "OrderCreate",
    "OrderItemCreate",
    "OrderItemResponse",
    "OrderResponse",
    "OrderShippingData",
    "PageResponse",
    "RecommendationResponse",
    "ScoringSummaryResponse",
    "SegmentResponse",
    "SimilarCustomerResponse",
    "STORABLE_PATTERN",
    "added_fields",
    "extra_values",
    "field_error_message",
    "normalize_email",
)

_T = TypeVar("_T")

_MAX_JSON_DEPTH = 16


# Text the databases can store: no NUL character (PostgreSQL refuses it) and no
# lone surrogate (not encodable as UTF-8). Checked by pydantic-core's own regex
# engine, which rejects undecodable text and is many times faster than a Python
# validator on every field; errors get our wording in ``field_error_message``.
STORABLE_PATTERN = r"^[^\x00]*$"
Storable = StringConstraints(pattern=STORABLE_PATTERN)

_NUL_MESSAGE = "must not contain NUL characters"
_UNICODE_MESSAGE = "must be valid Unicode text"


def _storable(text: str) -> str:
    """The same rule for text inside JSON documents, which pydantic does not constrain."""
    if "\x00" in text:
        raise ValueError(_NUL_MESSAGE)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(_UNICODE_MESSAGE) from exc
    return text


def field_error_message(error: Mapping[str, Any]) -> str:
    """A pydantic error item's message, in the library's words where it has its own.

    The rule a field breaks is named in words (``must not contain NUL characters``),
    never as the regular expression that checks it; a validator's own message comes
    without pydantic's ``Value error,`` prefix.
    """
    kind = error.get("type")
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == (
        STORABLE_PATTERN
    ):
        return _NUL_MESSAGE
    if kind == "string_unicode":
        return _UNICODE_MESSAGE
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    return message


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


# Upper bounds of a JSON value's serialized size in UTF-8 bytes: a character takes
# at most 6 (an escape such as \u0000), an integer a digit per 3 bits, any other
# scalar at most 32, and each item at most 4 more for its separators and quotes.
_MAX_CHAR_BYTES = 6
_MAX_SCALAR_BYTES = 32
_ITEM_BYTES = 4


def _check_json(value: object, depth: int = 0) -> int:
    """Check a JSON value is storable; return an upper bound of its serialized size."""
    if depth > _MAX_JSON_DEPTH:
        raise ValueError(f"must not nest deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return len(_storable(value)) * _MAX_CHAR_BYTES + _ITEM_BYTES
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    if isinstance(value, Mapping):
        size = _ITEM_BYTES
        for key, item in value.items():
            size += len(_storable(key)) * _MAX_CHAR_BYTES + _ITEM_BYTES
            size += _check_json(item, depth + 1)
        return size
    if isinstance(value, list):
        return _ITEM_BYTES + sum(_check_json(item, depth + 1) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + _ITEM_BYTES + 2
    return _MAX_SCALAR_BYTES


def _json_document(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    # Serialize only when the cheap bound cannot rule out an oversized document.
    if (
        _check_json(value) > MAX_JSON_DOCUMENT_BYTES
        and json_document_size(value) > MAX_JSON_DOCUMENT_BYTES
    ):
        raise ValueError(f"must serialize to at most {MAX_JSON_DOCUMENT_BYTES} bytes")
    return value


# RFC 5322 dot-atom-text: the plain form of a local part, which email-validator
# accepts as it is (up to 64 characters).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_LOCAL_PART = 64
_MAX_EMAIL = 254


@functools.lru_cache(maxsize=65_536)
def _checked_domain(domain: str) -> str | None:
    """email-validator's verdict on a domain alone: its normalized form, or None."""
    try:
        return email_validator.validate_email(f"a@{domain}", check_deliverability=False).domain
    except email_validator.EmailNotValidError:
        return None


def normalize_email(value: str) -> str:
    """Validate an email address with email-validator and lower-case it.

    Bulk imports see the same domains over and over, so a plain address (a
    dot-atom local part at a domain email-validator has already accepted) reuses
    that verdict; anything else is validated in full. The two paths agree on
    every address (tests/unit/test_email.py).
    """
    local, at, domain = value.rpartition("@")
    if at and len(local) <= _MAX_LOCAL_PART and _DOT_ATOM.fullmatch(local):
        checked = _checked_domain(domain)
        if checked is not None and len(local) + 1 + len(checked) <= _MAX_EMAIL:
            return f"{local}@{checked}".lower()
    try:
        result = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return result.normalized.lower()


def _phone(value: str) -> str:
    # A number with its country code is checked and normalized here; one without
    # it waits for the service, which knows the default region the host set.
    return normalize_phone(value) if is_international_phone(value) else value


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, such as 'IT'")
    return code


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in CURRENCY_CODES:
        raise ValueError("must be an ISO 4217 currency code, such as 'EUR'")
    return code


def _unique_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _int_to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# A decimal written as a JSON number is (digits, an optional fraction and exponent),
# and nothing else Decimal() would take: digit separators (Python's "1_000"),
# surrounding spaces, "NaN" or "Infinity".
_PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _plain_money(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number or a decimal string such as '19.99'")
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(
            "must be a number or a decimal string such as '19.99', without spaces or "
            "digit separators"
        )
    return value


def _unsigned_zero(value: Decimal) -> Decimal:
    # -0 is no amount anyone owes: it is stored and returned as 0.
    return value.copy_abs() if value.is_zero() else value


def _money_json(value: Decimal) -> float:
    return float(_unsigned_zero(value))


def _not_null(cls: type[BaseModel], value: object) -> object:
    # Runs only for fields the caller sent: an omitted field is never validated.
    if value is None:
        raise ValueError("cannot be null")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("must lie between years 1 and 9999 once converted to UTC") from None


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A timezone-aware datetime, converted to UTC as every storage keeps it."""

Text = Annotated[str, Storable]
"""A storable string, stripped of surrounding whitespace by the model config."""

# Optional storable strings of bounded length; a blank string means None.
OptionalText20 = Annotated[
    Annotated[str, Field(max_length=20), Storable] | None,
    BeforeValidator(_blank_to_none),
]
OptionalText32 = Annotated[
    Annotated[str, Field(max_length=32), Storable] | None,
    BeforeValidator(_blank_to_none),
]
OptionalText100 = Annotated[
    Annotated[str, Field(max_length=100), Storable] | None,
    BeforeValidator(_blank_to_none),
]
OptionalText200 = Annotated[
    Annotated[str, Field(max_length=200), Storable] | None,
    BeforeValidator(_blank_to_none),
]
Name = OptionalText100
Email = Annotated[
    str,
    Field(max_length=_MAX_EMAIL, json_schema_extra={"format": "email"}),
    Storable,
    AfterValidator(normalize_email),
]
Phone = Annotated[
    Annotated[str, Field(max_length=40), Storable, AfterValidator(_phone)] | None,
    BeforeValidator(_blank_to_none),
]
Tag = Annotated[str, Field(min_length=1, max_length=64), Storable]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_unique_tags)]
Preferences = Annotated[dict[str, JsonValue], AfterValidator(_json_document)]
Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
Money = Annotated[
    Decimal,
    BeforeValidator(_plain_money),
    Field(ge=0, le=Decimal("1e13"), max_digits=18, decimal_places=4, allow_inf_nan=False),
    AfterValidator(_unsigned_zero),
]
"""An amount of money: a JSON number, or a string written as one (``"19.99"``), from 0
up to 10^13 with at most four decimals; ``-0`` is 0."""
MoneyOut = Annotated[Decimal, PlainSerializer(_money_json, return_type=float, when_used="json")]
Birthday = Annotated[date, Field(ge=date(1900, 1, 1))]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ProductId = Annotated[
    str,
    BeforeValidator(_int_to_str),
    Field(min_length=1, max_length=128),
    Storable,
]

_INPUT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def extra_values(data: BaseModel, base: type[BaseModel], *, only_set: bool) -> dict[str, Any]:
    """The values of fields a host's subclass adds on top of ``base``.

    Args:
        data: An instance of ``base`` or of a subclass of it.
        base: The library schema the host extended.
        only_set: Keep only fields the caller actually sent (partial updates).
    """
    names = added_fields(type(data), base)
    if only_set:
        names &= data.model_fields_set
    return data.model_dump(include=set(names)) if names else {}


@functools.cache
def added_fields(schema: type[BaseModel], base: type[BaseModel]) -> frozenset[str]:
    """The fields a host's subclass ``schema`` adds on top of the library's ``base``."""
    return frozenset(schema.model_fields) - frozenset(base.model_fields)


# ---------------------------------------------------------------------------- customers


class CustomerCreate(BaseModel):
    """Data of a new customer. Only ``email`` is required."""

    model_config = _INPUT

    email: Email
    first_name: Name = None
    last_name: Name = None
    phone: Phone = None
    birthday: Birthday | None = None
    gender: OptionalText32 = None
    preferences: Preferences = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    created_at: UtcDateTime | None = Field(
        default=None,
        description="When the customer signed up, for customers brought over from another "
        "system (timezone-aware; not in the future). Defaults to the time of creation; an "
        "import keeps an existing customer's.",
    )


class CustomerUpdate(BaseModel):
    """A partial update: only the fields sent change.

    ``preferences`` is applied as a JSON Merge Patch (RFC 7396): keys sent replace
    those stored, a key sent as ``null`` is removed, keys not sent stay. ``tags``
    replaces the whole list. Sending ``null`` clears an optional field; ``email``
    cannot be cleared.
    """

    model_config = _INPUT

    email: Email | None = None
    first_name: Name = None
    last_name: Name = None
    phone: Phone = None
    birthday: Birthday | None = None
    gender: OptionalText32 = None
    preferences: Preferences | None = None
    tags: Tags | None = None

    _email_not_null = field_validator("email")(_not_null)


class CustomerResponse(BaseModel):
    """A customer as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    birthday: date | None
    gender: str | None
    preferences: dict[str, JsonValue]
    tags: list[str]
    currency: str | None
    total_orders: int
    total_spent: MoneyOut
    average_order_value: MoneyOut
    first_order_at: datetime | None
    last_order_at: datetime | None
    customer_lifetime_value: MoneyOut | None
    churn_risk_score: float | None
    segment: str | None
    scored_at: datetime | None
    score_source: str | None
    is_anonymized: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_domain(cls, customer: Customer) -> Self:
        """Build the response, including the host's extra fields when ``cls`` declares them."""
        values = {name: getattr(customer, name) for name in CustomerResponse.model_fields}
        values.update({k: v for k, v in customer.extra.items() if k in cls.model_fields})
        return cls.model_validate(values)


class CustomerSearchFilters(BaseModel):
    """Filters of a customer listing (see ``CustomerFilters`` for the exact semantics)."""

    model_config = _INPUT

    segment: Annotated[str, Field(min_length=1, max_length=64), Storable] | None = None
    min_total_spent: Money | None = None
    max_total_spent: Money | None = None
    tags: Tags = Field(default_factory=list)
    tags_match: TagMatch = TagMatch.ANY
    email_contains: Annotated[str, Field(min_length=1, max_length=254), Storable] | None = None
    created_after: UtcDateTime | None = None
    created_before: UtcDateTime | None = None
    include_deleted: bool = False
    sort: CustomerSort = CustomerSort.CREATED_AT_DESC

    @field_validator("max_total_spent")
    @classmethod
    def _max_not_below_min(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        low = info.data.get("min_total_spent")
        if value is not None and low is not None and value < low:
            raise ValueError("must not be below min_total_spent")
        return value

    @field_validator("created_before")
    @classmethod
    def _before_after_after(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        after = info.data.get("created_after")
        if value is not None and after is not None and value <= after:
            raise ValueError("must be later than created_after")
        return value

    def to_filters(self) -> CustomerFilters:
        """The domain form of these filters."""
        return CustomerFilters(
            segment=self.segment,
            min_total_spent=self.min_total_spent,
            max_total_spent=self.max_total_spent,
            tags=tuple(self.tags),
            tags_match=self.tags_match,
            email_contains=self.email_contains,
            created_after=self.created_after,
            created_before=self.created_before,
            include_deleted=self.include_deleted,
            sort=self.sort,
        )


class CustomerMergeRequest(BaseModel):
    """Merge ``source`` into ``target``; the source is soft-deleted and kept as an alias."""

    model_config = _INPUT

    source_customer_id: Id
    target_customer_id: Id
    merge_addresses: StrictBool = True
    merge_notes: StrictBool = True
    merge_tags: StrictBool = True
    merge_preferences: StrictBool = False


class DuplicateSuggestionResponse(BaseModel):
    """Two customers likely to be the same person, and the merge that would fold them."""

    customer_id: int
    other_id: int
    match_probability: float = Field(
        description="The probability, from 0 to 1, that the two are one person."
    )
    agreeing: list[str] = Field(
        description="The compared fields that agree, each as `field: level`, such as "
        "`email: same mailbox`."
    )
    disagreeing: list[str] = Field(description="The compared fields both have that disagree.")
    merge_request: CustomerMergeRequest = Field(
        description="The body of `POST /customers/merge` that folds the pair."
    )
    keep_reason: str = Field(
        description="Why the merge keeps its target: `more orders`, `older customer` or `lower id`."
    )

    @classmethod
    def from_domain(cls, suggestion: DuplicateSuggestion) -> Self:
        """Build the response from the service's suggestion."""
        return cls(
            customer_id=suggestion.customer_id,
            other_id=suggestion.other_id,
            match_probability=suggestion.match_probability,
            agreeing=list(suggestion.agreeing),
            disagreeing=list(suggestion.disagreeing),
            merge_request=suggestion.merge_request,
            keep_reason=suggestion.keep_reason,
        )


class DuplicateDecisionResponse(BaseModel):
    """Two customers a user marked as two people: the pair is never suggested again."""

    customer_id: int = Field(description="The lower id of the pair.")
    other_id: int = Field(description="The higher id of the pair.")
    decided_by: str | None = Field(description="The user who decided, if known.")
    decided_at: datetime

    @classmethod
    def from_domain(cls, decision: DuplicateDecision) -> Self:
        """Build the response from the domain decision."""
        return cls(
            customer_id=decision.customer_id,
            other_id=decision.other_id,
            decided_by=decision.decided_by,
            decided_at=decision.decided_at,
        )


class MergeAliasResponse(BaseModel):
    """A merged-away customer id and the customer it resolves to."""

    alias_id: int
    customer_id: int
    merged_at: datetime

    @classmethod
    def from_domain(cls, alias: MergeAlias) -> Self:
        """Build the response from the domain alias."""
        return cls(
            alias_id=alias.alias_id, customer_id=alias.customer_id, merged_at=alias.merged_at
        )


# ---------------------------------------------------------------------------- addresses


class AddressCreate(BaseModel):
    """A new address; ``country`` is an ISO 3166-1 alpha-2 code."""

    model_config = _INPUT

    type: AddressType
    address_line1: Annotated[str, Field(min_length=1, max_length=200), Storable]
    address_line2: OptionalText200 = None
    city: Annotated[str, Field(min_length=1, max_length=100), Storable]
    state: OptionalText100 = None
    postal_code: Annotated[str, Field(min_length=1, max_length=20), Storable]
    country: Country
    is_default: StrictBool = False


class AddressUpdate(BaseModel):
    """A partial address update; only the fields sent change."""

    model_config = _INPUT

    type: AddressType | None = None
    address_line1: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None
    address_line2: OptionalText200 = None
    city: Annotated[str, Field(min_length=1, max_length=100), Storable] | None = None
    state: OptionalText100 = None
    postal_code: Annotated[str, Field(min_length=1, max_length=20), Storable] | None = None
    country: Country | None = None
    is_default: StrictBool | None = None

    _required_not_null = field_validator(
        "type", "address_line1", "city", "postal_code", "country", "is_default"
    )(_not_null)


class AddressResponse(BaseModel):
    """An address as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    type: AddressType
    address_line1: str
    address_line2: str | None
    city: str
    state: str | None
    postal_code: str
    country: str
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, address: Address) -> Self:
        """Build the response from the domain address."""
        return cls.model_validate(address)


# -------------------------------------------------------------------------------- notes


class CustomerNoteCreate(BaseModel):
    """A new note about a customer."""

    model_config = _INPUT

    note: Annotated[str, Field(min_length=1, max_length=10_000), Storable]


class CustomerNoteResponse(BaseModel):
    """A note as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    note: str
    created_by: str | None
    created_at: datetime

    @classmethod
    def from_domain(cls, note: CustomerNote) -> Self:
        """Build the response from the domain note."""
        return cls.model_validate(note)


# ------------------------------------------------------------------------------- orders


class OrderItemCreate(BaseModel):
    """One order line; ``product_id`` may be sent as a string or an integer."""

    model_config = _INPUT

    product_id: ProductId
    product_name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    unit_price: Money

    def to_domain(self) -> OrderItem:
        """The domain order line."""
        return OrderItem(
            product_id=self.product_id,
            product_name=self.product_name,
            quantity=self.quantity,
            unit_price=self.unit_price,
        )


class OrderShippingData(BaseModel):
    """Where an order was shipped. Personal data: erased with the customer."""

    model_config = _INPUT

    recipient_name: OptionalText200 = None
    address_line1: OptionalText200 = None
    address_line2: OptionalText200 = None
    city: OptionalText100 = None
    state: OptionalText100 = None
    postal_code: OptionalText20 = None
    country: Country | None = None
    phone: Phone = None


class OrderCreate(BaseModel):
    """An order from the host's order system (the seed's ``order_data``).

    ``order_id`` is the host's identifier and makes recording idempotent.
    ``created_at`` defaults to the time of recording; ``currency`` defaults to the
    customer's currency, or the service's default for a first order.
    """

    model_config = _INPUT

    order_id: Annotated[
        str,
        BeforeValidator(_int_to_str),
        Field(min_length=1, max_length=128),
        Storable,
    ]
    total: Money
    currency: Currency | None = None
    created_at: UtcDateTime | None = None
    items: Annotated[list[OrderItemCreate], Field(max_length=1000)] = Field(default_factory=list)
    shipping: OrderShippingData | None = None

    def shipping_to_domain(self) -> OrderShipping | None:
        """The domain shipping details, if any were sent."""
        return None if self.shipping is None else OrderShipping(**self.shipping.model_dump())


class OrderItemResponse(BaseModel):
    """An order line as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    product_id: str
    product_name: str
    quantity: int
    unit_price: MoneyOut


class OrderShippingResponse(BaseModel):
    """Shipping details as the API returns them."""

    model_config = ConfigDict(from_attributes=True)

    recipient_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    phone: str | None


class OrderResponse(BaseModel):
    """An order as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    order_id: str
    total: MoneyOut
    currency: str
    created_at: datetime
    recorded_at: datetime
    items: list[OrderItemResponse]
    shipping: OrderShippingResponse | None

    @classmethod
    def from_domain(cls, order: Order) -> Self:
        """Build the response from the domain order."""
        return cls.model_validate(order)


# -------------------------------------------------------------------------------- audit


class AuditEventResponse(BaseModel):
    """An audit record as the API returns it: field names and ids, never personal values."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    actor: str | None
    action: str
    occurred_at: datetime
    changed_fields: list[str]
    details: dict[str, JsonValue]
    sequence: int | None = Field(
        default=None, description="The event's position in its customer's audit chain."
    )
    hash: str | None = Field(
        default=None,
        description="HMAC-SHA256 (hex) over the event and the previous event's hash, under"
        " the host's audit key: `linkbay-customers audit verify` checks the chain.",
    )

    @classmethod
    def from_domain(cls, event: AuditEvent) -> Self:
        """Build the response from the domain event."""
        return cls.model_validate(event)


# --------------------------------------------------------------------------------- GDPR


# pydantic names the format of IPvAnyAddress "ipvanyaddress", which no JSON Schema tool
# knows; the document says what it accepts in the standard formats.
IpAddress = Annotated[
    IPvAnyAddress,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}
    ),
]


class ConsentMetadata(BaseModel):
    """Where a consent decision was taken; never the decision or its date."""

    model_config = _INPUT

    source: Annotated[str, Field(min_length=1, max_length=255), Storable] | None = None
    ip_address: IpAddress | None = None
    user_agent: Annotated[str, Field(min_length=1, max_length=1024), Storable] | None = None


class ConsentStateResponse(BaseModel):
    """The current state of one consent type (the seed's ``consent_data`` entry)."""

    model_config = ConfigDict(from_attributes=True)

    consented: bool
    date: datetime
    source: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


class ConsentEventResponse(BaseModel):
    """One entry of the consent ledger."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    consent_type: str
    consented: bool
    previous: bool | None
    occurred_at: datetime
    source: str | None
    ip_address: str | None
    user_agent: str | None

    @classmethod
    def from_domain(cls, event: ConsentEvent) -> Self:
        """Build the response from the domain event."""
        return cls.model_validate(event)


class ErasureResult(BaseModel):
    """What ``delete_customer_data`` did (the seed's shape)."""

    success: bool
    method: Literal["anonymized", "deleted"]
    customer_id: int
    deleted_at: datetime

    @classmethod
    def of(cls, erasure: Erasure) -> Self:
        """Build the response from ``GDPRService.delete_customer_data``'s result."""
        return cls(
            success=True,
            method=erasure.method,
            customer_id=erasure.customer_id,
            deleted_at=erasure.deleted_at,
        )


class CustomerAnalytics(BaseModel):
    """Derived data about a customer, and when and by what it was computed."""

    model_config = ConfigDict(from_attributes=True)

    currency: str | None
    total_orders: int
    total_spent: MoneyOut
    average_order_value: MoneyOut
    first_order_at: datetime | None
    last_order_at: datetime | None
    segment: str | None
    churn_risk_score: float | None
    customer_lifetime_value: MoneyOut | None
    scored_at: datetime | None
    score_source: str | None
    embedding_version: str | None
    embedding: list[float] | None


class CustomerDataExport(BaseModel):
    """Everything held about one person (GDPR articles 15 and 20)."""

    export_date: datetime
    export_format: Literal["json"] = "json"
    customer: dict[str, JsonValue]
    addresses: list[AddressResponse]
    notes: list[CustomerNoteResponse]
    orders: list[OrderResponse]
    consent: dict[str, ConsentStateResponse]
    consent_history: list[ConsentEventResponse]
    analytics: CustomerAnalytics
    merge_aliases: list[MergeAliasResponse]
    merged_customers: list[dict[str, JsonValue]]
    duplicate_decisions: list[DuplicateDecisionResponse] = Field(
        description="The pairs the person is in that a user marked as two people."
    )
    audit_trail: list[AuditEventResponse]

    @classmethod
    def of(cls, export: DataExport) -> Self:
        """Build the document from ``GDPRService.export_customer_data``'s result."""
        return cls(
            export_date=export.export_date,
            customer=_customer_document(export.customer),
            addresses=[AddressResponse.from_domain(a) for a in export.addresses],
            notes=[CustomerNoteResponse.from_domain(n) for n in export.notes],
            orders=[OrderResponse.from_domain(o) for o in export.orders],
            consent={
                kind: ConsentStateResponse.model_validate(state)
                for kind, state in export.consent.items()
            },
            consent_history=[ConsentEventResponse.from_domain(e) for e in export.consent_history],
            analytics=CustomerAnalytics.model_validate(export.customer),
            merge_aliases=[MergeAliasResponse.from_domain(a) for a in export.merge_aliases],
            merged_customers=[_customer_document(c) for c in export.merged_customers],
            duplicate_decisions=[
                DuplicateDecisionResponse.from_domain(d) for d in export.duplicate_decisions
            ],
            audit_trail=[AuditEventResponse.from_domain(e) for e in export.audit_trail],
        )


_EXTRA: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _customer_document(customer: Customer) -> dict[str, Any]:
    """A customer in an export: the profile, its consent state and every extra field."""
    document: dict[str, Any] = CustomerResponse.from_domain(customer).model_dump(mode="json")
    document["consent_data"] = {
        kind: ConsentStateResponse.model_validate(state).model_dump(mode="json")
        for kind, state in customer.consent_data.items()
    }
    document.update(_EXTRA.dump_python(customer.extra, mode="json"))
    return document


class PageResponse(BaseModel, Generic[_T]):
    """One page of a listing, with the totals across all pages."""

    items: list[_T]
    total: int = Field(description="How many items the listing has across all pages.")
    page: int = Field(description="This page's number, from 1.")
    page_size: int = Field(description="Items per page.")
    total_pages: int = Field(description="How many pages the listing has at this page size.")

    @classmethod
    def of(cls, page: Page[Any], items: list[_T]) -> Self:
        """Build the response from a domain page and its items as response models."""
        return cls(
            items=items,
            total=page.total,
            page=page.page,
            page_size=page.page_size,
            total_pages=page.total_pages,
        )


# ------------------------------------------------------------------- GDPR answers


class ConsentHistoryResponse(BaseModel):
    """The current decision per consent type, keyed by type (the seed's shape), and
    under ``events`` every decision ever recorded, oldest first."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "marketing": {
                        "consented": True,
                        "date": "2025-01-15T10:30:00Z",
                        "source": "signup_form",
                        "ip_address": "192.168.1.1",
                        "user_agent": "Mozilla/5.0",
                    },
                    "events": [
                        {
                            "id": 1,
                            "consent_type": "marketing",
                            "consented": True,
                            "previous": None,
                            "occurred_at": "2025-01-15T10:30:00Z",
                            "source": "signup_form",
                            "ip_address": "192.168.1.1",
                            "user_agent": "Mozilla/5.0",
                        }
                    ],
                }
            ]
        },
    )
    # Every key but ``events`` is a consent type holding its current state.
    __pydantic_extra__: dict[str, ConsentStateResponse] = Field(init=False)

    events: list[ConsentEventResponse]

    @classmethod
    def of(cls, history: ConsentHistory) -> ConsentHistoryResponse:
        """Build the response from ``GDPRService.get_consent_history``'s result."""
        return cls.model_validate(
            {
                **{
                    kind: ConsentStateResponse.model_validate(state)
                    for kind, state in history.current.items()
                },
                "events": [ConsentEventResponse.from_domain(e) for e in history.events],
            }
        )


# --------------------------------------------------------------------------- intelligence

_SOURCE = Field(
    description="What computed the answer: the intelligence adapter's name, such as `heuristic`."
)


class SegmentResponse(BaseModel):
    """The answer of ``POST /customers/{customer_id}/segment``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_id": 42, "segment": "high_value"}]}
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    segment: str | None = Field(
        description="The segment now stored: `new`, `active`, `high_value`, `at_risk`, "
        "`dormant`, `churned`, or one of the intelligence adapter's own."
    )


class ChurnRiskResponse(BaseModel):
    """A customer's churn risk and how to read it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "churn_risk_score": 0.23,
                    "risk_level": "low",
                    "source": "heuristic",
                }
            ]
        }
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    churn_risk_score: float = Field(
        ge=0, le=1, description="The probability-like risk that the customer has churned."
    )
    risk_level: Literal["low", "medium", "high"] = Field(
        description="`low` below 0.3, `medium` below 0.6, `high` from 0.6."
    )
    source: str = _SOURCE

    @classmethod
    def of(cls, prediction: ChurnPrediction) -> Self:
        """Build the response from ``AIService.calculate_churn_risk``."""
        return cls.model_validate(prediction, from_attributes=True)


class ClvResponse(BaseModel):
    """A customer's predicted lifetime value over the coming months."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "predicted_clv": 1249.99,
                    "prediction_months": 12,
                    "source": "heuristic",
                }
            ]
        }
    )

    customer_id: int = Field(description="The customer's id (a merged id's target).")
    predicted_clv: MoneyOut = Field(
        description="Expected revenue over the period, in the customer's currency "
        "(0 for a customer without orders)."
    )
    prediction_months: int = Field(description="The period predicted, in months.")
    source: str = _SOURCE

    @classmethod
    def of(cls, prediction: ClvPrediction) -> Self:
        """Build the response from ``AIService.predict_clv``."""
        return cls.model_validate(prediction, from_attributes=True)


class SimilarCustomerResponse(BaseModel):
    """A customer behaving like the one asked about (the seed's shape, with the names)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 87,
                    "email": "similar@example.com",
                    "first_name": "Giulia",
                    "last_name": "Bianchi",
                    "segment": "high_value",
                    "similarity_score": 0.92,
                }
            ]
        }
    )

    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    segment: str | None
    similarity_score: float = Field(
        description="Cosine similarity of the two customers' behaviour, from -1 to 1."
    )

    @classmethod
    def of(cls, similar: SimilarCustomer) -> Self:
        """Build the response from one result of ``AIService.find_similar_customers``."""
        customer = similar.customer
        return cls(
            id=customer.id,
            email=customer.email,
            first_name=customer.first_name,
            last_name=customer.last_name,
            segment=customer.segment,
            similarity_score=similar.similarity_score,
        )


class RecommendationResponse(BaseModel):
    """A product to suggest to a customer, with why (the seed's shape)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "123",
                    "product_name": "Premium Subscription",
                    "score": 0.87,
                    "reason": "bought by 4 of the 20 customers most similar to this one",
                }
            ]
        }
    )

    product_id: str = Field(description="The product's id, as recorded on orders (a string).")
    product_name: str
    score: float = Field(ge=0, le=1, description="How strongly the product is suggested.")
    reason: str = Field(description="Why it is suggested, for people to read.")

    @classmethod
    def of(cls, recommendation: ProductRecommendation) -> Self:
        """Build the response from one result of ``AIService.generate_recommendations``."""
        return cls.model_validate(recommendation, from_attributes=True)


class ScoringSummaryResponse(BaseModel):
    """What scoring a whole tenant did."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customers": 1200,
                    "skipped_without_consent": 14,
                    "per_segment": {"active": 410, "new": 296, "at_risk": 180, "churned": 300},
                    "churn_risk_distribution": {
                        "0.0-0.2": 610,
                        "0.2-0.4": 120,
                        "0.4-0.6": 96,
                        "0.6-0.8": 60,
                        "0.8-1.0": 300,
                    },
                    "total_predicted_clv": 84210.5,
                    "sources": {"heuristic": 1186},
                    "embeddings_written": 0,
                }
            ]
        }
    )

    customers: int = Field(description="Customers walked (every non-deleted customer).")
    skipped_without_consent: int = Field(
        description="Customers the profiling policy excludes: not scored, derived data cleared."
    )
    per_segment: dict[str, int] = Field(description="Scored customers per segment.")
    churn_risk_distribution: dict[str, int] = Field(
        description="Scored customers per churn-risk bucket (`0.0-0.2` to `0.8-1.0`)."
    )
    total_predicted_clv: MoneyOut = Field(
        description="Sum of the scored customers' predicted lifetime values over the period."
    )
    sources: dict[str, int] = Field(description="Scored customers per intelligence source.")
    embeddings_written: int = Field(
        description=(
            "Embeddings stored anew or removed. Every change of a customer's orders stores"
            " theirs, so a run rewrites only those of another version or left stale."
        )
    )

    @classmethod
    def of(cls, summary: ScoringSummary) -> Self:
        """Build the response from ``AIService.score_tenant``."""
        return cls(
            customers=summary.customers,
            skipped_without_consent=summary.skipped_without_consent,
            per_segment=dict(summary.per_segment),
            churn_risk_distribution=dict(summary.churn_risk_distribution),
            total_predicted_clv=summary.total_predicted_clv,
            sources=dict(summary.sources),
            embeddings_written=summary.embeddings_written,
        )
