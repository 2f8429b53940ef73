"""Readiness as the application role: row security on, privileges as granted."""

from __future__ import annotations

import httpx

import linkbay_customers
from linkbay_customers import bootstrap
from linkbay_customers_fastapi import create_app


async def test_the_application_role_is_ready_over_the_migrated_schema(app_url: str) -> None:
    container = bootstrap(app_url)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ready = await client.get("/health/ready")
    finally:
        await container.storage().close()

    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "version": linkbay_customers.__version__}
