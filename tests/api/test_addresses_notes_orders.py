"""Addresses, notes and orders of a customer, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from linkbay_customers import bootstrap
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import create_app
from tests.api._support import ADDRESS, ORDER, assert_problem, tenant_headers


@pytest.fixture
async def customer_id(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.post("/customers", json={"email": "buyer@example.com"}, headers=headers)
    assert response.status_code == 201
    customer_id: int = response.json()["id"]
    return customer_id


class TestAddresses:
    async def test_an_added_address_is_listed(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        added = await client.post(
            f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers
        )
        listed = await client.get(f"/customers/{customer_id}/addresses", headers=headers)

        assert added.status_code == 201
        body = added.json()
        assert {k: body[k] for k in ADDRESS} == ADDRESS
        assert body["customer_id"] == customer_id
        assert (body["address_line2"], body["state"]) == (None, None)
        assert listed.status_code == 200
        assert listed.json() == {
            "items": [body],
            "total": 1,
            "page": 1,
            "page_size": 20,
            "total_pages": 1,
        }

    async def test_a_new_default_replaces_the_old_one_of_its_type(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}/addresses"
        first = (await client.post(url, json=ADDRESS, headers=headers)).json()
        second = (await client.post(url, json={**ADDRESS, "city": "Roma"}, headers=headers)).json()

        listed = (await client.get(url, headers=headers)).json()["items"]

        assert [(a["id"], a["is_default"]) for a in listed] == [
            (first["id"], False),
            (second["id"], True),
        ]

    async def test_a_patch_changes_only_the_fields_sent(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        added = (
            await client.post(f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers)
        ).json()

        response = await client.patch(
            f"/customers/{customer_id}/addresses/{added['id']}",
            json={"city": "Torino", "country": "it"},
            headers=headers,
        )

        assert response.status_code == 200
        assert response.json() == {**added, "city": "Torino", "country": "IT"}

    async def test_an_invalid_patch_is_a_422_on_the_field(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        added = (
            await client.post(f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers)
        ).json()

        response = await client.patch(
            f"/customers/{customer_id}/addresses/{added['id']}",
            json={"country": "XX"},
            headers=headers,
        )

        assert_problem(response, 422, "invalid_input", "country")

    async def test_a_deleted_address_is_gone(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        added = (
            await client.post(f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers)
        ).json()
        url = f"/customers/{customer_id}/addresses/{added['id']}"

        deleted = await client.delete(url, headers=headers)
        again = await client.delete(url, headers=headers)

        assert deleted.status_code == 204
        assert_problem(again, 404, "address_not_found", "address_id")
        listed = await client.get(f"/customers/{customer_id}/addresses", headers=headers)
        assert listed.json()["items"] == []

    async def test_another_customers_address_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        other = (
            await client.post("/customers", json={"email": "o@example.com"}, headers=headers)
        ).json()
        added = (
            await client.post(f"/customers/{customer_id}/addresses", json=ADDRESS, headers=headers)
        ).json()

        response = await client.patch(
            f"/customers/{other['id']}/addresses/{added['id']}",
            json={"city": "X"},
            headers=headers,
        )

        assert_problem(response, 404, "address_not_found", "address_id")

    async def test_an_unknown_customer_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/customers/987654321/addresses", json=ADDRESS, headers=headers
        )

        assert_problem(response, 404, "customer_not_found", "customer_id")


class TestNotes:
    async def test_a_note_is_written_by_the_acting_user(
        self, client: httpx.AsyncClient, tenant: str, customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}/notes"

        signed = await client.post(
            url, json={"note": "Wants express shipping"}, headers=tenant_headers(tenant, "u-1")
        )
        anonymous = await client.post(
            url, json={"note": "Called back"}, headers=tenant_headers(tenant, None)
        )
        listed = await client.get(url, headers=tenant_headers(tenant))

        assert signed.status_code == 201
        assert signed.json()["created_by"] == "u-1"
        assert signed.json()["created_at"] == "2025-01-01T12:00:00Z"
        assert anonymous.json()["created_by"] is None
        assert [(n["note"], n["created_by"]) for n in listed.json()["items"]] == [
            ("Wants express shipping", "u-1"),
            ("Called back", None),
        ]

    async def test_an_empty_note_is_a_422(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/notes", json={"note": "  "}, headers=headers
        )

        assert_problem(response, 422, "invalid_input", "note")
        listed = await client.get(f"/customers/{customer_id}/notes", headers=headers)
        assert listed.json()["items"] == []


class TestOrders:
    async def test_a_new_order_is_201_and_updates_the_analytics(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/orders", json=ORDER, headers=headers
        )

        assert response.status_code == 201
        body = response.json()
        assert body["order_id"] == "ORD-1001"
        assert body["customer_id"] == customer_id
        assert (body["total"], body["currency"]) == (59.98, "EUR")
        assert body["created_at"] == "2024-12-20T10:00:00Z"
        assert body["items"] == [
            {"product_id": "123", "product_name": "Mug", "quantity": 2, "unit_price": 29.99}
        ]
        customer = (await client.get(f"/customers/{customer_id}", headers=headers)).json()
        assert (customer["total_orders"], customer["total_spent"]) == (1, 59.98)
        assert customer["last_order_at"] == "2024-12-20T10:00:00Z"

    async def test_a_retry_returns_the_same_order_with_200_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        customer_id: int,
        clock: FixedClock,
    ) -> None:
        url = f"/customers/{customer_id}/orders"
        first = await client.post(url, json=ORDER, headers=headers)
        before = (await client.get(f"/customers/{customer_id}", headers=headers)).json()
        clock.advance(minutes=5)

        retry = await client.post(url, json=ORDER, headers=headers)

        assert (first.status_code, retry.status_code) == (201, 200)
        assert retry.json() == first.json()
        after = (await client.get(f"/customers/{customer_id}", headers=headers)).json()
        assert after == before
        assert (await client.get(url, headers=headers)).json()["total"] == 1

    async def test_an_order_id_reused_with_other_content_is_a_409(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}/orders"
        await client.post(url, json=ORDER, headers=headers)

        response = await client.post(url, json={**ORDER, "total": "1.00"}, headers=headers)

        assert_problem(response, 409, "order_conflict", "order_id")

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"created_at": "2030-01-01T00:00:00Z"}, "created_at"),
            ({"created_at": "2024-12-20T10:00:00"}, "created_at"),
            ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),
            ({"total": "-1"}, "total"),
            (
                {"items": [{"product_id": 1, "product_name": "x", "quantity": 0, "unit_price": 1}]},
                "items.0.quantity",
            ),
        ],
    )
    async def test_an_invalid_order_is_a_422_on_the_field(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        customer_id: int,
        change: dict[str, Any],
        field: str,
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/orders", json={**ORDER, **change}, headers=headers
        )

        assert_problem(response, 422, "invalid_input", field)
        listed = await client.get(f"/customers/{customer_id}/orders", headers=headers)
        assert listed.json()["total"] == 0

    async def test_a_second_currency_is_a_422_on_currency(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}/orders"
        await client.post(url, json=ORDER, headers=headers)

        response = await client.post(
            url, json={**ORDER, "order_id": "ORD-2", "currency": "USD"}, headers=headers
        )

        assert_problem(response, 422, "invalid_input", "currency")

    @pytest.mark.parametrize(
        ("currency", "message"),
        [("XYZ", "ISO 4217"), ("EU", "at least 3"), ("EURO", "at most 3"), ("€", "at least 3")],
    )
    async def test_a_currency_that_is_no_iso_4217_code_is_a_422_that_records_nothing(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        customer_id: int,
        currency: str,
        message: str,
    ) -> None:
        url = f"/customers/{customer_id}/orders"

        response = await client.post(url, json={**ORDER, "currency": currency}, headers=headers)
        lower = await client.post(
            url, json={**ORDER, "order_id": "ORD-usd", "currency": "usd"}, headers=headers
        )

        body = assert_problem(response, 422, "invalid_input", "currency")
        assert message in body["errors"][0]["message"]
        assert lower.status_code == 201
        assert lower.json()["currency"] == "USD"
        listed = await client.get(url, headers=headers)
        assert [o["order_id"] for o in listed.json()["items"]] == ["ORD-usd"]

    async def test_orders_are_listed_newest_first_in_pages(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}/orders"
        for day in (10, 12, 11):
            order = {**ORDER, "order_id": f"D{day}", "created_at": f"2024-12-{day}T09:00:00Z"}
            assert (await client.post(url, json=order, headers=headers)).status_code == 201

        first = (await client.get(url, params={"page_size": 2}, headers=headers)).json()
        second = (await client.get(url, params={"page": 2, "page_size": 2}, headers=headers)).json()

        assert [o["order_id"] for o in first["items"]] == ["D12", "D11"]
        assert [o["order_id"] for o in second["items"]] == ["D10"]
        assert (first["total"], first["total_pages"]) == (3, 2)


class TestPagingAndLimits:
    async def test_notes_and_addresses_are_listed_a_page_at_a_time(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        url = f"/customers/{customer_id}"
        notes = [
            (await client.post(f"{url}/notes", json={"note": f"n{i}"}, headers=headers)).json()
            for i in range(3)
        ]
        types = ("shipping", "billing", "other")
        addresses = [
            (
                await client.post(
                    f"{url}/addresses", json={**ADDRESS, "type": kind}, headers=headers
                )
            ).json()
            for kind in types
        ]

        for path, added in (("notes", notes), ("addresses", addresses)):
            first = await client.get(f"{url}/{path}?page_size=2", headers=headers)
            second = await client.get(f"{url}/{path}?page=2&page_size=2", headers=headers)
            assert first.json() == {
                "items": added[:2],
                "total": 3,
                "page": 1,
                "page_size": 2,
                "total_pages": 2,
            }
            assert second.json()["items"] == added[2:]
            too_big = await client.get(f"{url}/{path}?page_size=101", headers=headers)
            assert_problem(too_big, 422, "invalid_input", "page_size")
            nothing = await client.get(f"{url}/{path}?page=0", headers=headers)
            assert_problem(nothing, 422, "invalid_input", "page")


@pytest.fixture
async def capped_client(database_url: str, clock: FixedClock) -> Any:
    container = bootstrap(database_url, clock=clock, max_addresses_per_customer=2)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await container.storage().close()


class TestAddressLimit:
    async def test_an_address_past_the_limit_is_a_409_and_not_stored(
        self, capped_client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await capped_client.post("/customers", json={"email": "a@x.com"}, headers=headers)
        url = f"/customers/{created.json()['id']}/addresses"
        for kind in ("shipping", "billing"):
            added = await capped_client.post(url, json={**ADDRESS, "type": kind}, headers=headers)
            assert added.status_code == 201

        refused = await capped_client.post(url, json=ADDRESS, headers=headers)

        body = assert_problem(refused, 409, "too_many_addresses", "customer_id")
        assert "2 addresses" in body["detail"]
        assert (await capped_client.get(url, headers=headers)).json()["total"] == 2

    async def test_a_merge_that_would_pass_the_limit_is_refused_whole(
        self, capped_client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        ids = []
        for email in ("target@x.com", "source@x.com"):
            created = await capped_client.post("/customers", json={"email": email}, headers=headers)
            ids.append(created.json()["id"])
            for kind in ("shipping", "billing"):
                await capped_client.post(
                    f"/customers/{ids[-1]}/addresses",
                    json={**ADDRESS, "type": kind},
                    headers=headers,
                )
        target, source = ids
        request = {"source_customer_id": source, "target_customer_id": target}

        refused = await capped_client.post("/customers/merge", json=request, headers=headers)
        without = await capped_client.post(
            "/customers/merge", json={**request, "merge_addresses": False}, headers=headers
        )

        assert_problem(refused, 409, "too_many_addresses", "customer_id")
        assert without.status_code == 200
        kept = await capped_client.get(f"/customers/{target}/addresses", headers=headers)
        assert [a["customer_id"] for a in kept.json()["items"]] == [target, target]
