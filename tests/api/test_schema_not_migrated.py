"""An app over a database never migrated says so, and how to migrate it: no retry cures it."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from sqlalchemy import Column, String

from linkbay_customers import bootstrap
from linkbay_customers_fastapi import create_app
from tests.api._support import assert_problem, tenant_headers


async def test_an_app_over_an_empty_database_answers_schema_not_migrated_without_retry_after(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    container = bootstrap(empty_database_url)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            with caplog.at_level(logging.ERROR):
                created = await client.post(
                    "/customers", json={"email": "a@example.com"}, headers=tenant_headers("acme")
                )
                listed = await client.get("/customers", headers=tenant_headers("acme"))
    finally:
        await container.storage().close()

    for response in (created, listed):
        body = assert_problem(response, 500, "schema_not_migrated")
        assert body["title"] == "Database schema not migrated"
        assert "its schema was never migrated" in body["detail"]
        assert "run linkbay-customers migrate --database-url URL" in body["detail"]
        assert "Retry-After" not in response.headers
    assert "no table 'customers'" in listed.json()["detail"]
    assert any("never migrated" in record.getMessage() for record in caplog.records)


async def test_readiness_fails_over_a_database_never_migrated_and_liveness_does_not(
    empty_database_url: str,
) -> None:
    """A readiness probe must not send traffic to an app whose every request would fail."""
    container = bootstrap(empty_database_url)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            live = await client.get("/health")
            ready = await client.get("/health/ready")
    finally:
        await container.storage().close()

    assert live.status_code == 200
    body = assert_problem(ready, 500, "schema_not_migrated")
    assert "run linkbay-customers migrate --database-url URL" in body["detail"]
    assert "Retry-After" not in ready.headers


async def test_readiness_fails_over_a_schema_missing_a_column_the_models_use(
    database_url: str,
) -> None:
    """An older schema (a column added by a later revision missing) is not ready either."""
    container = bootstrap(database_url)
    storage = container.storage()
    transport = httpx.ASGITransport(app=create_app(container))
    extra = f"probe_{uuid.uuid4().hex[:8]}"
    table = storage.models.customer.__table__
    column = Column(extra, String, nullable=True)
    table.append_column(column)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ready = await client.get("/health/ready")
    finally:
        table._columns.remove(column)
        await storage.close()

    body = assert_problem(ready, 500, "schema_not_migrated")
    assert extra in body["detail"]
