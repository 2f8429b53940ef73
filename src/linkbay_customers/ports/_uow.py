"""The unit of work and the storage that opens it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Protocol, Self, cast, runtime_checkable

from linkbay_customers.domain import AuditChain
from linkbay_customers.ports._repositories import (
    AddressRepository,
    AuditRepository,
    ConsentRepository,
    CustomerRepository,
    MergeAliasRepository,
    NoteRepository,
    OrderRepository,
)

__all__ = ("IdReservations", "Storage", "UnitOfWork", "read_only_units")


@runtime_checkable
class UnitOfWork(Protocol):
    """One transaction over one tenant's data.

    Used as ``async with storage.unit_of_work(tenant_id) as uow``. Repositories add
    and flush; only ``commit()`` makes changes durable, and leaving the block without
    it rolls them back.

    ``customers`` and ``orders`` may implement optional roles besides their core
    Protocol (``CustomerBulkImport``, ``DerivedDataStore``, ``NearestNeighbours``,
    ``PurchaseHistory``); ``storage_roles`` says which, and a service that needs a
    missing one raises ``StorageRoleMissing``.
    """

    tenant_id: str
    customers: CustomerRepository
    addresses: AddressRepository
    notes: NoteRepository
    orders: OrderRepository
    consents: ConsentRepository
    audit: AuditRepository
    aliases: MergeAliasRepository

    @property
    def audit_chain(self) -> AuditChain:
        """Seals this storage's audit events (its key is the host's, not the database's)."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction.

        Raises:
            StorageError: the storage cannot be reached.
            RuntimeError: the unit of work was entered before.
        """
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the transaction, rolling back whatever was not committed; the exception
        that ended the block, if any, propagates (raises nothing of its own but a
        failed rollback's)."""
        ...

    async def commit(self) -> None:
        """Make the transaction's changes durable.

        Raises:
            StorageError: the commit, or what the storage does right after it, failed.
        """
        ...

    async def rollback(self) -> None:
        """Discard the transaction's uncommitted changes (raises nothing of its own but
        the backend's, if the rollback itself fails)."""
        ...


@runtime_checkable
class IdReservations(Protocol):
    """A unit of work that reserves new ids of several repositories in one step.

    Optional: a change that needs ids of more than one table (a new customer and
    its audit event) asks for them together when the unit of work offers it, and
    of each repository's ``next_ids`` in turn otherwise. A storage whose counters
    are locked until the commit (a SQL database's) holds them for less time.
    """

    async def next_ids_of(self, counts: Sequence[tuple[str, int]]) -> list[list[int]]:
        """Reserve ``count`` new ids of each repository named (the unit of work's
        attribute: ``"customers"``, ``"audit"``, ...), at once, in the order given;
        each repository at most once. The ids, in the same order."""
        ...


@runtime_checkable
class Storage(Protocol):
    """A storage backend: opens tenant-bound units of work and owns their resources."""

    def unit_of_work(self, tenant_id: str, *, read_only: bool = False) -> UnitOfWork:
        """A new, not yet entered, unit of work for one tenant (raises nothing: the
        storage is reached when the unit of work is entered).

        A ``read_only`` unit of work only reads: the storage may run it without
        the write lock, beside other transactions, and refuses to make anything
        written through it durable (``StorageError``). The services read in such
        units of work; a storage whose ``unit_of_work`` takes no ``read_only``
        keyword is given ordinary ones to read in.
        """
        ...

    async def ping(self) -> None:
        """Check the storage answers now; raise ``StorageError`` when it does not."""
        ...

    async def close(self) -> None:
        """Release connections and other resources (raises nothing of its own)."""
        ...


def read_only_units(
    uow_factory: Callable[[str], UnitOfWork],
) -> Callable[[str], UnitOfWork]:
    """The factory opening read-only units of work: ``uow_factory(tenant,
    read_only=True)``, or ``uow_factory`` itself when it takes no such keyword (a
    storage written before the keyword existed)."""
    try:
        parameters = inspect.signature(uow_factory).parameters.values()
    except (TypeError, ValueError):  # a callable without an inspectable signature
        return uow_factory
    if any(
        p.kind is p.VAR_KEYWORD or (p.name == "read_only" and p.kind is not p.POSITIONAL_ONLY)
        for p in parameters
    ):
        return partial(cast(Callable[..., UnitOfWork], uow_factory), read_only=True)
    return uow_factory
