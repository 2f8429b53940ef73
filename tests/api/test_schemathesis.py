"""Property-based tests from the OpenAPI document: no 5xx, no response the schema denies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from linkbay_customers import CustomersContainer, bootstrap
from linkbay_customers_fastapi import create_app
from tests.api._support import ADDRESS, ORDER

TENANT = "fuzz-tenant"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


async def _populate(container: CustomersContainer) -> None:
    # Generated ids favour small values, so customers 1 to 4 give the deeper paths data.
    service, gdpr = container.customer_service(), container.gdpr_service()
    for n in range(4):
        customer = await service.create_customer(
            TENANT, {"email": f"seed{n}@example.com", "tags": ["vip"]}, actor="seed"
        )
        await service.add_address(TENANT, customer.id, ADDRESS)
        await service.add_note(TENANT, customer.id, {"note": "seeded"}, actor="seed")
        await service.record_order(TENANT, customer.id, {**ORDER, "order_id": f"seed-{n}"})
        await gdpr.update_consent(
            TENANT,
            customer.id,
            "marketing",
            True,
            metadata={"source": "seed", "ip_address": "192.0.2.1"},
        )
    # Scored, so similar customers and recommendations have data; the last customer withdrew
    # analytics consent, so the profiling routes answer 409 too.
    await gdpr.update_consent(TENANT, customer.id, "analytics", False)
    await container.ai_service().score_tenant(TENANT)


@pytest.fixture(scope="module")
def api_schema() -> Any:
    container = bootstrap("memory://")
    asyncio.run(_populate(container))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(container))
    schema.config.generation.update(max_examples=40, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_the_api_honours_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate(headers={"X-Tenant-ID": TENANT}, checks=CHECKS)

    assert response.status_code < 500
