"""Errors come back as problem+json with a stable code and field; no input makes a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from linkbay_customers import (
    CustomerService,
    HeuristicIntelligence,
    StorageError,
    StorageRejected,
)
from linkbay_customers.domain import MAX_ID
from linkbay_customers.ports import UnitOfWork
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import (
    add_problem_handlers,
    create_customer_router,
    header_tenancy,
)
from linkbay_customers_memory import InMemoryStorage
from tests.api._support import ADDRESS, ORDER, PROBLEM, assert_problem, tenant_headers

JSON = {"content-type": "application/json"}


def _app(service: CustomerService | Any, **options: Any) -> FastAPI:
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor, **options
        )
    )
    return app


async def _client(app: FastAPI, *, raise_errors: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# --------------------------------------------------------------------- hostile inputs


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def bad(
    name: str, method: str, url: str, status: int, code: str, field: str | None, **options: Any
) -> Any:
    return pytest.param(method, url, options, status, code, field, id=name)


INVALID = "invalid_input"
BAD_REQUESTS = [
    bad("zero id", "GET", "/customers/0", 422, INVALID, "customer_id"),
    bad("negative id", "GET", "/customers/-5", 422, INVALID, "customer_id"),
    bad("id past MAX_ID", "GET", f"/customers/{MAX_ID + 1}", 422, INVALID, "customer_id"),
    bad("huge id", "DELETE", f"/customers/{10**40}", 422, INVALID, "customer_id"),
    bad("MAX_ID", "GET", f"/customers/{MAX_ID}", 404, "customer_not_found", "customer_id"),
    bad(
        "MAX_ID address",
        "DELETE",
        f"/customers/{MAX_ID}/addresses/{MAX_ID}",
        404,
        "customer_not_found",
        "customer_id",
    ),
    bad("text id", "GET", "/customers/abc/notes", 422, INVALID, "customer_id"),
    bad("NUL id", "GET", "/customers/%00", 422, INVALID, "customer_id"),
    bad("bad UTF-8 id", "GET", "/customers/%ED%A0%80", 422, INVALID, "customer_id"),
    bad(
        "huge address id",
        "PATCH",
        f"/customers/1/addresses/{10**30}",
        422,
        INVALID,
        "address_id",
        json={"city": "x"},
    ),
    bad("negative page", "GET", "/customers?page=-1", 422, INVALID, "page"),
    bad("huge page", "GET", f"/customers?page={10**30}", 422, INVALID, "page"),
    bad("page size 0", "GET", "/customers/1/orders?page_size=0", 422, INVALID, "page_size"),
    bad("NUL filter", "GET", "/customers?email_contains=a%00", 422, INVALID, "email_contains"),
    bad("NUL tag", "GET", "/customers?tags=a%00b", 422, INVALID, "tags.0"),
    bad("NaN money", "GET", "/customers?min_total_spent=NaN", 422, INVALID, "min_total_spent"),
    bad("inf money", "GET", "/customers?max_total_spent=1e400", 422, INVALID, "max_total_spent"),
    bad(
        "fine money", "GET", "/customers?min_total_spent=0.000001", 422, INVALID, "min_total_spent"
    ),
    bad("unknown sort", "GET", "/customers?sort=email", 422, INVALID, "sort"),
    bad(
        "time past 9999 in UTC",
        "GET",
        "/customers?created_before=9999-12-31T23:59:59-23:59",
        422,
        INVALID,
        "created_before",
    ),
    bad("NUL query", "GET", "/customers/search?q=%00", 422, INVALID, "q"),
    bad("long query", "GET", f"/customers/search?q={'x' * 101}", 422, INVALID, "q"),
    bad("search limit", "GET", "/customers/search?q=a&limit=0", 422, INVALID, "limit"),
    bad("broken JSON", "POST", "/customers", 422, INVALID, "body", content=b"{", headers=JSON),
    bad("no body", "POST", "/customers", 422, INVALID, "body"),
    bad("array body", "POST", "/customers", 422, INVALID, "body", json=[]),
    bad(
        "text body",
        "POST",
        "/customers",
        422,
        INVALID,
        "body",
        content=b'{"email": "a@example.com"}',
        headers={"content-type": "text/plain"},
    ),
    bad(
        "NUL in a string",
        "POST",
        "/customers",
        422,
        INVALID,
        "first_name",
        json={"email": "a@example.com", "first_name": "a\x00b"},
    ),
    bad(
        "lone surrogate",
        "POST",
        "/customers",
        422,
        INVALID,
        "last_name",
        content=b'{"email": "a@example.com", "last_name": "\\ud800"}',
        headers=JSON,
    ),
    bad(
        "deep preferences",
        "POST",
        "/customers",
        422,
        INVALID,
        "preferences",
        json={"email": "a@example.com", "preferences": {"a": _nested(20)}},
    ),
    bad(
        "non-finite preference",
        "POST",
        "/customers",
        422,
        INVALID,
        "preferences",
        content=b'{"email": "a@example.com", "preferences": {"x": 1e999}}',
        headers=JSON,
    ),
    bad(
        "huge JSON integer",
        "POST",
        "/customers",
        400,
        "bad_request",
        None,
        content=b'{"email": "a@example.com", "preferences": {"n": ' + b"9" * 5000 + b"}}",
        headers=JSON,
    ),
    bad(
        "deeply nested JSON",
        "POST",
        "/customers",
        400,
        "bad_request",
        None,
        content=b"[" * 100_000 + b"]" * 100_000,
        headers=JSON,
    ),
    bad(
        "merge id past MAX_ID",
        "POST",
        "/customers/merge",
        422,
        INVALID,
        "source_customer_id",
        json={"source_customer_id": MAX_ID + 1, "target_customer_id": 1},
    ),
    bad(
        "huge quantity",
        "POST",
        "/customers/1/orders",
        422,
        INVALID,
        "items.0.quantity",
        json={**ORDER, "items": [{**ORDER["items"][0], "quantity": 10**20}]},
    ),
    bad(
        "huge total",
        "POST",
        "/customers/1/orders",
        422,
        INVALID,
        "total",
        json={**ORDER, "total": 1e300},
    ),
    bad(
        "bad address type",
        "POST",
        "/customers/1/addresses",
        422,
        INVALID,
        "type",
        json={**ADDRESS, "type": "moon"},
    ),
    bad("unknown route", "GET", "/customers/1/unknown", 404, "not_found", None),
    bad("wrong method", "PUT", "/customers", 405, "method_not_allowed", None),
]


@pytest.mark.parametrize(("method", "url", "options", "status", "code", "field"), BAD_REQUESTS)
async def test_hostile_input_is_a_4xx_problem(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    method: str,
    url: str,
    options: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    extra_headers = options.get("headers", {})
    body = {key: value for key, value in options.items() if key != "headers"}

    response = await client.request(method, url, headers={**headers, **extra_headers}, **body)

    assert_problem(response, status, code, field)


async def test_a_validation_problem_lists_every_field(memory_client: httpx.AsyncClient) -> None:
    response = await memory_client.post(
        "/customers/1/orders",
        json={"order_id": "", "total": "abc", "items": [{"product_id": 1}]},
        headers=tenant_headers("t1"),
    )

    body = assert_problem(response, 422, "invalid_input", "order_id")
    assert [e["field"] for e in body["errors"]] == [
        "order_id",
        "total",
        "items.0.product_name",
        "items.0.quantity",
        "items.0.unit_price",
    ]
    assert all(set(e) == {"field", "message", "type"} for e in body["errors"])
    assert body["detail"].startswith("order_id: ")


async def test_a_field_named_with_a_lone_surrogate_is_reported_readably(
    memory_client: httpx.AsyncClient,
) -> None:
    response = await memory_client.patch(
        "/customers/1/addresses/1",
        content=b'{"city": "x", "\\udc80": 1}',
        headers={**tenant_headers("t1"), **JSON},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "invalid_input"


async def test_a_405_keeps_the_allow_header(memory_client: httpx.AsyncClient) -> None:
    response = await memory_client.put("/customers/1", headers=tenant_headers("t1"))

    assert_problem(response, 405, "method_not_allowed")
    # Starlette names the methods of the first route matching the path.
    assert response.headers["allow"] == "GET"


# ------------------------------------------------------------- tenant before storage


class SpyStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: list[str] = []

    def unit_of_work(self, tenant_id: str) -> Any:
        self.tenants.append(tenant_id)
        return super().unit_of_work(tenant_id)


@pytest.fixture
def spy() -> SpyStorage:
    return SpyStorage()


@pytest.fixture
async def spied_client(spy: SpyStorage) -> AsyncIterator[httpx.AsyncClient]:
    service = CustomerService(spy.unit_of_work, FixedClock(), HeuristicIntelligence())
    async with await _client(_app(service)) as client:
        yield client


REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/customers", {"email": "a@example.com"}),
    ("GET", "/customers", None),
    ("GET", "/customers/search?q=a", None),
    ("POST", "/customers/merge", {"source_customer_id": 1, "target_customer_id": 2}),
    ("GET", "/customers/1", None),
    ("PATCH", "/customers/1", {"first_name": "x"}),
    ("DELETE", "/customers/1", None),
    ("POST", "/customers/1/restore", None),
    ("POST", "/customers/1/addresses", ADDRESS),
    ("GET", "/customers/1/addresses", None),
    ("PATCH", "/customers/1/addresses/1", {"city": "x"}),
    ("DELETE", "/customers/1/addresses/1", None),
    ("POST", "/customers/1/notes", {"note": "n"}),
    ("GET", "/customers/1/notes", None),
    ("POST", "/customers/1/orders", ORDER),
    ("GET", "/customers/1/orders", None),
]


@pytest.mark.parametrize(
    "tenant_header",
    [None, "", "two words", "x" * 65, "tab\there", "del\x7f"],
    ids=["missing", "empty", "space", "too long", "tab", "control"],
)
async def test_no_valid_tenant_is_a_400_that_never_reaches_the_storage(
    spied_client: httpx.AsyncClient, spy: SpyStorage, tenant_header: str | None
) -> None:
    headers = {} if tenant_header is None else {"X-Tenant-ID": tenant_header}

    for method, url, body in REQUESTS:
        response = await spied_client.request(method, url, json=body, headers=headers)

        problem = assert_problem(response, 400, "tenant_required", "X-Tenant-ID")
        assert "X-Tenant-ID" in problem["detail"]
    assert spy.tenants == []


async def test_the_tenant_is_checked_before_the_body(
    spied_client: httpx.AsyncClient, spy: SpyStorage
) -> None:
    response = await spied_client.post("/customers", json={"email": 42})

    assert_problem(response, 400, "tenant_required", "X-Tenant-ID")
    assert spy.tenants == []


async def test_an_invalid_actor_header_is_a_400(
    spied_client: httpx.AsyncClient, spy: SpyStorage
) -> None:
    response = await spied_client.get(
        "/customers", headers={"X-Tenant-ID": "t1", "X-Actor-ID": "u" * 256}
    )

    assert_problem(response, 400, "invalid_header", "X-Actor-ID")
    assert spy.tenants == []


async def test_a_latin_1_tenant_header_is_a_tenant_like_any_other(
    spied_client: httpx.AsyncClient, spy: SpyStorage
) -> None:
    response = await spied_client.get("/customers", headers={b"X-Tenant-ID": b"caf\xe9"})

    assert response.status_code == 200
    assert spy.tenants == ["caf\xe9"]


async def test_a_host_dependency_returning_no_valid_tenant_is_a_400() -> None:
    def tenant_of_request() -> str:
        return "not valid"

    service = CustomerService(InMemoryStorage().unit_of_work, FixedClock(), HeuristicIntelligence())
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(create_customer_router(service, get_tenant_id=tenant_of_request))

    async with await _client(app) as client:
        response = await client.get("/customers")

    assert_problem(response, 400, "tenant_required", "tenant_id")


# ------------------------------------------------------------------- storage failures


class BrokenUnitOfWork:
    def __init__(self, error: StorageError) -> None:
        self.error = error

    async def __aenter__(self) -> UnitOfWork:
        raise self.error

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


async def test_a_storage_failure_is_a_503_that_does_not_leak_the_driver_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await _response_to(
        StorageError("connect failed: password authentication failed for user 'admin'"), caplog
    )

    body = assert_problem(response, 503, "storage_error")
    assert "admin" not in response.text
    assert body["title"] == "Storage unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert [(r.levelname, "admin" in r.getMessage()) for r in caplog.records] == [("WARNING", True)]


async def test_a_storage_refusal_is_a_500_that_says_retrying_will_not_help(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await _response_to(
        StorageRejected(
            "updating customers failed: NOT NULL constraint failed: customers.company_name"
        ),
        caplog,
    )

    body = assert_problem(response, 500, "storage_rejected")
    assert "retrying will not help" in body["detail"]
    assert "Retry-After" not in response.headers
    assert "company_name" not in response.text
    assert [(r.levelname, "company_name" in r.getMessage()) for r in caplog.records] == [
        ("ERROR", True)
    ]


async def _response_to(error: StorageError, caplog: pytest.LogCaptureFixture) -> httpx.Response:
    """The answer to a request whose unit of work fails with ``error``."""
    service = CustomerService(
        lambda tenant_id: BrokenUnitOfWork(error),  # type: ignore[arg-type, return-value]
        FixedClock(),
        HeuristicIntelligence(),
    )
    with caplog.at_level(logging.WARNING, logger="linkbay_customers_fastapi"):
        async with await _client(_app(service)) as client:
            return await client.get("/customers/1", headers=tenant_headers("t1"))


async def test_an_unexpected_error_is_a_500_problem_without_details() -> None:
    def broken_service() -> CustomerService:
        raise RuntimeError("secret internals")

    async with await _client(_app(broken_service), raise_errors=False) as client:
        response = await client.get("/customers", headers=tenant_headers("t1"))

    assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text


async def test_problem_handlers_can_leave_framework_errors_to_the_host() -> None:
    service = CustomerService(InMemoryStorage().unit_of_work, FixedClock(), HeuristicIntelligence())
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app, framework_errors=False)
    app.include_router(create_customer_router(service, get_tenant_id=tenancy.tenant_id))

    async with await _client(app) as client:
        library = await client.get("/customers/5", headers=tenant_headers("t1"))
        framework = await client.get("/customers/abc", headers=tenant_headers("t1"))

    assert_problem(library, 404, "customer_not_found", "customer_id")
    assert framework.status_code == 422
    assert framework.headers["content-type"] == "application/json"
    assert framework.json()["detail"][0]["loc"] == ["path", "customer_id"]
