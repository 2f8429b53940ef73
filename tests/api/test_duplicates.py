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


def _client_without(role: str, clock: FixedClock) -> httpx.AsyncClient:
    """A client of the API over the in-memory storage less one optional role."""
    storage = StorageWithout(role)
    service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor)
    )
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_storage_without_the_role_is_501(clock: FixedClock, tenant: str) -> None:
    async with _client_without("duplicates", clock) as client:
        response = await client.get("/customers/duplicates", headers=tenant_headers(tenant))
    body = assert_problem(response, 501, "storage_role_missing")
    assert "DuplicateCandidates" in body["detail"]


async def _pair_of_three(client: httpx.AsyncClient, headers: dict[str, str]) -> list[int]:
    return [
        await _create(client, headers, email=f"tri{n}@example.com", phone="+14155550100")
        for n in range(3)
    ]


async def _suggested(client: httpx.AsyncClient, headers: dict[str, str]) -> set[tuple[int, int]]:
    response = await client.get(
        "/customers/duplicates", params={"min_probability": 0}, headers=headers
    )
    assert response.status_code == 200, response.text
    return {(p["customer_id"], p["other_id"]) for p in response.json()["items"]}


async def test_a_pair_marked_as_two_people_is_not_suggested_until_undone(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    a, b, c = await _pair_of_three(client, headers)
    marked = await client.put(f"/customers/{b}/distinct/{a}", headers=headers)
    assert marked.status_code == 200, marked.text
    decision = marked.json()
    assert (decision["customer_id"], decision["other_id"]) == (a, b)
    assert decision["decided_by"] == headers["X-Actor-ID"]
    assert await _suggested(client, headers) == {(a, c), (b, c)}
    of_a = await client.get(f"/customers/{a}/duplicates?min_probability=0", headers=headers)
    assert [s["other_id"] for s in of_a.json()] == [c]
    again = await client.put(f"/customers/{a}/distinct/{b}", headers=headers)
    assert again.json() == decision
    listed = await client.get(f"/customers/{b}/distinct", headers=headers)
    assert listed.json() == [decision]
    trail = await client.get(f"/customers/{a}/audit", headers=headers)
    assert [e["action"] for e in trail.json()["items"]][-1] == "pair.marked_distinct"

    undone = await client.delete(f"/customers/{a}/distinct/{b}", headers=headers)
    assert undone.status_code == 204
    assert await _suggested(client, headers) == {(a, b), (a, c), (b, c)}
    missing = await client.delete(f"/customers/{a}/distinct/{b}", headers=headers)
    assert_problem(missing, 404, "duplicate_decision_not_found", "other_id")


async def test_pairs_that_cannot_be_decided_are_problems_naming_the_field(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    a, b, c = await _pair_of_three(client, headers)
    merged = await client.post(
        "/customers/merge",
        json={"source_customer_id": b, "target_customer_id": a},
        headers=headers,
    )
    assert merged.status_code == 200, merged.text
    itself = await client.put(f"/customers/{a}/distinct/{a}", headers=headers)
    assert_problem(itself, 409, "invalid_duplicate_decision", "other_id")
    merged_away = await client.put(f"/customers/{c}/distinct/{b}", headers=headers)
    body = assert_problem(merged_away, 409, "invalid_duplicate_decision", "other_id")
    assert f"merged into customer {a}" in body["detail"]
    unknown = await client.put(f"/customers/{a}/distinct/999999", headers=headers)
    assert_problem(unknown, 404, "customer_not_found", "other_id")
    bad = await client.put(f"/customers/{a}/distinct/0", headers=headers)
    assert_problem(bad, 422, "invalid_input", "other_id")
    undo_itself = await client.delete(f"/customers/{a}/distinct/{a}", headers=headers)
    assert_problem(undo_itself, 409, "invalid_duplicate_decision", "other_id")


async def test_another_tenant_can_neither_mark_nor_see_a_tenants_pair(
    client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    a, b, _ = await _pair_of_three(client, headers)
    foreign = await client.put(f"/customers/{a}/distinct/{b}", headers=other_headers)
    assert_problem(foreign, 404, "customer_not_found", "customer_id")
    assert (a, b) in await _suggested(client, headers)
    assert await _suggested(client, other_headers) == set()
    # Ids are counted per tenant: the other tenant's own pair has the same ids, and
    # marking it there leaves this tenant's pair as it was.
    assert await _pair_of_three(client, other_headers) == [a, b, _]
    marked = await client.put(f"/customers/{a}/distinct/{b}", headers=other_headers)
    assert marked.status_code == 200, marked.text
    assert (a, b) in await _suggested(client, headers)
    assert (a, b) not in await _suggested(client, other_headers)
    listed = await client.get(f"/customers/{a}/distinct", headers=headers)
    assert listed.json() == []
    undo = await client.delete(f"/customers/{a}/distinct/{b}", headers=headers)
    assert_problem(undo, 404, "duplicate_decision_not_found", "other_id")


async def test_the_export_lists_the_decisions(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    a, b, _ = await _pair_of_three(client, headers)
    await client.put(f"/customers/{a}/distinct/{b}", headers=headers)
    export = await client.get(f"/customers/{b}/export", headers=headers)
    assert export.status_code == 200, export.text
    assert [(d["customer_id"], d["other_id"]) for d in export.json()["duplicate_decisions"]] == [
        (a, b)
    ]


async def test_deciding_without_the_storage_role_is_501_and_detection_still_works(
    clock: FixedClock, tenant: str
) -> None:
    headers = tenant_headers(tenant)
    async with _client_without("duplicate_decisions", clock) as client:
        a, b, c = await _pair_of_three(client, headers)
        marked = await client.put(f"/customers/{a}/distinct/{b}", headers=headers)
        listed = await client.get(f"/customers/{a}/distinct", headers=headers)
        suggested = await _suggested(client, headers)
    body = assert_problem(marked, 501, "storage_role_missing")
    assert "DuplicateDecisions" in body["detail"]
    assert_problem(listed, 501, "storage_role_missing")
    assert suggested == {(a, b), (a, c), (b, c)}
