"""A storage declares its optional roles by implementing them; the services refuse a
missing one with StorageRoleMissing, whose message names the role."""

from __future__ import annotations

import pytest

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import StorageRoleMissing
from linkbay_customers.ports import STORAGE_ROLES, storage_roles
from linkbay_customers.testing import OPTIONAL_CAPABILITIES, FixedClock, StorageRolesContract
from linkbay_customers_clv import BetaGeoIntelligence, ModelFitStorage
from linkbay_customers_memory import InMemoryStorage
from tests._partial_storages import StorageWithout, StorageWithoutFits


def services(storage: InMemoryStorage, clock: FixedClock) -> tuple[CustomerService, AIService]:
    intelligence = HeuristicIntelligence()
    return (
        CustomerService(storage.unit_of_work, clock, intelligence),
        AIService(storage.unit_of_work, clock, intelligence),
    )


def test_the_in_memory_storage_implements_every_optional_role() -> None:
    uow = InMemoryStorage().unit_of_work("t1")
    assert storage_roles(uow) == OPTIONAL_CAPABILITIES == {r.name for r in STORAGE_ROLES}
    assert isinstance(InMemoryStorage(), ModelFitStorage)


def test_a_storage_of_the_core_repositories_only_has_no_optional_role() -> None:
    storage = StorageWithout(*OPTIONAL_CAPABILITIES)
    assert storage_roles(storage.unit_of_work("t1")) == frozenset()
    one_short = StorageWithout("similarity")
    assert storage_roles(one_short.unit_of_work("t1")) == OPTIONAL_CAPABILITIES - {"similarity"}


async def test_importing_needs_bulk_import_and_writes_nothing_without_it(
    clock: FixedClock, tenant: str
) -> None:
    storage = StorageWithout("bulk_import")
    customers, _ = services(storage, clock)
    with pytest.raises(StorageRoleMissing) as caught:
        await customers.import_customers(tenant, [{"email": "a@example.com"}])
    assert caught.value.role == "CustomerBulkImport"
    assert caught.value.code == "storage_role_missing"
    assert str(caught.value) == (
        "the storage's customers repository (uow.customers) does not implement"
        " CustomerBulkImport, needed for importing customers"
    )
    assert (await customers.list_customers(tenant)).total == 0
    # Everything else works on that storage.
    created = await customers.create_customer(tenant, {"email": "b@example.com"})
    assert (await customers.get_customer(tenant, created.id)).email == "b@example.com"


@pytest.mark.parametrize(
    ("missing", "role"),
    [("derived_data", "DerivedDataStore"), ("purchases", "PurchaseHistory")],
)
async def test_scoring_a_tenant_needs_derived_data_and_purchases(
    clock: FixedClock, tenant: str, missing: str, role: str
) -> None:
    storage = StorageWithout(missing)
    customers, ai = services(storage, clock)
    customer = await customers.create_customer(tenant, {"email": "a@example.com"})
    with pytest.raises(StorageRoleMissing, match=role) as caught:
        await ai.score_tenant(tenant)
    assert caught.value.role == role
    assert (await customers.get_customer(tenant, customer.id)).scored_at is None


@pytest.mark.parametrize(
    ("missing", "operation", "role", "repository"),
    [
        ("similarity", "find_similar_customers", "NearestNeighbours", "uow.customers"),
        ("purchases", "generate_recommendations", "PurchaseHistory", "uow.orders"),
    ],
)
async def test_similar_customers_and_recommendations_need_their_roles(
    clock: FixedClock, tenant: str, missing: str, operation: str, role: str, repository: str
) -> None:
    customers, ai = services(StorageWithout(missing), clock)
    customer = await customers.create_customer(tenant, {"email": "a@example.com"})
    with pytest.raises(StorageRoleMissing) as caught:
        await getattr(ai, operation)(tenant, customer.id)
    assert caught.value.role == role
    assert f"({repository}) does not implement {role}" in str(caught.value)


async def test_beta_geo_needs_a_storage_that_keeps_fits(clock: FixedClock) -> None:
    storage = StorageWithoutFits()
    with pytest.raises(StorageRoleMissing) as caught:
        BetaGeoIntelligence.from_storage(storage, clock)
    assert caught.value.role == "ModelFitStorage"
    assert str(caught.value).startswith(
        "the storage (StorageWithoutFits) does not implement ModelFitStorage"
    )
    await storage.close()


async def test_beta_geo_fitting_needs_derived_data(clock: FixedClock, tenant: str) -> None:
    model = BetaGeoIntelligence.from_storage(StorageWithout("derived_data"), clock)
    with pytest.raises(StorageRoleMissing, match="DerivedDataStore"):
        await model.fit(tenant)


class _DeclaresEveryRole(StorageRolesContract):
    pass


class _DeclaresWhatItHas(StorageRolesContract):
    capabilities = OPTIONAL_CAPABILITIES - {"bulk_import", "similarity"}


async def test_the_contract_fails_a_storage_that_lacks_a_declared_role() -> None:
    uow = StorageWithout("bulk_import", "similarity").unit_of_work("t1")
    with pytest.raises(AssertionError) as caught:
        await _DeclaresEveryRole().test_the_storage_implements_every_declared_role(uow)
    assert (
        "_DeclaresEveryRole declares roles its storage does not implement: 'bulk_import'"
        " (uow.customers is no CustomerBulkImport), 'similarity' (uow.customers is no"
        " NearestNeighbours)" in str(caught.value)
    )
    await _DeclaresWhatItHas().test_the_storage_implements_every_declared_role(uow)


async def test_deciding_about_duplicates_needs_the_decisions_role_and_nothing_else_does(
    clock: FixedClock, tenant: str
) -> None:
    storage = StorageWithout("duplicate_decisions")
    customers, _ = services(storage, clock)
    gdpr = GDPRService(storage.unit_of_work, clock)
    a = await customers.create_customer(tenant, {"email": "a@example.com", "phone": "+14155550100"})
    b = await customers.create_customer(tenant, {"email": "b@example.com", "phone": "+14155550100"})
    for decide in (customers.mark_distinct, customers.undo_distinct):
        with pytest.raises(StorageRoleMissing) as caught:
            await decide(tenant, a.id, b.id)
        assert caught.value.role == "DuplicateDecisions"
    with pytest.raises(StorageRoleMissing):
        await customers.list_duplicate_decisions(tenant, a.id)
    # Without decisions there is nothing to leave out, export or erase.
    assert (await customers.find_duplicates(tenant, min_probability=0.0)).total == 1
    assert (await gdpr.export_customer_data(tenant, a.id)).duplicate_decisions == ()
    await gdpr.delete_customer_data(tenant, a.id, anonymize=False)
    assert (await customers.find_duplicates(tenant, min_probability=0.0)).total == 0
