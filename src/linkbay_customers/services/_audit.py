"""Appending to the audit trail: every change's events are sealed and written here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from linkbay_customers.domain import AuditEvent, ChainLock, chain_of
from linkbay_customers.ports import UnitOfWork

__all__ = ("append_audit", "append_locked", "audit_chains")


async def append_audit(uow: UnitOfWork, events: Sequence[AuditEvent]) -> Sequence[AuditEvent]:
    """Seal events into their chains and append them inside the caller's transaction.

    The chains are locked first, in one order (by chain id), so concurrent writers
    of one customer take turns and writers of different customers never wait.

    Returns:
        The events as stored: with their positions, hashes and the storage's time.
    """
    if not events:
        return ()
    locked = await uow.audit.lock_chains(audit_chains(events))
    return await append_locked(uow, events, locked)


def audit_chains(events: Iterable[AuditEvent | int | None]) -> list[int]:
    """The chains of events (or of the customer ids they are about), in locking order."""
    return sorted({chain_of(e.customer_id if isinstance(e, AuditEvent) else e) for e in events})


async def append_locked(
    uow: UnitOfWork, events: Iterable[AuditEvent], locked: ChainLock
) -> Sequence[AuditEvent]:
    """Seal events into their chains, locked already (``locked``), and append them
    (``events`` is read once, in order: a generator's unsealed events go as they are
    sealed)."""
    sealed = uow.audit_chain.seal(events, locked.tips, occurred_at=locked.now)
    await uow.audit.append_many(sealed)
    return sealed
