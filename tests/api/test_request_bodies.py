"""Request bodies: bounded in size (413 without reading the rest), JSON in UTF-8 only,
and preferences bounded on what is stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from linkbay_customers import CustomersContainer
from linkbay_customers_fastapi import (
    DEFAULT_MAX_BODY_SIZE,
    add_problem_handlers,
    create_app,
    create_customer_router,
    header_tenancy,
)
from tests.api._support import assert_problem

CHUNK = 64 * 1024


async def _call(app: FastAPI, headers: list[tuple[bytes, bytes]], chunks: int) -> dict[str, Any]:
    """POST /customers straight through ASGI, counting the body chunks the app asks for."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        more = pulled < chunks
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/customers",
        "raw_path": b"/customers",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-tenant-id", b"acme"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "body": json.loads(body), "pulled": pulled}


class TestBodySize:
    async def test_a_declared_length_over_the_limit_is_a_413_before_any_byte_is_read(
        self, memory_container: CustomersContainer
    ) -> None:
        declared = str(300 * 1024 * 1024).encode()
        answer = await _call(
            create_app(memory_container),
            [(b"content-type", b"application/json"), (b"content-length", declared)],
            chunks=4800,
        )

        assert answer["status"] == 413
        assert answer["body"]["code"] == "body_too_large"
        assert answer["body"]["field"] == "body"
        assert answer["body"]["detail"] == (
            f"the request body must be at most {DEFAULT_MAX_BODY_SIZE} bytes"
        )
        assert answer["pulled"] == 0

    async def test_a_chunked_body_is_read_only_up_to_the_limit(
        self, memory_container: CustomersContainer
    ) -> None:
        answer = await _call(
            create_app(memory_container),
            [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
            chunks=4800,  # 300 MiB
        )

        assert answer["status"] == 413
        assert answer["body"]["code"] == "body_too_large"
        assert answer["pulled"] == DEFAULT_MAX_BODY_SIZE // CHUNK + 1

    async def test_a_body_within_the_limit_is_served(
        self, memory_client: httpx.AsyncClient
    ) -> None:
        # Within 1 MiB: a near-maximal customer (large preferences, fifty tags).
        data = {
            "email": "big@example.com",
            "preferences": {"notes": "x" * 16_000},
            "tags": [f"t{i}" for i in range(50)],
        }
        created = await memory_client.post("/customers", json=data, headers={"X-Tenant-ID": "a"})

        assert created.status_code == 201, created.text

    async def test_the_limit_is_configurable_on_the_router_and_the_app(
        self, memory_container: CustomersContainer
    ) -> None:
        service = memory_container.customer_service()
        router_app = FastAPI()
        add_problem_handlers(router_app)
        tenancy = header_tenancy()
        router_app.include_router(
            create_customer_router(service, get_tenant_id=tenancy.tenant_id, max_body_size=100)
        )
        body = {"email": "a@example.com", "first_name": "x" * 90}

        for tenant, app in (
            ("r", router_app),
            ("a", create_app(memory_container, max_body_size=100)),
        ):
            headers = {"X-Tenant-ID": tenant}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                small = await client.post("/customers", json={"email": "s@x.com"}, headers=headers)
                large = await client.post("/customers", json=body, headers=headers)
            assert small.status_code == 201, small.text
            body_problem = assert_problem(large, 413, "body_too_large", "body")
            assert body_problem["detail"] == "the request body must be at most 100 bytes"

        unlimited = create_app(memory_container, max_body_size=None)
        transport = httpx.ASGITransport(app=unlimited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            huge = {"email": "h@x.com", "first_name": "y" * 100, "padding": "z" * 2_000_000}
            answer = await client.post("/customers", json=huge, headers={"X-Tenant-ID": "u"})
            utf16 = await client.post(
                "/customers",
                content=json.dumps({"email": "u@x.com"}).encode("utf-16"),
                headers={"X-Tenant-ID": "u", "Content-Type": "application/json"},
            )
        # Read whole, then refused by the schema for its unknown field.
        assert_problem(answer, 422, "invalid_input", "padding")
        assert_problem(utf16, 422, "invalid_input", "body")

    @pytest.mark.parametrize("size", [0, -1, True])
    def test_a_limit_that_is_not_a_positive_size_is_refused(
        self, memory_container: CustomersContainer, size: int
    ) -> None:
        with pytest.raises(ValueError, match="max_body_size"):
            create_app(memory_container, max_body_size=size)


class TestEncoding:
    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
    async def test_a_body_that_is_not_utf8_is_refused(
        self, memory_client: httpx.AsyncClient, encoding: str
    ) -> None:
        content = json.dumps({"email": "u16@example.com"}).encode(encoding)
        response = await memory_client.post(
            "/customers",
            content=content,
            headers={"X-Tenant-ID": "acme", "Content-Type": "application/json"},
        )
        listed = await memory_client.get("/customers", headers={"X-Tenant-ID": "acme"})

        body = assert_problem(response, 422, "invalid_input", "body")
        assert body["errors"][0]["message"] == "must be JSON encoded as UTF-8"
        assert listed.json()["total"] == 0

    async def test_utf8_with_non_ascii_text_is_served(
        self, memory_client: httpx.AsyncClient
    ) -> None:
        content = json.dumps({"email": "e@example.com", "first_name": "Élodie"}, ensure_ascii=False)
        response = await memory_client.post(
            "/customers",
            content=content.encode("utf-8"),
            headers={"X-Tenant-ID": "acme", "Content-Type": "application/json; charset=utf-8"},
        )

        assert response.status_code == 201
        assert response.json()["first_name"] == "Élodie"


@pytest.fixture
async def customer_url(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post("/customers", json={"email": "p@example.com"}, headers=headers)
    return f"/customers/{created.json()['id']}"


class TestPreferencesBound:
    async def test_patches_cannot_grow_the_stored_preferences_past_16_kib(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_url: str
    ) -> None:
        answers = [
            await client.patch(
                customer_url, json={"preferences": {f"k{i}": "v" * 8000}}, headers=headers
            )
            for i in range(3)
        ]
        stored = (await client.get(customer_url, headers=headers)).json()["preferences"]

        assert [a.status_code for a in answers[:2]] == [200, 200]
        body = assert_problem(answers[2], 422, "invalid_input", "preferences")
        assert "at most 16384 bytes" in body["detail"]
        assert sorted(stored) == ["k0", "k1"]
        assert len(json.dumps(stored, ensure_ascii=False).encode()) <= 16_384

    async def test_removing_keys_keeps_a_document_within_the_bound(
        self, client: httpx.AsyncClient, headers: dict[str, str], customer_url: str
    ) -> None:
        await client.patch(customer_url, json={"preferences": {"a": "v" * 8000}}, headers=headers)
        swapped = await client.patch(
            customer_url, json={"preferences": {"a": None, "b": "w" * 8000}}, headers=headers
        )

        assert swapped.status_code == 200, swapped.text
        assert list(swapped.json()["preferences"]) == ["b"]

    async def test_a_merge_cannot_grow_the_target_preferences_past_16_kib(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        ids = []
        for name in ("a", "b"):
            created = await client.post(
                "/customers",
                json={"email": f"{name}@example.com", "preferences": {name: "v" * 9000}},
                headers=headers,
            )
            ids.append(created.json()["id"])
        merged = await client.post(
            "/customers/merge",
            json={
                "source_customer_id": ids[0],
                "target_customer_id": ids[1],
                "merge_preferences": True,
            },
            headers=headers,
        )
        source = await client.get(f"/customers/{ids[0]}", headers=headers)

        assert_problem(merged, 422, "invalid_input", "preferences")
        assert source.json()["id"] == ids[0]  # nothing was merged
