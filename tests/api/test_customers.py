"""The customer routes, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from linkbay_customers import bootstrap
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import create_app
from tests.api._support import ORDER, assert_problem, tenant_headers

MARIO: dict[str, Any] = {
    "email": "Mario.Rossi@Example.com",
    "first_name": "Mario",
    "last_name": "Rossi",
    "phone": "+39 333 123 4567",
    "birthday": "1990-05-15",
    "gender": "male",
    "preferences": {"language": "it", "newsletter_subscribed": True},
    "tags": ["vip", "early_adopter"],
}


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await client.post("/customers", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def italian_client(database_url: str, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose host reads phone numbers without a country code as Italian."""
    container = bootstrap(database_url, clock=clock, default_phone_region="IT")
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await container.storage().close()


class TestPhones:
    async def test_a_national_number_is_stored_in_e164_in_the_host_s_region(
        self, italian_client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(
            italian_client, headers, email="a@example.com", phone="333 123 4567"
        )
        assert created["phone"] == "+393331234567"
        response = await italian_client.patch(
            f"/customers/{created['id']}", json={"phone": "02 1234 5678"}, headers=headers
        )
        assert response.json()["phone"] == "+390212345678"

    @pytest.mark.parametrize("phone", ["call me", "12", "+39 12345"])
    async def test_a_number_that_is_not_valid_is_a_problem_naming_phone(
        self, italian_client: httpx.AsyncClient, headers: dict[str, str], phone: str
    ) -> None:
        response = await italian_client.post(
            "/customers", json={"email": "a@example.com", "phone": phone}, headers=headers
        )
        body = assert_problem(response, 422, "invalid_input", field="phone")
        assert "is not a valid phone number" in body["errors"][0]["message"]

    async def test_without_a_region_a_national_number_is_refused(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/customers", json={"email": "a@example.com", "phone": "333 123 4567"}, headers=headers
        )
        body = assert_problem(response, 422, "invalid_input", field="phone")
        assert "with its country code" in body["detail"]


class TestCreate:
    async def test_a_new_customer_is_returned_with_201(
        self, client: httpx.AsyncClient, headers: dict[str, str], tenant: str
    ) -> None:
        response = await client.post("/customers", json=MARIO, headers=headers)

        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert isinstance(body["id"], int)
        assert body["tenant_id"] == tenant
        assert body["email"] == "mario.rossi@example.com"
        assert body["phone"] == "+393331234567"
        assert body["birthday"] == "1990-05-15"
        assert body["preferences"] == {"language": "it", "newsletter_subscribed": True}
        assert body["tags"] == ["vip", "early_adopter"]
        assert body["total_orders"] == 0
        assert body["total_spent"] == 0.0
        assert body["created_at"] == "2025-01-01T12:00:00Z"
        assert body["deleted_at"] is None

    async def test_the_created_customer_can_be_read_back(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(client, headers, **MARIO)

        response = await client.get(f"/customers/{created['id']}", headers=headers)

        assert response.status_code == 200
        assert response.json() == created

    async def test_an_email_in_use_is_a_409_naming_the_email(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        await _create(client, headers, email="taken@example.com")

        response = await client.post(
            "/customers", json={"email": "TAKEN@example.com"}, headers=headers
        )

        body = assert_problem(response, 409, "duplicate_email", "email")
        assert "taken@example.com" in body["detail"]

    async def test_an_invalid_body_is_a_422_naming_every_field(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/customers",
            json={"email": "not-an-email", "birthday": "1800-01-01", "unknown": 1},
            headers=headers,
        )

        body = assert_problem(response, 422, "invalid_input", "email")
        assert {e["field"] for e in body["errors"]} == {"email", "birthday", "unknown"}

    async def test_a_missing_email_is_a_422_on_email(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post("/customers", json={"first_name": "A"}, headers=headers)

        body = assert_problem(response, 422, "invalid_input", "email")
        assert body["errors"] == [
            {"field": "email", "message": "Field required", "type": "missing"}
        ]


class TestList:
    async def test_pages_carry_the_totals(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        for n in range(5):
            await _create(client, headers, email=f"c{n}@example.com")

        first = (await client.get("/customers", params={"page_size": 2}, headers=headers)).json()
        last = await client.get("/customers", params={"page": 3, "page_size": 2}, headers=headers)

        assert {k: first[k] for k in ("total", "page", "page_size", "total_pages")} == {
            "total": 5,
            "page": 1,
            "page_size": 2,
            "total_pages": 3,
        }
        assert len(first["items"]) == 2
        assert last.status_code == 200
        assert len(last.json()["items"]) == 1

    async def test_the_default_page_holds_20(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        await _create(client, headers, email="one@example.com")

        body = (await client.get("/customers", headers=headers)).json()

        assert (body["page"], body["page_size"], body["total"]) == (1, 20, 1)

    async def test_page_and_page_size_out_of_range_are_422(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        too_big = await client.get("/customers", params={"page_size": 101}, headers=headers)
        negative = await client.get("/customers", params={"page": -1}, headers=headers)

        assert_problem(too_big, 422, "invalid_input", "page_size")
        assert_problem(negative, 422, "invalid_input", "page")

    async def test_comma_separated_tags_match_any_or_all(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        both = await _create(client, headers, email="both@example.com", tags=["vip", "b2b"])
        vip = await _create(client, headers, email="vip@example.com", tags=["vip"])
        await _create(client, headers, email="none@example.com")

        any_of = await client.get("/customers", params={"tags": "vip, b2b,"}, headers=headers)
        all_of = await client.get(
            "/customers", params={"tags": "vip,b2b", "tags_match": "all"}, headers=headers
        )

        assert {c["id"] for c in any_of.json()["items"]} == {both["id"], vip["id"]}
        assert [c["id"] for c in all_of.json()["items"]] == [both["id"]]

    async def test_email_and_creation_time_filters(
        self, client: httpx.AsyncClient, headers: dict[str, str], clock: FixedClock
    ) -> None:
        old = await _create(client, headers, email="old.mario@example.com")
        clock.advance(days=2)
        new = await _create(client, headers, email="new.mario@example.com")
        await _create(client, headers, email="luigi@example.com")

        found = await client.get(
            "/customers",
            params={"email_contains": "MARIO", "sort": "created_at"},
            headers=headers,
        )
        recent = await client.get(
            "/customers",
            params={"email_contains": "mario", "created_after": "2025-01-02T00:00:00+00:00"},
            headers=headers,
        )
        earlier = await client.get(
            "/customers",
            params={"created_before": "2025-01-02T00:00:00Z"},
            headers=headers,
        )

        assert [c["id"] for c in found.json()["items"]] == [old["id"], new["id"]]
        assert [c["id"] for c in recent.json()["items"]] == [new["id"]]
        assert [c["id"] for c in earlier.json()["items"]] == [old["id"]]

    async def test_spending_and_segment_filters(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        spender = await _create(client, headers, email="spender@example.com")
        await _create(client, headers, email="saver@example.com")
        order = await client.post(f"/customers/{spender['id']}/orders", json=ORDER, headers=headers)
        assert order.status_code == 201
        segment = (await client.get(f"/customers/{spender['id']}", headers=headers)).json()[
            "segment"
        ]

        rich = await client.get(
            "/customers",
            params={"min_total_spent": "50", "max_total_spent": 60.0},
            headers=headers,
        )
        poor = await client.get("/customers", params={"max_total_spent": "10"}, headers=headers)
        same_segment = await client.get("/customers", params={"segment": segment}, headers=headers)

        assert [c["id"] for c in rich.json()["items"]] == [spender["id"]]
        assert [c["email"] for c in poor.json()["items"]] == ["saver@example.com"]
        assert spender["id"] in {c["id"] for c in same_segment.json()["items"]}

    async def test_inconsistent_filters_are_422_on_the_field(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        spent = await client.get(
            "/customers", params={"min_total_spent": 10, "max_total_spent": 5}, headers=headers
        )
        window = await client.get(
            "/customers",
            params={"created_after": "2025-01-02T00:00:00Z", "created_before": "2025-01-01T00:00Z"},
            headers=headers,
        )
        naive = await client.get(
            "/customers", params={"created_after": "2025-01-02T00:00:00"}, headers=headers
        )

        assert_problem(spent, 422, "invalid_input", "max_total_spent")
        assert_problem(window, 422, "invalid_input", "created_before")
        assert_problem(naive, 422, "invalid_input", "created_after")

    async def test_deleted_customers_are_listed_only_on_request(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        gone = await _create(client, headers, email="gone@example.com")
        await client.delete(f"/customers/{gone['id']}", headers=headers)

        default = (await client.get("/customers", headers=headers)).json()
        everyone = (
            await client.get("/customers", params={"include_deleted": True}, headers=headers)
        ).json()

        assert default["total"] == 0
        assert [c["id"] for c in everyone["items"]] == [gone["id"]]


class TestSearch:
    async def test_finds_by_email_name_and_phone_best_first(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        mario = await _create(client, headers, **MARIO)
        other = await _create(
            client, headers, email="anna.mario@example.com", phone="+39 02 555 1234"
        )

        by_name = await client.get("/customers/search", params={"q": "mario"}, headers=headers)
        by_phone = await client.get("/customers/search", params={"q": "5551234"}, headers=headers)
        exact = await client.get(
            "/customers/search",
            params={"q": "mario.rossi@example.com", "limit": 1},
            headers=headers,
        )

        assert {c["id"] for c in by_name.json()} == {mario["id"], other["id"]}
        assert [c["id"] for c in by_phone.json()] == [other["id"]]
        assert [c["id"] for c in exact.json()] == [mario["id"]]

    async def test_no_match_is_an_empty_list(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.get("/customers/search", params={"q": "nobody"}, headers=headers)

        assert response.status_code == 200
        assert response.json() == []

    async def test_a_missing_or_blank_query_is_a_422_on_q(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        missing = await client.get("/customers/search", headers=headers)
        blank = await client.get("/customers/search", params={"q": "   "}, headers=headers)

        assert_problem(missing, 422, "invalid_input", "q")
        assert_problem(blank, 422, "invalid_input", "q")


class TestUpdate:
    async def test_only_the_fields_sent_change(
        self, client: httpx.AsyncClient, headers: dict[str, str], clock: FixedClock
    ) -> None:
        created = await _create(client, headers, **MARIO)
        clock.advance(hours=1)

        response = await client.patch(
            f"/customers/{created['id']}",
            json={
                "phone": "+393339876543",
                "preferences": {"language": "en", "newsletter_subscribed": None},
            },
            headers=headers,
        )

        assert response.status_code == 200
        body = response.json()
        assert body["phone"] == "+393339876543"
        assert body["preferences"] == {"language": "en"}
        assert body["first_name"] == "Mario"
        assert body["tags"] == MARIO["tags"]
        assert body["updated_at"] == "2025-01-01T13:00:00Z"
        stored = await client.get(f"/customers/{created['id']}", headers=headers)
        assert stored.json() == body

    async def test_preferences_follow_json_merge_patch_nulls_included(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(
            client, headers, email="patch@example.com", preferences={"ui": {"size": "l"}, "n": 1}
        )

        response = await client.patch(
            f"/customers/{created['id']}",
            json={"preferences": {"ui": {"size": None}, "n": {"x": None, "y": {"z": None}}}},
            headers=headers,
        )

        # RFC 7396: a patch object applies to an empty object where the target holds
        # none, so the nulls it holds remove keys and are never stored.
        assert response.status_code == 200
        assert response.json()["preferences"] == {"ui": {}, "n": {"y": {}}}

    async def test_an_email_cannot_be_cleared_or_taken(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(client, headers, email="me@example.com")
        await _create(client, headers, email="you@example.com")

        cleared = await client.patch(
            f"/customers/{created['id']}", json={"email": None}, headers=headers
        )
        taken = await client.patch(
            f"/customers/{created['id']}", json={"email": "you@example.com"}, headers=headers
        )

        assert_problem(cleared, 422, "invalid_input", "email")
        assert_problem(taken, 409, "duplicate_email", "email")
        stored = await client.get(f"/customers/{created['id']}", headers=headers)
        assert stored.json()["email"] == "me@example.com"

    async def test_an_unknown_customer_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.patch(
            "/customers/987654321", json={"first_name": "X"}, headers=headers
        )

        body = assert_problem(response, 404, "customer_not_found", "customer_id")
        assert body["detail"] == "customer 987654321 not found"


class TestDeleteAndRestore:
    async def test_a_soft_delete_hides_the_customer_until_restored(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(client, headers, email="soft@example.com")
        url = f"/customers/{created['id']}"

        deleted = await client.delete(url, headers=headers)
        hidden = await client.get(url, headers=headers)
        visible = await client.get(url, params={"include_deleted": True}, headers=headers)
        restored = await client.post(f"{url}/restore", headers=headers)

        assert deleted.status_code == 204
        assert deleted.content == b""
        assert_problem(hidden, 404, "customer_not_found", "customer_id")
        assert visible.json()["deleted_at"] == "2025-01-01T12:00:00Z"
        assert restored.status_code == 200
        assert restored.json()["deleted_at"] is None
        assert (await client.get(url, headers=headers)).status_code == 200

    async def test_a_hard_delete_is_for_good(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(client, headers, email="hard@example.com")
        url = f"/customers/{created['id']}"
        await client.post(f"{url}/notes", json={"note": "n"}, headers=headers)

        deleted = await client.delete(url, params={"soft_delete": False}, headers=headers)

        assert deleted.status_code == 204
        deleted_view = await client.get(url, params={"include_deleted": True}, headers=headers)
        assert_problem(deleted_view, 404, "customer_not_found", "customer_id")
        assert_problem(
            await client.post(f"{url}/restore", headers=headers),
            404,
            "customer_not_found",
            "customer_id",
        )
        # The email is free again.
        assert (
            await client.post("/customers", json={"email": "hard@example.com"}, headers=headers)
        ).status_code == 201

    async def test_restoring_a_customer_that_is_not_deleted_changes_nothing(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await _create(client, headers, email="here@example.com")

        response = await client.post(f"/customers/{created['id']}/restore", headers=headers)

        assert response.status_code == 200
        assert response.json() == created


class TestMerge:
    async def test_the_source_moves_into_the_target(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        source = await _create(client, headers, email="dup@example.com", tags=["a"])
        target = await _create(client, headers, email="keep@example.com", tags=["b"])
        await client.post(f"/customers/{source['id']}/orders", json=ORDER, headers=headers)
        await client.post(f"/customers/{source['id']}/notes", json={"note": "n"}, headers=headers)
        request = {"source_customer_id": source["id"], "target_customer_id": target["id"]}

        merged = await client.post("/customers/merge", json=request, headers=headers)
        again = await client.post("/customers/merge", json=request, headers=headers)

        assert merged.status_code == 200
        body = merged.json()
        assert body["id"] == target["id"]
        assert body["tags"] == ["b", "a"]
        assert (body["total_orders"], body["total_spent"]) == (1, 59.98)
        assert again.status_code == 200
        assert again.json() == body
        via_source = await client.get(f"/customers/{source['id']}", headers=headers)
        assert via_source.json()["id"] == target["id"]
        notes = await client.get(f"/customers/{target['id']}/notes", headers=headers)
        assert [n["note"] for n in notes.json()["items"]] == ["n"]

    async def test_a_self_merge_is_a_409(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        one = await _create(client, headers, email="one@example.com")

        response = await client.post(
            "/customers/merge",
            json={"source_customer_id": one["id"], "target_customer_id": one["id"]},
            headers=headers,
        )

        assert_problem(response, 409, "invalid_merge", "target_customer_id")

    async def test_an_unknown_customer_is_a_404_naming_which(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        one = await _create(client, headers, email="one@example.com")

        response = await client.post(
            "/customers/merge",
            json={"source_customer_id": one["id"], "target_customer_id": 987654321},
            headers=headers,
        )

        assert_problem(response, 404, "customer_not_found", "target_customer_id")
        assert (await client.get(f"/customers/{one['id']}", headers=headers)).status_code == 200


async def test_an_actor_header_is_optional(client: httpx.AsyncClient, tenant: str) -> None:
    response = await client.post(
        "/customers", json={"email": "anon@example.com"}, headers=tenant_headers(tenant, None)
    )

    assert response.status_code == 201


async def test_a_tenant_id_beyond_ascii_works_end_to_end(
    client: httpx.AsyncClient, tenant: str
) -> None:
    headers = {b"X-Tenant-ID": f"caf\xe9-{tenant}".encode("latin-1")}

    created = await client.post("/customers", json={"email": "cafe@example.com"}, headers=headers)
    fetched = await client.get(f"/customers/{created.json()['id']}", headers=headers)

    assert created.status_code == 201
    assert fetched.json()["tenant_id"] == f"caf\xe9-{tenant}"
