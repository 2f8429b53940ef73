"""Through the API, another tenant's ids behave exactly like ids that do not exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from linkbay_customers import bootstrap
from linkbay_customers_fastapi import create_app
from tests.api._support import ADDRESS, ORDER, PROBLEM

# An id no tenant has: distinctive, so it can be told apart in a response body.
UNKNOWN = 8_765_432_109_876_543


@dataclass(frozen=True)
class Ids:
    customer: int
    address: int
    own_customer: int  # a customer of the calling tenant


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    # The path's customer is the caller's; only the address (or the other customer) is foreign.
    own_customer: bool = False

    def url(self, ids: Ids) -> str:
        customer, other = (
            (ids.own_customer, ids.customer)
            if self.own_customer
            else (ids.customer, ids.own_customer)
        )
        return self.path.format(
            customer_id=customer, address_id=ids.address, other_id=other, consent_type="marketing"
        )

    def body(self, ids: Ids) -> dict[str, Any] | None:
        if self.json is None:
            return None
        return {
            key: {"<customer>": ids.customer, "<own>": ids.own_customer}.get(value, value)
            if isinstance(value, str)
            else value
            for key, value in self.json.items()
        }


MERGE_PATH = "/customers/merge"
DISTINCT_PATH = "/customers/{customer_id}/distinct/{other_id}"
CASES: dict[str, Case] = {
    "get": Case("GET", "/customers/{customer_id}"),
    "get(include_deleted)": Case(
        "GET", "/customers/{customer_id}", params={"include_deleted": True}
    ),
    "update": Case("PATCH", "/customers/{customer_id}", json={"first_name": "X"}),
    "delete(soft)": Case("DELETE", "/customers/{customer_id}"),
    "delete(hard)": Case("DELETE", "/customers/{customer_id}", params={"soft_delete": False}),
    "restore": Case("POST", "/customers/{customer_id}/restore"),
    "add_address": Case("POST", "/customers/{customer_id}/addresses", json=ADDRESS),
    "list_addresses": Case("GET", "/customers/{customer_id}/addresses"),
    "update_address(customer)": Case(
        "PATCH", "/customers/{customer_id}/addresses/{address_id}", json={"city": "Z"}
    ),
    "update_address(address)": Case(
        "PATCH",
        "/customers/{customer_id}/addresses/{address_id}",
        json={"city": "Z"},
        own_customer=True,
    ),
    "delete_address(customer)": Case("DELETE", "/customers/{customer_id}/addresses/{address_id}"),
    "delete_address(address)": Case(
        "DELETE", "/customers/{customer_id}/addresses/{address_id}", own_customer=True
    ),
    "add_note": Case("POST", "/customers/{customer_id}/notes", json={"note": "n"}),
    "list_notes": Case("GET", "/customers/{customer_id}/notes"),
    "record_order": Case("POST", "/customers/{customer_id}/orders", json=ORDER),
    "list_orders": Case("GET", "/customers/{customer_id}/orders"),
    "export(json)": Case("GET", "/customers/{customer_id}/export"),
    "export(csv)": Case("GET", "/customers/{customer_id}/export", params={"format": "csv"}),
    "erase(anonymize)": Case("DELETE", "/customers/{customer_id}/gdpr"),
    "erase(hard)": Case("DELETE", "/customers/{customer_id}/gdpr", params={"anonymize": False}),
    "update_consent": Case(
        "POST",
        "/customers/{customer_id}/consent/{consent_type}",
        json={"consented": True, "metadata": {"source": "web"}},
    ),
    "get_consent_history": Case("GET", "/customers/{customer_id}/consent"),
    "list_customer_audit_events": Case("GET", "/customers/{customer_id}/audit"),
    "list_customer_audit_events(window)": Case(
        "GET",
        "/customers/{customer_id}/audit",
        params={"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
    ),
    "update_customer_segment": Case("POST", "/customers/{customer_id}/segment"),
    "get_churn_risk": Case("GET", "/customers/{customer_id}/churn-risk"),
    "predict_clv": Case("GET", "/customers/{customer_id}/clv", params={"months": 6}),
    "find_similar_customers": Case("GET", "/customers/{customer_id}/similar"),
    "find_duplicates_of_customer": Case("GET", "/customers/{customer_id}/duplicates"),
    "mark_distinct(customer)": Case("PUT", DISTINCT_PATH),
    "mark_distinct(other)": Case("PUT", DISTINCT_PATH, own_customer=True),
    "undo_distinct(customer)": Case("DELETE", DISTINCT_PATH),
    "undo_distinct(other)": Case("DELETE", DISTINCT_PATH, own_customer=True),
    "list_duplicate_decisions": Case("GET", "/customers/{customer_id}/distinct"),
    "generate_recommendations": Case(
        "GET", "/customers/{customer_id}/recommendations", params={"limit": 3}
    ),
    "merge(source)": Case(
        "POST",
        MERGE_PATH,
        json={"source_customer_id": "<customer>", "target_customer_id": "<own>"},
    ),
    "merge(target)": Case(
        "POST",
        MERGE_PATH,
        json={"source_customer_id": "<own>", "target_customer_id": "<customer>"},
    ),
}


async def _setup(client: httpx.AsyncClient, headers: dict[str, str], email: str) -> tuple[int, int]:
    customer = await client.post("/customers", json={"email": email}, headers=headers)
    customer_id: int = customer.json()["id"]
    address = await client.post(
        f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers
    )
    await client.post(f"/customers/{customer_id}/notes", json={"note": "secret"}, headers=headers)
    order = await client.post(f"/customers/{customer_id}/orders", json=ORDER, headers=headers)
    assert (customer.status_code, address.status_code, order.status_code) == (201, 201, 201)
    address_id: int = address.json()["id"]
    return customer_id, address_id


async def _snapshot(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
) -> list[Any]:
    base = f"/customers/{customer_id}"
    responses = [
        await client.get(base, params={"include_deleted": True}, headers=headers),
        await client.get(f"{base}/addresses", headers=headers),
        await client.get(f"{base}/notes", headers=headers),
        await client.get(f"{base}/orders", headers=headers),
        await client.get("/customers", params={"include_deleted": True}, headers=headers),
        await client.get(f"{base}/consent", headers=headers),
        # Read-only, so a foreign request that left an audit event behind would show.
        await client.get("/customers/audit-events", headers=headers),
    ]
    return [(r.status_code, r.json()) for r in responses]


def _outcome(response: httpx.Response, *ids: int) -> tuple[int, str, dict[str, Any]]:
    # Only the detail quotes the id the request named; everything else must match as is.
    body: dict[str, Any] = response.json()
    for value in ids:
        body["detail"] = re.sub(rf"\b{value}\b", "<id>", body["detail"])
    return response.status_code, response.headers["content-type"], body


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_foreign_id_is_answered_like_an_unknown_id(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    name: str,
) -> None:
    # Each tenant counts its own ids: the owner's tenant gets ahead, so that the
    # owner's ids name nothing of the intruder's tenant.
    earlier = await client.post(
        "/customers", json={"email": "earlier@example.com"}, headers=headers
    )
    await client.post(f"/customers/{earlier.json()['id']}/addresses", json=ADDRESS, headers=headers)
    customer, address = await _setup(client, headers, "owner@example.com")
    own, own_address = await _setup(client, other_headers, "intruder@example.com")
    assert own not in (customer, UNKNOWN)
    assert own_address != address
    before = await _snapshot(client, headers, customer)
    others_before = await _snapshot(client, other_headers, own)
    case = CASES[name]
    foreign = Ids(customer=customer, address=address, own_customer=own)
    unknown = Ids(customer=UNKNOWN, address=UNKNOWN + 1, own_customer=own)

    got = await client.request(
        case.method,
        case.url(foreign),
        json=case.body(foreign),
        params=case.params,
        headers=other_headers,
    )
    expected = await client.request(
        case.method,
        case.url(unknown),
        json=case.body(unknown),
        params=case.params,
        headers=other_headers,
    )

    assert got.status_code == 404
    assert got.headers["content-type"] == PROBLEM
    assert _outcome(got, customer, address) == _outcome(expected, UNKNOWN, UNKNOWN + 1)
    assert await _snapshot(client, headers, customer) == before
    assert await _snapshot(client, other_headers, own) == others_before


async def test_order_ids_are_per_tenant(
    client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    mine, _ = await _setup(client, headers, "owner@example.com")
    theirs, _ = await _setup(client, other_headers, "other@example.com")

    # ORDER's order id is recorded in both tenants, once each, without conflict.
    orders = await client.get(f"/customers/{theirs}/orders", headers=other_headers)
    mine_orders = await client.get(f"/customers/{mine}/orders", headers=headers)

    assert [o["order_id"] for o in orders.json()["items"]] == [ORDER["order_id"]]
    assert [o["order_id"] for o in mine_orders.json()["items"]] == [ORDER["order_id"]]


async def test_scoring_and_similarity_stay_within_the_tenant(
    client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    mine, _ = await _setup(client, headers, "owner@example.com")
    # The same order in both tenants: a twin any cross-tenant search would find first.
    twin, _ = await _setup(client, other_headers, "twin@example.com")
    before = await _snapshot(client, headers, mine)

    theirs = await client.post("/customers/score", headers=other_headers)
    after = await _snapshot(client, headers, mine)
    ours = await client.post("/customers/score", headers=headers)
    similar = await client.get(f"/customers/{mine}/similar", headers=headers)
    their_similar = await client.get(f"/customers/{twin}/similar", headers=other_headers)

    assert theirs.json()["customers"] == 1
    assert after == before
    assert ours.json()["customers"] == 1
    assert similar.json() == []
    assert their_similar.json() == []


def test_every_route_taking_an_id_is_covered() -> None:
    # Read from the OpenAPI document: FastAPI's route objects are internal and change shape.
    paths = create_app(bootstrap("memory://")).openapi()["paths"]
    routes_with_ids = {
        (method.upper(), path)
        for path, operations in paths.items()
        if "{" in path
        for method in operations
        if method in ("get", "put", "post", "patch", "delete")
    }
    covered = {(case.method, case.path) for case in CASES.values()}

    assert ("GET", "/customers/{customer_id}") in routes_with_ids  # the discovery works
    assert routes_with_ids - covered == set(), "add an isolation case for each new route"
    # Routes taking ids in their body, such as the merge, are listed by hand.
    assert ("POST", MERGE_PATH) in covered
