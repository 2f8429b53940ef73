"""Duplicate decisions of ``CustomerService``: pairs of customers a user marked as two
people, which duplicate detection never suggests again.

A decision names two live customers of the tenant, stored once in canonical order
(lower id first), with who decided and when. Marking and undoing go through the one
change path and are audited in both customers' trails. A merge carries the decisions
of the customer merged away to the customer kept (``carry_decisions``); erasure
removes the decisions of the customers it erases.
"""

from __future__ import annotations

from collections.abc import Sequence

from linkbay_customers.domain import (
    AuditAction,
    CustomerNotFound,
    DuplicateDecision,
    DuplicateDecisionNotFound,
    InvalidDuplicateDecision,
    check_actor,
)
from linkbay_customers.ports import UnitOfWork, duplicate_decisions, has_duplicate_decisions
from linkbay_customers.services._boundary import check_id
from linkbay_customers.services._change import Change, Transactions, load_customer

__all__ = ("CustomerDuplicateDecisions", "carry_decisions", "drop_decided")


async def drop_decided(
    uow: UnitOfWork, pairs: Sequence[tuple[int, int]]
) -> Sequence[tuple[int, int]]:
    """The candidate pairs without those marked as two people: one read of the
    decisions naming the pairs' first customers. A storage that keeps no decisions
    has none to drop."""
    if not pairs or not has_duplicate_decisions(uow):
        return pairs
    firsts = sorted({a for a, _ in pairs})
    decided = {
        (d.customer_id, d.other_id)
        for d in await duplicate_decisions(uow).decisions_for_customers(firsts)
    }
    if not decided:
        return pairs
    return [(a, b) for a, b in pairs if (min(a, b), max(a, b)) not in decided]


async def carry_decisions(change: Change, source_id: int, target_id: int) -> None:
    """Move the decisions of a customer merged away (``source_id``) to the customer kept:
    the source was the same person as the target, so whoever the source is not, the
    target is not either. A decision about the two of them is overruled by the merge,
    removed and audited as undone (``reason: merge``)."""
    uow = change.uow
    if not has_duplicate_decisions(uow):
        return
    store = duplicate_decisions(uow)
    decisions = await store.decisions_for_customers([source_id, target_id])
    moved = [d for d in decisions if source_id in (d.customer_id, d.other_id)]
    if not moved:
        return
    decided = {
        d.other_than(target_id) for d in decisions if target_id in (d.customer_id, d.other_id)
    }
    await store.delete_decisions_for_customers([source_id])
    for decision in moved:
        other = decision.other_than(source_id)
        if other == target_id:
            _audit_pair(change, AuditAction.PAIR_UNMARKED_DISTINCT, source_id, target_id, "merge")
            continue
        if other in decided:
            continue
        decided.add(other)
        low, high = sorted((target_id, other))
        await store.add_decision(
            DuplicateDecision(
                tenant_id=uow.tenant_id,
                customer_id=low,
                other_id=high,
                decided_by=decision.decided_by,
                decided_at=decision.decided_at,
            )
        )


def _audit_pair(
    change: Change, action: AuditAction, a: int, b: int, reason: str | None = None
) -> None:
    """One event in each customer's trail, naming the other."""
    extra = {} if reason is None else {"reason": reason}
    for customer_id, other_id in ((a, b), (b, a)):
        change.audit(
            action, customer_id=customer_id, details={"other_customer_id": other_id, **extra}
        )


async def _decidable_pair(change: Change, customer_id: int, other_id: int) -> tuple[int, int]:
    """The pair in canonical order, both customers locked (in id order, as merges lock).

    Raises:
        CustomerNotFound: an id unknown in the tenant (another tenant's included), or a
            deleted customer that was not merged.
        InvalidDuplicateDecision: one customer twice, a merged-away or erased customer.
    """
    fields = {"customer_id": customer_id, "other_id": other_id}
    for field, value in fields.items():
        if not check_id(value):
            raise CustomerNotFound(value, field=field)
    if customer_id == other_id:
        raise InvalidDuplicateDecision(
            "a customer cannot be marked as distinct from itself", field="other_id"
        )
    for value in sorted((customer_id, other_id)):
        field = "customer_id" if value == customer_id else "other_id"
        customer = await change.uow.customers.get(value, include_deleted=True, for_update=True)
        if customer is None:
            raise CustomerNotFound(value, field=field)
        if customer.is_anonymized:
            raise InvalidDuplicateDecision(
                f"customer {value} is erased: it is never suggested as a duplicate", field=field
            )
        if customer.is_deleted:
            target = await change.uow.aliases.resolve(value)
            if target is None:
                raise CustomerNotFound(value, field=field)
            raise InvalidDuplicateDecision(
                f"customer {value} was merged into customer {target}: decide about {target}",
                field=field,
            )
    low, high = sorted((customer_id, other_id))
    return low, high


class CustomerDuplicateDecisions:
    """Duplicate decisions (part of ``CustomerService``)."""

    _tx: Transactions

    async def mark_distinct(
        self, tenant_id: str, customer_id: int, other_id: int, *, actor: str | None = None
    ) -> DuplicateDecision:
        """Record that two customers are two people: the pair is never suggested as a
        duplicate again (``find_duplicates``, ``find_duplicates_of``, ``list_duplicates``).

        Audited in both customers' trails (``pair.marked_distinct``, naming the other).
        Marking a pair that is marked already returns the stored decision and changes
        nothing.

        Returns:
            The decision: the pair in canonical order (``customer_id < other_id``), who
            decided and when.

        Raises:
            CustomerNotFound: an unknown, deleted or another tenant's customer; ``field``
                names the argument.
            InvalidDuplicateDecision: the same customer twice, or a customer merged
                away (decide about the customer it was merged into) or erased.
            StorageRoleMissing: the storage keeps no ``DuplicateDecisions``.
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            store = duplicate_decisions(change.uow)
            low, high = await _decidable_pair(change, customer_id, other_id)
            decision = DuplicateDecision(
                tenant_id=change.uow.tenant_id,
                customer_id=low,
                other_id=high,
                decided_by=change.actor,
                decided_at=change.now,
            )
            if await store.add_decision(decision):
                _audit_pair(change, AuditAction.PAIR_MARKED_DISTINCT, low, high)
                return decision
            (stored,) = [
                d for d in await store.decisions_for_customers([low]) if d.other_id == high
            ]
            return stored

    async def undo_distinct(
        self, tenant_id: str, customer_id: int, other_id: int, *, actor: str | None = None
    ) -> None:
        """Forget that two customers were marked as two people: the pair may be
        suggested again. Audited in both trails (``pair.unmarked_distinct``).

        Raises:
            CustomerNotFound: as for ``mark_distinct``.
            InvalidDuplicateDecision: as for ``mark_distinct``.
            DuplicateDecisionNotFound: the pair was never marked (or the mark was undone).
            StorageRoleMissing: the storage keeps no ``DuplicateDecisions``.
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            store = duplicate_decisions(change.uow)
            low, high = await _decidable_pair(change, customer_id, other_id)
            if not await store.remove_decision(low, high):
                raise DuplicateDecisionNotFound(customer_id, other_id)
            _audit_pair(change, AuditAction.PAIR_UNMARKED_DISTINCT, low, high)

    async def list_duplicate_decisions(
        self, tenant_id: str, customer_id: int
    ) -> Sequence[DuplicateDecision]:
        """The pairs a customer is in that were marked as two people, oldest first
        (a merged-away id resolves to the customer it was merged into).

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
            StorageRoleMissing: the storage keeps no ``DuplicateDecisions``.
        """
        async with self._tx.read(tenant_id) as uow:
            store = duplicate_decisions(uow)
            customer = await load_customer(uow, customer_id)
            return await store.decisions_for_customers([customer.id])
