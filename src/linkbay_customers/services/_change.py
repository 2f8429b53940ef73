"""One path for every change: what a change of a tenant's data does inside its transaction.

A service opens a ``Change`` for the tenant (``Transactions.change``) and, inside it,
loads the customers it changes (locked, merge aliases followed), changes them, and
hands them back with ``add`` or ``save``: the change computes their derived data under
the profiling policy, stamps ``updated_at`` from the clock, writes them, and records
the audit events. Leaving the block commits what was written, audit events included,
in that one transaction; a block that wrote nothing commits nothing, and one that
raises rolls everything back.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from linkbay_customers.domain import (
    AuditAction,
    AuditEvent,
    Customer,
    CustomerNotFound,
    DerivedData,
    TransactionConflict,
    check_audit_content,
    check_tenant,
)
from linkbay_customers.ports import (
    Clock,
    CustomerIntelligence,
    IdReservations,
    UnitOfWork,
    bulk_import,
    derived_data,
    read_only_units,
)
from linkbay_customers.services._audit import append_locked, audit_chains
from linkbay_customers.services._boundary import check_id
from linkbay_customers.services._derived import Embedder, EmbeddingRefresh, ProfilingGate
from linkbay_customers.services._subject import purge_customer_rows

__all__ = ("Change", "Transactions", "UnitOfWorkFactory", "load_customer")

UnitOfWorkFactory = Callable[[str], UnitOfWork]
"""Opens a unit of work bound to one tenant (``Storage.unit_of_work`` is one); when it
takes a ``read_only`` keyword, reads are given read-only units of work."""

T = TypeVar("T")

CONFLICT_ATTEMPTS = 5
"""How many times ``Transactions.change_retried`` runs a change the storage keeps
aborting for conflicts with concurrent ones."""


async def load_customer(
    uow: UnitOfWork,
    customer_id: int,
    *,
    for_update: bool = False,
    include_deleted: bool = False,
    field: str | None = None,
) -> Customer:
    """Fetch a customer, following a merge alias to the customer it now resolves to.

    Raises:
        CustomerNotFound: no such customer in the tenant (another tenant's id included),
            or it is deleted and ``include_deleted`` is False.
    """
    if not check_id(customer_id):
        raise CustomerNotFound(customer_id, field=field)
    customer = await uow.customers.get(customer_id, include_deleted=True, for_update=for_update)
    if customer is not None and customer.is_deleted:
        target = await uow.aliases.resolve(customer_id)
        if target is not None:
            # A merged-away id is the target's, deleted or not: an export or an
            # erasure asked for by that id still reaches the person.
            customer = await uow.customers.get(
                target, include_deleted=include_deleted, for_update=for_update
            )
        elif not include_deleted:
            customer = None
    if customer is None:
        raise CustomerNotFound(customer_id, field=field)
    return customer


_Record = tuple[int, int | None, tuple[str, ...]]
"""An audit event a change recorded: ``(index of its kind, customer id, changed fields)``,
its kind being ``(action, details)``. A batch records an event per customer, held until
the change ends: a tuple of numbers and strings is left out of the garbage collector's
collections, where one holding the action or the details (objects it tracks) is not."""


class Change:
    """One change of a tenant's data, inside one unit of work (see the module).

    Attributes:
        uow: The unit of work, for the rows a change writes besides customers
            (addresses, notes, orders, the consent ledger).
        now: The moment of the change: every timestamp it writes is this one.
        actor: The acting user, recorded with every audit event.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        now: datetime,
        actor: str | None,
        profiling: ProfilingGate,
        intelligence: CustomerIntelligence | None,
        embedder: Embedder | None = None,
    ) -> None:
        self.uow = uow
        self.now = now
        self.actor = actor
        self._profiling = profiling
        self._intelligence = intelligence
        self._embedder = embedder
        self._embed: EmbeddingRefresh | None = None
        self._records: list[_Record] = []
        self._kinds: list[tuple[AuditAction, dict[str, Any]]] = []  # (action, details)
        self._details_given: Mapping[str, Any] | None = None  # the last kind's, as given
        self._audit_ids: list[int] = []  # reserved ahead, with a new customer's id
        self._written = False

    async def customer(
        self, customer_id: int, *, include_deleted: bool = False, field: str | None = None
    ) -> Customer:
        """The customer an id names (merge aliases followed), locked until the change ends.

        Raises:
            CustomerNotFound: unknown id, another tenant's, or a deleted customer when
                ``include_deleted`` is False; ``field`` names the input it came from.
        """
        return await load_customer(
            self.uow, customer_id, for_update=True, include_deleted=include_deleted, field=field
        )

    async def derive(self, customer: Customer, *, resegment: bool = False) -> list[str]:
        """Bring a customer's derived data in line with the profiling policy: clear it
        when the policy excludes them, else recompute the segment and the embedding
        when ``resegment`` (see ``ProfilingGate.settle``). Returns the names of the
        fields that changed."""
        if resegment and self._intelligence is None:
            raise RuntimeError("this change has no intelligence to compute segments with")
        return await self._profiling.settle(
            customer,
            now=self.now,
            segment_by=self._intelligence if resegment else None,
            embed=self._embedding() if resegment else None,
        )

    def _embedding(self) -> EmbeddingRefresh | None:
        """How this change stores embeddings: None when the service keeps none current
        or the storage can neither compute nor search them."""
        if self._embedder is not None and self._embed is None:
            embedder, self._embedder = self._embedder, None  # decided once per change
            if embedder.can_embed(self.uow):
                self._embed = functools.partial(embedder.refresh, self.uow, now=self.now)
        return self._embed

    async def add(self, customer: Customer, *, audited: int = 1) -> None:
        """Insert a new customer under a new id, which replaces the one it was built
        with, its segment and embedding computed under the profiling policy (the
        intelligence sees the customer's own id). The id and the ids of the change's
        first ``audited`` audit events are reserved together (in one step where the
        storage offers ``IdReservations``): the tenant's id counters stay locked from
        then until the commit.

        Raises:
            DuplicateEmail: the email is taken in the tenant.
        """
        uow = self.uow
        if isinstance(uow, IdReservations):
            (customer.id,), self._audit_ids = await uow.next_ids_of(
                [("customers", 1), ("audit", audited)]
            )
        else:
            customer.id = await uow.customers.next_id()
            self._audit_ids = list(await uow.audit.next_ids(audited))
        await self.derive(customer, resegment=True)
        await uow.customers.add(customer)
        self._written = True

    async def add_many(self, customers: Sequence[Customer]) -> set[str]:
        """Insert new customers at once, under the ids they carry, their derived data
        computed as ``add`` computes it; returns the emails the storage refused as
        taken (those customers are not inserted).

        Raises:
            StorageRoleMissing: the storage has no ``CustomerBulkImport``.
        """
        for customer in customers:
            await self.derive(customer, resegment=True)
        refused = set(await bulk_import(self.uow).add_many(customers))
        self._written = True
        return refused

    async def save(self, customer: Customer, *, resegment: bool = False) -> list[str]:
        """Write a changed customer: derived data under the policy (the segment and the
        embedding recomputed when ``resegment``), ``updated_at`` stamped. Returns the
        names of the derived fields that changed."""
        derived = await self.derive(customer, resegment=resegment)
        customer.updated_at = self.now
        await self.uow.customers.update(customer)
        self._written = True
        return derived

    async def save_many(self, customers: Sequence[Customer]) -> None:
        """Write many changed customers at once, ``updated_at`` stamped; their derived
        data was brought in line by the caller (``derive``), as each needs."""
        for customer in customers:
            customer.updated_at = self.now
        await self.uow.customers.update_many(customers)
        self._written = True

    async def purge(self, customer: Customer, action: AuditAction) -> list[int]:
        """Remove a customer and every row about it, with the customers merged into it
        (``purge_customer_rows``), and record ``action`` naming the ids removed.

        Returns:
            The ids of the customers removed, the given one first.
        """
        removed = await purge_customer_rows(self.uow, customer)
        self.audit(action, customer_id=customer.id, details={"customer_ids": removed})
        return removed

    async def write_derived(self, rows: Sequence[DerivedData]) -> None:
        """Write the derived fields of many customers (batch scoring).

        Raises:
            StorageRoleMissing: the storage has no ``DerivedDataStore``.
        """
        await derived_data(self.uow).update_derived(rows)
        self._written = True

    def audit(
        self,
        action: AuditAction,
        *,
        customer_id: int | None,
        changed_fields: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an audit event of the change; it is written with the change.

        Raises:
            ValueError: the fields or details would carry personal values.
        """
        fields = tuple(changed_fields)
        kinds = self._kinds
        last = kinds[-1] if kinds else None
        if (
            last is not None
            and details is self._details_given
            and (not last[1] if details is None else details == last[1])
        ):
            # Events of a batch share their details (encoded once).
            content = last[1]
            if last[0] is not action:
                kinds.append((action, content))
        else:
            content = dict(details or {})
            self._details_given = details
            kinds.append((action, content))
        check_audit_content(fields, content)
        self._records.append((len(kinds) - 1, customer_id, fields))
        self._written = True

    async def _finish(self) -> None:
        if not self._written:
            return
        if self._records:
            count, reserved = len(self._records), self._audit_ids
            chains = audit_chains(customer_id for _, customer_id, _ in self._records)
            if count > len(reserved):
                # The other events' ids and their chains' locks in one go: one round
                # trip where the storage can.
                more, locked = await self.uow.audit.reserve_and_lock(count - len(reserved), chains)
                ids = [*reserved, *more]
            else:
                ids, locked = reserved[:count], await self.uow.audit.lock_chains(chains)
            kinds = self._kinds
            await append_locked(
                self.uow,
                (
                    # Their content was checked when the change recorded them.
                    AuditEvent.of_checked_content(
                        id=event_id,
                        tenant_id=self.uow.tenant_id,
                        customer_id=customer_id,
                        actor=self.actor,
                        action=kinds[kind][0],
                        occurred_at=self.now,
                        changed_fields=fields,
                        details=kinds[kind][1],
                    )
                    for event_id, (kind, customer_id, fields) in zip(
                        ids, self._records, strict=True
                    )
                ),
                locked,
            )
        await self.uow.commit()


class Transactions:
    """How a service reaches a tenant's data: units of work to read, changes to write.

    Args:
        uow_factory: Opens a unit of work for a tenant (``storage.unit_of_work``).
        clock: Source of the current time.
        profiling: The profiling policy every change applies to derived data.
        intelligence: Computes segments for changes that call for it, if the
            service has one.
        embedder: Computes the embeddings of customers whose history a change
            moves, if the service keeps them current.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        profiling: ProfilingGate,
        intelligence: CustomerIntelligence | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self._read_factory = read_only_units(uow_factory)
        self.clock = clock
        self.profiling = profiling
        self.intelligence = intelligence
        self.embedder = embedder

    def read(self, tenant_id: str) -> UnitOfWork:
        """A read-only unit of work of the tenant, to read in (it commits nothing; on
        SQLite it runs beside other transactions, without the write lock).

        Raises:
            InvalidInput: an invalid tenant id.
        """
        return self._read_factory(check_tenant(tenant_id))

    async def of_customer(
        self,
        tenant_id: str,
        customer_id: int,
        read: Callable[[UnitOfWork, Customer], Awaitable[T]],
    ) -> T:
        """Read something of a non-deleted customer (merge aliases followed) in one unit
        of work: ``read(uow, customer)``.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
        """
        async with self.read(tenant_id) as uow:
            return await read(uow, await load_customer(uow, customer_id))

    @asynccontextmanager
    async def change(self, tenant_id: str, *, actor: str | None = None) -> AsyncIterator[Change]:
        """Open a change of the tenant's data; leaving the block commits what it wrote.

        Raises:
            InvalidInput: an invalid tenant id.
        """
        async with self.uow_factory(check_tenant(tenant_id)) as uow:
            change = Change(
                uow, self.clock.now(), actor, self.profiling, self.intelligence, self.embedder
            )
            yield change
            await change._finish()

    async def change_retried(
        self,
        tenant_id: str,
        body: Callable[[Change], Awaitable[T]],
        *,
        actor: str | None = None,
    ) -> T:
        """Run ``body(change)`` in a change (see ``change``), and run the whole change
        again, up to ``CONFLICT_ATTEMPTS`` times in all, when the storage aborts it
        for a conflict with concurrent transactions (a deadlock).

        Raises:
            TransactionConflict: the last attempt was aborted too.
            InvalidInput: an invalid tenant id.
        """
        attempt = 1
        while True:
            try:
                async with self.change(tenant_id, actor=actor) as change:
                    return await body(change)
            except TransactionConflict:
                if attempt >= CONFLICT_ATTEMPTS:
                    raise
            # Apart, at random: the transactions that met would meet again in step.
            await asyncio.sleep(random.uniform(0, 0.05 * attempt))
            attempt += 1
