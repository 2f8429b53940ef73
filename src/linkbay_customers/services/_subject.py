"""The data subject: a customer with every customer merged into it.

A merge leaves rows under the merged-away id (the notes and addresses a merge did
not move, the consent ledger, the audit trail), and those rows are still about the
same person. Export and erasure both start here, so what one shows is exactly what
the other removes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from linkbay_customers.domain import (
    Address,
    AuditEvent,
    ConsentEvent,
    Customer,
    CustomerNote,
    DuplicateDecision,
    MergeAlias,
    Order,
    Page,
)
from linkbay_customers.ports import UnitOfWork, duplicate_decisions, has_duplicate_decisions

__all__ = (
    "DataSubject",
    "SubjectRecords",
    "data_subject",
    "data_subjects",
    "decisions_about",
    "filed_under",
    "forget_decisions",
    "purge_customer_rows",
    "subject_records",
)

T = TypeVar("T")

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class DataSubject:
    """A customer and the customers merged into it: one person's rows, by customer id.

    Attributes:
        customer: The customer asked for (the target of any merges).
        aliases: The merged-away ids resolving to it, oldest merge first.
        merged: The merged-away customers whose rows still exist, oldest merge first.
    """

    customer: Customer
    aliases: tuple[MergeAlias, ...]
    merged: tuple[Customer, ...]

    @property
    def customers(self) -> tuple[Customer, ...]:
        """The customer, then the customers merged into it."""
        return (self.customer, *self.merged)

    @property
    def customer_ids(self) -> list[int]:
        """Every customer id the person's rows are filed under, the customer's first."""
        return filed_under(self.customer.id, self.aliases)


def filed_under(customer_id: int, aliases: Sequence[MergeAlias]) -> list[int]:
    """Every customer id the rows of a customer's person are filed under: the
    customer's, then those of the customers merged into it (``aliases``)."""
    return [customer_id, *(a.alias_id for a in aliases)]


@dataclass(frozen=True, slots=True)
class SubjectRecords:
    """Every row about a data subject; each names the customer id it is filed under.

    Attributes:
        addresses: Oldest first.
        notes: Oldest first.
        orders: Newest first, with their lines.
        consent_events: The consent ledger, oldest first.
        audit_events: The audit trail, oldest first.
        duplicate_decisions: The pairs it is in that a user marked as two people,
            oldest first.
    """

    addresses: Sequence[Address]
    notes: Sequence[CustomerNote]
    orders: Sequence[Order]
    consent_events: Sequence[ConsentEvent]
    audit_events: Sequence[AuditEvent]
    duplicate_decisions: Sequence[DuplicateDecision]


async def data_subjects(uow: UnitOfWork, customers: Sequence[Customer]) -> list[DataSubject]:
    """The data subject of each customer, in two reads however many customers there are.

    Merges are flat: merging a customer into another repoints the aliases resolving
    to it, so the aliases of a customer are all the customers ever merged into it.
    """
    aliases = await uow.aliases.list_for_customers([c.id for c in customers])
    merged = {c.id: c for c in await uow.customers.get_many([a.alias_id for a in aliases])}
    by_target: dict[int, list[MergeAlias]] = {}
    for alias in aliases:
        by_target.setdefault(alias.customer_id, []).append(alias)
    subjects = []
    for customer in customers:
        theirs = tuple(by_target.get(customer.id, ()))
        subjects.append(
            DataSubject(
                customer=customer,
                aliases=theirs,
                merged=tuple(merged[a.alias_id] for a in theirs if a.alias_id in merged),
            )
        )
    return subjects


async def data_subject(uow: UnitOfWork, customer: Customer) -> DataSubject:
    """The data subject of one customer (see ``data_subjects``)."""
    (subject,) = await data_subjects(uow, [customer])
    return subject


async def subject_records(uow: UnitOfWork, subject: DataSubject) -> SubjectRecords:
    """Read every row filed under any of the subject's customer ids.

    One read per table for all the ids together (orders and audit events page
    through in pages of a thousand): the number of statements does not grow with
    the number of merged customers.
    """
    ids = subject.customer_ids
    return SubjectRecords(
        addresses=await uow.addresses.list_for_customers(ids),
        notes=await uow.notes.list_for_customers(ids),
        orders=await _every_page(
            lambda page: uow.orders.list_for_customers(ids, page=page, page_size=_PAGE)
        ),
        consent_events=await uow.consents.list_for_customers(ids),
        audit_events=await _every_page(
            lambda page: uow.audit.list_for_customers(ids, page=page, page_size=_PAGE)
        ),
        duplicate_decisions=await decisions_about(uow, ids),
    )


async def decisions_about(
    uow: UnitOfWork, customer_ids: Sequence[int]
) -> Sequence[DuplicateDecision]:
    """The duplicate decisions naming any of the customers, oldest first; none from a
    storage that keeps no decisions."""
    if not has_duplicate_decisions(uow):
        return ()
    return await duplicate_decisions(uow).decisions_for_customers(customer_ids)


async def forget_decisions(uow: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Remove the duplicate decisions naming any of the customers (an erased customer
    is never matched again, so they serve nothing); a storage that keeps no decisions
    has none to remove."""
    if has_duplicate_decisions(uow):
        await duplicate_decisions(uow).delete_decisions_for_customers(customer_ids)


async def purge_customer_rows(uow: UnitOfWork, customer: Customer) -> list[int]:
    """Remove a customer and everything about it, including customers merged into it
    (the rows an export of it shows, see ``data_subject``), except their audit trail,
    which holds no personal values and is never removed.

    Returns:
        The ids of the customers removed, the given one first.
    """
    ids = (await data_subject(uow, customer)).customer_ids
    await uow.aliases.delete_for_customer(customer.id)
    await uow.addresses.delete_for_customers(ids)
    await uow.notes.delete_for_customers(ids)
    await uow.orders.delete_for_customers(ids)
    await uow.consents.delete_for_customers(ids)
    await forget_decisions(uow, ids)
    await uow.customers.delete_many(ids)
    return ids


async def _every_page(read: Callable[[int], Awaitable[Page[T]]]) -> list[T]:
    items: list[T] = []
    page = 1
    while True:
        listed = await read(page)
        items.extend(listed.items)
        if page >= listed.total_pages:
            return items
        page += 1
