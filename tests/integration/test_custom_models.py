"""A host's own customer model, with extra columns, works end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from linkbay_customers import CustomerService, HeuristicIntelligence, InvalidInput
from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import (
    CustomerMixin,
    SqlAlchemyStorage,
    build_models,
    create_engine,
)


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


@pytest.fixture
async def host_storage(empty_database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    """A fresh database holding the host's schema, made from the host's metadata."""
    engine = create_engine(empty_database_url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await connection.run_sync(MODELS.metadata.create_all)
    storage = SqlAlchemyStorage(engine, models=MODELS, owns_engine=True)
    yield storage
    await storage.close()


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
