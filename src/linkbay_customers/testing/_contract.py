"""The contract every storage adapter must pass.

Subclass the mixins (or ``StorageContract``, which has them all) and provide a
``storage`` fixture that yields a ``Storage``::

    class TestMyStorage(StorageContract):
        @pytest.fixture
        async def storage(self):
            storage = MyStorage(...)
            yield storage
            await storage.close()

The fixture may also come from a class of fixtures listed after the contract
(``class TestMyStorage(StorageContract, MyFixtures)``). Async fixtures of a contract
class run under pytest-asyncio whatever the project's ``asyncio_mode``: strict mode
needs no ``@pytest_asyncio.fixture``. A class that provides no ``storage`` fails
every test with a message saying so.

Each role of a storage has its contract class: the core repositories'
(``CustomerRepositoryContract``, ...) and the optional roles'
(``CustomerBulkImportContract``, ``DerivedDataContract``, ``NearestNeighboursContract``,
``PurchaseHistoryContract``, ``DuplicateCandidatesContract``,
``DuplicateDecisionsContract``). A storage that leaves out
optional roles (``OPTIONAL_CAPABILITIES``) says which it has in ``capabilities``; the tests of the
others are skipped, naming the missing capability, and ``StorageRolesContract``
checks that the storage implements each role declared.

Every test works in tenants of its own (fresh random ids), so the storage may be
shared between tests and need not be emptied.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
from collections.abc import Callable, Set
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import pytest

from linkbay_customers.domain import (
    EMBEDDING_DIMENSIONS,
    MAX_BLOCK_SIZE,
    TENANT_CHAIN,
    AddressType,
    AuditAction,
    AuditEvent,
    ChainTip,
    ConsentState,
    Customer,
    CustomerFilters,
    CustomerNotFound,
    CustomerSort,
    DerivedData,
    DuplicateDecision,
    DuplicateEmail,
    MergeAlias,
    ModelFit,
    OrderConflict,
    OrderItem,
    OrderShipping,
    StorageError,
    StorageRejected,
    TagMatch,
    blocks,
    chain_of,
    match_record,
)
from linkbay_customers.ports import (
    STORAGE_ROLES,
    Storage,
    UnitOfWork,
    bulk_import,
    derived_data,
    duplicate_candidates,
    duplicate_decisions,
    nearest_neighbours,
    purchase_history,
    storage_roles,
)
from linkbay_customers.services._audit import append_audit
from linkbay_customers.testing._builders import (
    T0,
    add_address,
    add_audit_event,
    add_consent_event,
    add_customer,
    add_note,
    add_order,
    new_tenant_id,
)

__all__ = (
    "OPTIONAL_CAPABILITIES",
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
)

_ALL = CustomerFilters()

_COUNTED = ("customers", "addresses", "notes", "orders", "consents", "audit")
"""The repositories of a unit of work that hand out ids."""

OPTIONAL_CAPABILITIES: frozenset[str] = frozenset(role.name for role in STORAGE_ROLES)
"""The roles a storage may leave out (``linkbay_customers.ports.STORAGE_ROLES``:
``bulk_import``, ``derived_data``, ``similarity``, ``purchases``, ``duplicates``,
``duplicate_decisions``); every
other part of the contract is required."""

_Test = TypeVar("_Test", bound=Callable[..., Any])

BULK_ROWS = 40
"""Rows of a batch large enough for a storage's bulk path (COPY on PostgreSQL)."""


def _requires(capability: str) -> Callable[[_Test], _Test]:
    """Skip the decorated test unless the contract class declares ``capability``."""
    assert capability in OPTIONAL_CAPABILITIES, capability

    def mark(test: _Test) -> _Test:
        vars(test)["_contract_capability"] = capability
        return test

    return mark


def _run_under_pytest_asyncio(function: Any) -> None:
    """Mark an async fixture as ``@pytest_asyncio.fixture`` does.

    Strict mode (pytest-asyncio's default) runs only async fixtures so marked and
    leaves a plain ``@pytest.fixture`` to pytest, which refuses it. Marking those of
    a contract class is what auto mode does for every fixture, confined to the class.
    """
    # The attributes are pytest-asyncio's own (private, long unchanged); a test runs a fresh
    # strict-mode project against them (tests/contract/test_contract_in_a_fresh_project.py).
    is_async = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
    if is_async and not hasattr(function, "_force_asyncio_fixture"):
        function._force_asyncio_fixture = True
        function._loop_scope = None  # the default loop scope, as with no loop_scope argument


class ContractBase:
    """Fixtures shared by every contract: two fresh tenants of one storage.

    The base of a contract an adapter ships for a port of its own (as
    ``linkbay_customers_clv.testing.ModelFitStorageContract`` does).
    """

    pytestmark = pytest.mark.asyncio

    capabilities: ClassVar[Set[str]] = OPTIONAL_CAPABILITIES
    """The optional roles the storage under test has; by default all of them."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.capabilities) - OPTIONAL_CAPABILITIES
        if unknown:
            raise TypeError(
                f"{cls.__name__}.capabilities names unknown capabilities {sorted(unknown)}; "
                f"the optional ones are {sorted(OPTIONAL_CAPABILITIES)}"
            )
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if callable(value) and not name.startswith("test"):
                    _run_under_pytest_asyncio(inspect.unwrap(value))
        # In `class TestX(SomeContract, MyFixtures)` the placeholder below comes first
        # in the MRO; the storage of the fixtures class is the one meant.
        provided = [vars(klass)[_STORAGE] for klass in cls.__mro__ if _STORAGE in vars(klass)]
        if provided[0] is _PLACEHOLDER and len(provided) > 1:
            setattr(cls, _STORAGE, provided[1])

    @pytest.fixture
    def storage(self) -> Storage:
        """Placeholder: the class under test provides the storage."""
        pytest.fail(
            f"{type(self).__name__} needs a `storage` fixture that yields the Storage under "
            "test: add `@pytest.fixture async def storage(self)` to the class, or to a class "
            "of fixtures it inherits from",
            pytrace=False,
        )

    @pytest.fixture(autouse=True)
    def _skip_undeclared_capability(self, request: pytest.FixtureRequest) -> None:
        capability = getattr(request.function, "_contract_capability", None)
        if capability is not None and capability not in self.capabilities:
            pytest.skip(
                f"{type(self).__name__} does not declare the {capability!r} capability "
                "in its `capabilities`"
            )

    @pytest.fixture
    def tenant(self) -> str:
        return new_tenant_id("a")

    @pytest.fixture
    def other_tenant(self) -> str:
        return new_tenant_id("b")

    @pytest.fixture
    def uow(self, storage: Storage, tenant: str) -> UnitOfWork:
        """A fresh, not yet entered, unit of work of ``tenant``."""
        return storage.unit_of_work(tenant)


_STORAGE = "storage"
_PLACEHOLDER = vars(ContractBase)[_STORAGE]
_WAIT_SECONDS = 10.0  # well under the SQLite busy timeout a waiting call would sit out


class UnitOfWorkContract(ContractBase):
    """Commit, rollback and id reservation."""

    async def test_the_unit_of_work_is_bound_to_its_tenant(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            assert uow.tenant_id == tenant

    async def test_committed_changes_are_seen_by_a_later_unit_of_work(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow)
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(customer.id) == customer

    async def test_leaving_without_commit_rolls_back(self, storage: Storage, tenant: str) -> None:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow)
            assert await uow.customers.get(customer.id) == customer
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(customer.id) is None

    async def test_a_read_only_unit_of_work_reads_what_was_committed(
        self, storage: Storage, tenant: str
    ) -> None:
        customer = await _committed_customer(storage, tenant)
        async with storage.unit_of_work(tenant, read_only=True) as uow:
            assert await uow.customers.get(customer.id) == customer

    async def test_a_read_only_unit_of_work_makes_nothing_durable(
        self, storage: Storage, tenant: str
    ) -> None:
        with pytest.raises(StorageError):  # noqa: PT012 (the whole block is the subject)
            async with storage.unit_of_work(tenant, read_only=True) as uow:
                await add_customer(uow)
                await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert (await uow.customers.list(_ALL, page=1, page_size=10)).total == 0

    async def test_a_read_only_unit_of_work_reads_beside_an_open_write(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        customer = await _committed_customer(storage, tenant)
        async with storage.unit_of_work(other_tenant) as writing:
            await add_customer(writing)  # a write transaction stays open meanwhile
            async with storage.unit_of_work(tenant, read_only=True) as uow:
                read = await asyncio.wait_for(uow.customers.get(customer.id), _WAIT_SECONDS)
            assert read == customer

    async def test_a_write_goes_ahead_beside_an_open_read_only_unit_of_work(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant, read_only=True) as reading:
            await reading.customers.list(_ALL, page=1, page_size=10)  # its transaction is open
            async with storage.unit_of_work(other_tenant) as uow:
                customer = await asyncio.wait_for(add_customer(uow), _WAIT_SECONDS)
                await asyncio.wait_for(uow.commit(), _WAIT_SECONDS)
        async with storage.unit_of_work(other_tenant, read_only=True) as uow:
            assert await uow.customers.get(customer.id) == customer

    async def test_the_storage_answers_a_ping_beside_an_open_write(
        self, storage: Storage, tenant: str
    ) -> None:
        await storage.ping()
        async with storage.unit_of_work(tenant) as uow:
            await add_customer(uow)  # readiness checks must not wait for the writer
            await asyncio.wait_for(storage.ping(), _WAIT_SECONDS)

    async def test_an_exception_rolls_back_and_propagates(
        self, storage: Storage, tenant: str
    ) -> None:
        created: list[int] = []
        with pytest.raises(LookupError):  # noqa: PT012 (the whole block is the subject)
            async with storage.unit_of_work(tenant) as uow:
                created.append((await add_customer(uow)).id)
                raise LookupError("boom")
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(created[0]) is None

    async def test_rollback_discards_only_changes_since_the_last_commit(
        self, storage: Storage, tenant: str
    ) -> None:
        # An id reserved in a rolled-back transaction may be handed out again (it
        # never existed), so customers are told apart by email here.
        async with storage.unit_of_work(tenant) as uow:
            kept = await add_customer(uow, email="kept@example.com")
            await uow.commit()
            await add_customer(uow, email="dropped@example.com")
            await uow.rollback()
            assert await uow.customers.get_by_email("dropped@example.com") is None
            later = await add_customer(uow, email="later@example.com")
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(kept.id) == kept
            assert await uow.customers.get_by_email("dropped@example.com") is None
            assert await uow.customers.get(later.id) == later

    async def test_changes_after_the_last_commit_are_discarded_on_exit(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow, first_name="Before")
            await uow.commit()
            await uow.customers.update(replace(customer, first_name="After"))
        async with storage.unit_of_work(tenant) as uow:
            stored = await uow.customers.get(customer.id)
            assert stored is not None
            assert stored.first_name == "Before"

    async def test_uncommitted_changes_are_invisible_to_other_units_of_work(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            existing = await add_customer(uow)
            await uow.commit()

        writer_has_written = asyncio.Event()
        seen: list[Any] = []

        async def writer() -> None:
            async with storage.unit_of_work(tenant) as uow:
                await uow.customers.update(replace(existing, first_name="Uncommitted"))
                writer_has_written.set()
                # Let the reader start while this change is pending; then roll back.
                await asyncio.sleep(0.05)

        async def reader() -> None:
            await writer_has_written.wait()
            async with storage.unit_of_work(tenant) as uow:
                seen.append(await uow.customers.get(existing.id))

        await asyncio.wait_for(asyncio.gather(writer(), reader()), timeout=30)
        assert seen[0] is not None
        assert seen[0].first_name is None

    async def test_reserved_ids_are_distinct(self, storage: Storage, tenant: str) -> None:
        async with storage.unit_of_work(tenant) as uow:
            ids = [await uow.customers.next_id() for _ in range(5)]
            ids += [await uow.customers.next_id() for _ in range(5)]
        assert len(set(ids)) == len(ids)
        assert all(i > 0 for i in ids)


class CustomerRepositoryContract(ContractBase):
    """Storing and fetching customers."""

    async def test_a_customer_round_trips_with_every_field(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(
                uow,
                email="mario.rossi@example.com",
                first_name="Mario",
                last_name="Rossi",
                phone="+393331234567",
                birthday=T0.date().replace(year=1990),
                gender="male",
                preferences={"language": "it", "nested": {"a": [1, 2.5, None, True]}},
                tags=["vip", "early_adopter"],
                currency="EUR",
                total_orders=3,
                total_spent=Decimal("149.9700"),
                average_order_value=Decimal("49.9900"),
                first_order_at=T0 - timedelta(days=40),
                last_order_at=T0 - timedelta(days=2, microseconds=7),
                customer_lifetime_value=Decimal("320.5000"),
                churn_risk_score=0.125,
                segment="active",
                embedding=[0.25, -0.5] + [0.0] * 30,
                embedding_version="behaviour-v1",
                scored_at=T0,
                score_source="heuristic",
                consent_data={
                    "marketing": ConsentState(
                        consented=True,
                        date=T0,
                        source="signup-form",
                        ip_address="192.0.2.1",
                        user_agent="Mozilla/5.0",
                    )
                },
            )
            stored = await uow.customers.get(customer.id)
        assert stored == customer
        assert stored.created_at.utcoffset() == timedelta(0)

    async def test_an_unknown_id_is_none(self, uow: UnitOfWork) -> None:
        async with uow:
            assert await uow.customers.get(987_654_321) is None

    async def test_a_deleted_customer_is_hidden_unless_asked_for(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow, deleted_at=T0)
            assert await uow.customers.get(customer.id) is None
            assert await uow.customers.get(customer.id, include_deleted=True) == customer
            assert await uow.customers.get_by_email(customer.email or "") is None
            assert (
                await uow.customers.get_by_email(customer.email or "", include_deleted=True)
                == customer
            )

    async def test_many_customers_are_read_by_id_at_once_deleted_ones_included(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first = await add_customer(uow, first_name="Mario")
            merged = await add_customer(uow, deleted_at=T0)
            await add_customer(uow)
            unknown = await uow.customers.next_id()
            found = await uow.customers.get_many([merged.id, unknown, first.id])
            assert found == [first, merged]
            assert await uow.customers.get_many([]) == []

    async def test_get_for_update_returns_the_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            assert await uow.customers.get(customer.id, for_update=True) == customer

    async def test_get_by_email_finds_the_exact_email(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow, email="anna@example.com")
            await add_customer(uow, email="anna@example.co")
            assert await uow.customers.get_by_email("anna@example.com") == customer
            assert await uow.customers.get_by_email("nobody@example.com") is None

    async def test_adding_a_taken_email_raises_duplicate_email(self, uow: UnitOfWork) -> None:
        async with uow:
            await add_customer(uow, email="dup@example.com")
            with pytest.raises(DuplicateEmail) as caught:
                await add_customer(uow, email="dup@example.com")
        assert caught.value.existing_is_deleted is False

    async def test_a_deleted_customer_keeps_its_email_reserved(self, uow: UnitOfWork) -> None:
        async with uow:
            await add_customer(uow, email="gone@example.com", deleted_at=T0)
            with pytest.raises(DuplicateEmail) as caught:
                await add_customer(uow, email="gone@example.com")
        assert caught.value.existing_is_deleted is True

    async def test_many_customers_may_have_no_email(self, uow: UnitOfWork) -> None:
        async with uow:
            first = await add_customer(uow, email=None, is_anonymized=True)
            second = await add_customer(uow, email=None, is_anonymized=True)
            assert await uow.customers.get(first.id) == first
            assert await uow.customers.get(second.id) == second

    async def test_update_writes_every_field(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            changed = replace(
                customer,
                email="new@example.com",
                first_name="Anna",
                tags=["b", "a"],
                preferences={"x": {"y": 1}},
                total_orders=2,
                total_spent=Decimal("10.5"),
                segment="active",
                deleted_at=T0,
                updated_at=T0 + timedelta(hours=1),
            )
            await uow.customers.update(changed)
            assert await uow.customers.get(customer.id, include_deleted=True) == changed

    async def test_updating_to_a_taken_email_raises_duplicate_email(self, uow: UnitOfWork) -> None:
        async with uow:
            await add_customer(uow, email="taken@example.com")
            customer = await add_customer(uow)
            with pytest.raises(DuplicateEmail):
                await uow.customers.update(replace(customer, email="taken@example.com"))

    async def test_updating_an_unknown_customer_raises_not_found(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            ghost = replace(customer, id=await uow.customers.next_id())
            with pytest.raises(CustomerNotFound):
                await uow.customers.update(ghost)

    async def test_delete_removes_the_row(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            await uow.customers.delete(customer.id)
            assert await uow.customers.get(customer.id, include_deleted=True) is None

    async def test_many_customers_are_deleted_at_once(self, uow: UnitOfWork) -> None:
        async with uow:
            first, merged, kept = [await add_customer(uow) for _ in range(3)]
            await uow.customers.delete_many([first.id, merged.id])
            await uow.customers.delete_many([])
            assert await uow.customers.get_many([first.id, merged.id, kept.id]) == [kept]

    async def test_a_customer_with_dependants_cannot_be_deleted(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            await add_address(uow, customer.id)
            with pytest.raises(StorageRejected):
                await uow.customers.delete(customer.id)

    async def test_many_customers_are_updated_at_once(self, uow: UnitOfWork) -> None:
        async with uow:
            first = await add_customer(uow)
            second = await add_customer(uow, tags=["x"])
            changed = [
                replace(first, first_name="Uno", preferences={"a": 1}),
                replace(second, tags=[], segment="active", deleted_at=T0),
            ]
            await uow.customers.update_many(changed)
            await uow.customers.update_many([])
            assert await uow.customers.get(first.id) == changed[0]
            assert await uow.customers.get(second.id, include_deleted=True) == changed[1]

    async def test_inactive_customers_are_listed_by_id_in_chunks(self, uow: UnitOfWork) -> None:
        cutoff = T0 + timedelta(days=100)
        old = T0 + timedelta(days=10)
        async with uow:
            idle = await add_customer(uow, created_at=old, updated_at=old)
            idle_deleted = await add_customer(uow, created_at=old, updated_at=old, deleted_at=old)
            bought_long_ago = await add_customer(
                uow, created_at=old, updated_at=old, last_order_at=old
            )
            await add_customer(uow, created_at=old, updated_at=cutoff)  # changed recently
            await add_customer(  # ordered recently
                uow, created_at=old, updated_at=old, last_order_at=cutoff + timedelta(days=1)
            )
            await add_customer(  # already anonymized
                uow, email=None, created_at=old, updated_at=old, is_anonymized=True
            )
            first = await uow.customers.list_inactive(cutoff, after_id=0, limit=2)
            rest = await uow.customers.list_inactive(cutoff, after_id=first[-1].id, limit=2)
        assert [c.id for c in first] == [idle.id, idle_deleted.id]
        assert first[0] == idle
        assert [c.id for c in rest] == [bought_long_ago.id]

    async def test_a_row_of_another_tenant_cannot_be_added(
        self, uow: UnitOfWork, other_tenant: str
    ) -> None:
        async with uow:
            customer_id = await uow.customers.next_id()
            with pytest.raises(StorageRejected):
                await add_customer(uow, id=customer_id, tenant_id=other_tenant)


class CustomerBulkImportContract(ContractBase):
    """``CustomerBulkImport``: many customers reserved, added and read back at once."""

    @_requires("bulk_import")
    async def test_a_reserved_range_is_consecutive_and_the_next_id_follows_it(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first = await uow.customers.next_id()
            reserved = list(await bulk_import(uow).next_ids(1000))
            assert reserved == list(range(first + 1, first + 1001))
            assert await uow.customers.next_id() == first + 1001
            events = list(await uow.audit.next_ids(3))
            assert events == list(range(events[0], events[0] + 3))

    @_requires("bulk_import")
    async def test_many_customers_are_added_and_read_back_by_email_at_once(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            taken = await add_customer(uow, email="taken@example.com")
            ids = await bulk_import(uow).next_ids(3)
            assert len(set(ids)) == 3
            batch = [
                Customer(
                    id=customer_id,
                    tenant_id=uow.tenant_id,
                    email=email,
                    first_name="Batch",
                    tags=["import"],
                    total_spent=Decimal("1.5"),
                    created_at=T0,
                    updated_at=T0,
                )
                for customer_id, email in zip(
                    ids, ["one@example.com", "taken@example.com", "two@example.com"], strict=True
                )
            ]
            assert list(await bulk_import(uow).add_many(batch)) == ["taken@example.com"]
            assert await bulk_import(uow).next_ids(0) == []
            # Every kind of value survives a batch: consent, scores, money, dates.
            scored = [
                replace(
                    batch[0],
                    id=customer_id,
                    email=f"scored{n}@example.com",
                    consent_data={"marketing": ConsentState(consented=True, date=T0, source="web")},
                    churn_risk_score=0.25,
                    customer_lifetime_value=Decimal("123.4567"),
                    birthday=T0.date(),
                    last_order_at=T0,
                    embedding=[0.5] * EMBEDDING_DIMENSIONS if n else None,
                )
                for n, customer_id in enumerate(await bulk_import(uow).next_ids(2))
            ]
            for customer in scored:
                assert list(await bulk_import(uow).add_many([customer])) == []
                assert await uow.customers.get(customer.id) == customer
            assert list(await bulk_import(uow).add_many([])) == []
            found = await bulk_import(uow).get_many_by_email(
                ["one@example.com", "two@example.com", "taken@example.com", "none@example.com"]
            )
        assert found == {
            "one@example.com": batch[0],
            "two@example.com": batch[2],
            "taken@example.com": taken,
        }

    @_requires("bulk_import")
    async def test_every_kind_of_value_survives_a_batch_as_large_as_an_imports(
        self, uow: UnitOfWork
    ) -> None:
        # Enough rows for a storage's bulk path (COPY on PostgreSQL): every value
        # is stored as the single-row path stores it.
        async with uow:
            ids = await bulk_import(uow).next_ids(BULK_ROWS)
            batch = [
                Customer(
                    id=customer_id,
                    tenant_id=uow.tenant_id,
                    email=f"bulk{n}@example.com",
                    first_name="Bulk" if n % 2 else None,
                    phone="+393331234567",
                    tags=["import", "vip"][: n % 3],
                    preferences={"language": "it", "n": n} if n % 2 else {},
                    consent_data=(
                        {"marketing": ConsentState(consented=True, date=T0, source="web")}
                        if n % 3
                        else {}
                    ),
                    total_orders=n,
                    total_spent=Decimal("1.5") * n,
                    churn_risk_score=0.25 if n % 2 else None,
                    customer_lifetime_value=Decimal("123.4567") if n % 2 else None,
                    birthday=T0.date() if n % 2 else None,
                    last_order_at=T0 if n % 2 else None,
                    embedding=[0.5] * EMBEDDING_DIMENSIONS if n % 4 == 1 else None,
                    created_at=T0,
                    updated_at=T0 + timedelta(seconds=n),
                )
                for n, customer_id in enumerate(ids)
            ]
            assert list(await bulk_import(uow).add_many(batch)) == []
            assert await uow.customers.get_many(ids) == batch


class CustomerListingContract(ContractBase):
    """Filtering, sorting, paging and searching customers."""

    async def test_every_filter_narrows_the_listing(self, uow: UnitOfWork) -> None:
        async with uow:
            a = await add_customer(
                uow,
                email="a%b_c@gmail.com",
                segment="high_value",
                total_spent=Decimal("1500"),
                tags=["vip", "newsletter"],
                created_at=T0,
            )
            b = await add_customer(
                uow,
                email="axbyc@gmail.com",
                segment="active",
                total_spent=Decimal("1000"),
                tags=["vip"],
                created_at=T0 + timedelta(days=1),
            )
            c = await add_customer(
                uow,
                email="other@yahoo.com",
                segment="active",
                total_spent=Decimal("10"),
                tags=["newsletter"],
                created_at=T0 + timedelta(days=2),
            )
            d = await add_customer(
                uow,
                email="deleted@gmail.com",
                segment="active",
                total_spent=Decimal("1000"),
                tags=["vip"],
                deleted_at=T0,
                created_at=T0 + timedelta(days=3),
            )

            async def ids(**criteria: Any) -> set[int]:
                page = await uow.customers.list(CustomerFilters(**criteria), page=1, page_size=100)
                return {c.id for c in page.items}

            assert await ids() == {a.id, b.id, c.id}
            assert await ids(include_deleted=True) == {a.id, b.id, c.id, d.id}
            assert await ids(segment="active") == {b.id, c.id}
            assert await ids(min_total_spent=Decimal("1000")) == {a.id, b.id}
            assert await ids(max_total_spent=Decimal("1000")) == {b.id, c.id}
            assert await ids(min_total_spent=Decimal("1000"), max_total_spent=Decimal("1000")) == {
                b.id
            }
            assert await ids(tags=("vip", "newsletter")) == {a.id, b.id, c.id}
            assert await ids(tags=("vip", "newsletter"), tags_match=TagMatch.ALL) == {a.id}
            assert await ids(tags=("unknown",)) == set()
            assert await ids(email_contains="@gmail") == {a.id, b.id}
            assert await ids(email_contains="a%b_c") == {a.id}
            assert await ids(email_contains="_") == {a.id}
            assert await ids(email_contains="%") == {a.id}
            assert await ids(created_after=T0 + timedelta(days=1)) == {b.id, c.id}
            assert await ids(created_before=T0 + timedelta(days=1)) == {a.id}
            assert await ids(segment="active", min_total_spent=Decimal("100")) == {b.id}

    async def test_pages_are_disjoint_complete_and_counted(self, uow: UnitOfWork) -> None:
        async with uow:
            created = [
                await add_customer(uow, created_at=T0 + timedelta(minutes=i % 3)) for i in range(7)
            ]
            pages = [await uow.customers.list(_ALL, page=p, page_size=3) for p in (1, 2, 3, 4)]
        assert [p.total for p in pages] == [7, 7, 7, 7]
        assert [len(p.items) for p in pages] == [3, 3, 1, 0]
        listed = [c.id for p in pages for c in p.items]
        assert sorted(listed) == sorted(c.id for c in created)
        assert pages[0].total_pages == 3

    async def test_the_default_order_is_newest_first_with_ties_by_id(self, uow: UnitOfWork) -> None:
        async with uow:
            old = await add_customer(uow, created_at=T0)
            tie1 = await add_customer(uow, created_at=T0 + timedelta(days=1))
            tie2 = await add_customer(uow, created_at=T0 + timedelta(days=1))
            page = await uow.customers.list(_ALL, page=1, page_size=10)
        assert [c.id for c in page.items] == [tie2.id, tie1.id, old.id]

    async def test_sorting_on_each_column_with_missing_values_last(self, uow: UnitOfWork) -> None:
        async with uow:
            never = await add_customer(uow, total_spent=Decimal("0"), created_at=T0)
            small = await add_customer(
                uow,
                total_spent=Decimal("5"),
                last_order_at=T0 - timedelta(days=9),
                created_at=T0 + timedelta(seconds=1),
            )
            big = await add_customer(
                uow,
                total_spent=Decimal("500"),
                last_order_at=T0 - timedelta(days=1),
                created_at=T0 + timedelta(seconds=2),
            )

            async def order(sort: CustomerSort) -> list[int]:
                page = await uow.customers.list(CustomerFilters(sort=sort), page=1, page_size=10)
                return [c.id for c in page.items]

            assert await order(CustomerSort.CREATED_AT_ASC) == [never.id, small.id, big.id]
            assert await order(CustomerSort.CREATED_AT_DESC) == [big.id, small.id, never.id]
            assert await order(CustomerSort.TOTAL_SPENT_DESC) == [big.id, small.id, never.id]
            assert await order(CustomerSort.TOTAL_SPENT_ASC) == [never.id, small.id, big.id]
            assert await order(CustomerSort.LAST_ORDER_AT_DESC) == [big.id, small.id, never.id]
            assert await order(CustomerSort.LAST_ORDER_AT_ASC) == [small.id, big.id, never.id]

    async def test_search_ranks_exact_email_then_prefix_then_substring(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            inside = await add_customer(uow, email="zz@example.com", last_name="Demario")
            prefix = await add_customer(uow, email="x1@example.com", first_name="Mario")
            exact = await add_customer(uow, email="mario@example.com")
            await add_customer(uow, email="nobody@example.com", first_name="Luigi")
            found = await uow.customers.search("mario@example.com", limit=10)
            assert [c.id for c in found] == [exact.id]
            # Equal ranks (two prefixes here) keep id order.
            found = await uow.customers.search("MARIO", limit=10)
            assert [c.id for c in found] == [prefix.id, exact.id, inside.id]

    async def test_search_treats_percent_and_underscore_literally(self, uow: UnitOfWork) -> None:
        async with uow:
            literal = await add_customer(uow, email="100%_sure@example.com")
            await add_customer(uow, email="100xysure@example.com")
            assert [c.id for c in await uow.customers.search("0%_s", limit=10)] == [literal.id]
            assert [c.id for c in await uow.customers.search("%", limit=10)] == [literal.id]
            assert [c.id for c in await uow.customers.search("_", limit=10)] == [literal.id]

    async def test_search_matches_full_names_phones_and_accents(self, uow: UnitOfWork) -> None:
        async with uow:
            full = await add_customer(uow, first_name="Anna", last_name="Bianchi")
            phone = await add_customer(uow, phone="+393331234567")
            accented = await add_customer(uow, first_name="Élodie")
            assert [c.id for c in await uow.customers.search("anna bian", limit=5)] == [full.id]
            assert [c.id for c in await uow.customers.search("333 123", limit=5)] == [phone.id]
            assert [c.id for c in await uow.customers.search("+39333", limit=5)] == [phone.id]
            assert [c.id for c in await uow.customers.search("élodie", limit=5)] == [accented.id]

    async def test_search_folds_text_as_search_key_does(self, uow: UnitOfWork) -> None:
        """One folding on every storage: Unicode case folding, accents ignored."""
        async with uow:
            turkish = await add_customer(uow, first_name="İlker", last_name="Öztürk")
            greek = await add_customer(uow, last_name="ΣΊΣΥΦΟΣ")
            german = await add_customer(uow, last_name="Straße", email="strasse@example.com")
            lower = await add_customer(uow, first_name="élodie", email="élodie@exämple.com")

            async def found(query: str) -> set[int]:
                return {c.id for c in await uow.customers.search(query, limit=10)}

            assert await found("ilker") == {turkish.id}
            assert await found("İLKER OZTURK") == {turkish.id}
            assert await found("σίσυφος") == {greek.id}
            assert await found("Σίσυφοσ") == {greek.id}
            assert await found("STRASSE") == {german.id}
            assert await found("straße") == {german.id}
            assert await found("ÉLODIE") == {lower.id}
            # An email written with accents is found by its exact address, folded.
            exact = await uow.customers.search("ELODIE@EXAMPLE.COM", limit=10)
            assert [c.id for c in exact] == [lower.id]

            async def listed(email_contains: str) -> set[int]:
                filters = CustomerFilters(email_contains=email_contains)
                page = await uow.customers.list(filters, page=1, page_size=10)
                return {c.id for c in page.items}

            assert await listed("ELODIE@EXA") == {lower.id}
            assert await listed("élodie@exämple") == {lower.id}
            assert await listed("STRASSE@") == {german.id}

    async def test_search_skips_deleted_customers_and_respects_the_limit(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            await add_customer(uow, first_name="Gone", deleted_at=T0)
            alive = [await add_customer(uow, first_name=f"Gina{i}") for i in range(4)]
            found = await uow.customers.search("gi", limit=3)
        assert [c.id for c in found] == [c.id for c in alive[:3]]


class AddressRepositoryContract(ContractBase):
    """Addresses."""

    async def test_addresses_round_trip_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            first = await add_address(uow, customer.id, address_line2="Interno 4", state="MI")
            second = await add_address(
                uow, customer.id, type=AddressType.BILLING, is_default=True, country="DE"
            )
            assert await uow.addresses.get(first.id) == first
            assert await uow.addresses.list_for_customer(customer.id) == [first, second]
            assert await uow.addresses.get(await uow.addresses.next_id()) is None

    async def test_the_addresses_of_several_customers_are_listed_at_once(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            a = await add_address(uow, second.id)
            b = await add_address(uow, first.id, type=AddressType.BILLING)
            await add_address(uow, bystander.id)
            assert await uow.addresses.list_for_customers([first.id, second.id]) == [a, b]
            assert await uow.addresses.list_for_customers([]) == []

    async def test_the_addresses_of_customers_are_paged_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            a = await add_address(uow, first.id)
            b = await add_address(uow, second.id, type=AddressType.BILLING)
            c = await add_address(uow, first.id, type=AddressType.OTHER)
            await add_address(uow, bystander.id)
            ids = [first.id, second.id]
            one = await uow.addresses.page_for_customers(ids, page=1, page_size=2)
            two = await uow.addresses.page_for_customers(ids, page=2, page_size=2)
            past = await uow.addresses.page_for_customers(ids, page=3, page_size=2)
            assert (list(one.items), one.total, one.total_pages) == ([a, b], 3, 2)
            assert (list(two.items), two.page, two.page_size) == ([c], 2, 2)
            assert (list(past.items), past.total) == ([], 3)
            none = await uow.addresses.page_for_customers([], page=1, page_size=2)
            assert (list(none.items), none.total) == ([], 0)

    async def test_update_and_delete(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            address = await add_address(uow, customer.id)
            moved = replace(address, city="Roma", postal_code="00100", updated_at=T0 + timedelta(1))
            await uow.addresses.update(moved)
            assert await uow.addresses.get(address.id) == moved
            await uow.addresses.delete(address.id)
            assert await uow.addresses.get(address.id) is None

    async def test_one_default_per_type_is_enforced_by_the_storage(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            await add_address(uow, customer.id, is_default=True)
            await add_address(uow, customer.id, type=AddressType.BILLING, is_default=True)
            with pytest.raises(StorageRejected):
                await add_address(uow, customer.id, is_default=True)

    async def test_an_address_needs_a_customer_of_the_same_tenant(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(other_tenant) as uow:
            foreign = await add_customer(uow)
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            with pytest.raises(StorageRejected):
                await add_address(uow, foreign.id)

    async def test_addresses_are_reassigned_and_deleted_per_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            source = await add_customer(uow)
            target = await add_customer(uow)
            await add_address(uow, source.id)
            await add_address(uow, source.id, type=AddressType.OTHER)
            assert await uow.addresses.reassign(source.id, target.id) == 2
            assert await uow.addresses.list_for_customer(source.id) == []
            moved = await uow.addresses.list_for_customer(target.id)
            assert [a.customer_id for a in moved] == [target.id, target.id]
            kept = await add_address(uow, source.id)
            assert await uow.addresses.delete_for_customers([target.id]) == 2
            assert await uow.addresses.list_for_customer(target.id) == []
            assert await uow.addresses.list_for_customer(source.id) == [kept]
            assert await uow.addresses.delete_for_customers([source.id, target.id]) == 1
            assert await uow.addresses.delete_for_customers([]) == 0


class NoteRepositoryContract(ContractBase):
    """Notes."""

    async def test_notes_round_trip_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            later = await add_note(uow, customer.id, created_at=T0 + timedelta(hours=1))
            earlier = await add_note(uow, customer.id, note="first call", created_by=None)
            assert await uow.notes.list_for_customer(customer.id) == [earlier, later]

    async def test_the_notes_of_several_customers_are_listed_at_once_oldest_first(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            later = await add_note(uow, first.id, created_at=T0 + timedelta(hours=1))
            earlier = await add_note(uow, second.id)
            await add_note(uow, bystander.id)
            assert await uow.notes.list_for_customers([first.id, second.id]) == [earlier, later]
            assert await uow.notes.list_for_customers([]) == []

    async def test_the_notes_of_customers_are_paged_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            last = await add_note(uow, first.id, created_at=T0 + timedelta(hours=2))
            middle = await add_note(uow, second.id, created_at=T0 + timedelta(hours=1))
            oldest = await add_note(uow, first.id)
            await add_note(uow, bystander.id)
            ids = [first.id, second.id]
            one = await uow.notes.page_for_customers(ids, page=1, page_size=2)
            two = await uow.notes.page_for_customers(ids, page=2, page_size=2)
            assert (list(one.items), one.total, one.total_pages) == ([oldest, middle], 3, 2)
            assert list(two.items) == [last]
            only = await uow.notes.page_for_customers([second.id], page=1, page_size=10)
            assert (list(only.items), only.total) == ([middle], 1)

    async def test_notes_are_reassigned_and_deleted_per_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            source = await add_customer(uow)
            target = await add_customer(uow)
            note = await add_note(uow, source.id)
            assert await uow.notes.reassign(source.id, target.id) == 1
            assert await uow.notes.list_for_customer(target.id) == [
                replace(note, customer_id=target.id)
            ]
            assert await uow.notes.delete_for_customers([target.id]) == 1
            assert await uow.notes.list_for_customer(target.id) == []

    async def test_scrubbing_empties_the_texts_of_the_given_customers_only(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first = await add_customer(uow)
            second = await add_customer(uow)
            bystander = await add_customer(uow)
            a = await add_note(uow, first.id, note="called about the Via Roma delivery")
            b = await add_note(uow, second.id, note="prefers phone calls")
            c = await add_note(uow, bystander.id, note="keeps this")
            assert await uow.notes.scrub_for_customers([first.id, second.id]) == 2
            assert await uow.notes.list_for_customer(first.id) == [replace(a, note="")]
            assert await uow.notes.list_for_customer(second.id) == [replace(b, note="")]
            assert await uow.notes.list_for_customer(bystander.id) == [c]
            assert await uow.notes.scrub_for_customers([]) == 0

    async def test_a_note_needs_an_existing_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            with pytest.raises(StorageRejected):
                await add_note(uow, await uow.customers.next_id())


class OrderRepositoryContract(ContractBase):
    """Orders and their lines."""

    async def test_an_order_round_trips_with_lines_and_shipping(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            order = await add_order(
                uow,
                customer.id,
                shipping=OrderShipping(recipient_name="Mario Rossi", city="Milano", country="IT"),
            )
            assert await uow.orders.get_by_order_id(order.order_id) == order
            assert await uow.orders.get_by_order_id("no-such-order") is None

    async def test_an_order_id_is_recorded_once_per_tenant(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            await add_order(uow, customer.id, order_id="A-1")
            with pytest.raises(OrderConflict):
                await add_order(uow, customer.id, order_id="A-1")

    async def test_orders_list_newest_first_in_pages(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            orders = [
                await add_order(uow, customer.id, created_at=T0 + timedelta(days=i))
                for i in range(5)
            ]
            await add_order(uow, (await add_customer(uow)).id)
            first = await uow.orders.list_for_customer(customer.id, page=1, page_size=2)
            last = await uow.orders.list_for_customer(customer.id, page=3, page_size=2)
        assert first.total == 5
        assert list(first.items) == [orders[4], orders[3]]
        assert list(last.items) == [orders[0]]

    async def test_the_orders_of_several_customers_list_newest_first_in_pages(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            orders = [
                await add_order(
                    uow, (first if i % 2 else second).id, created_at=T0 + timedelta(days=i)
                )
                for i in range(5)
            ]
            await add_order(uow, bystander.id, created_at=T0 + timedelta(days=10))
            ids = [first.id, second.id]
            one = await uow.orders.list_for_customers(ids, page=1, page_size=3)
            two = await uow.orders.list_for_customers(ids, page=2, page_size=3)
            none = await uow.orders.list_for_customers([], page=1, page_size=3)
        assert (one.total, two.total, none.total) == (5, 5, 0)
        assert [*one.items, *two.items] == orders[::-1]
        assert list(none.items) == []

    async def test_lines_keep_their_order_and_exact_prices(self, uow: UnitOfWork) -> None:
        lines = tuple(
            OrderItem(
                product_id=f"sku-{i}",
                product_name=f"Item {i}",
                quantity=i + 1,
                unit_price=Decimal("0.0001") * (i + 1),
            )
            for i in range(12)
        )
        async with uow:
            customer = await add_customer(uow)
            order = await add_order(uow, customer.id, items=lines, total=Decimal("1234567.8901"))
            stored = await uow.orders.get_by_order_id(order.order_id)
        assert stored is not None
        assert stored.items == lines
        assert stored.total == Decimal("1234567.8901")

    async def test_orders_are_reassigned_and_deleted_per_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            source = await add_customer(uow)
            target = await add_customer(uow)
            order = await add_order(uow, source.id)
            assert await uow.orders.reassign(source.id, target.id) == 1
            moved = await uow.orders.get_by_order_id(order.order_id)
            assert moved == replace(order, customer_id=target.id)
            assert await uow.orders.delete_for_customers([target.id]) == 1
            assert await uow.orders.get_by_order_id(order.order_id) is None

    async def test_scrubbing_removes_shipping_and_product_names_and_keeps_the_rest(
        self, uow: UnitOfWork
    ) -> None:
        shipping = OrderShipping(recipient_name="Mario Rossi", city="Milano", phone="+39333")
        engraved = (
            OrderItem(
                product_id="ring-1",
                product_name="Silver ring, engraved 'Mario & Giulia 12.06.2015'",
                quantity=1,
                unit_price=Decimal("89"),
            ),
        )
        async with uow:
            customer = await add_customer(uow)
            bystander = await add_customer(uow)
            shipped = await add_order(uow, customer.id, shipping=shipping)
            plain = await add_order(uow, customer.id, items=engraved)
            unnamed = await add_order(uow, customer.id, items=())
            other = await add_order(uow, bystander.id, shipping=shipping)
            assert await uow.orders.scrub_for_customers([customer.id]) == 2
            assert await uow.orders.scrub_for_customers([customer.id]) == 0
            assert await uow.orders.get_by_order_id(shipped.order_id) == replace(
                shipped,
                shipping=None,
                items=tuple(replace(i, product_name="") for i in shipped.items),
            )
            assert await uow.orders.get_by_order_id(plain.order_id) == replace(
                plain, items=(replace(engraved[0], product_name=""),)
            )
            assert await uow.orders.get_by_order_id(unnamed.order_id) == unnamed
            assert await uow.orders.get_by_order_id(other.order_id) == other
            assert await uow.orders.scrub_for_customers([]) == 0

    async def test_an_order_needs_an_existing_customer(self, uow: UnitOfWork) -> None:
        async with uow:
            with pytest.raises(StorageRejected):
                await add_order(uow, await uow.customers.next_id())


class ConsentRepositoryContract(ContractBase):
    """The consent ledger."""

    async def test_events_list_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            second = await add_consent_event(
                uow,
                customer.id,
                consented=False,
                previous=True,
                occurred_at=T0 + timedelta(days=1),
                source="preference-center",
                ip_address="2001:db8::1",
                user_agent="curl/8",
            )
            first = await add_consent_event(uow, customer.id)
            other = await add_consent_event(uow, customer.id, consent_type="analytics")
            assert await uow.consents.list_for_customer(customer.id) == [first, other, second]

    async def test_the_events_of_several_customers_list_oldest_first(self, uow: UnitOfWork) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            later = await add_consent_event(uow, first.id, occurred_at=T0 + timedelta(days=1))
            earlier = await add_consent_event(uow, second.id)
            await add_consent_event(uow, bystander.id)
            ids = [first.id, second.id]
            assert await uow.consents.list_for_customers(ids) == [earlier, later]
            assert await uow.consents.list_for_customers([]) == []

    async def test_delete_for_customers(self, uow: UnitOfWork) -> None:
        async with uow:
            customer = await add_customer(uow)
            bystander = await add_customer(uow)
            await add_consent_event(uow, customer.id)
            kept = await add_consent_event(uow, bystander.id)
            assert await uow.consents.delete_for_customers([customer.id]) == 1
            assert await uow.consents.list_for_customer(customer.id) == []
            assert await uow.consents.list_for_customer(bystander.id) == [kept]

    async def test_scrubbing_removes_where_the_decision_was_taken_and_keeps_the_decision(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            customer = await add_customer(uow)
            bystander = await add_customer(uow)
            event = await add_consent_event(
                uow, customer.id, source="signup", ip_address="192.0.2.7", user_agent="Firefox"
            )
            sourced = await add_consent_event(
                uow, customer.id, source="in store, assisted by Giulia", previous=True
            )
            kept = await add_consent_event(
                uow, bystander.id, source="signup", ip_address="192.0.2.8", user_agent="Safari"
            )
            assert await uow.consents.scrub_for_customers([customer.id]) == 2
            assert await uow.consents.list_for_customer(customer.id) == [
                replace(e, source=None, ip_address=None, user_agent=None) for e in (event, sourced)
            ]
            assert await uow.consents.list_for_customer(bystander.id) == [kept]


class AuditRepositoryContract(ContractBase):
    """The audit trail: append-only, hash-chained per customer."""

    async def test_events_list_oldest_first_by_customer_and_time(
        self, storage: Storage, tenant: str
    ) -> None:
        events = []
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow)
            await uow.commit()
        # One transaction each: a storage that stamps events with its own clock
        # (PostgreSQL's transaction time) still gives each a later time.
        cases: list[tuple[int | None, dict[str, Any]]] = [
            (customer.id, {"changed_fields": ("email", "first_name")}),
            (None, {"actor": None}),
            (customer.id, {"details": {"note_id": 7, "merge_notes": True}}),
        ]
        for n, (about, fields) in enumerate(cases):
            async with storage.unit_of_work(tenant) as uow:
                events.append(
                    await add_audit_event(uow, about, occurred_at=T0 + timedelta(hours=n), **fields)
                )
                await uow.commit()
        e1, e2, e3 = events
        async with storage.unit_of_work(tenant) as uow:
            everything = await uow.audit.list()
            mine = await uow.audit.list(customer_id=customer.id)
            window = await uow.audit.list(since=e2.occurred_at, until=e3.occurred_at)
            paged = await uow.audit.list(page=2, page_size=2)
        assert e1.occurred_at < e2.occurred_at < e3.occurred_at
        assert list(everything.items) == [e1, e2, e3]
        assert list(mine.items) == [e1, e3]
        assert list(window.items) == [e2]
        assert (paged.total, list(paged.items)) == (3, [e3])

    async def test_the_events_about_several_customers_list_oldest_first_in_pages(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first, second, bystander = [await add_customer(uow) for _ in range(3)]
            events = [
                await add_audit_event(
                    uow, (first if i % 2 else second).id, occurred_at=T0 + timedelta(hours=i)
                )
                for i in range(3)
            ]
            await add_audit_event(uow, bystander.id)
            await add_audit_event(uow, None)
            ids = [first.id, second.id]
            one = await uow.audit.list_for_customers(ids, page=1, page_size=2)
            two = await uow.audit.list_for_customers(ids, page=2, page_size=2)
            none = await uow.audit.list_for_customers([], page=1, page_size=2)
        assert (one.total, none.total) == (3, 0)
        assert [*one.items, *two.items] == events

    async def test_events_are_chained_per_customer_and_the_chains_verify(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            one, two = await add_customer(uow), await add_customer(uow)
            ids = await uow.audit.next_ids(4)
            stored = await append_audit(
                uow,
                [
                    AuditEvent(
                        id=event_id,
                        tenant_id=uow.tenant_id,
                        customer_id=about,
                        actor=None,
                        action=AuditAction.CUSTOMER_CREATED,
                        occurred_at=T0,
                        changed_fields=("email",),
                        details={"source": "import"},
                    )
                    for event_id, about in zip(ids, [one.id, two.id, one.id, None], strict=True)
                ],
            )
            await uow.audit.append_many([])
            assert [(e.customer_id, e.sequence) for e in stored] == [
                (one.id, 1),
                (two.id, 1),
                (one.id, 2),
                (None, 1),
            ]
            locked = await uow.audit.lock_chains([one.id, two.id, TENANT_CHAIN, 10**12])
            assert dict(locked.tips) == {
                one.id: ChainTip(2, stored[2].hash or ""),
                two.id: ChainTip(1, stored[1].hash or ""),
                TENANT_CHAIN: ChainTip(1, stored[3].hash or ""),
            }
            chained = await uow.audit.chained(limit=10)
            rest = await uow.audit.chained(after=(chain_of(one.id), 1), limit=10)
            assert await uow.audit.orphan_tips(limit=10) == []

            async def rows() -> Any:
                for row in chained:
                    yield row

            verification = await uow.audit_chain.verify(rows())
        by_chain = sorted(stored, key=lambda e: (chain_of(e.customer_id), e.sequence or 0))
        assert [e for e, _ in chained] == by_chain
        assert [e for e, _ in rest] == by_chain[by_chain.index(stored[2]) :]
        assert (verification.intact, verification.events, verification.chains) == (True, 4, 3)

    async def test_ids_are_reserved_and_chains_locked_at_once_as_one_after_the_other(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            customer = await add_customer(uow)
            first = await add_audit_event(uow, customer.id)
            (before,) = await uow.audit.next_ids(1)
            ids, locked = await uow.audit.reserve_and_lock(3, [customer.id, 10**12])
            assert list(ids) == [before + 1, before + 2, before + 3]
            assert dict(locked.tips) == {customer.id: ChainTip(1, first.hash or "")}
            alone = await uow.audit.lock_chains([customer.id])
            assert locked.now == alone.now  # the storage's time, where it has one
            (after,) = await uow.audit.next_ids(1)
            assert after == before + 4

    async def test_a_batch_as_large_as_an_imports_is_appended_and_verifies(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            customers = [await add_customer(uow) for _ in range(3)]
            about = [customers[n % 3].id if n % 4 else None for n in range(BULK_ROWS)]
            ids = await uow.audit.next_ids(len(about))
            events = [
                AuditEvent(
                    id=event_id,
                    tenant_id=uow.tenant_id,
                    customer_id=customer_id,
                    actor="ops" if n % 2 else None,
                    action=AuditAction.CUSTOMER_UPDATED,
                    occurred_at=T0,
                    changed_fields=("email", "tags")[: n % 3],
                    details={"source": "import"} if n % 2 else {},
                )
                for n, (event_id, customer_id) in enumerate(zip(ids, about, strict=True))
            ]
            locked = await uow.audit.lock_chains(sorted({chain_of(c) for c in about}))
            sealed = uow.audit_chain.seal(events, locked.tips, occurred_at=locked.now)
            await uow.audit.append_many(sealed)
            listed = await uow.audit.list(page_size=10 * BULK_ROWS)
            chained = await uow.audit.chained(limit=10 * BULK_ROWS)

            async def rows() -> Any:
                for row in chained:
                    yield row

            verification = await uow.audit_chain.verify(rows())
        appended = {e.id for e in sealed}
        assert [e for e in listed.items if e.id in appended] == sorted(sealed, key=lambda e: e.id)
        assert (verification.intact, verification.events) == (True, listed.total)

    async def test_an_unsealed_event_or_a_taken_position_is_refused(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow)
            first = await add_audit_event(uow, customer.id)
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            unsealed = replace(first, id=await uow.audit.next_id(), sequence=None, hash=None)
            with pytest.raises(StorageError):
                await uow.audit.append(unsealed)
        async with storage.unit_of_work(tenant) as uow:
            with pytest.raises(StorageError):
                await uow.audit.append(replace(first, id=await uow.audit.next_id()))
        async with storage.unit_of_work(tenant) as uow:
            assert list((await uow.audit.list()).items) == [first]


class MergeAliasRepositoryContract(ContractBase):
    """Merge aliases."""

    async def test_aliases_resolve_repoint_and_delete(self, uow: UnitOfWork) -> None:
        async with uow:
            first = await add_customer(uow, deleted_at=T0)
            second = await add_customer(uow, deleted_at=T0)
            target = await add_customer(uow)
            final = await add_customer(uow)
            await uow.aliases.add(
                MergeAlias(
                    tenant_id=uow.tenant_id, alias_id=first.id, customer_id=target.id, merged_at=T0
                )
            )
            await uow.aliases.add(
                MergeAlias(
                    tenant_id=uow.tenant_id,
                    alias_id=second.id,
                    customer_id=target.id,
                    merged_at=T0 + timedelta(minutes=1),
                )
            )
            assert await uow.aliases.resolve(first.id) == target.id
            assert await uow.aliases.resolve(target.id) is None
            listed = await uow.aliases.list_for_customer(target.id)
            assert [a.alias_id for a in listed] == [first.id, second.id]
            both = await uow.aliases.list_for_customers([final.id, target.id])
            assert both == listed
            assert await uow.aliases.list_for_customers([final.id]) == []
            assert await uow.aliases.list_for_customers([]) == []
            assert await uow.aliases.repoint(target.id, final.id) == 2
            assert await uow.aliases.resolve(second.id) == final.id
            assert await uow.aliases.list_for_customer(target.id) == []
            assert await uow.aliases.delete_for_customer(final.id) == 2
            assert await uow.aliases.resolve(first.id) is None


class TenantIsolationContract(ContractBase):
    """Nothing of one tenant is visible, or reachable, from another."""

    async def test_ids_are_counted_per_tenant(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async def reserve(tenant_id: str) -> dict[str, int]:
            async with storage.unit_of_work(tenant_id) as uow:
                ids = {name: await getattr(uow, name).next_id() for name in _COUNTED}
                await uow.commit()
            return ids

        # A, then B three times, then A: A's ids follow each other, and B's count
        # from where A's did. Neither tenant can count the other's creations.
        first = await reserve(tenant)
        others = [await reserve(other_tenant) for _ in range(3)]
        second = await reserve(tenant)
        for name in _COUNTED:
            assert second[name] == first[name] + 1, name
            assert [ids[name] for ids in others] == [first[name] + n for n in range(3)], name

    async def test_no_read_of_another_tenant_sees_its_rows(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            customer = await add_customer(uow, email="shared@example.com", first_name="Shared")
            address = await add_address(uow, customer.id)
            await add_note(uow, customer.id)
            order = await add_order(uow, customer.id, order_id="SHARED-1")
            await add_consent_event(uow, customer.id)
            await add_audit_event(uow, customer.id)
            alias = await add_customer(uow, deleted_at=T0)
            await uow.aliases.add(
                MergeAlias(
                    tenant_id=tenant, alias_id=alias.id, customer_id=customer.id, merged_at=T0
                )
            )
            await uow.commit()
        async with storage.unit_of_work(other_tenant) as uow:
            assert await uow.customers.get(customer.id, include_deleted=True) is None
            assert await uow.customers.get_many([customer.id, alias.id]) == []
            assert (
                await uow.customers.get_by_email(customer.email or "", include_deleted=True) is None
            )
            assert (
                await uow.customers.list(
                    CustomerFilters(include_deleted=True), page=1, page_size=10
                )
            ).total == 0
            assert await uow.customers.search("shared", limit=10) == []
            assert await uow.addresses.get(address.id) is None
            assert await uow.addresses.list_for_customer(customer.id) == []
            assert await uow.notes.list_for_customer(customer.id) == []
            assert await uow.orders.get_by_order_id(order.order_id) is None
            assert (
                await uow.orders.list_for_customer(customer.id, page=1, page_size=10)
            ).total == 0
            assert await uow.consents.list_for_customer(customer.id) == []
            assert (await uow.audit.list()).total == 0
            assert await uow.aliases.resolve(alias.id) is None
            assert await uow.aliases.list_for_customer(customer.id) == []
            ids = [customer.id, alias.id]
            assert await uow.addresses.list_for_customers(ids) == []
            assert await uow.notes.list_for_customers(ids) == []
            assert (await uow.orders.list_for_customers(ids, page=1, page_size=10)).total == 0
            assert await uow.consents.list_for_customers(ids) == []
            assert (await uow.audit.list_for_customers(ids, page=1, page_size=10)).total == 0
            assert await uow.aliases.list_for_customers(ids) == []

    async def test_no_write_of_another_tenant_touches_its_rows(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            # Ids are counted per tenant: skip some, so that the intruder's own
            # customer below does not share this customer's id.
            for _ in range(3):
                await uow.customers.next_id()
            customer = await add_customer(uow)
            address = await add_address(uow, customer.id)
            note = await add_note(uow, customer.id)
            order = await add_order(uow, customer.id)
            event = await add_consent_event(uow, customer.id, ip_address="192.0.2.1")
            audited = await add_audit_event(uow, customer.id, details={"note_id": 1})
            await uow.commit()
        async with storage.unit_of_work(other_tenant) as uow:
            intruder = await add_customer(uow)
            assert intruder.id != customer.id
            with pytest.raises((CustomerNotFound, StorageError)):
                await uow.customers.update(replace(customer, tenant_id=other_tenant))
            await uow.addresses.delete(address.id)
            assert await uow.addresses.reassign(customer.id, intruder.id) == 0
            assert await uow.addresses.delete_for_customers([customer.id]) == 0
            assert await uow.notes.reassign(customer.id, intruder.id) == 0
            assert await uow.notes.scrub_for_customers([customer.id]) == 0
            assert await uow.notes.delete_for_customers([customer.id]) == 0
            assert await uow.orders.reassign(customer.id, intruder.id) == 0
            assert await uow.orders.scrub_for_customers([customer.id]) == 0
            assert await uow.orders.delete_for_customers([customer.id]) == 0
            assert await uow.consents.scrub_for_customers([customer.id]) == 0
            assert await uow.consents.delete_for_customers([customer.id]) == 0
            await uow.customers.delete(customer.id)
            await uow.customers.delete_many([customer.id])
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            assert await uow.customers.get(customer.id) == customer
            assert await uow.addresses.list_for_customer(customer.id) == [address]
            assert await uow.notes.list_for_customer(customer.id) == [note]
            assert await uow.orders.get_by_order_id(order.order_id) == order
            assert await uow.consents.list_for_customer(customer.id) == [event]
            assert list((await uow.audit.list(customer_id=customer.id)).items) == [audited]

    async def test_emails_and_order_ids_are_unique_per_tenant_only(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        for tenant_id in (tenant, other_tenant):
            async with storage.unit_of_work(tenant_id) as uow:
                customer = await add_customer(uow, email="same@example.com")
                await add_order(uow, customer.id, order_id="SAME-1")
                await uow.commit()
        for tenant_id in (tenant, other_tenant):
            async with storage.unit_of_work(tenant_id) as uow:
                found = await uow.customers.get_by_email("same@example.com")
                assert found is not None
                assert found.tenant_id == tenant_id


async def _committed_customer(storage: Storage, tenant: str) -> Customer:
    async with storage.unit_of_work(tenant) as uow:
        customer = await add_customer(uow)
        await uow.commit()
    return customer


def _unit_vector(*weights: float) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for index, weight in enumerate(weights):
        vector[index] = weight
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


class DerivedDataContract(ContractBase):
    """``DerivedDataStore``: the tenant walked in chunks, derived data written in batches."""

    @_requires("derived_data")
    async def test_customers_are_walked_by_id_in_chunks_without_deleted_ones(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            first = await add_customer(uow)
            await add_customer(uow, deleted_at=T0)
            second = await add_customer(uow)
            third = await add_customer(uow)
            head = await derived_data(uow).list_after(0, limit=2)
            tail = await derived_data(uow).list_after(head[-1].id, limit=2)
        assert head == [first, second]
        assert tail == [third]

    @_requires("derived_data")
    async def test_derived_data_is_written_and_cleared_in_one_call(self, uow: UnitOfWork) -> None:
        vector = _unit_vector(1.0, 2.0)
        async with uow:
            scored = await add_customer(uow, first_name="Kept")
            cleared = await add_customer(
                uow, segment="active", churn_risk_score=0.5, embedding=vector
            )
            await derived_data(uow).update_derived(
                [
                    DerivedData(
                        customer_id=scored.id,
                        segment="high_value",
                        churn_risk_score=0.125,
                        customer_lifetime_value=Decimal("321.5000"),
                        embedding=vector,
                        embedding_version="v9",
                        scored_at=T0,
                        score_source="model",
                    ),
                    DerivedData(cleared.id, None, None, None, None, None, None, None),
                ]
            )
            await derived_data(uow).update_derived([])
            got = await uow.customers.get(scored.id)
            gone = await uow.customers.get(cleared.id)
        assert got is not None
        assert gone is not None
        assert (got.segment, got.churn_risk_score, got.customer_lifetime_value) == (
            "high_value",
            0.125,
            Decimal("321.5000"),
        )
        assert got.embedding is not None
        assert [round(v, 5) for v in got.embedding] == [round(v, 5) for v in vector]
        assert (got.embedding_version, got.scored_at, got.score_source) == ("v9", T0, "model")
        assert got.first_name == "Kept"
        assert (gone.segment, gone.churn_risk_score, gone.embedding) == (None, None, None)

    @_requires("derived_data")
    async def test_derived_data_can_keep_the_stored_embedding(self, uow: UnitOfWork) -> None:
        stored = _unit_vector(1.0, 2.0)
        async with uow:
            customer = await add_customer(uow, embedding=stored, embedding_version="v1")
            await derived_data(uow).update_derived(
                [
                    DerivedData(
                        customer_id=customer.id,
                        segment="active",
                        churn_risk_score=0.25,
                        customer_lifetime_value=Decimal("10.0000"),
                        embedding=_unit_vector(2.0, 1.0),
                        embedding_version="v2",
                        scored_at=T0,
                        score_source="model",
                        keep_embedding=True,
                    )
                ]
            )
            got = await uow.customers.get(customer.id)
        assert got is not None
        assert (got.segment, got.churn_risk_score, got.scored_at) == ("active", 0.25, T0)
        assert got.embedding is not None
        assert [round(v, 5) for v in got.embedding] == [round(v, 5) for v in stored]
        assert got.embedding_version == "v1"


class NearestNeighboursContract(ContractBase):
    """``NearestNeighbours``: customers ranked by the similarity of their embeddings."""

    @_requires("similarity")
    async def test_nearest_ranks_by_cosine_similarity_and_skips_what_it_should(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            same = await add_customer(uow, embedding=_unit_vector(1.0, 0.0))
            close = await add_customer(uow, embedding=_unit_vector(1.0, 0.3))
            far = await add_customer(uow, embedding=_unit_vector(0.0, 1.0))
            await add_customer(uow)  # no embedding
            await add_customer(uow, embedding=_unit_vector(1.0, 0.0), deleted_at=T0)
            found = await nearest_neighbours(uow).nearest(
                _unit_vector(1.0, 0.0), limit=5, exclude=[]
            )
            two = await nearest_neighbours(uow).nearest(
                _unit_vector(1.0, 0.0), limit=2, exclude=[same.id]
            )
        assert [c.id for c, _ in found] == [same.id, close.id, far.id]
        assert [round(score, 4) for _, score in found] == [1.0, 0.9578, 0.0]
        assert [c.id for c, _ in two] == [close.id, far.id]


class DuplicateCandidatesContract(ContractBase):
    """``DuplicateCandidates``: candidate pairs from every blocking key, live customers
    only, never all pairs."""

    @_requires("duplicates")
    async def test_each_blocking_key_makes_a_pair_and_nothing_else_does(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            mail_a = await add_customer(uow, email="Ann.Lee+shop@gmail.com")
            mail_b = await add_customer(uow, email="annlee@googlemail.com")
            phone_a = await add_customer(uow, phone="+14155550100")
            phone_b = await add_customer(uow, phone="+14155550100")
            name_a = await add_customer(uow, first_name="Maria", last_name="Rossi")
            name_b = await add_customer(uow, first_name="Mario", last_name="ROSSI")
            swap_a = await add_customer(uow, first_name="Chen", last_name="Wei")
            swap_b = await add_customer(uow, first_name="Wei", last_name="Chen")
            born_a = await add_customer(uow, last_name="Bianchi", birthday=T0.date())
            born_b = await add_customer(uow, last_name="Bruni", birthday=T0.date())
            post_a = await add_customer(uow, first_name="Luca", last_name="Verdi")
            post_b = await add_customer(uow, first_name="Paolo", last_name="Verdi")
            await add_address(uow, post_a.id, postal_code="20121")
            await add_address(uow, post_b.id, postal_code="20121")
            # Names that share no key, the same birthday and postcode.
            born = T0.date().replace(year=1980)
            home_a = await add_customer(uow, first_name="Ada", last_name="Conti", birthday=born)
            home_b = await add_customer(uow, first_name="Eva", last_name="Gatti", birthday=born)
            await add_address(uow, home_a.id, postal_code="30100")
            await add_address(uow, home_b.id, postal_code="30100")
            await add_customer(uow, first_name="Zed", last_name="Zulu", phone="+14155550199")
            everyone = [c.id for c in await derived_data(uow).list_after(0, limit=100)]
            pairs = await duplicate_candidates(uow).candidate_pairs(everyone)
            first_half = await duplicate_candidates(uow).candidate_pairs(everyone[:4])
            both_ways = await duplicate_candidates(uow).candidate_pairs(
                [phone_b.id], later_only=False
            )
            none = await duplicate_candidates(uow).candidate_pairs([])
        assert pairs == [
            (mail_a.id, mail_b.id),
            (phone_a.id, phone_b.id),
            (name_a.id, name_b.id),
            (swap_a.id, swap_b.id),
            (born_a.id, born_b.id),
            (post_a.id, post_b.id),
            (home_a.id, home_b.id),
        ]
        assert first_half == [(mail_a.id, mail_b.id), (phone_a.id, phone_b.id)]
        assert both_ways == [(phone_b.id, phone_a.id)]
        assert none == []

    @_requires("duplicates")
    async def test_candidate_pairs_are_the_pairs_of_the_domain_blocks(
        self, uow: UnitOfWork
    ) -> None:
        """The storage derives ``blocking_keys`` in its own language: on customers that
        share names, mailboxes, phones, birthdays and postcodes in many ways, its pairs
        are those of ``blocks`` over the same customers, key for key."""
        rng = random.Random(16)
        firsts = ["Ann", "ann", "Anne", "Élodie", "Lee", None]
        lasts = ["Lee", "LEE", "Ann", "Müller", "Muller", None]
        mailboxes = ["ann.lee@gmail.com", "annlee@googlemail.com", "Ann.Lee@example.com"]
        async with uow:
            customers = []
            for n in range(60):
                mailbox = rng.choice([*mailboxes, None])
                email = None
                if mailbox is not None:
                    local, _, domain = mailbox.partition("@")
                    email = f"{local}+{n}@{domain}"
                customer = await add_customer(
                    uow,
                    email=email,
                    first_name=rng.choice(firsts),
                    last_name=rng.choice(lasts),
                    phone=rng.choice(["+393331234567", "+3903331234567", "+14155550100", None]),
                    birthday=rng.choice([T0.date(), T0.date().replace(day=2), None]),
                )
                customers.append(customer)
                for _ in range(rng.randrange(3)):
                    await add_address(
                        uow, customer.id, postal_code=rng.choice(["20121", "20122", "10100"])
                    )
            everyone = [c.id for c in customers]
            addresses = await uow.addresses.list_for_customers(everyone)
            pairs = await duplicate_candidates(uow).candidate_pairs(everyone)
        expected = {
            pair
            for ids in blocks(match_record(c, addresses) for c in customers).values()
            for pair in itertools.combinations(ids, 2)
        }
        assert len(expected) > 100
        assert pairs == sorted(expected)

    @_requires("duplicates")
    async def test_names_are_keyed_as_search_key_folds_them(self, uow: UnitOfWork) -> None:
        """Case and accents of any script, and names in either order, on every storage."""
        async with uow:
            turkish = [
                await add_customer(uow, first_name="İlker", last_name="Öztürk"),
                await add_customer(uow, first_name="ILKER", last_name="ozturk"),
            ]
            greek = [
                await add_customer(uow, first_name="Σίσυφος", last_name="Ωρίων"),
                await add_customer(uow, first_name="ΩΡΙΩΝ", last_name="ΣΙΣΥΦΟΣ"),
            ]
            everyone = [c.id for c in [*turkish, *greek]]
            pairs = await duplicate_candidates(uow).candidate_pairs(everyone)
        assert pairs == [(turkish[0].id, turkish[1].id), (greek[0].id, greek[1].id)]

    @_requires("duplicates")
    async def test_deleted_and_anonymized_customers_and_other_tenants_make_no_pair(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(other_tenant) as other:
            await add_customer(other, phone="+14155550100")
            await other.commit()
        async with storage.unit_of_work(tenant) as uow:
            live = await add_customer(uow, phone="+14155550100")
            await add_customer(uow, phone="+14155550100", deleted_at=T0)
            await add_customer(uow, phone="+14155550100", is_anonymized=True)
            pairs = await duplicate_candidates(uow).candidate_pairs([live.id], later_only=False)
        assert pairs == []

    @_requires("duplicates")
    async def test_a_key_more_customers_hold_than_a_block_allows_makes_no_pair(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            crowd = [
                (await add_customer(uow, phone="+14155550100")).id
                for _ in range(MAX_BLOCK_SIZE + 1)
            ]
            full = [
                (await add_customer(uow, phone="+14155550111")).id for _ in range(MAX_BLOCK_SIZE)
            ]
            none = await duplicate_candidates(uow).candidate_pairs(crowd)
            pairs = await duplicate_candidates(uow).candidate_pairs(full)
        assert none == []
        assert len(pairs) == MAX_BLOCK_SIZE * (MAX_BLOCK_SIZE - 1) // 2

    @_requires("duplicates")
    async def test_candidate_records_stream_each_pair_with_both_records(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            shared = [await add_customer(uow, phone="+14155550100") for _ in range(3)]
            await add_address(uow, shared[0].id, postal_code="20121", city="Milano")
            await add_address(uow, shared[0].id, postal_code="10121", city="Torino")
            await add_customer(uow, phone="+14155550199")
            await add_customer(uow, phone="+14155550100", is_anonymized=True)
            addresses = await uow.addresses.list_for_customers([shared[0].id])
            batches = [
                list(batch)
                async for batch in duplicate_candidates(uow).candidate_records(batch_size=2)
            ]
            sampled = [
                (a.customer_id, b.customer_id)
                async for batch in duplicate_candidates(uow).candidate_records(every=2)
                for a, b in batch
            ]
            of_last = [
                (a.customer_id, b.customer_id)
                async for batch in duplicate_candidates(uow).candidate_records(
                    customer_ids=[shared[2].id]
                )
                for a, b in batch
            ]
            of_nobody = [
                batch
                async for batch in duplicate_candidates(uow).candidate_records(customer_ids=[])
            ]
        a, b, c = (customer.id for customer in shared)
        assert [len(batch) for batch in batches] == [2, 1]
        pairs = [(x.customer_id, y.customer_id) for batch in batches for x, y in batch]
        assert pairs == [(a, b), (a, c), (b, c)]
        first, _ = batches[0][0]
        assert first == match_record(shared[0], addresses)
        assert first.postal_codes == {"20121", "10121"}
        assert first.cities == {"Milano", "Torino"}
        assert batches[1][0] == (match_record(shared[1]), match_record(shared[2]))
        assert sampled == [(x, y) for x, y in pairs if x % 2 == 0]
        assert of_last == [(c, a), (c, b)]
        assert of_nobody == []

    @_requires("duplicates")
    async def test_the_match_fit_is_stored_replaced_and_kept_per_tenant(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        def fit(of: str, prior: float) -> ModelFit:
            parameters = {"prior": prior, "m.email.2": 0.1 + 0.2, "u.name.0": 1 / 3}
            return ModelFit(of, "any name", parameters, fitted_at=T0, sample_size=7)

        async with storage.unit_of_work(tenant) as uow:
            assert await duplicate_candidates(uow).load_match_fit() is None
            await duplicate_candidates(uow).save_match_fit(fit(tenant, 0.25))
            await duplicate_candidates(uow).save_match_fit(fit(tenant, 0.125))
            with pytest.raises(StorageRejected):
                await duplicate_candidates(uow).save_match_fit(fit(other_tenant, 0.5))
            await uow.commit()
        async with storage.unit_of_work(tenant) as uow:
            stored = await duplicate_candidates(uow).load_match_fit()
        async with storage.unit_of_work(other_tenant) as uow:
            theirs = await duplicate_candidates(uow).load_match_fit()
        assert stored == replace(fit(tenant, 0.125), model="duplicates")
        assert theirs is None


def _decision(uow: UnitOfWork, low: int, high: int, minutes: int = 0) -> DuplicateDecision:
    return DuplicateDecision(
        tenant_id=uow.tenant_id,
        customer_id=low,
        other_id=high,
        decided_by="ops@example.com",
        decided_at=T0 + timedelta(minutes=minutes),
    )


class DuplicateDecisionsContract(ContractBase):
    """``DuplicateDecisions``: pairs marked as two people, each stored once, read from
    either side, removed one by one or with their customers."""

    @_requires("duplicate_decisions")
    async def test_a_pair_is_stored_once_and_read_from_either_side(self, uow: UnitOfWork) -> None:
        async with uow:
            a, b, c, d = [await add_customer(uow) for _ in range(4)]
            store = duplicate_decisions(uow)
            assert await store.add_decision(_decision(uow, a.id, c.id, minutes=1)) is True
            assert await store.add_decision(_decision(uow, a.id, b.id, minutes=2)) is True
            assert await store.add_decision(_decision(uow, a.id, b.id, minutes=3)) is False
            of_a = await store.decisions_for_customers([a.id])
            of_b = await store.decisions_for_customers([b.id])
            of_c_or_d = await store.decisions_for_customers([d.id, c.id])
            none = await store.decisions_for_customers([d.id])
            empty = await store.decisions_for_customers([])
        assert of_a == [_decision(uow, a.id, c.id, 1), _decision(uow, a.id, b.id, 2)]
        assert of_b == [_decision(uow, a.id, b.id, 2)]  # the first one kept, unchanged
        assert of_c_or_d == [_decision(uow, a.id, c.id, 1)]
        assert list(none) == list(empty) == []

    @_requires("duplicate_decisions")
    async def test_decisions_are_removed_one_by_one_or_with_their_customers(
        self, uow: UnitOfWork
    ) -> None:
        async with uow:
            a, b, c = [await add_customer(uow) for _ in range(3)]
            store = duplicate_decisions(uow)
            await store.add_decision(_decision(uow, a.id, b.id))
            await store.add_decision(_decision(uow, a.id, c.id))
            await store.add_decision(_decision(uow, b.id, c.id))
            assert await store.remove_decision(a.id, b.id) is True
            assert await store.remove_decision(a.id, b.id) is False
            assert await store.delete_decisions_for_customers([]) == 0
            assert await store.delete_decisions_for_customers([c.id]) == 2
            assert list(await store.decisions_for_customers([a.id, b.id, c.id])) == []

    @_requires("duplicate_decisions")
    async def test_a_customer_with_decisions_is_not_deleted_until_they_are(
        self, storage: Storage, tenant: str
    ) -> None:
        async with storage.unit_of_work(tenant) as uow:
            a, b = await add_customer(uow), await add_customer(uow)
            await duplicate_decisions(uow).add_decision(_decision(uow, a.id, b.id))
            with pytest.raises(StorageRejected):
                await uow.customers.delete_many([b.id])
        async with storage.unit_of_work(tenant) as uow:
            a, b = await add_customer(uow), await add_customer(uow)
            await duplicate_decisions(uow).add_decision(_decision(uow, a.id, b.id))
            await duplicate_decisions(uow).delete_decisions_for_customers([b.id])
            await uow.customers.delete_many([b.id])
            assert await uow.customers.get(b.id, include_deleted=True) is None

    @_requires("duplicate_decisions")
    async def test_a_decision_names_customers_of_its_own_tenant_only(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        async with storage.unit_of_work(other_tenant) as other:
            x, y = await add_customer(other), await add_customer(other)
            await duplicate_decisions(other).add_decision(_decision(other, x.id, y.id))
            await other.commit()
        async with storage.unit_of_work(tenant) as uow:
            a = await add_customer(uow)
            store = duplicate_decisions(uow)
            # The other tenant's pair is invisible and cannot be removed from here.
            assert list(await store.decisions_for_customers([x.id, y.id])) == []
            assert await store.remove_decision(x.id, y.id) is False
            assert await store.delete_decisions_for_customers([x.id, y.id]) == 0
            with pytest.raises(StorageRejected):
                await store.add_decision(_decision(uow, a.id, a.id + 1000))
        async with storage.unit_of_work(tenant) as uow:
            with pytest.raises(StorageRejected):
                await duplicate_decisions(uow).add_decision(_decision(other, x.id, y.id))
        async with storage.unit_of_work(other_tenant) as other:
            assert list(await duplicate_decisions(other).decisions_for_customers([x.id])) == [
                _decision(other, x.id, y.id)
            ]


class PurchaseHistoryContract(ContractBase):
    """``PurchaseHistory``: units bought per customer and product, and best sellers."""

    @_requires("purchases")
    async def test_purchases_sum_units_per_customer_and_product(self, uow: UnitOfWork) -> None:
        mug = OrderItem(product_id="p-1", product_name="Mug", quantity=2, unit_price=Decimal(1))
        tea = OrderItem(product_id="p-2", product_name="Tea", quantity=1, unit_price=Decimal(1))
        async with uow:
            first = await add_customer(uow)
            second = await add_customer(uow)
            await add_order(uow, first.id, items=(mug, tea))
            await add_order(uow, first.id, items=(mug,))
            await add_order(uow, second.id, items=(tea,))
            bought = await purchase_history(uow).purchases([first.id, second.id])
            none = await purchase_history(uow).purchases([])
        assert [(p.customer_id, p.product_id, p.product_name, p.quantity) for p in bought] == [
            (first.id, "p-1", "Mug", 4),
            (first.id, "p-2", "Tea", 1),
            (second.id, "p-2", "Tea", 1),
        ]
        assert list(none) == []

    @_requires("purchases")
    async def test_best_sellers_rank_by_buyers_then_units(self, uow: UnitOfWork) -> None:
        def line(pid: str, quantity: int) -> OrderItem:
            name = f"Product {pid}"
            return OrderItem(
                product_id=pid, product_name=name, quantity=quantity, unit_price=Decimal(1)
            )

        async with uow:
            buyers = [await add_customer(uow) for _ in range(3)]
            await add_order(uow, buyers[0].id, items=(line("a", 1), line("b", 9)))
            await add_order(uow, buyers[1].id, items=(line("a", 1), line("c", 1)))
            await add_order(uow, buyers[2].id, items=(line("c", 5),))
            top = await purchase_history(uow).best_sellers(limit=2)
        assert [(s.product_id, s.buyers, s.quantity) for s in top] == [("c", 2, 6), ("a", 2, 2)]
        assert top[0].product_name == "Product c"

    @_requires("purchases")
    async def test_scrubbed_lines_still_count_and_take_their_name_from_other_lines(
        self, uow: UnitOfWork
    ) -> None:
        mug = OrderItem(product_id="p-1", product_name="Mug", quantity=2, unit_price=Decimal(1))
        async with uow:
            erased, other = await add_customer(uow), await add_customer(uow)
            await add_order(uow, erased.id, items=(replace(mug, product_name="Mug 'For Anna'"),))
            await add_order(uow, other.id, items=(mug,))
            await uow.orders.scrub_for_customers([erased.id])
            top = await purchase_history(uow).best_sellers(limit=1)
            bought = await purchase_history(uow).purchases([erased.id, other.id])
        assert [(s.product_id, s.product_name, s.buyers, s.quantity) for s in top] == [
            ("p-1", "Mug", 2, 4)
        ]
        assert [(p.customer_id, p.product_name, p.quantity) for p in bought] == [
            (erased.id, "", 2),
            (other.id, "Mug", 2),
        ]


class IntelligenceDataContract(
    DerivedDataContract, NearestNeighboursContract, PurchaseHistoryContract
):
    """What the intelligence features read and write: the three roles above at once."""


class StorageRolesContract(ContractBase):
    """The storage implements every optional role the class declares."""

    async def test_the_storage_implements_every_declared_role(self, uow: UnitOfWork) -> None:
        implemented = storage_roles(uow)
        missing = [
            f"{role.name!r} (uow.{role.repository} is no {role.protocol.__name__})"
            for role in STORAGE_ROLES
            if role.name in self.capabilities and role.name not in implemented
        ]
        assert missing == [], (
            f"{type(self).__name__} declares roles its storage does not implement: "
            f"{', '.join(missing)}; implement them or leave them out of `capabilities`"
        )


class StorageContract(
    UnitOfWorkContract,
    StorageRolesContract,
    CustomerRepositoryContract,
    CustomerBulkImportContract,
    CustomerListingContract,
    AddressRepositoryContract,
    NoteRepositoryContract,
    OrderRepositoryContract,
    ConsentRepositoryContract,
    AuditRepositoryContract,
    MergeAliasRepositoryContract,
    DerivedDataContract,
    NearestNeighboursContract,
    DuplicateCandidatesContract,
    DuplicateDecisionsContract,
    PurchaseHistoryContract,
    TenantIsolationContract,
):
    """Every contract at once."""
