"""What the GDPR service returns: an export, an erasure, a consent history, a purge.

Plain frozen dataclasses of domain entities, as the intelligence results are; the
response models of ``linkbay_customers.schemas`` turn them into the JSON the REST
API and the CLI give out (``CustomerDataExport.of``, ``ErasureResult.of``,
``ConsentHistoryResponse.of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from linkbay_customers.domain import (
    Address,
    AuditEvent,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerNote,
    DuplicateDecision,
    MergeAlias,
    Order,
)

__all__ = ("ConsentHistory", "DataExport", "Erasure", "ErasureMethod", "PurgeResult")

ErasureMethod = Literal["anonymized", "deleted"]


@dataclass(frozen=True, slots=True)
class DataExport:
    """Everything held about one person (GDPR art. 15 and 20): a customer and the
    customers merged into it.

    Each address, note, order, consent decision and audit event names, as its
    ``customer_id``, the customer id it is filed under.

    Attributes:
        export_date: When the export was made.
        customer: The customer asked for (the target of any merges): the profile with
            the host's extra fields, the consent state, order analytics and derived
            data with when and by what it was computed.
        addresses: Oldest first.
        notes: Oldest first.
        orders: Oldest first, with their lines.
        consent_history: Every consent decision, oldest first.
        merge_aliases: The ids merged into the customer, oldest merge first.
        merged_customers: The merged-away customers whose rows still exist (the data
            those rows hold), oldest merge first.
        duplicate_decisions: The pairs the person is in that a user marked as two
            people (who decided, when), oldest first.
        audit_trail: The audit events, oldest first.
    """

    export_date: datetime
    customer: Customer
    addresses: tuple[Address, ...]
    notes: tuple[CustomerNote, ...]
    orders: tuple[Order, ...]
    consent_history: tuple[ConsentEvent, ...]
    merge_aliases: tuple[MergeAlias, ...]
    merged_customers: tuple[Customer, ...]
    duplicate_decisions: tuple[DuplicateDecision, ...]
    audit_trail: tuple[AuditEvent, ...]

    @property
    def consent(self) -> Mapping[str, ConsentState]:
        """The current decision per consent type (the customer's ``consent_data``)."""
        return self.customer.consent_data


@dataclass(frozen=True, slots=True)
class Erasure:
    """What ``delete_customer_data`` did.

    Attributes:
        customer_id: The customer erased (the target, when asked by a merged-away id).
        method: ``"anonymized"``, or ``"deleted"`` for good.
        deleted_at: When the customer was deleted: the first anonymization's time,
            which repeating it keeps; the time of a hard deletion.
    """

    customer_id: int
    method: ErasureMethod
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentHistory:
    """A customer's consent: the current decision per type and every decision made.

    Attributes:
        current: The current decision per consent type ever decided.
        events: Every decision recorded, oldest first.
    """

    current: Mapping[str, ConsentState]
    events: tuple[ConsentEvent, ...]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What ``purge_inactive`` found and, unless a dry run, anonymized.

    Attributes:
        dry_run: True when nothing was changed.
        cutoff: Customers unchanged and without orders since before this moment qualified.
        customer_ids: The customers affected (or that would be): by id, each followed
            by the customers merged into it that were not reached before.
    """

    dry_run: bool
    cutoff: datetime
    customer_ids: tuple[int, ...]

    @property
    def count(self) -> int:
        """How many customers are affected."""
        return len(self.customer_ids)
