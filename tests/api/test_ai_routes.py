"""The intelligence routes: segment, churn risk, CLV, similar customers, recommendations and
tenant scoring, on every storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from linkbay_customers import CustomersContainer
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import (
    PROBLEM_MEDIA_TYPE,
    create_customer_router,
    header_tenancy,
)
from tests.api._support import assert_problem, mounted_router_client

BIKE = ("bike", "Gravel bike", 1, "850")
BELL = ("bell", "Bike bell", 1, "12")
LIGHT = ("light", "Front light", 1, "38")
TEA = ("tea", "Green tea", 3, "4")
MUG = ("mug", "Mug", 1, "9")
PROFILED = ("segment", "churn-risk", "clv", "similar")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The in-memory reference storage and each real database in turn."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue(f"{request.param}_url"))


def order(order_id: str, *products: tuple[str, str, int, str], on: str) -> dict[str, Any]:
    items = [
        {"product_id": pid, "product_name": name, "quantity": qty, "unit_price": price}
        for pid, name, qty, price in products
    ]
    total = sum(int(price) * qty for _, _, qty, price in products)
    return {
        "order_id": order_id,
        "total": str(total),
        "currency": "EUR",
        "created_at": f"{on}T10:00:00Z",
        "items": items,
    }


async def new_customer(
    client: httpx.AsyncClient, headers: dict[str, str], email: str, *orders: dict[str, Any]
) -> int:
    first, _, last = email.partition("@")[0].partition(".")
    created = await client.post(
        "/customers",
        json={"email": email, "first_name": first.title(), "last_name": last.title() or None},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    customer_id: int = created.json()["id"]
    for body in orders:
        recorded = await client.post(f"/customers/{customer_id}/orders", json=body, headers=headers)
        assert recorded.status_code == 201, recorded.text
    return customer_id


@pytest.fixture
async def shop(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    """Cyclists who buy bikes, bells and lights; tea drinkers who buy tea and mugs; and a
    newcomer who has bought nothing yet."""
    ids: dict[str, int] = {}
    for n in range(4):
        products = [BIKE, BELL] + ([LIGHT] if n else [])
        ids[f"cyclist{n}"] = await new_customer(
            client,
            headers,
            f"cyclist{n}.rider@example.com",
            order(f"C{n}", *products, on=f"2024-12-{10 + n}"),
        )
    for n in range(3):
        ids[f"tea{n}"] = await new_customer(
            client,
            headers,
            f"tea{n}.drinker@example.com",
            order(f"T{n}a", TEA, MUG, on=f"2024-11-0{1 + n}"),
            order(f"T{n}b", TEA, on=f"2024-12-{20 + n}"),
        )
    ids["newbie"] = await new_customer(client, headers, "newbie@example.com")
    return ids


async def score(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> Any:
    response = await client.post("/customers/score", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def withdraw_analytics(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
) -> None:
    response = await client.post(
        f"/customers/{customer_id}/consent/analytics", json={"consented": False}, headers=headers
    )
    assert response.status_code == 200, response.text


class TestScoring:
    async def test_scoring_summarizes_every_customer_and_stores_the_scores(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        summary = await score(client, headers)

        assert set(summary) == {
            "customers",
            "skipped_without_consent",
            "per_segment",
            "churn_risk_distribution",
            "total_predicted_clv",
            "sources",
            "embeddings_written",
        }
        assert summary["customers"] == len(shop)
        assert summary["skipped_without_consent"] == 0
        assert sum(summary["per_segment"].values()) == len(shop)
        assert summary["per_segment"]["new"] >= 1  # the newcomer
        assert list(summary["churn_risk_distribution"]) == [
            "0.0-0.2",
            "0.2-0.4",
            "0.4-0.6",
            "0.6-0.8",
            "0.8-1.0",
        ]
        assert sum(summary["churn_risk_distribution"].values()) == len(shop)
        assert isinstance(summary["total_predicted_clv"], float)
        assert summary["total_predicted_clv"] > 0
        assert summary["sources"] == {"heuristic": len(shop)}
        assert summary["embeddings_written"] == 0  # the orders stored every one already
        cyclist = (await client.get(f"/customers/{shop['cyclist0']}", headers=headers)).json()
        assert cyclist["scored_at"] == "2025-01-01T12:00:00Z"
        assert cyclist["score_source"] == "heuristic"
        assert 0 <= cyclist["churn_risk_score"] <= 1
        assert cyclist["customer_lifetime_value"] > 0

    async def test_months_sets_the_lifetime_value_horizon(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        six = await score(client, headers, months=6)
        year = await score(client, headers)

        assert 0 < six["total_predicted_clv"] < year["total_predicted_clv"]

    async def test_an_empty_tenant_scores_nobody(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        summary = await score(client, headers)

        assert summary["customers"] == 0
        assert summary["per_segment"] == {}
        assert set(summary["churn_risk_distribution"].values()) == {0}
        assert summary["total_predicted_clv"] == 0
        assert summary["sources"] == {}

    async def test_customers_without_analytics_consent_are_skipped_and_cleared(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        await score(client, headers)
        await withdraw_analytics(client, headers, shop["cyclist1"])

        summary = await score(client, headers)

        assert summary["customers"] == len(shop)
        assert summary["skipped_without_consent"] == 1
        assert sum(summary["per_segment"].values()) == len(shop) - 1
        withdrawn = (await client.get(f"/customers/{shop['cyclist1']}", headers=headers)).json()
        assert (withdrawn["segment"], withdrawn["churn_risk_score"], withdrawn["scored_at"]) == (
            None,
            None,
            None,
        )


class TestOneCustomer:
    async def test_churn_risk_grows_with_time_without_orders(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        clock: FixedClock,
    ) -> None:
        url = f"/customers/{shop['cyclist1']}/churn-risk"
        fresh = await client.get(url, headers=headers)
        clock.advance(days=400)
        stale = await client.get(url, headers=headers)

        assert fresh.status_code == 200, fresh.text
        assert set(fresh.json()) == {"customer_id", "churn_risk_score", "risk_level", "source"}
        assert fresh.json()["customer_id"] == shop["cyclist1"]
        assert fresh.json()["risk_level"] == "low"
        assert fresh.json()["source"] == "heuristic"
        assert stale.json()["risk_level"] == "high"
        assert 0 <= fresh.json()["churn_risk_score"] < stale.json()["churn_risk_score"] <= 1

    async def test_clv_is_a_number_over_the_months_asked(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        url = f"/customers/{shop['cyclist2']}/clv"
        default = await client.get(url, headers=headers)
        six = await client.get(url, params={"months": 6}, headers=headers)

        assert default.status_code == 200, default.text
        assert set(default.json()) == {
            "customer_id",
            "predicted_clv",
            "prediction_months",
            "source",
        }
        assert default.json()["prediction_months"] == 12
        assert six.json()["prediction_months"] == 6
        assert isinstance(default.json()["predicted_clv"], float)
        assert 0 < six.json()["predicted_clv"] < default.json()["predicted_clv"]

    async def test_the_segment_is_recomputed_stored_and_audited(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        clock: FixedClock,
    ) -> None:
        customer_id = shop["tea0"]
        clock.advance(days=200)

        response = await client.post(f"/customers/{customer_id}/segment", headers=headers)

        assert response.status_code == 200, response.text
        assert response.json() == {"customer_id": customer_id, "segment": "dormant"}
        stored = await client.get(f"/customers/{customer_id}", headers=headers)
        assert stored.json()["segment"] == "dormant"
        trail = await client.get(f"/customers/{customer_id}/audit", headers=headers)
        last = trail.json()["items"][-1]
        assert (last["action"], last["actor"], last["changed_fields"]) == (
            "scores.updated",
            "user_456",
            ["segment"],
        )

    async def test_a_customer_without_orders_gets_answers_not_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        base = f"/customers/{shop['newbie']}"
        await score(client, headers)

        segment = await client.post(f"{base}/segment", headers=headers)
        churn = await client.get(f"{base}/churn-risk", headers=headers)
        clv = await client.get(f"{base}/clv", headers=headers)
        similar = await client.get(f"{base}/similar", headers=headers)
        recommendations = await client.get(
            f"{base}/recommendations", params={"limit": 2}, headers=headers
        )

        assert segment.json() == {"customer_id": shop["newbie"], "segment": "new"}
        assert churn.status_code == 200, churn.text
        assert 0 <= churn.json()["churn_risk_score"] <= 1
        assert clv.status_code == 200, clv.text
        assert clv.json()["predicted_clv"] == 0
        assert similar.status_code == 200, similar.text
        assert shop["newbie"] not in {c["id"] for c in similar.json()}
        assert recommendations.status_code == 200, recommendations.text
        assert [r["product_id"] for r in recommendations.json()] == ["bell", "bike"]
        assert all("best seller" in r["reason"] for r in recommendations.json())

    async def test_a_merged_id_answers_for_the_customer_it_merged_into(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        merged = await client.post(
            "/customers/merge",
            json={"source_customer_id": shop["newbie"], "target_customer_id": shop["cyclist0"]},
            headers=headers,
        )
        assert merged.status_code == 200, merged.text

        churn = await client.get(f"/customers/{shop['newbie']}/churn-risk", headers=headers)
        segment = await client.post(f"/customers/{shop['newbie']}/segment", headers=headers)

        assert churn.json()["customer_id"] == shop["cyclist0"]
        assert segment.json()["customer_id"] == shop["cyclist0"]

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "segment"),
            ("GET", "churn-risk"),
            ("GET", "clv"),
            ("GET", "similar"),
            ("GET", "recommendations"),
        ],
    )
    async def test_an_unknown_or_deleted_customer_is_a_404(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        method: str,
        path: str,
    ) -> None:
        deleted = await client.delete(f"/customers/{shop['tea2']}", headers=headers)
        assert deleted.status_code == 204

        unknown = await client.request(method, f"/customers/987654321/{path}", headers=headers)
        gone = await client.request(method, f"/customers/{shop['tea2']}/{path}", headers=headers)

        assert_problem(unknown, 404, "customer_not_found", "customer_id")
        assert_problem(gone, 404, "customer_not_found", "customer_id")


class TestSimilarityAndRecommendations:
    async def test_similar_customers_are_those_who_buy_alike(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        await score(client, headers)

        cyclists = await client.get(
            f"/customers/{shop['cyclist0']}/similar", params={"limit": 3}, headers=headers
        )
        tea = await client.get(
            f"/customers/{shop['tea0']}/similar", params={"limit": 2}, headers=headers
        )

        assert cyclists.status_code == 200, cyclists.text
        found = cyclists.json()
        assert {c["id"] for c in found} == {shop[f"cyclist{n}"] for n in (1, 2, 3)}
        first = found[0]
        assert set(first) == {
            "id",
            "email",
            "first_name",
            "last_name",
            "segment",
            "similarity_score",
        }
        assert first["email"].startswith("cyclist")
        assert first["first_name"].startswith("Cyclist")
        assert first["last_name"] == "Rider"
        scores = [c["similarity_score"] for c in found]
        assert scores == sorted(scores, reverse=True)
        assert all(0.5 < s <= 1 for s in scores)
        assert {c["id"] for c in tea.json()} == {shop["tea1"], shop["tea2"]}

    async def test_the_default_limit_is_ten(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        for n in range(8):
            await new_customer(
                client, headers, f"extra{n}@example.com", order(f"X{n}", MUG, on="2024-12-05")
            )
        await score(client, headers)

        found = await client.get(f"/customers/{shop['tea0']}/similar", headers=headers)

        assert len(found.json()) == 10

    async def test_similar_customers_answer_right_after_their_orders_without_scoring(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        cyclists = await client.get(
            f"/customers/{shop['cyclist0']}/similar", params={"limit": 3}, headers=headers
        )
        tea = await client.get(
            f"/customers/{shop['tea0']}/similar", params={"limit": 2}, headers=headers
        )
        newbie = await client.get(f"/customers/{shop['newbie']}/similar", headers=headers)

        assert cyclists.status_code == 200, cyclists.text
        assert {c["id"] for c in cyclists.json()} == {shop[f"cyclist{n}"] for n in (1, 2, 3)}
        assert all(0.5 < c["similarity_score"] <= 1 for c in cyclists.json())
        assert {c["id"] for c in tea.json()} == {shop["tea1"], shop["tea2"]}
        assert newbie.json() == []  # no orders, no behaviour to compare
        recommended = await client.get(
            f"/customers/{shop['cyclist0']}/recommendations", headers=headers
        )
        assert recommended.json()[0]["product_id"] == "light"

    async def test_a_new_order_moves_the_customer_among_the_similar_at_once(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        convert = await client.post(
            f"/customers/{shop['newbie']}/orders",
            json=order("N1", TEA, MUG, on="2024-12-01"),
            headers=headers,
        )
        assert convert.status_code == 201, convert.text

        tea = await client.get(
            f"/customers/{shop['tea0']}/similar", params={"limit": 3}, headers=headers
        )
        cyclists = await client.get(
            f"/customers/{shop['cyclist0']}/similar", params={"limit": 3}, headers=headers
        )

        assert shop["newbie"] in {c["id"] for c in tea.json()}
        assert shop["newbie"] not in {c["id"] for c in cyclists.json()}

    async def test_similar_customers_are_never_another_tenants(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        other_headers: dict[str, str],
        shop: dict[str, int],
    ) -> None:
        # The other tenant's shop holds twins of ours, with the same ids.
        theirs = {
            f"cyclist{n}": await new_customer(
                client,
                other_headers,
                f"their.cyclist{n}@example.com",
                order(f"C{n}", BIKE, BELL, LIGHT, on=f"2024-12-{10 + n}"),
            )
            for n in range(4)
        }
        assert set(theirs.values()) <= set(shop.values())

        ours = await client.get(
            f"/customers/{shop['cyclist0']}/similar", params={"limit": 100}, headers=headers
        )
        their_similar = await client.get(
            f"/customers/{theirs['cyclist0']}/similar",
            params={"limit": 100},
            headers=other_headers,
        )

        our_emails = {c["email"] for c in ours.json()}
        assert len(our_emails) == len(shop) - 2  # everyone but cyclist0 and the newbie
        assert not any(email.startswith("their.") for email in our_emails)
        assert {c["email"] for c in their_similar.json()} == {
            f"their.cyclist{n}@example.com" for n in (1, 2, 3)
        }

    async def test_recommendations_are_what_similar_customers_bought(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        await score(client, headers)

        response = await client.get(
            f"/customers/{shop['cyclist0']}/recommendations", headers=headers
        )

        assert response.status_code == 200, response.text
        recommendations = response.json()
        assert set(recommendations[0]) == {"product_id", "product_name", "score", "reason"}
        assert (recommendations[0]["product_id"], recommendations[0]["product_name"]) == (
            "light",
            "Front light",
        )
        assert "similar" in recommendations[0]["reason"]
        assert 0 < recommendations[0]["score"] <= 1
        assert {r["product_id"] for r in recommendations}.isdisjoint({"bike", "bell"})
        assert len(recommendations) <= 5

    async def test_a_shop_without_orders_recommends_nothing(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        customer_id = await new_customer(client, headers, "alone@example.com")

        response = await client.get(f"/customers/{customer_id}/recommendations", headers=headers)

        assert response.status_code == 200, response.text
        assert response.json() == []


class TestConsentGate:
    @pytest.mark.parametrize("path", PROFILED)
    async def test_profiling_a_customer_who_withdrew_consent_is_a_409(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        path: str,
    ) -> None:
        customer_id = shop["cyclist1"]
        await withdraw_analytics(client, headers, customer_id)
        method = "POST" if path == "segment" else "GET"

        response = await client.request(method, f"/customers/{customer_id}/{path}", headers=headers)

        body = assert_problem(response, 409, "profiling_not_allowed", "customer_id")
        assert body["title"] == "Profiling not allowed"
        assert "analytics" in body["detail"]

    async def test_a_customer_who_withdrew_consent_gets_best_sellers(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        await score(client, headers)
        await withdraw_analytics(client, headers, shop["cyclist1"])

        response = await client.get(
            f"/customers/{shop['cyclist1']}/recommendations", params={"limit": 3}, headers=headers
        )

        assert response.status_code == 200, response.text
        recommendations = response.json()
        assert recommendations
        assert all("best seller" in r["reason"] for r in recommendations)
        # Best sellers, less what the customer already bought.
        assert {r["product_id"] for r in recommendations}.isdisjoint({"bike", "bell", "light"})

    async def test_a_customer_who_withdrew_consent_is_nobodys_neighbour(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        await score(client, headers)
        await withdraw_analytics(client, headers, shop["cyclist1"])

        similar = await client.get(
            f"/customers/{shop['cyclist0']}/similar", params={"limit": 100}, headers=headers
        )

        assert shop["cyclist1"] not in {c["id"] for c in similar.json()}

    async def test_giving_consent_again_lifts_the_gate(
        self, client: httpx.AsyncClient, headers: dict[str, str], shop: dict[str, int]
    ) -> None:
        customer_id = shop["cyclist1"]
        await withdraw_analytics(client, headers, customer_id)
        given = await client.post(
            f"/customers/{customer_id}/consent/analytics", json={"consented": True}, headers=headers
        )
        assert given.status_code == 200

        response = await client.get(f"/customers/{customer_id}/churn-risk", headers=headers)

        assert response.status_code == 200, response.text


class TestValidation:
    @pytest.mark.parametrize(
        ("method", "path", "name", "value"),
        [
            ("GET", "clv", "months", 0),
            ("GET", "clv", "months", 121),
            ("GET", "clv", "months", "soon"),
            ("GET", "similar", "limit", 0),
            ("GET", "similar", "limit", 101),
            ("GET", "recommendations", "limit", 0),
            ("GET", "recommendations", "limit", 101),
            ("GET", "recommendations", "limit", 2.5),
        ],
    )
    async def test_an_out_of_range_parameter_is_a_422_naming_it(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        method: str,
        path: str,
        name: str,
        value: Any,
    ) -> None:
        response = await client.request(
            method,
            f"/customers/{shop['cyclist0']}/{path}",
            params={name: value},
            headers=headers,
        )

        assert_problem(response, 422, "invalid_input", name)

    @pytest.mark.parametrize("months", [0, 121, "all"])
    async def test_scoring_with_months_out_of_range_is_a_422_and_scores_nobody(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        shop: dict[str, int],
        months: Any,
    ) -> None:
        response = await client.post("/customers/score", params={"months": months}, headers=headers)

        assert_problem(response, 422, "invalid_input", "months")
        stored = await client.get(f"/customers/{shop['cyclist0']}", headers=headers)
        assert stored.json()["scored_at"] is None

    @pytest.mark.parametrize("path", ["0", "-1", "abc", str(2**63)])
    async def test_an_id_out_of_range_is_a_422(
        self, client: httpx.AsyncClient, headers: dict[str, str], path: str
    ) -> None:
        response = await client.get(f"/customers/{path}/churn-risk", headers=headers)

        assert_problem(response, 422, "invalid_input", "customer_id")

    async def test_the_tenant_is_required(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/customers/score")

        assert_problem(response, 400, "tenant_required", "X-Tenant-ID")


# ------------------------------------------------------------------ router without the app


@pytest.fixture
async def router_client(
    memory_container: CustomersContainer, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    options = {"ai_service": memory_container.ai_service()} if request.param else {}
    async with mounted_router_client(memory_container.customer_service(), **options) as client:
        yield client


@pytest.mark.parametrize("router_client", [True], indirect=True)
async def test_a_router_given_an_ai_service_instance_serves_the_intelligence_routes(
    router_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    customer_id = await new_customer(router_client, headers, "solo@example.com")

    churn = await router_client.get(f"/customers/{customer_id}/churn-risk", headers=headers)
    summary = await router_client.post("/customers/score", headers=headers)

    assert churn.status_code == 200, churn.text
    assert summary.json()["customers"] == 1
    # Without a GDPR service there are no GDPR routes, intelligence or not.
    export = await router_client.get(f"/customers/{customer_id}/export", headers=headers)
    assert export.status_code == 404


@pytest.mark.parametrize("router_client", [False], indirect=True)
async def test_a_router_without_an_ai_service_serves_no_intelligence_routes(
    router_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    customer_id = await new_customer(router_client, headers, "solo@example.com")

    churn = await router_client.get(f"/customers/{customer_id}/churn-risk", headers=headers)
    summary = await router_client.post("/customers/score", headers=headers)

    assert churn.status_code == 404
    assert churn.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert churn.json()["code"] == "not_found"
    # Without the route, the path is a customer id's, which takes no POST.
    assert summary.status_code == 405


def test_an_ai_service_of_the_wrong_type_is_refused(memory_container: CustomersContainer) -> None:
    tenancy = header_tenancy()

    with pytest.raises(TypeError, match="AIService"):
        create_customer_router(
            memory_container.customer_service(),
            ai_service=memory_container.gdpr_service(),  # type: ignore[arg-type]
            get_tenant_id=tenancy.tenant_id,
        )


async def test_a_dependency_returning_something_else_fails_loudly(
    memory_container: CustomersContainer, headers: dict[str, str]
) -> None:
    tenancy = header_tenancy()

    async def wrong() -> object:
        return memory_container.customer_service()

    app = FastAPI()
    app.include_router(
        create_customer_router(
            memory_container.customer_service(), ai_service=wrong, get_tenant_id=tenancy.tenant_id
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(TypeError, match="AI service dependency returned CustomerService"):
            await client.post("/customers/score", headers=headers)
