"""Shared helpers of the API tests."""

from __future__ import annotations

from typing import Any

import httpx

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
