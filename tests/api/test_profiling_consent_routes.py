"""Every intelligence route under an opt-in profiling policy, on every storage: a
customer who never gave analytics consent is neither scored nor stored with scores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from linkbay_customers import ProfilingPolicy, bootstrap
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import create_app
from tests.api._support import assert_problem

DERIVED = ("segment", "churn_risk_score", "customer_lifetime_value", "scored_at", "score_source")
BIKE = {"product_id": "bike", "product_name": "Gravel bike", "quantity": 1, "unit_price": "900"}
BELL = {"product_id": "bell", "product_name": "Bike bell", "quantity": 1, "unit_price": "10"}
TEA = {"product_id": "tea", "product_name": "Green tea", "quantity": 3, "unit_price": "5"}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def client(database_url: str, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    container = bootstrap(
        database_url, clock=clock, profiling_policy=ProfilingPolicy(require_opt_in=True)
    )
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await container.storage().close()


async def new_customer(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    *items: dict[str, Any],
    opted_in: bool,
) -> int:
    created = await client.post(
        "/customers", json={"email": f"{name}@example.com"}, headers=headers
    )
    assert created.status_code == 201, created.text
    customer_id: int = created.json()["id"]
    if opted_in:
        consent = await client.post(
            f"/customers/{customer_id}/consent/analytics", json={"consented": True}, headers=headers
        )
        assert consent.status_code == 200, consent.text
    if items:
        total = sum(int(i["unit_price"]) * int(i["quantity"]) for i in items)
        body = {"order_id": f"{name}-1", "total": str(total), "currency": "EUR", "items": items}
        recorded = await client.post(f"/customers/{customer_id}/orders", json=body, headers=headers)
        assert recorded.status_code == 201, recorded.text
    return customer_id


@pytest.fixture
async def shop(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    """Anna and Dora never opted in (Dora has bought), Bruno and Carla did."""
    return {
        "anna": await new_customer(client, headers, "anna", opted_in=False),
        "dora": await new_customer(client, headers, "dora", BIKE, BELL, opted_in=False),
        "bruno": await new_customer(client, headers, "bruno", BIKE, opted_in=True),
        "carla": await new_customer(client, headers, "carla", BIKE, TEA, opted_in=True),
    }


async def score(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    response = await client.post("/customers/score", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def stored(client: httpx.AsyncClient, headers: dict[str, str], customer_id: int) -> Any:
    response = await client.get(f"/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.text
    return {name: response.json()[name] for name in DERIVED}


async def assert_only_opted_in_profiled(
    client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int], *, scored: bool
) -> None:
    for name in ("anna", "dora"):
        assert await stored(client, headers, shop[name]) == dict.fromkeys(DERIVED), name
    bruno = await stored(client, headers, shop["bruno"])
    if scored:
        assert None not in bruno.values()
    else:
        assert bruno["segment"] is not None


async def test_scoring_the_tenant_scores_only_who_opted_in(
    client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
) -> None:
    summary = await score(client, headers)

    assert (summary["customers"], summary["skipped_without_consent"]) == (4, 2)
    await assert_only_opted_in_profiled(client, headers, shop, scored=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "segment"), ("GET", "churn-risk"), ("GET", "clv"), ("GET", "similar")],
)
async def test_a_profiling_route_refuses_who_never_opted_in(
    client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int], method: str, path: str
) -> None:
    for name in ("anna", "dora"):
        refused = await client.request(method, f"/customers/{shop[name]}/{path}", headers=headers)
        assert_problem(refused, 409, "profiling_not_allowed", "customer_id")
    answered = await client.request(method, f"/customers/{shop['bruno']}/{path}", headers=headers)

    assert answered.status_code == 200, answered.text
    await assert_only_opted_in_profiled(client, headers, shop, scored=False)


async def test_similar_customers_are_only_who_opted_in(
    client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
) -> None:
    await score(client, headers)

    response = await client.get(f"/customers/{shop['bruno']}/similar", headers=headers)

    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()] == [shop["carla"]]
    await assert_only_opted_in_profiled(client, headers, shop, scored=True)


async def test_recommendations_are_personal_only_for_who_opted_in(
    client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
) -> None:
    await score(client, headers)

    dora = await client.get(f"/customers/{shop['dora']}/recommendations", headers=headers)
    bruno = await client.get(f"/customers/{shop['bruno']}/recommendations", headers=headers)

    assert dora.status_code == bruno.status_code == 200
    assert [(r["product_id"], r["reason"]) for r in dora.json()] == [
        ("tea", "a best seller in this shop (1 buyer)")
    ]
    assert [(r["product_id"], r["reason"]) for r in bruno.json()] == [
        ("tea", "bought by the customer most similar to this one")
    ]
    await assert_only_opted_in_profiled(client, headers, shop, scored=True)
