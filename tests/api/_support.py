"""Shared helpers of the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from linkbay_customers import CustomerService
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router, header_tenancy

PROBLEM = "application/problem+json"

ADDRESS: dict[str, Any] = {
    "type": "shipping",
    "address_line1": "Via Roma 123",
    "city": "Milano",
    "postal_code": "20100",
    "country": "IT",
    "is_default": True,
}

ORDER: dict[str, Any] = {
    "order_id": "ORD-1001",
    "total": "59.98",
    "currency": "EUR",
    "created_at": "2024-12-20T10:00:00Z",
    "items": [
        {"product_id": 123, "product_name": "Mug", "quantity": 2, "unit_price": "29.99"},
    ],
}


def tenant_headers(tenant: str, actor: str | None = "user_456") -> dict[str, str]:
    """The headers of a request made for ``tenant`` by ``actor``."""
    headers = {"X-Tenant-ID": tenant}
    if actor is not None:
        headers["X-Actor-ID"] = actor
    return headers


def assert_problem(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """Check an error response is a problem document of that status, code and field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["field"] == field
    assert body["type"] in (f"urn:linkbay-customers:problem:{code}", "about:blank")
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


@asynccontextmanager
async def mounted_router_client(
    service: CustomerService, **router_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that mounts only the customer router (header tenancy, problem
    handlers), built with ``router_options`` (``gdpr_service=...``, ``ai_service=...``)."""
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor, **router_options
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
