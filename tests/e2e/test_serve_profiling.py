"""``--profiling opt-in``: the served API, and ``score``, profile only who opted in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from linkbay_customers import bootstrap
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_cli._app import app
from linkbay_customers_cli._serve import worker_app
from tests.e2e.test_serve import serving

ORDER = {"total": "42.50", "currency": "EUR"}


async def segment_after_an_order(http: httpx.AsyncClient, email: str, *, opt_in: bool) -> Any:
    """Create a customer, opt them in to analytics if asked, record an order; the
    customer's stored segment."""
    created = await http.post("/customers", json={"email": email})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    assert created.json()["segment"] is None
    if opt_in:
        consent = await http.post(
            f"/customers/{customer_id}/consent/analytics", json={"consented": True}
        )
        assert consent.status_code == 200, consent.text
    order = await http.post(f"/customers/{customer_id}/orders", json={**ORDER, "order_id": email})
    assert order.status_code == 201, order.text
    return (await http.get(f"/customers/{customer_id}")).json()["segment"]


async def test_serve_opt_in_segments_only_customers_who_opted_in(tmp_path: Path) -> None:
    with serving(tmp_path, "--database-url", "memory://", "--profiling", "opt-in") as server:
        headers = {"X-Tenant-ID": "acme", "X-Actor-ID": "e2e"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
            assert await segment_after_an_order(http, "anna@example.com", opt_in=False) is None
            assert await segment_after_an_order(http, "bruno@example.com", opt_in=True)
        assert server.stop() == 0
    assert "profiling: opt-in" in server.output()


async def test_the_worker_app_factory_reads_the_profiling_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINKBAY_DATABASE_URL", "memory://")
    monkeypatch.delenv("LINKBAY_JWT_SECRET", raising=False)
    monkeypatch.setenv("LINKBAY_PROFILING", "opt-in")
    transport = httpx.ASGITransport(app=worker_app())
    headers = {"X-Tenant-ID": "acme"}
    async with httpx.AsyncClient(transport=transport, base_url="http://w", headers=headers) as http:
        assert await segment_after_an_order(http, "anna@example.com", opt_in=False) is None
        assert await segment_after_an_order(http, "bruno@example.com", opt_in=True)


@pytest.mark.parametrize("command", ["serve", "score", "import", "demo"])
def test_the_profiling_option_is_documented_within_80_columns(command: str) -> None:
    runner = CliRunner(env={"COLUMNS": "80", "LINKBAY_PROFILING": None})
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("--profiling" in line and "opt-out|opt-in" in line for line in lines)


def test_score_opt_in_clears_who_never_opted_in(sqlite_url: str) -> None:
    tenant = new_tenant_id("score")

    async def fill() -> tuple[int, int]:
        container = bootstrap(sqlite_url)  # the default policy: both get a segment
        service, gdpr = container.customer_service(), container.gdpr_service()
        ids = []
        for email in ("anna@example.com", "bruno@example.com"):
            customer = await service.create_customer(tenant, {"email": email})
            await service.record_order(tenant, customer.id, {**ORDER, "order_id": email})
            ids.append(customer.id)
        await gdpr.update_consent(tenant, ids[1], "analytics", True)
        await container.storage().close()
        return ids[0], ids[1]

    async def stored(customer_id: int) -> tuple[str | None, float | None]:
        container = bootstrap(sqlite_url)
        customer = await container.customer_service().get_customer(tenant, customer_id)
        await container.storage().close()
        return customer.segment, customer.churn_risk_score

    anna, bruno = asyncio.run(fill())
    runner = CliRunner(env={"LINKBAY_DATABASE_URL": None, "LINKBAY_PROFILING": None})
    args = ["score", "--tenant", tenant, "--database-url", sqlite_url, "--profiling", "opt-in"]
    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    assert asyncio.run(stored(anna)) == (None, None)
    segment, churn = asyncio.run(stored(bruno))
    assert segment is not None
    assert churn is not None
