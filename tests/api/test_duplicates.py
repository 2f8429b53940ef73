"""The duplicate routes, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router, header_tenancy
from tests._partial_storages import StorageWithout
from tests.api._support import assert_problem, tenant_headers


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> int:
    response = await client.post("/customers", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_the_tenant_duplicates_are_paged_and_merge_as_suggested(
    client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    ann = await _create(
        client,
        headers,
        email="ann.lee@gmail.com",
        first_name="Ann",
        last_name="Lee",
        phone="+393331234567",
    )
    twin = await _create(
        client,
        headers,
        email="annlee+shop@gmail.com",
        first_name="Ann",
        last_name="Lee",
        phone="+393331234567",
    )
    await _create(client, other_headers, email="ann.lee@gmail.com", phone="+393331234567")
    response = await client.get("/customers/duplicates", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (1, 1, 20, 1)
    (pair,) = body["items"]
    assert (pair["customer_id"], pair["other_id"]) == (ann, twin)
    assert pair["match_probability"] > 0.9
    assert "email: same mailbox" in pair["agreeing"]
    assert pair["keep_reason"] == "older customer" or pair["keep_reason"] == "lower id"
    merged = await client.post("/customers/merge", json=pair["merge_request"], headers=headers)
    assert merged.status_code == 200, merged.text
    again = await client.get("/customers/duplicates", headers=headers)
    assert again.json()["total"] == 0
    # The other tenant's look-alike was never a candidate.
    other = await client.get("/customers/duplicates", headers=other_headers)
    assert other.json()["total"] == 0


async def test_one_customers_duplicates(
    client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    a = await _create(client, headers, email="same@example.com", phone="+14155550100")
    b = await _create(client, headers, email="same+1@example.com", phone="+14155550100")
    response = await client.get(f"/customers/{b}/duplicates", headers=headers)
    assert response.status_code == 200, response.text
    assert [(s["customer_id"], s["other_id"]) for s in response.json()] == [(b, a)]
    foreign = await client.get(f"/customers/{b}/duplicates", headers=other_headers)
    assert_problem(foreign, 404, "customer_not_found", "customer_id")


async def test_a_bad_threshold_is_a_problem_naming_it(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/customers/duplicates?min_probability=2", headers=headers)
    assert_problem(response, 422, "invalid_input", "min_probability")


async def test_a_storage_without_the_role_is_501(clock: FixedClock, tenant: str) -> None:
    storage = StorageWithout("duplicates")
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/customers/duplicates", headers=tenant_headers(tenant))
    body = assert_problem(response, 501, "storage_role_missing")
    assert "DuplicateCandidates" in body["detail"]
