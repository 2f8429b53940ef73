"""A host's own customer model, with extra columns, works end to end."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, Column, MetaData, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from linkbay_customers import (
    CustomerService,
    GDPRService,
    HeuristicIntelligence,
    InvalidInput,
    StorageRejected,
)
from linkbay_customers.domain import AuditAction
from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import (
    CustomerMixin,
    ModelSet,
    SqlAlchemyStorage,
    build_models,
    create_engine,
    not_personal,
    personal,
)
from tests.api._support import assert_problem, mounted_router_client, tenant_headers


class HostBase(DeclarativeBase):
    metadata = MetaData()


class EnterpriseCustomer(HostBase, CustomerMixin):
    __tablename__ = "enterprise_customers"

    company_name: Mapped[str | None] = mapped_column(String(255))
    tax_id: Mapped[str | None] = mapped_column(String(50))


MODELS = build_models(HostBase, customer=EnterpriseCustomer)


class EnterpriseCustomerCreate(CustomerCreate):
    company_name: str | None = None
    tax_id: str | None = None


class EnterpriseCustomerUpdate(CustomerUpdate):
    company_name: str | None = None
    tax_id: str | None = None


class EnterpriseCustomerResponse(CustomerResponse):
    company_name: str | None = None
    tax_id: str | None = None


class WrongCreate(CustomerCreate):
    loyalty_points: int = 0  # no such column in the host's table


class SeedBase(DeclarativeBase):
    metadata = MetaData()


class SeedCustomer(SeedBase, CustomerMixin):
    """The seed's custom model, with what erasure needs to know about its columns."""

    __tablename__ = "customers"

    company_name = Column(String(255), nullable=False, info=personal(anonymized=""))
    vat_number = Column(String(32))  # personal, like every column not declared otherwise
    region = Column(String(32), nullable=False, server_default="unknown")
    plan = Column(String(20), nullable=False, info=not_personal())


SEED_MODELS = build_models(SeedBase, customer=SeedCustomer)


class SeedCustomerCreate(CustomerCreate):
    company_name: str
    vat_number: str | None = None
    region: str = "north"
    plan: str = "basic"


ACME = SeedCustomerCreate(
    email="cfo@acme.example", company_name="ACME", vat_number="IT123", region="north", plan="gold"
)
ACME_ERASED = {"company_name": "", "vat_number": None, "region": "unknown", "plan": "gold"}


async def _storage_with_schema(url: str, models: ModelSet) -> SqlAlchemyStorage:
    """A storage on ``url`` after creating the models' schema there."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await connection.run_sync(models.metadata.create_all)
    return SqlAlchemyStorage(engine, models=models, owns_engine=True)


@pytest.fixture
async def host_storage(empty_database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    """A fresh database holding the host's schema, made from the host's metadata."""
    storage = await _storage_with_schema(empty_database_url, MODELS)
    yield storage
    await storage.close()


@pytest.fixture
async def seed_storage(empty_database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = await _storage_with_schema(empty_database_url, SEED_MODELS)
    yield storage
    await storage.close()


async def stored_extras(storage: SqlAlchemyStorage, tenant: str, customer_id: int) -> Any:
    """The extra columns of a customer's row, as the database holds them."""
    table = storage.models.tables()["customer"]
    columns = [table.c[name] for name in ACME_ERASED]
    async with storage.engine.connect() as connection:
        row = (
            await connection.execute(
                select(*columns).where(table.c.tenant_id == tenant, table.c.id == customer_id)
            )
        ).one()
    return dict(row._mapping)


async def test_extra_columns_are_accepted_returned_updated_and_listed(
    host_storage: SqlAlchemyStorage,
) -> None:
    service = CustomerService(host_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = new_tenant_id()
    created = await service.create_customer(
        tenant,
        EnterpriseCustomerCreate(email="cfo@acme.example", company_name="ACME", tax_id="IT123"),
    )
    assert created.extra == {"company_name": "ACME", "tax_id": "IT123"}

    fetched = await service.get_customer(tenant, created.id)
    assert fetched.extra == {"company_name": "ACME", "tax_id": "IT123"}
    body = EnterpriseCustomerResponse.from_domain(fetched).model_dump()
    assert (body["company_name"], body["tax_id"], body["email"]) == (
        "ACME",
        "IT123",
        "cfo@acme.example",
    )

    updated = await service.update_customer(
        tenant, created.id, EnterpriseCustomerUpdate(company_name="ACME Corp")
    )
    assert updated.extra == {"company_name": "ACME Corp", "tax_id": "IT123"}
    listed = (await service.list_customers(tenant)).items
    assert [c.extra for c in listed] == [{"company_name": "ACME Corp", "tax_id": "IT123"}]

    imported = await service.import_customers(
        tenant,
        [{"email": "ceo@acme.example", "company_name": "ACME", "tax_id": "IT999"}],
        schema=EnterpriseCustomerCreate,
    )
    assert imported.created == 1
    ceo = await service.get_customer_by_email(tenant, "ceo@acme.example")
    assert ceo.extra == {"company_name": "ACME", "tax_id": "IT999"}


async def test_a_field_without_a_column_is_refused_by_name(
    host_storage: SqlAlchemyStorage,
) -> None:
    service = CustomerService(host_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    with pytest.raises(InvalidInput) as caught:
        await service.create_customer(
            new_tenant_id(), WrongCreate(email="a@example.com", loyalty_points=3)
        )
    assert caught.value.field == "loyalty_points"


def test_the_host_models_point_at_the_host_customer_table() -> None:
    tables = MODELS.tables()
    assert tables["customer"].name == "enterprise_customers"
    for role in ("address", "note", "order", "consent_event", "merge_alias"):
        targets = {fk.column.table.name for fk in tables[role].foreign_keys}
        assert targets == {"enterprise_customers"}, role


def _seed_customer_model(**columns: Any) -> type[Any]:
    """A host's customer model (on a base of its own) with these extra columns."""

    class Base(DeclarativeBase):
        metadata = MetaData()

    return type("HostCustomer", (Base, CustomerMixin), {"__tablename__": "customers", **columns})


@pytest.mark.parametrize(
    "column",
    [
        Column(String(255), nullable=False),  # the seed's example, as it is written there
        Column(String(255), nullable=False, info=personal()),
        Column(String(36), nullable=False, default=lambda: "generated"),
        Column(String(255), nullable=False, server_default=text("upper('x')")),
    ],
)
def test_a_not_null_personal_column_with_nothing_to_erase_to_is_refused_by_name(
    column: Column[Any],
) -> None:
    model = _seed_customer_model(company_name=column)
    with pytest.raises(ValueError, match=r"^customers\.company_name is NOT NULL and personal"):
        build_models(model.__base__, customer=model)


@pytest.mark.parametrize(
    "info",
    [{"linkbay": {"anonymised": ""}}, {"linkbay": {"personal": False, "anonymized": ""}}],
)
def test_a_malformed_declaration_is_refused_by_name(info: dict[str, Any]) -> None:
    model = _seed_customer_model(company_name=Column(String(255), info=info))
    with pytest.raises(ValueError, match=r"^customers\.company_name"):
        build_models(model.__base__, customer=model)


async def _erase_on_request(
    gdpr: GDPRService, clock: FixedClock, tenant: str, customer_id: int
) -> None:
    await gdpr.delete_customer_data(tenant, customer_id, anonymize=True)


async def _erase_when_inactive(
    gdpr: GDPRService, clock: FixedClock, tenant: str, customer_id: int
) -> None:
    clock.advance(days=400)
    purged = await gdpr.purge_inactive(tenant, timedelta(days=365), dry_run=False)
    assert purged.customer_ids == (customer_id,)


@pytest.mark.parametrize("erase", [_erase_on_request, _erase_when_inactive])
async def test_anonymization_writes_what_each_extra_column_declares(
    seed_storage: SqlAlchemyStorage,
    erase: Callable[[GDPRService, FixedClock, str, int], Awaitable[None]],
) -> None:
    clock = FixedClock()
    service = CustomerService(seed_storage.unit_of_work, clock, HeuristicIntelligence())
    gdpr = GDPRService(seed_storage.unit_of_work, clock)
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, ACME)
    assert await stored_extras(seed_storage, tenant, customer.id) == {
        "company_name": "ACME",
        "vat_number": "IT123",
        "region": "north",
        "plan": "gold",
    }

    await erase(gdpr, clock, tenant, customer.id)

    assert await stored_extras(seed_storage, tenant, customer.id) == ACME_ERASED
    trail = await gdpr.list_audit_events(tenant, customer_id=customer.id)
    anonymized = [e for e in trail.items if e.action is AuditAction.DATA_ANONYMIZED]
    assert len(anonymized) == 1
    assert {"company_name", "vat_number", "region"} <= set(anonymized[0].changed_fields)
    assert "plan" not in anonymized[0].changed_fields


async def test_the_erasure_route_anonymizes_a_customer_of_the_seed_model(
    seed_storage: SqlAlchemyStorage,
) -> None:
    clock = FixedClock()
    service = CustomerService(seed_storage.unit_of_work, clock, HeuristicIntelligence())
    gdpr = GDPRService(seed_storage.unit_of_work, clock)
    tenant = new_tenant_id()
    customer = await service.create_customer(tenant, ACME)

    async with mounted_router_client(service, gdpr_service=gdpr) as client:
        response = await client.delete(
            f"/customers/{customer.id}/gdpr",
            params={"anonymize": "true"},
            headers=tenant_headers(tenant),
        )

    assert response.status_code == 200, response.text
    assert response.json()["method"] == "anonymized"
    assert await stored_extras(seed_storage, tenant, customer.id) == ACME_ERASED


class CheckedBase(DeclarativeBase):
    metadata = MetaData()


class CheckedCustomer(CheckedBase, CustomerMixin):
    """A host whose own constraint refuses the value it declared for erasure."""

    __tablename__ = "customers"

    company_name = Column(
        String(255),
        CheckConstraint("company_name <> ''"),
        nullable=False,
        info=personal(anonymized=""),
    )


CHECKED_MODELS = build_models(CheckedBase, customer=CheckedCustomer)


class CompanyCreate(CustomerCreate):
    company_name: str


async def test_a_constraint_refusing_the_erasure_is_a_500_that_says_retrying_will_not_help(
    empty_database_url: str,
) -> None:
    storage = await _storage_with_schema(empty_database_url, CHECKED_MODELS)
    try:
        clock = FixedClock()
        service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
        gdpr = GDPRService(storage.unit_of_work, clock)
        tenant = new_tenant_id()
        customer = await service.create_customer(
            tenant, CompanyCreate(email="cfo@acme.example", company_name="ACME")
        )
        with pytest.raises(StorageRejected) as caught:
            await gdpr.delete_customer_data(tenant, customer.id, anonymize=True)
        assert caught.value.retryable is False

        async with mounted_router_client(service, gdpr_service=gdpr) as client:
            response = await client.delete(
                f"/customers/{customer.id}/gdpr", headers=tenant_headers(tenant)
            )
        body = assert_problem(response, 500, "storage_rejected")
        assert "retrying will not help" in body["detail"]
        assert "Retry-After" not in response.headers
        assert "company_name" not in response.text  # the driver's message stays in the log
        assert (await service.get_customer(tenant, customer.id)).extra == {"company_name": "ACME"}
    finally:
        await storage.close()


STORAGE_DOCS = Path(__file__).resolve().parents[2] / "docs" / "storage.md"


def _docs_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", STORAGE_DOCS.read_text(), flags=re.DOTALL)


def test_the_storage_docs_erasure_example_prints_what_it_promises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (program,) = [block for block in _docs_blocks("python") if "not_personal()" in block]
    exec(compile(program, str(STORAGE_DOCS), "exec"), {"__name__": "docs"})
    assert capsys.readouterr().out == "{'company_name': '', 'tax_id': None, 'plan': 'gold'}\n"


def test_the_storage_docs_show_the_refusal_of_the_seed_model_as_it_is_raised() -> None:
    model = _seed_customer_model(company_name=Column(String(255), nullable=False))
    with pytest.raises(ValueError, match="company_name") as caught:
        build_models(model.__base__, customer=model)
    (shown,) = [block for block in _docs_blocks("text") if "ValueError" in block]
    assert shown == f"ValueError: {caught.value}\n"
