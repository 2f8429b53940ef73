"""The ``score`` command, run through typer's CliRunner on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from linkbay_customers import CustomersContainer, bootstrap
from linkbay_customers.domain import Customer
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_cli._app import app

T = TypeVar("T")

runner = CliRunner(env={"LINKBAY_DATABASE_URL": None, "LINKBAY_JWT_SECRET": None})


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def on_container(url: str, use: Callable[[CustomersContainer], Awaitable[T]]) -> T:
    async def run() -> T:
        container = bootstrap(url)
        try:
            return await use(container)
        finally:
            await container.storage().close()

    return asyncio.run(run())


def order(order_id: str, product: str, total: str, days_ago: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "total": total,
        "currency": "EUR",
        "created_at": datetime.now(UTC) - timedelta(days=days_ago),
        "items": [
            {
                "product_id": product,
                "product_name": product.title(),
                "quantity": 1,
                "unit_price": total,
            }
        ],
    }


def fill(url: str, tenant: str) -> list[int]:
    """Five customers: two recent buyers, a lapsed one, a big spender and one with no order."""

    async def create(container: CustomersContainer) -> list[int]:
        service = container.customer_service()
        ids = []
        for n, orders in enumerate(
            [
                [order("A1", "bike", "900", 40), order("A2", "bell", "15", 5)],
                [order("B1", "bike", "850", 20)],
                [order("C1", "tea", "12", 300)],
                [order("D1", "bike", "1200", 10), order("D2", "light", "40", 3)],
                [],
            ]
        ):
            customer = await service.create_customer(tenant, {"email": f"c{n}@example.com"})
            for body in orders:
                await service.record_order(tenant, customer.id, body)
            ids.append(customer.id)
        return ids

    return on_container(url, create)


def create_customer(url: str, tenant: str, email: str) -> int:
    async def create(container: CustomersContainer) -> int:
        created = await container.customer_service().create_customer(tenant, {"email": email})
        return created.id

    return on_container(url, create)


def customer(url: str, tenant: str, customer_id: int) -> Customer:
    async def get(container: CustomersContainer) -> Customer:
        return await container.customer_service().get_customer(tenant, customer_id)

    return on_container(url, get)


def row(out: str, label: str) -> str:
    """The value the summary table shows for ``label``."""
    found = re.search(rf"│ {re.escape(label)}\s*│\s*([^│]*?)\s*│", out)
    assert found, f"no row {label!r} in:\n{out}"
    return found.group(1)


def test_every_customer_of_the_tenant_is_scored_and_summarized(database_url: str) -> None:
    tenant, other = new_tenant_id(), new_tenant_id()
    ids = fill(database_url, tenant)
    elsewhere = create_customer(database_url, other, "x@example.com")

    code, out, err = cli("score", "--tenant", tenant, "--database-url", database_url)

    assert code == 0, out + err
    assert re.search(rf"Scoring {tenant} .* 5/5", out), out
    assert f"Scored tenant {tenant}" in out
    assert row(out, "customers") == "5"
    assert row(out, "scored") == "5"
    assert row(out, "skipped for consent") == "0"
    segments = {
        m.group(1): int(m.group(2)) for m in re.finditer(r"│ segment (\w+)\s*│\s*(\d+)\s*│", out)
    }
    assert sum(segments.values()) == 5
    assert segments["new"] >= 1
    buckets = [row(out, f"churn risk {b}") for b in ("0.0-0.2", "0.2-0.4", "0.4-0.6")]
    buckets += [row(out, f"churn risk {b}") for b in ("0.6-0.8", "0.8-1.0")]
    assert sum(int(b) for b in buckets) == 5
    assert float(row(out, "predicted CLV, 12 months").replace(",", "")) > 0
    assert row(out, "source heuristic") == "5"
    assert err == ""
    stored = customer(database_url, tenant, ids[3])
    assert stored.scored_at is not None
    assert stored.score_source == "heuristic"
    assert stored.embedding is not None
    assert customer(database_url, other, elsewhere).scored_at is None


def test_a_shorter_horizon_predicts_less(sqlite_url: str) -> None:
    tenant = new_tenant_id()
    fill(sqlite_url, tenant)

    _, year, _ = cli("score", "-t", tenant, "--database-url", sqlite_url)
    code, quarter, err = cli("score", "-t", tenant, "--months", "3", "--database-url", sqlite_url)

    assert code == 0, quarter + err
    three = float(row(quarter, "predicted CLV, 3 months").replace(",", ""))
    twelve = float(row(year, "predicted CLV, 12 months").replace(",", ""))
    assert 0 < three < twelve


def test_customers_who_withdrew_analytics_consent_are_skipped(sqlite_url: str) -> None:
    tenant = new_tenant_id()
    ids = fill(sqlite_url, tenant)
    on_container(
        sqlite_url,
        lambda c: c.gdpr_service().update_consent(tenant, ids[0], "analytics", False),
    )

    code, out, err = cli("score", "-t", tenant, "--database-url", sqlite_url)

    assert code == 0, out + err
    assert row(out, "customers") == "5"
    assert row(out, "scored") == "4"
    assert row(out, "skipped for consent") == "1"
    assert row(out, "source heuristic") == "4"
    assert customer(sqlite_url, tenant, ids[0]).scored_at is None


def test_an_empty_tenant_has_nothing_to_score(sqlite_url: str) -> None:
    tenant = new_tenant_id()

    code, out, err = cli("score", "-t", tenant, "--database-url", sqlite_url)

    assert code == 0, out + err
    assert out.strip() == f"Tenant {tenant} has no customers: nothing to score."


@pytest.mark.parametrize("months", ["0", "121", "soon"])
def test_months_are_bounded(months: str) -> None:
    code, _, err = cli("score", "-t", "t1", "--months", months, "--database-url", "memory://")

    assert code == 2
    assert "--months" in err


def test_the_tenant_is_required() -> None:
    code, _, err = cli("score", "--database-url", "memory://")

    assert code == 2
    assert "--tenant" in err


def test_an_invalid_tenant_is_one_line() -> None:
    code, out, err = cli("score", "-t", "not a tenant", "--database-url", "memory://")

    assert code == 1
    assert out == ""
    assert err.startswith("Error: tenant_id:")
    assert len(err.strip().splitlines()) == 1


def test_a_database_without_the_schema_says_how_to_fix_it(empty_database_url: str) -> None:
    code, out, err = cli("score", "-t", "t1", "--database-url", empty_database_url)

    assert code == 1
    assert "run linkbay-customers migrate" in err
    assert "Traceback" not in out + err
