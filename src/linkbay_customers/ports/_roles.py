"""The optional roles of a storage's repositories, and the look-ups the services make.

A storage implements a role by giving the repository its methods (and, so that the
type checker verifies them, by subclassing the role's Protocol). A service that
needs a role asks for it here and gets ``StorageRoleMissing``, naming the role,
from a storage without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linkbay_customers.domain import StorageRoleMissing
from linkbay_customers.ports._repositories import (
    CustomerBulkImport,
    DerivedDataStore,
    DuplicateCandidates,
    DuplicateDecisions,
    NearestNeighbours,
    PurchaseHistory,
)
from linkbay_customers.ports._uow import UnitOfWork

__all__ = (
    "STORAGE_ROLES",
    "StorageRole",
    "bulk_import",
    "derived_data",
    "duplicate_candidates",
    "duplicate_decisions",
    "has_duplicate_decisions",
    "nearest_neighbours",
    "purchase_history",
    "storage_roles",
)


@dataclass(frozen=True, slots=True)
class StorageRole:
    """An optional role of a unit of work's repository.

    Attributes:
        name: The role's name, as the contract suite's ``capabilities`` say it.
        protocol: The Protocol the repository implements for it.
        repository: The unit of work's attribute holding that repository.
        needed_by: What the role is needed for, as the error that says it is missing puts it.
    """

    name: str
    protocol: type[Any]
    repository: str
    needed_by: str

    def implemented_by(self, uow: UnitOfWork) -> bool:
        """Whether the unit of work's repository implements the role."""
        return isinstance(getattr(uow, self.repository), self.protocol)

    def missing(self) -> StorageRoleMissing:
        """The error a service raises when the role is missing."""
        return StorageRoleMissing(
            self.protocol.__name__,
            implementer=f"the storage's {self.repository} repository (uow.{self.repository})",
            needed_by=self.needed_by,
        )


_BULK_IMPORT = StorageRole("bulk_import", CustomerBulkImport, "customers", "importing customers")
_DERIVED_DATA = StorageRole(
    "derived_data", DerivedDataStore, "customers", "scoring or fitting a whole tenant"
)
_SIMILARITY = StorageRole(
    "similarity", NearestNeighbours, "customers", "similar customers and recommendations"
)
_DUPLICATES = StorageRole(
    "duplicates", DuplicateCandidates, "customers", "finding duplicate customers"
)
_DECISIONS = StorageRole(
    "duplicate_decisions",
    DuplicateDecisions,
    "customers",
    "remembering pairs of customers marked as distinct people",
)
_PURCHASES = StorageRole(
    "purchases", PurchaseHistory, "orders", "recommendations and purchase-aware scores"
)

STORAGE_ROLES: tuple[StorageRole, ...] = (
    _BULK_IMPORT,
    _DERIVED_DATA,
    _SIMILARITY,
    _PURCHASES,
    _DUPLICATES,
    _DECISIONS,
)
"""Every optional role; every other repository method is required of every storage."""


def storage_roles(uow: UnitOfWork) -> frozenset[str]:
    """The names of the optional roles a unit of work's repositories implement."""
    return frozenset(role.name for role in STORAGE_ROLES if role.implemented_by(uow))


def bulk_import(uow: UnitOfWork) -> CustomerBulkImport:
    """``uow.customers`` as a ``CustomerBulkImport``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    customers = uow.customers
    if isinstance(customers, CustomerBulkImport):
        return customers
    raise _BULK_IMPORT.missing()


def derived_data(uow: UnitOfWork) -> DerivedDataStore:
    """``uow.customers`` as a ``DerivedDataStore``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    customers = uow.customers
    if isinstance(customers, DerivedDataStore):
        return customers
    raise _DERIVED_DATA.missing()


def nearest_neighbours(uow: UnitOfWork) -> NearestNeighbours:
    """``uow.customers`` as ``NearestNeighbours``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    customers = uow.customers
    if isinstance(customers, NearestNeighbours):
        return customers
    raise _SIMILARITY.missing()


def purchase_history(uow: UnitOfWork) -> PurchaseHistory:
    """``uow.orders`` as a ``PurchaseHistory``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    orders = uow.orders
    if isinstance(orders, PurchaseHistory):
        return orders
    raise _PURCHASES.missing()


def duplicate_candidates(uow: UnitOfWork) -> DuplicateCandidates:
    """``uow.customers`` as ``DuplicateCandidates``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    customers = uow.customers
    if isinstance(customers, DuplicateCandidates):
        return customers
    raise _DUPLICATES.missing()


def duplicate_decisions(uow: UnitOfWork) -> DuplicateDecisions:
    """``uow.customers`` as ``DuplicateDecisions``.

    Raises:
        StorageRoleMissing: the storage does not implement the role.
    """
    customers = uow.customers
    if isinstance(customers, DuplicateDecisions):
        return customers
    raise _DECISIONS.missing()


def has_duplicate_decisions(uow: UnitOfWork) -> bool:
    """Whether the storage keeps duplicate decisions: a storage without the role holds
    none, so there is nothing to filter, export or erase."""
    return _DECISIONS.implemented_by(uow)
