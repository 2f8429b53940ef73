"""Domain errors: every failure a caller can act on has its own type and a stable code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = (
    "AddressNotFound",
    "ConsentTypeUnknown",
    "CustomerNotFound",
    "DuplicateDecisionNotFound",
    "DuplicateEmail",
    "FieldError",
    "InvalidInput",
    "InvalidDuplicateDecision",
    "InvalidMerge",
    "LinkbayError",
    "OrderConflict",
    "ProfilingNotAllowed",
    "SchemaNotMigrated",
    "StorageError",
    "StorageRejected",
    "TransactionConflict",
    "StorageRoleMissing",
    "TooManyAddresses",
)


class LinkbayError(Exception):
    """Base class of every error the library raises on purpose.

    Attributes:
        code: A stable, machine-readable error code (``customer_not_found``, ...).
        field: The input field the error is about, when there is one.
    """

    code: str = "linkbay_error"
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class CustomerNotFound(LinkbayError):
    """No customer with that id exists in the tenant (or it belongs to another tenant)."""

    code = "customer_not_found"
    field = "customer_id"

    def __init__(self, customer_id: int | str, *, field: str | None = None) -> None:
        super().__init__(f"customer {customer_id!r} not found", field=field)
        self.customer_id = customer_id


class AddressNotFound(LinkbayError):
    """No address with that id belongs to the customer."""

    code = "address_not_found"
    field = "address_id"

    def __init__(self, address_id: int) -> None:
        super().__init__(f"address {address_id} not found")
        self.address_id = address_id


class TooManyAddresses(LinkbayError):
    """The customer has as many addresses as the service allows
    (``CustomerService(max_addresses_per_customer=...)``); delete one first."""

    code = "too_many_addresses"
    field = "customer_id"

    def __init__(self, customer_id: int, limit: int) -> None:
        super().__init__(f"customer {customer_id} would have more than {limit} addresses")
        self.customer_id = customer_id
        self.limit = limit


class DuplicateEmail(LinkbayError):
    """The email is already used by another customer of the tenant.

    A soft-deleted customer keeps its email reserved so that it can be restored;
    ``existing_is_deleted`` tells the caller that restoring is the way forward.
    """

    code = "duplicate_email"
    field = "email"

    def __init__(self, email: str, *, existing_is_deleted: bool = False) -> None:
        hint = " (held by a deleted customer; restore it instead)" if existing_is_deleted else ""
        super().__init__(f"email {email!r} is already used in this tenant{hint}")
        self.email = email
        self.existing_is_deleted = existing_is_deleted


class InvalidMerge(LinkbayError):
    """The merge request cannot be carried out (self-merge, deleted customer, ...)."""

    code = "invalid_merge"


class InvalidDuplicateDecision(LinkbayError):
    """The pair cannot be decided about: one customer twice, or a customer that is
    merged away or erased (such a customer is never suggested)."""

    code = "invalid_duplicate_decision"


class DuplicateDecisionNotFound(LinkbayError):
    """No decision about that pair of customers is stored."""

    code = "duplicate_decision_not_found"
    field = "other_id"

    def __init__(self, customer_id: int, other_id: int) -> None:
        super().__init__(
            f"customers {customer_id} and {other_id} were never marked as distinct people"
        )
        self.customer_id = customer_id
        self.other_id = other_id


class OrderConflict(LinkbayError):
    """An order id was reused with different content or for another customer."""

    code = "order_conflict"
    field = "order_id"


class ConsentTypeUnknown(LinkbayError):
    """The consent type is not one the service is configured for."""

    code = "consent_type_unknown"
    field = "consent_type"

    def __init__(self, consent_type: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"unknown consent type {consent_type!r}; expected one of {', '.join(allowed)}"
        )
        self.consent_type = consent_type
        self.allowed = tuple(allowed)


class ProfilingNotAllowed(LinkbayError):
    """The tenant's profiling policy excludes the customer (consent withdrawn, or never
    given under an opt-in policy)."""

    code = "profiling_not_allowed"
    field = "customer_id"

    def __init__(self, customer_id: int, consent_type: str) -> None:
        super().__init__(f"customer {customer_id} may not be profiled: no {consent_type!r} consent")
        self.customer_id = customer_id
        self.consent_type = consent_type


class StorageRoleMissing(LinkbayError):
    """The storage does not implement an optional role that the operation needs.

    The storage works for everything else; the host needs a storage with the role
    (``linkbay_customers.ports.storage_roles`` lists a unit of work's roles).

    Attributes:
        role: The Protocol the storage lacks (``CustomerBulkImport``, ...).
        needed_by: What the role is needed for.
    """

    code = "storage_role_missing"

    def __init__(self, role: str, *, implementer: str, needed_by: str) -> None:
        super().__init__(f"{implementer} does not implement {role}, needed for {needed_by}")
        self.role = role
        self.needed_by = needed_by


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field."""

    field: str
    message: str
    type: str = "value_error"


class InvalidInput(LinkbayError, ValueError):
    """Input failed validation; ``errors`` names every offending field."""

    code = "invalid_input"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("InvalidInput needs at least one FieldError")
        first = errors[0]
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(summary, field=first.field)
        self.errors = tuple(errors)

    @classmethod
    def single(cls, field: str, message: str, type: str = "value_error") -> InvalidInput:
        """Build the error for one field."""
        return cls([FieldError(field=field, message=message, type=type)])


class StorageError(LinkbayError):
    """The storage backend failed in a way the library cannot map to a domain error.

    This class itself means a failure that a later attempt may not meet: the
    database unreachable or its connection lost, a timeout, a lock, a deadlock or
    a serialization conflict. ``StorageRejected`` is the other kind.

    Attributes:
        retryable: Whether the same call may succeed if made again later.
    """

    code = "storage_error"
    retryable: bool = True


class TransactionConflict(StorageError):
    """The storage aborted the transaction for a conflict with concurrent ones (a
    deadlock, a serialization failure): rerunning the whole transaction may succeed."""

    code = "storage_error"


class StorageRejected(StorageError):
    """The storage refused the operation and would refuse it again: retrying cannot help.

    A constraint the library maps to no domain error (such as a NOT NULL column
    left empty), a value its column cannot hold, a table, column or function the
    schema lacks: the schema, the models or the code must change first.
    """

    code = "storage_rejected"
    retryable = False


class SchemaNotMigrated(StorageRejected):
    """The database lacks a table or a column the library uses: its schema was never
    migrated, or not to the revision the library needs.

    Retrying cannot help; migrating the database does:
    ``linkbay-customers migrate --database-url URL`` (or the host's own migrations).

    Attributes:
        table: The missing table, or ``table.column`` for a missing column.
        missing: What is missing, in words (``table 'customers'``).
        reason: Why, in words (``was never migrated``).
    """

    code = "schema_not_migrated"

    def __init__(self, table: str) -> None:
        column = "." in table
        self.table = table
        self.missing = f"column {table!r}" if column else f"table {table!r}"
        self.reason = "is older than the library's" if column else "was never migrated"
        super().__init__(
            f"the database has no {self.missing}: its schema {self.reason}; run"
            " linkbay-customers migrate --database-url URL, with this database's URL"
        )
