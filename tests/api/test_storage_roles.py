"""A route whose operation needs an optional role the storage lacks answers 501."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from linkbay_customers import AIService, CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router, header_tenancy
from tests._partial_storages import StorageWithout
from tests.api._support import PROBLEM, tenant_headers


async def test_scoring_on_a_storage_without_derived_data_is_501_naming_the_role(
    clock: FixedClock, tenant: str
) -> None:
    storage = StorageWithout("derived_data")
    intelligence = HeuristicIntelligence()
    service = CustomerService(storage.unit_of_work, clock, intelligence)
    ai = AIService(storage.unit_of_work, clock, intelligence)
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            service, ai_service=ai, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = tenant_headers(tenant)
        created = await client.post("/customers", json={"email": "a@example.com"}, headers=headers)
        scored = await client.post("/customers/score", headers=headers)
    assert created.status_code == 201
    assert scored.status_code == 501
    assert scored.headers["content-type"] == PROBLEM
    body = scored.json()
    assert (body["code"], body["status"], body["title"]) == (
        "storage_role_missing",
        501,
        "Not supported by the storage",
    )
    assert "DerivedDataStore" in body["detail"]
