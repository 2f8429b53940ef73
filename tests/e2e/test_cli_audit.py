"""``linkbay-customers audit verify`` and ``audit key`` against real databases."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from sqlalchemy import text

from linkbay_customers import CustomersContainer
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_sqlalchemy import create_engine
from tests.e2e.test_cli_gdpr_commands import cli, on_container


def _trail(url: str, tenant: str) -> list[int]:
    async def life(container: CustomersContainer) -> list[int]:
        service = container.customer_service()
        ids = []
        for n in range(2):
            customer = await service.create_customer(tenant, {"email": f"a{n}@example.com"})
            await service.update_customer(tenant, customer.id, {"first_name": "Ada"})
            ids.append(customer.id)
        return ids

    return on_container(url, life)


def _as_superuser(url: str, statement: str, **parameters: object) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement), parameters)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_an_intact_trail_exits_0_and_says_how_much_it_checked(database_url: str) -> None:
    tenant = new_tenant_id()
    _trail(database_url, tenant)

    code, out, err = cli("audit", "verify", "--tenant", tenant, "--database-url", database_url)

    assert (code, err) == (0, "")
    assert f"Audit trail of tenant {tenant} intact: checked 4 events in 2 chains." in out


def test_each_change_past_the_library_exits_1_naming_the_first_broken_event(
    database_url: str,
) -> None:
    tampering = {
        "update": "UPDATE customer_audit_events SET changed_fields = '[]'"
        " WHERE tenant_id = :t AND id = :e",
        "delete": "DELETE FROM customer_audit_events WHERE tenant_id = :t AND id = :e",
        "insert": "INSERT INTO customer_audit_events (tenant_id, id, customer_id, actor, action,"
        " occurred_at, changed_fields, details, chain_id, sequence, hash)"
        " SELECT tenant_id, id + 1000000, customer_id, actor, action, occurred_at,"
        " changed_fields, details, chain_id, sequence + 1, hash FROM customer_audit_events"
        " WHERE tenant_id = :t AND id = :e",
    }
    for kind, statement in tampering.items():
        tenant = new_tenant_id(kind)
        ids = _trail(database_url, tenant)

        async def events(
            container: CustomersContainer, tenant: str = tenant, customer: int = ids[0]
        ) -> list[int]:
            page = await container.gdpr_service().list_audit_events(tenant, customer_id=customer)
            return [e.id for e in page.items]

        created, updated = on_container(database_url, events)
        target = created if kind == "update" else updated
        _as_superuser(database_url, statement, t=tenant, e=target)

        code, out, err = cli("audit", "verify", "--tenant", tenant, "--database-url", database_url)

        assert code == 1, (kind, out, err)
        broken = target + 1000000 if kind == "insert" else created if kind == "update" else None
        if broken is not None:
            assert f"event {broken} (chain {ids[0]}" in err, (kind, err)
        else:
            assert f"chain {ids[0]}: its recorded tip is position 2" in err, (kind, err)


def test_audit_key_prints_a_new_256_bit_key_each_time() -> None:
    run = [sys.executable, "-m", "linkbay_customers_cli", "audit", "key"]
    first, second = (subprocess.run(run, capture_output=True, text=True, check=True) for _ in "ab")
    assert first.stdout != second.stdout
    for result in (first, second):
        key = result.stdout.strip()
        assert len(key) == 64
        int(key, 16)


def test_a_tenant_without_any_event_exits_1_rather_than_pass_for_intact(
    database_url: str,
) -> None:
    """A misspelt tenant in a scheduled check must not read as an intact trail."""
    tenant = new_tenant_id()
    _trail(database_url, tenant)

    code, out, err = cli(
        "audit", "verify", "--tenant", f"{tenant}-misspelt", "--database-url", database_url
    )

    assert code == 1
    assert "intact" not in out + err
    assert f"No audit trail for tenant {tenant}-misspelt" in " ".join(err.split())
