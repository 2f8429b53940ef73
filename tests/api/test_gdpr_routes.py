"""The GDPR routes: export, erasure, consent and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from linkbay_customers import CustomersContainer
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import (
    PROBLEM_MEDIA_TYPE,
    create_app,
    create_customer_router,
    header_tenancy,
)
from tests.api._support import ADDRESS, ORDER, assert_problem, mounted_router_client

PROFILE: dict[str, Any] = {
    "email": "mario.rossi@example.com",
    "first_name": "Mario",
    "last_name": "Rossi",
    "phone": "+393331234567",
    "birthday": "1990-05-15",
    "tags": ["vip"],
}
PERSONAL_VALUES = ("mario.rossi@example.com", "Mario", "Rossi", "3331234567", "Via Roma")


@pytest.fixture
async def customer_id(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    created = await client.post("/customers", json=PROFILE, headers=headers)
    assert created.status_code == 201, created.text
    customer_id: int = created.json()["id"]
    base = f"/customers/{customer_id}"
    for url, body in (
        (f"{base}/addresses", ADDRESS),
        (f"{base}/notes", {"note": "Prefers phone calls"}),
        (f"{base}/orders", ORDER),
    ):
        assert (await client.post(url, json=body, headers=headers)).status_code == 201
    consent = await client.post(
        f"{base}/consent/marketing",
        json={"consented": True, "metadata": {"source": "signup", "ip_address": "192.0.2.7"}},
        headers=headers,
    )
    assert consent.status_code == 200, consent.text
    return customer_id


def _unzip(content: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
            for name in archive.namelist()
            if name.endswith(".csv")
        }


class TestExport:
    async def test_the_json_export_holds_what_was_written(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.get(f"/customers/{customer_id}/export", headers=headers)

        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        export = response.json()
        assert export["export_format"] == "json"
        customer = export["customer"]
        assert {k: customer[k] for k in PROFILE} == PROFILE
        assert customer["total_orders"] == 1
        assert customer["consent_data"]["marketing"]["consented"] is True
        assert [a["city"] for a in export["addresses"]] == [ADDRESS["city"]]
        assert [n["note"] for n in export["notes"]] == ["Prefers phone calls"]
        assert [o["order_id"] for o in export["orders"]] == [ORDER["order_id"]]
        assert export["orders"][0]["items"][0]["product_name"] == "Mug"
        assert export["consent"]["marketing"]["ip_address"] == "192.0.2.7"
        assert [e["consent_type"] for e in export["consent_history"]] == ["marketing"]
        assert export["analytics"]["total_spent"] == 59.98
        assert {e["action"] for e in export["audit_trail"]} >= {
            "customer.created",
            "address.added",
            "order.recorded",
            "consent.updated",
        }

    async def test_the_csv_export_is_a_zip_of_one_file_per_section(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.get(
            f"/customers/{customer_id}/export", params={"format": "csv"}, headers=headers
        )

        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="customer-{customer_id}-export.zip"'
        )
        assert response.headers["cache-control"] == "no-store"
        files = _unzip(response.content)
        assert {"customer.csv", "addresses.csv", "notes.csv", "orders.csv"} <= set(files)
        assert {"order_items.csv", "consent.csv", "consent_history.csv", "audit_trail.csv"} <= set(
            files
        )
        [customer] = files["customer.csv"]
        assert (customer["email"], customer["first_name"]) == (PROFILE["email"], "Mario")
        assert [a["city"] for a in files["addresses.csv"]] == ["Milano"]
        assert [o["order_id"] for o in files["orders.csv"]] == [ORDER["order_id"]]
        assert [i["product_name"] for i in files["order_items.csv"]] == ["Mug"]

    async def test_the_csv_export_writes_no_cell_a_spreadsheet_would_run(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await client.post(
            "/customers",
            json={
                "email": "formula@example.com",
                "first_name": '=HYPERLINK("http://evil.example","x")',
                "last_name": "@SUM(1+1)",
                "phone": "+393331234567",
                "tags": ["-vip"],
            },
            headers=headers,
        )
        customer_id = created.json()["id"]
        note = {"note": "+1+cmd|' /C calc'!A0"}
        await client.post(f"/customers/{customer_id}/notes", json=note, headers=headers)

        response = await client.get(
            f"/customers/{customer_id}/export", params={"format": "csv"}, headers=headers
        )

        files = _unzip(response.content)
        [customer] = files["customer.csv"]
        assert customer["first_name"] == '\'=HYPERLINK("http://evil.example","x")'
        assert customer["last_name"] == "'@SUM(1+1)"
        assert customer["phone"] == "'+393331234567"
        assert customer["tags"] == '["-vip"]'  # JSON text starts with a bracket
        assert [n["note"] for n in files["notes.csv"]] == ["'+1+cmd|' /C calc'!A0"]
        cells = [v for rows in files.values() for row in rows for v in row.values()]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]

    async def test_both_ids_of_a_merged_person_export_the_rows_of_both(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        old = await client.post("/customers", json={"email": "old@example.com"}, headers=headers)
        old_id = old.json()["id"]
        base = f"/customers/{old_id}"
        for url, body in (
            (f"{base}/addresses", {**ADDRESS, "city": "Bergamo"}),
            (f"{base}/notes", {"note": "Old account"}),
            (f"{base}/consent/analytics", {"consented": True}),
        ):
            assert (await client.post(url, json=body, headers=headers)).status_code in (200, 201)
        merge = {
            "source_customer_id": old_id,
            "target_customer_id": customer_id,
            "merge_notes": False,
            "merge_addresses": False,
        }
        assert (await client.post("/customers/merge", json=merge, headers=headers)).is_success

        for asked in (customer_id, old_id):
            export = (await client.get(f"/customers/{asked}/export", headers=headers)).json()
            assert export["customer"]["id"] == customer_id
            assert [(a["customer_id"], a["city"]) for a in export["addresses"]] == [
                (customer_id, "Milano"),
                (old_id, "Bergamo"),
            ]
            assert [(n["customer_id"], n["note"]) for n in export["notes"]] == [
                (customer_id, "Prefers phone calls"),
                (old_id, "Old account"),
            ]
            assert [(e["customer_id"], e["consent_type"]) for e in export["consent_history"]] == [
                (customer_id, "marketing"),
                (old_id, "analytics"),
            ]
        archive = await client.get(
            f"/customers/{old_id}/export", params={"format": "csv"}, headers=headers
        )
        files = _unzip(archive.content)
        assert [(n["customer_id"], n["note"]) for n in files["notes.csv"]] == [
            (str(customer_id), "Prefers phone calls"),
            (str(old_id), "Old account"),
        ]

    async def test_an_export_is_audited_with_the_acting_user(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        await client.get(f"/customers/{customer_id}/export", headers=headers)

        trail = await client.get(f"/customers/{customer_id}/audit", headers=headers)

        exported = [e for e in trail.json()["items"] if e["action"] == "data.exported"]
        assert len(exported) == 1
        assert exported[0]["actor"] == "user_456"

    async def test_an_unknown_format_is_a_422_on_format(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.get(
            f"/customers/{customer_id}/export", params={"format": "xml"}, headers=headers
        )

        assert_problem(response, 422, "invalid_input", "format")

    async def test_an_unknown_customer_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.get("/customers/987654321/export", headers=headers)

        assert_problem(response, 404, "customer_not_found", "customer_id")

    async def test_a_soft_deleted_customer_can_be_exported(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        await client.delete(f"/customers/{customer_id}", headers=headers)

        response = await client.get(f"/customers/{customer_id}/export", headers=headers)

        assert response.status_code == 200
        assert response.json()["customer"]["email"] == PROFILE["email"]


class TestErasure:
    async def test_anonymizing_hides_the_customer_and_leaves_no_personal_data(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        erased = await client.delete(f"/customers/{customer_id}/gdpr", headers=headers)
        read = await client.get(f"/customers/{customer_id}", headers=headers)
        export = await client.get(f"/customers/{customer_id}/export", headers=headers)
        archive = await client.get(
            f"/customers/{customer_id}/export", params={"format": "csv"}, headers=headers
        )

        assert erased.status_code == 200, erased.text
        result = erased.json()
        assert set(result) == {"success", "method", "customer_id", "deleted_at"}
        assert (result["success"], result["method"], result["customer_id"]) == (
            True,
            "anonymized",
            customer_id,
        )
        assert_problem(read, 404, "customer_not_found", "customer_id")
        assert export.status_code == 200
        document = export.json()
        assert document["customer"]["email"] is None
        assert document["customer"]["is_anonymized"] is True
        assert document["addresses"] == []
        assert document["analytics"]["total_orders"] == 1
        for value in PERSONAL_VALUES:
            assert value not in export.text
        text = b"".join(
            zipfile.ZipFile(io.BytesIO(archive.content)).read(name)
            for name in zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        ).decode("utf-8")
        for value in PERSONAL_VALUES:
            assert value not in text
        assert "192.0.2.7" not in export.text + text

    async def test_anonymizing_again_changes_nothing(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        first = await client.delete(f"/customers/{customer_id}/gdpr", headers=headers)
        second = await client.delete(
            f"/customers/{customer_id}/gdpr", params={"anonymize": True}, headers=headers
        )

        assert second.status_code == 200
        assert second.json() == first.json()

    async def test_a_hard_delete_leaves_only_a_tombstone(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        erased = await client.delete(
            f"/customers/{customer_id}/gdpr", params={"anonymize": False}, headers=headers
        )
        export = await client.get(f"/customers/{customer_id}/export", headers=headers)
        again = await client.delete(
            f"/customers/{customer_id}/gdpr", params={"anonymize": False}, headers=headers
        )
        trail = await client.get(f"/customers/{customer_id}/audit", headers=headers)

        assert erased.status_code == 200, erased.text
        assert (erased.json()["method"], erased.json()["customer_id"]) == ("deleted", customer_id)
        assert_problem(export, 404, "customer_not_found", "customer_id")
        assert_problem(again, 404, "customer_not_found", "customer_id")
        assert trail.status_code == 200
        # The trail stays (accountability), holding no personal value, and ends with the erasure.
        assert [e["action"] for e in trail.json()["items"]][-1] == "data.erased"
        assert len(trail.json()["items"]) > 1
        for value in PERSONAL_VALUES:
            assert value not in trail.text

    async def test_an_unknown_customer_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        response = await client.delete("/customers/987654321/gdpr", headers=headers)

        assert_problem(response, 404, "customer_not_found", "customer_id")


class TestConsent:
    async def test_decisions_are_kept_as_state_and_history(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        base = f"/customers/{customer_id}/consent"
        analytics = await client.post(
            f"{base}/analytics", json={"consented": False}, headers=headers
        )
        withdrawn = await client.post(
            f"{base}/marketing",
            json={"consented": False, "metadata": {"source": "preferences_page"}},
            headers=headers,
        )
        history = await client.get(base, headers=headers)

        assert analytics.status_code == 200, analytics.text
        assert analytics.json()["previous"] is None
        event = withdrawn.json()
        assert (event["consent_type"], event["consented"], event["previous"]) == (
            "marketing",
            False,
            True,
        )
        assert event["source"] == "preferences_page"
        body = history.json()
        assert history.status_code == 200
        assert set(body) == {"marketing", "analytics", "events"}
        assert body["marketing"]["consented"] is False
        assert body["marketing"]["date"] == event["occurred_at"]
        assert body["analytics"]["consented"] is False
        assert [(e["consent_type"], e["consented"]) for e in body["events"]] == [
            ("marketing", True),
            ("analytics", False),
            ("marketing", False),
        ]
        assert body["events"][0]["ip_address"] == "192.0.2.7"

    async def test_the_ip_and_user_agent_are_never_taken_from_the_request(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/consent/cookies",
            json={"consented": True},
            headers={**headers, "User-Agent": "curl/8.0", "X-Forwarded-For": "203.0.113.9"},
        )

        assert response.status_code == 200
        assert (response.json()["ip_address"], response.json()["user_agent"]) == (None, None)

    async def test_an_unknown_consent_type_is_a_422_on_consent_type(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/consent/telepathy", json={"consented": True}, headers=headers
        )
        too_long = await client.post(
            f"/customers/{customer_id}/consent/{'x' * 65}",
            json={"consented": True},
            headers=headers,
        )

        body = assert_problem(response, 422, "consent_type_unknown", "consent_type")
        assert "marketing" in body["detail"]
        assert_problem(too_long, 422, "invalid_input", "consent_type")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"consented": True, "metadata": {"consented": False}}, "metadata.consented"),
            ({"consented": True, "metadata": {"date": "2020-01-01T00:00:00Z"}}, "metadata.date"),
            ({"consented": True, "metadata": {"ip_address": "999.1.2.3"}}, "metadata.ip_address"),
            ({"consented": True, "metadata": {"source": "a\u0000b"}}, "metadata.source"),
            ({"consented": "yes"}, "consented"),
            ({"metadata": {"source": "web"}}, "consented"),
            ({"consented": True, "date": "2020-01-01T00:00:00Z"}, "date"),
        ],
    )
    async def test_an_invalid_body_is_a_422_naming_the_field(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        customer_id: int,
        body: dict[str, Any],
        field: str,
    ) -> None:
        response = await client.post(
            f"/customers/{customer_id}/consent/marketing", json=body, headers=headers
        )

        assert_problem(response, 422, "invalid_input", field)
        history = (await client.get(f"/customers/{customer_id}/consent", headers=headers)).json()
        assert len(history["events"]) == 1

    async def test_a_deleted_customer_is_a_404(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_id: int
    ) -> None:
        await client.delete(f"/customers/{customer_id}", headers=headers)

        posted = await client.post(
            f"/customers/{customer_id}/consent/marketing", json={"consented": True}, headers=headers
        )
        read = await client.get(f"/customers/{customer_id}/consent", headers=headers)

        assert_problem(posted, 404, "customer_not_found", "customer_id")
        assert_problem(read, 404, "customer_not_found", "customer_id")


class TestAuditTrail:
    async def test_a_customers_trail_names_fields_never_values(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        created = await client.post("/customers", json=PROFILE, headers=headers)
        base = f"/customers/{created.json()['id']}"
        await client.patch(base, json={"first_name": "Luigi"}, headers=headers)
        await client.get(f"{base}/export", headers=headers)
        await client.post(f"{base}/consent/marketing", json={"consented": True}, headers=headers)

        trail = await client.get(f"{base}/audit", headers=headers)

        assert trail.status_code == 200, trail.text
        page = trail.json()
        assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (
            4,
            1,
            100,
            1,
        )
        events = {e["action"]: e for e in page["items"]}
        assert list(events) == [
            "customer.created",
            "customer.updated",
            "data.exported",
            "consent.updated",
        ]
        assert set(events["customer.created"]["changed_fields"]) == set(PROFILE)
        assert events["customer.updated"]["changed_fields"] == ["first_name"]
        assert events["consent.updated"]["changed_fields"] == ["consent_data"]
        assert events["consent.updated"]["details"] == {"consent_type": "marketing"}
        assert {e["actor"] for e in page["items"]} == {"user_456"}
        for value in (*PERSONAL_VALUES, "Luigi"):
            assert value not in trail.text

    async def test_the_tenants_trail_pages_and_filters(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        other_headers: dict[str, str],
        clock: FixedClock,
    ) -> None:
        first = await client.post("/customers", json={"email": "a@example.com"}, headers=headers)
        clock.advance(hours=1)
        second = await client.post("/customers", json={"email": "b@example.com"}, headers=headers)
        clock.advance(hours=1)
        await client.patch(
            f"/customers/{first.json()['id']}", json={"first_name": "Ann"}, headers=headers
        )
        await client.post("/customers", json={"email": "c@example.com"}, headers=other_headers)

        everything = await client.get("/customers/audit-events", headers=headers)
        paged = await client.get(
            "/customers/audit-events", params={"page": 2, "page_size": 2}, headers=headers
        )
        of_first = await client.get(
            "/customers/audit-events", params={"customer_id": first.json()["id"]}, headers=headers
        )
        # The times as stored: PostgreSQL stamps events with its own clock.
        times = [e["occurred_at"] for e in everything.json()["items"]]
        window = await client.get(
            "/customers/audit-events",
            params={"since": times[1], "until": times[2]},
            headers=headers,
        )

        assert everything.status_code == 200, everything.text
        assert [(e["customer_id"], e["action"]) for e in everything.json()["items"]] == [
            (first.json()["id"], "customer.created"),
            (second.json()["id"], "customer.created"),
            (first.json()["id"], "customer.updated"),
        ]
        assert (paged.json()["total"], paged.json()["total_pages"]) == (3, 2)
        assert [e["action"] for e in paged.json()["items"]] == ["customer.updated"]
        assert [e["action"] for e in of_first.json()["items"]] == [
            "customer.created",
            "customer.updated",
        ]
        assert [e["customer_id"] for e in window.json()["items"]] == [second.json()["id"]]

    async def test_another_tenants_customer_id_filters_to_an_empty_page(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        other_headers: dict[str, str],
    ) -> None:
        theirs = await client.post("/customers", json={"email": "t@example.com"}, headers=headers)

        foreign = await client.get(
            "/customers/audit-events",
            params={"customer_id": theirs.json()["id"]},
            headers=other_headers,
        )
        unknown = await client.get(
            "/customers/audit-events", params={"customer_id": 987654321}, headers=other_headers
        )

        assert foreign.status_code == unknown.status_code == 200
        assert foreign.json() == unknown.json()
        assert foreign.json()["total"] == 0

    async def test_a_known_customer_with_no_events_in_the_window_is_an_empty_page(
        self, client: httpx.AsyncClient, headers: dict[str, str], clock: FixedClock
    ) -> None:
        created = await client.post("/customers", json={"email": "a@example.com"}, headers=headers)
        (event,) = (
            await client.get(f"/customers/{created.json()['id']}/audit", headers=headers)
        ).json()["items"]
        later = datetime.fromisoformat(event["occurred_at"]) + timedelta(days=1)

        response = await client.get(
            f"/customers/{created.json()['id']}/audit",
            params={"since": later.isoformat()},
            headers=headers,
        )
        unknown = await client.get(
            "/customers/987654321/audit", params={"since": later.isoformat()}, headers=headers
        )

        assert response.status_code == 200
        assert response.json()["items"] == []
        assert_problem(unknown, 404, "customer_not_found", "customer_id")

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
            ({"since": "2025-02-01T00:00:00"}, "since"),
            ({"until": "0001-01-01T00:00:00+05:00"}, "until"),
            ({"page_size": 1001}, "page_size"),
            ({"page": 0}, "page"),
            ({"customer_id": 0}, "customer_id"),
        ],
    )
    async def test_bad_parameters_are_a_422_on_the_parameter(
        self, client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any], field: str
    ) -> None:
        response = await client.get("/customers/audit-events", params=params, headers=headers)

        assert_problem(response, 422, "invalid_input", field)


# ------------------------------------------------------------------- OpenAPI and embedding


def test_the_gdpr_routes_document_their_models(memory_container: CustomersContainer) -> None:
    spec = create_app(memory_container).openapi()
    paths = spec["paths"]

    def success(path: str, method: str) -> dict[str, Any]:
        content: dict[str, Any] = paths[path][method]["responses"]["200"]["content"]
        return content

    export = success("/customers/{customer_id}/export", "get")
    assert export["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CustomerDataExport"
    }
    assert export["application/zip"]["schema"] == {"type": "string", "format": "binary"}
    assert success("/customers/{customer_id}/gdpr", "delete")["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErasureResult"
    }
    consent = paths["/customers/{customer_id}/consent/{consent_type}"]["post"]
    assert consent["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConsentRequest"
    }
    assert "consent_type_unknown" in consent["responses"]["422"]["description"]
    history = spec["components"]["schemas"]["ConsentHistoryResponse"]
    assert history["additionalProperties"] == {"$ref": "#/components/schemas/ConsentStateResponse"}
    assert history["required"] == ["events"]
    for path in ("/customers/{customer_id}/audit", "/customers/audit-events"):
        schema = success(path, "get")["application/json"]["schema"]
        assert schema["$ref"].endswith("PageResponse_AuditEventResponse_")
    assert "404" not in paths["/customers/audit-events"]["get"]["responses"]
    assert "404" in paths["/customers/{customer_id}/audit"]["get"]["responses"]


@pytest.fixture
async def router_client(
    memory_container: CustomersContainer, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    options = {"gdpr_service": memory_container.gdpr_service()} if request.param else {}
    async with mounted_router_client(memory_container.customer_service(), **options) as client:
        yield client


@pytest.mark.parametrize("router_client", [True], indirect=True)
async def test_a_router_given_a_gdpr_service_instance_serves_the_gdpr_routes(
    router_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await router_client.post("/customers", json=PROFILE, headers=headers)

    export = await router_client.get(f"/customers/{created.json()['id']}/export", headers=headers)
    audit = await router_client.get("/customers/audit-events", headers=headers)

    assert export.json()["customer"]["email"] == PROFILE["email"]
    assert audit.json()["total"] == 2


@pytest.mark.parametrize("router_client", [False], indirect=True)
async def test_a_router_without_a_gdpr_service_serves_no_gdpr_routes(
    router_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await router_client.post("/customers", json=PROFILE, headers=headers)

    export = await router_client.get(f"/customers/{created.json()['id']}/export", headers=headers)
    audit = await router_client.get("/customers/audit-events", headers=headers)

    assert export.status_code == 404
    assert export.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert export.json()["code"] == "not_found"
    # Without the route, the path is read as a customer id.
    assert_problem(audit, 422, "invalid_input", "customer_id")


def test_a_gdpr_service_of_the_wrong_type_is_refused(memory_container: CustomersContainer) -> None:
    tenancy = header_tenancy()

    with pytest.raises(TypeError, match="GDPRService"):
        create_customer_router(
            memory_container.customer_service(),
            gdpr_service=memory_container.customer_service(),  # type: ignore[arg-type]
            get_tenant_id=tenancy.tenant_id,
        )
