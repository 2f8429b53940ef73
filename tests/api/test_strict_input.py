"""Input read as written: money as a plain decimal, zero without a sign, booleans as JSON
booleans, a repeated list parameter as its comma-separated form, and text searched with
one folding on every database."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api._support import ADDRESS, ORDER, assert_problem


async def _customer(client: httpx.AsyncClient, headers: dict[str, str], email: str) -> int:
    created = await client.post("/customers", json={"email": email}, headers=headers)
    assert created.status_code == 201, created.text
    customer_id: int = created.json()["id"]
    return customer_id


class TestMoney:
    @pytest.mark.parametrize("total", ["1_000", " 5 ", "5 ", "0x10", "5,00", "1e", "NaN", "", True])
    async def test_money_that_is_not_a_plain_decimal_is_refused(
        self, client: httpx.AsyncClient, headers: dict[str, str], total: Any
    ) -> None:
        customer_id = await _customer(client, headers, "m@example.com")
        order = {**ORDER, "total": total}

        response = await client.post(
            f"/customers/{customer_id}/orders", json=order, headers=headers
        )
        orders = await client.get(f"/customers/{customer_id}/orders", headers=headers)

        assert_problem(response, 422, "invalid_input", "total")
        assert orders.json()["total"] == 0

    @pytest.mark.parametrize("total", ["59.98", 59.98, "60", 60, ".5", "6e1"])
    async def test_numbers_and_plain_decimal_strings_are_money(
        self, client: httpx.AsyncClient, headers: dict[str, str], total: Any
    ) -> None:
        customer_id = await _customer(client, headers, "p@example.com")

        response = await client.post(
            f"/customers/{customer_id}/orders", json={**ORDER, "total": total}, headers=headers
        )

        assert response.status_code == 201, response.text
        assert response.json()["total"] == float(total)

    @pytest.mark.parametrize("zero", ["-0", "-0.00", -0.0])
    async def test_zero_is_stored_and_returned_without_a_sign(
        self, client: httpx.AsyncClient, headers: dict[str, str], zero: Any
    ) -> None:
        customer_id = await _customer(client, headers, "z@example.com")
        order = {**ORDER, "total": zero, "items": [{**ORDER["items"][0], "unit_price": zero}]}

        created = await client.post(f"/customers/{customer_id}/orders", json=order, headers=headers)
        listed = await client.get(f"/customers/{customer_id}/orders", headers=headers)
        customer = await client.get(f"/customers/{customer_id}", headers=headers)

        assert created.status_code == 201, created.text
        for text in (created.text, listed.text, customer.text):
            assert re.search(r":-0(\.0*)?[,}\]]", text) is None, text
        (order,) = listed.json()["items"]
        assert order["total"] == 0
        assert order["items"][0]["unit_price"] == 0

    async def test_money_filters_in_the_query_are_plain_decimals_too(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        refused = await client.get(
            "/customers", params={"min_total_spent": "1_000"}, headers=headers
        )
        served = await client.get("/customers", params={"min_total_spent": "10.5"}, headers=headers)

        assert_problem(refused, 422, "invalid_input", "min_total_spent")
        assert served.status_code == 200


class TestBooleans:
    @pytest.mark.parametrize("flag", ["yes", "true", 1, 0, "1", None])
    async def test_an_address_default_flag_must_be_a_json_boolean(
        self, client: httpx.AsyncClient, headers: dict[str, str], flag: Any
    ) -> None:
        customer_id = await _customer(client, headers, "b@example.com")
        url = f"/customers/{customer_id}/addresses"

        created = await client.post(url, json={**ADDRESS, "is_default": flag}, headers=headers)
        address = await client.post(url, json={**ADDRESS, "is_default": True}, headers=headers)
        updated = await client.patch(
            f"{url}/{address.json()['id']}", json={"is_default": flag}, headers=headers
        )
        stored = await client.get(url, headers=headers)

        assert_problem(created, 422, "invalid_input", "is_default")
        assert_problem(updated, 422, "invalid_input", "is_default")
        assert [a["is_default"] for a in stored.json()["items"]] == [True]

    async def test_merge_flags_must_be_json_booleans(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        source = await _customer(client, headers, "s@example.com")
        target = await _customer(client, headers, "t@example.com")
        request = {"source_customer_id": source, "target_customer_id": target}

        refused = await client.post(
            "/customers/merge", json={**request, "merge_notes": "no"}, headers=headers
        )
        still_there = await client.get(f"/customers/{source}", headers=headers)
        merged = await client.post(
            "/customers/merge", json={**request, "merge_notes": False}, headers=headers
        )

        assert_problem(refused, 422, "invalid_input", "merge_notes")
        assert still_there.json()["id"] == source
        assert merged.status_code == 200, merged.text


class TestRepeatedListParameters:
    async def test_repeated_tags_mean_what_the_comma_list_means(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        for email, tags in (
            ("vip@example.com", ["vip"]),
            ("b2b@example.com", ["b2b"]),
            ("both@example.com", ["vip", "b2b"]),
            ("none@example.com", []),
        ):
            created = await client.post(
                "/customers", json={"email": email, "tags": tags}, headers=headers
            )
            assert created.status_code == 201

        async def emails(query: str) -> list[str]:
            response = await client.get(f"/customers?{query}", headers=headers)
            assert response.status_code == 200, response.text
            return sorted(c["email"] for c in response.json()["items"])

        for match in ("any", "all"):
            repeated = await emails(f"tags=vip&tags=b2b&tags_match={match}")
            comma = await emails(f"tags=vip,b2b&tags_match={match}")
            mixed = await emails(f"tags=vip&tags=b2b,vip&tags_match={match}")
            assert repeated == comma == mixed
        assert await emails("tags=vip&tags=b2b") == [
            "b2b@example.com",
            "both@example.com",
            "vip@example.com",
        ]
        assert await emails("tags=vip&tags=b2b&tags_match=all") == ["both@example.com"]


FOLDED_QUERIES = {
    "ilker": "İlker",
    "İLKER": "İlker",
    "σίσυφος": "ΣΊΣΥΦΟΣ",
    "ΣΊΣΥΦΟΣ": "ΣΊΣΥΦΟΣ",
    "strasse": "Straße",
    "elodie": "Élodie",
}


class TestOneFolding:
    async def test_search_finds_the_same_customers_on_every_database(
        self, client: httpx.AsyncClient, headers: dict[str, str], other_headers: dict[str, str]
    ) -> None:
        for i, name in enumerate(sorted(set(FOLDED_QUERIES.values()))):
            body = {"email": f"f{i}@example.com", "last_name": name}
            for who in (headers, other_headers):
                created = await client.post("/customers", json=body, headers=who)
                assert created.status_code == 201, created.text

        for query, name in FOLDED_QUERIES.items():
            response = await client.get("/customers/search", params={"q": query}, headers=headers)
            assert response.status_code == 200, response.text
            assert [c["last_name"] for c in response.json()] == [name], query

    async def test_email_contains_folds_as_search_does(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        for email in ("élodie@example.com", "elodie.b@example.com", "other@example.com"):
            created = await client.post("/customers", json={"email": email}, headers=headers)
            assert created.status_code == 201, created.text

        response = await client.get(
            "/customers", params={"email_contains": "ÉLODIE"}, headers=headers
        )

        assert response.status_code == 200, response.text
        assert sorted(c["email"] for c in response.json()["items"]) == [
            "elodie.b@example.com",
            "élodie@example.com",
        ]
