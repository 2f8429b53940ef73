"""Writing the audit trail: every service appends events through here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from linkbay_customers.domain import AuditAction, AuditEvent, chain_of
from linkbay_customers.ports import Clock, UnitOfWork

__all__ = ("append_audit", "write_audit")


async def append_audit(uow: UnitOfWork, events: Sequence[AuditEvent]) -> Sequence[AuditEvent]:
    """Seal events into their chains and append them inside the caller's transaction.

    The chains are locked first, in one order (by chain id), so concurrent writers
    of one customer take turns and writers of different customers never wait.

    Returns:
        The events as stored: with their positions, hashes and the storage's time.
    """
    if not events:
        return ()
    locked = await uow.audit.lock_chains(sorted({chain_of(e.customer_id) for e in events}))
    sealed = uow.audit_chain.seal(events, locked.tips, occurred_at=locked.now)
    await uow.audit.append_many(sealed)
    return sealed


async def write_audit(
    uow: UnitOfWork,
    clock: Clock,
    action: AuditAction,
    *,
    customer_id: int | None,
    actor: str | None,
    changed_fields: Sequence[str] = (),
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append an audit event inside the caller's transaction."""
    await append_audit(
        uow,
        [
            AuditEvent(
                id=await uow.audit.next_id(),
                tenant_id=uow.tenant_id,
                customer_id=customer_id,
                actor=actor,
                action=action,
                occurred_at=clock.now(),
                changed_fields=tuple(changed_fields),
                details=dict(details or {}),
            )
        ],
    )
