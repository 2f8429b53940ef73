"""The merges of ``CustomerService``: a duplicate folded into the customer that is kept,
its id an alias of it from then on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from linkbay_customers.domain import (
    AuditAction,
    Customer,
    CustomerNotFound,
    InvalidMerge,
    MergeAlias,
    check_actor,
    check_preferences,
    fill_missing,
    fold_analytics,
    fold_consents,
    merge_tags,
)
from linkbay_customers.schemas import CustomerMergeRequest
from linkbay_customers.services._addresses_notes import move_addresses
from linkbay_customers.services._boundary import validated
from linkbay_customers.services._change import Change, Transactions
from linkbay_customers.services._derived import clear_derived
from linkbay_customers.services._duplicate_decisions import carry_decisions

__all__ = ("CustomerMerges",)


class CustomerMerges:
    """Merges (part of ``CustomerService``)."""

    _tx: Transactions
    _max_addresses: int

    async def merge_customers(
        self,
        tenant_id: str,
        merge_request: CustomerMergeRequest | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Customer:
        """Merge a duplicate (source) into the customer that is kept (target).

        Orders and order analytics always move to the target; addresses, notes, tags
        and preferences move when the request asks for them (preferences already set
        on the target win). The target's consent state per type becomes the latest
        decision of either customer (a withdrawal at the same instant wins), so a
        consent withdrawn on the source holds after the merge. The source is
        soft-deleted and kept as an alias, so its id resolves to the target from then
        on; its derived data (segment, scores, embedding) is cleared, since the orders
        it described are the target's now.
        The source's duplicate decisions move to the target (a decision about the two
        of them is undone by the merge).
        Retrying a merge that is done returns the target and changes nothing.

        Raises:
            CustomerNotFound: either customer is unknown (or of another tenant).
            InvalidMerge: self-merge, a deleted source or target, or customers whose
                orders are in different currencies.
        """
        request = validated(CustomerMergeRequest, merge_request)
        actor = check_actor(actor)
        source_id, target_id = request.source_customer_id, request.target_customer_id
        if source_id == target_id:
            raise InvalidMerge(
                "a customer cannot be merged into itself", field="target_customer_id"
            )

        async def merge(change: Change) -> Customer:
            uow = change.uow
            # Lock the rows in id order so that concurrent merges do not deadlock: both
            # customers, and the customer a merged-away target resolves to, read first
            # unlocked. Should that alias change before the rows are locked, the lock
            # taken out of order may deadlock: the storage then aborts one merge,
            # which runs again (``change_retried``).
            resolved_before = await uow.aliases.resolve(target_id)
            locked = {source_id, target_id} | ({resolved_before} - {None})
            rows = {
                cid: await uow.customers.get(cid, include_deleted=True, for_update=True)
                for cid in sorted(c for c in locked if c is not None)
            }
            source, target = rows[source_id], rows[target_id]
            if source is None:
                raise CustomerNotFound(source_id, field="source_customer_id")
            if target is None:
                raise CustomerNotFound(target_id, field="target_customer_id")
            if target.is_deleted:
                resolved = await uow.aliases.resolve(target.id)
                if resolved is None:
                    raise InvalidMerge("the target customer is deleted", field="target_customer_id")
                target = await change.customer(resolved, field="target_customer_id")
            if source.is_deleted:
                if await uow.aliases.resolve(source.id) == target.id:
                    return target
                raise InvalidMerge("the source customer is deleted", field="source_customer_id")
            if target.id == source.id:
                raise InvalidMerge(
                    "a customer cannot be merged into itself", field="target_customer_id"
                )
            fold_analytics(target, source)
            # One person: their latest consent decision per type holds for the target
            # (a withdrawal on the merged-away account stays a withdrawal), before the
            # save below asks the profiling policy about the target.
            consents = fold_consents(target, source)
            await uow.orders.reassign(source.id, target.id)
            if request.merge_addresses:
                await move_addresses(
                    uow, source.id, target.id, change.now, limit=self._max_addresses
                )
            if request.merge_notes:
                await uow.notes.reassign(source.id, target.id)
            if request.merge_tags:
                target.tags = merge_tags(target.tags, source.tags)
            if request.merge_preferences:
                target.preferences = check_preferences(
                    fill_missing(target.preferences, source.preferences)
                )
            await uow.aliases.repoint(source.id, target.id)
            await carry_decisions(change, source.id, target.id)
            await uow.aliases.add(
                MergeAlias(
                    tenant_id=uow.tenant_id,
                    alias_id=source.id,
                    customer_id=target.id,
                    merged_at=change.now,
                )
            )
            source.deleted_at = change.now
            # The source stays as an alias row holding its own profile, but what was
            # derived from its orders describes the target now.
            cleared = clear_derived(source)
            await change.save(source)
            await change.save(target, resegment=True)
            flags = request.model_dump(exclude={"source_customer_id", "target_customer_id"})
            change.audit(
                AuditAction.CUSTOMER_MERGED,
                customer_id=target.id,
                changed_fields=("consent_data",) if consents else (),
                details={"source_customer_id": source.id, **flags},
            )
            change.audit(
                AuditAction.CUSTOMER_MERGED_INTO,
                customer_id=source.id,
                changed_fields=["deleted_at", *cleared],
                details={"target_customer_id": target.id},
            )
            return target

        return await self._tx.change_retried(tenant_id, merge, actor=actor)

    async def list_aliases(self, tenant_id: str, customer_id: int) -> Sequence[MergeAlias]:
        """The customer ids merged into a customer, oldest merge first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
        """
        return await self._tx.of_customer(
            tenant_id, customer_id, lambda uow, customer: uow.aliases.list_for_customer(customer.id)
        )
