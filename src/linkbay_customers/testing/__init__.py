"""Test support: the storage contract suite, a fixed clock and entity builders.

Needs pytest and pytest-asyncio (the ``testing`` extra: ``pip install -e '.[testing]'``).
"""

from __future__ import annotations

import pytest

# Show compared values when a contract assertion fails in a host's test run.
pytest.register_assert_rewrite("linkbay_customers.testing._contract")

from linkbay_customers.testing._builders import (  # noqa: E402
    T0,
    add_address,
    add_audit_event,
    add_consent_event,
    add_customer,
    add_note,
    add_order,
    new_tenant_id,
)
from linkbay_customers.testing._clock import FixedClock  # noqa: E402
from linkbay_customers.testing._contract import (  # noqa: E402
    OPTIONAL_CAPABILITIES,
    AddressRepositoryContract,
    AuditRepositoryContract,
    ConsentRepositoryContract,
    ContractBase,
    CustomerBulkImportContract,
    CustomerListingContract,
    CustomerRepositoryContract,
    DerivedDataContract,
    DuplicateCandidatesContract,
    DuplicateDecisionsContract,
    IntelligenceDataContract,
    MergeAliasRepositoryContract,
    NearestNeighboursContract,
    NoteRepositoryContract,
    OrderRepositoryContract,
    PurchaseHistoryContract,
    StorageContract,
    StorageRolesContract,
    TenantIsolationContract,
    UnitOfWorkContract,
)

__all__ = (
    "OPTIONAL_CAPABILITIES",
    "T0",
    "AddressRepositoryContract",
    "AuditRepositoryContract",
    "ConsentRepositoryContract",
    "ContractBase",
    "CustomerBulkImportContract",
    "CustomerListingContract",
    "CustomerRepositoryContract",
    "DerivedDataContract",
    "DuplicateCandidatesContract",
    "DuplicateDecisionsContract",
    "FixedClock",
    "IntelligenceDataContract",
    "MergeAliasRepositoryContract",
    "NearestNeighboursContract",
    "NoteRepositoryContract",
    "OrderRepositoryContract",
    "PurchaseHistoryContract",
    "StorageContract",
    "StorageRolesContract",
    "TenantIsolationContract",
    "UnitOfWorkContract",
    "add_address",
    "add_audit_event",
    "add_consent_event",
    "add_customer",
    "add_note",
    "add_order",
    "new_tenant_id",
)
