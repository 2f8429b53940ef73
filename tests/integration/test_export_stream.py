"""The streamed JSON export: the same document as the in-memory export, on every
storage, and on SQLite a customer with 20,000 notes exported through the API in a
fraction of the document's size in memory."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from linkbay_customers import CustomerNotFound, CustomersContainer, InvalidInput, bootstrap
from linkbay_customers.schemas import CustomerDataExport
from linkbay_customers.testing import T0, FixedClock, new_tenant_id
from linkbay_customers_fastapi import create_app
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from tests.api._support import ADDRESS


def _order(number: int, days: int) -> dict[str, Any]:
    return {
        "order_id": f"ORD-{number}",
        "total": "10.00",
        "currency": "EUR",
        "created_at": (T0 - timedelta(days=days)).isoformat(),
        "items": [{"product_id": "p1", "product_name": "Mug", "quantity": 1, "unit_price": "10"}],
    }


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest) -> str:
    kind = request.param
    return "memory://" if kind == "memory" else str(request.getfixturevalue(f"{kind}_url"))


@pytest.fixture
async def container(storage_url: str, clock: FixedClock) -> AsyncIterator[CustomersContainer]:
    container = bootstrap(storage_url, clock=clock)
    yield container
    await container.storage().close()


async def _person(container: CustomersContainer, tenant: str, clock: FixedClock) -> int:
    """A customer with addresses, notes, orders and consent, and a customer merged in."""
    service, gdpr = container.customer_service(), container.gdpr_service()
    target = await service.create_customer(tenant, {"email": "kept@example.com"})
    source = await service.create_customer(tenant, {"email": "gone@example.com"})
    for kind in ("shipping", "billing", "other"):
        await service.add_address(tenant, target.id, {**ADDRESS, "type": kind})
    await service.add_address(tenant, source.id, ADDRESS)
    for number in range(5):
        clock.advance(minutes=1)
        await service.add_note(tenant, target.id, {"note": f"note {number} «ü»"}, actor="u1")
    await service.add_note(tenant, source.id, {"note": "from the duplicate"})
    for number, days in ((1, 9), (2, 5), (3, 1)):
        await service.record_order(tenant, target.id, _order(number, days))
    await service.record_order(tenant, source.id, _order(4, 3))
    await gdpr.update_consent(tenant, target.id, "marketing", True)
    await service.merge_customers(
        tenant,
        {"source_customer_id": source.id, "target_customer_id": target.id, "merge_notes": False},
    )
    return target.id


async def test_the_streamed_export_is_the_in_memory_export_read_a_page_at_a_time(
    container: CustomersContainer, clock: FixedClock
) -> None:
    tenant = new_tenant_id()
    customer_id = await _person(container, tenant, clock)
    gdpr = container.gdpr_service()

    chunks = [
        chunk
        async for chunk in gdpr.stream_customer_data(tenant, customer_id, actor="dpo", page_size=2)
    ]
    whole = await gdpr.export_customer_data(tenant, customer_id, actor="dpo")

    streamed = json.loads(b"".join(chunks))
    document = CustomerDataExport.of(whole).model_dump(mode="json")
    # The in-memory export, made second, sees the streamed one's audit event last.
    *earlier, streamed_event = document["audit_trail"]
    assert (streamed_event["action"], streamed_event["details"]) == (
        "data.exported",
        {"format": "json"},
    )
    assert streamed == {**document, "audit_trail": earlier}
    assert list(streamed) == list(document)
    assert [o["order_id"] for o in streamed["orders"]] == ["ORD-1", "ORD-2", "ORD-4", "ORD-3"]
    assert len(streamed["notes"]) == 6
    assert len(streamed["addresses"]) == 4
    assert max(len(chunk) for chunk in chunks) < len(b"".join(chunks)) / 3


async def test_an_unknown_customer_fails_before_the_first_piece_and_is_not_audited(
    container: CustomersContainer,
) -> None:
    tenant = new_tenant_id()
    gdpr = container.gdpr_service()
    stream = gdpr.stream_customer_data(tenant, 999_999)

    with pytest.raises(CustomerNotFound):
        await anext(stream)
    with pytest.raises(InvalidInput) as invalid:
        await anext(gdpr.stream_customer_data(tenant, 1, page_size=1001))
    assert invalid.value.field == "page_size"
    assert (await gdpr.list_audit_events(tenant)).total == 0


# -------------------------------------------------------------- bounded memory

NOTES = 20_000
NOTE = "A customer who called about their order; " * 5


async def _asgi_get(app: Any, path: str, headers: dict[str, str], target: Path) -> int:
    """GET through the ASGI app, the body written to a file as it is sent (an HTTP
    client would hold the whole body in memory)."""
    status = 0
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected until the end
        raise AssertionError("unreachable")

    with target.open("wb") as body:

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.write(message.get("body", b""))

        await app(scope, receive, send)
    return status


async def test_a_customer_with_20000_notes_is_exported_in_bounded_memory(
    sqlite_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    container = bootstrap(sqlite_url, clock=clock)
    try:
        tenant = new_tenant_id()
        customer = await container.customer_service().create_customer(
            tenant, {"email": "talkative@example.com"}
        )
        storage = container.storage()
        assert isinstance(storage, SqlAlchemyStorage)
        rows = [
            {
                "tenant_id": tenant,
                "id": 1_000_000 + n,
                "customer_id": customer.id,
                "note": NOTE,
                "created_by": "u1",
                "created_at": T0 + timedelta(seconds=n),
            }
            for n in range(NOTES)
        ]
        async with storage.engine.begin() as connection:
            await connection.execute(insert(storage.models.note.__table__), rows)
        del rows
        app = create_app(container)
        headers = {"X-Tenant-ID": tenant, "X-Actor-ID": "dpo"}
        target = tmp_path / "export.json"
        # Once unmeasured, so imports and caches warm up outside the measure.
        await _asgi_get(app, f"/customers/{customer.id}/export", headers, target)

        tracemalloc.start()
        try:
            status = await _asgi_get(app, f"/customers/{customer.id}/export", headers, target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        size = target.stat().st_size
        assert status == 200
        assert size > 5_000_000
        assert peak < size / 2, (peak, size)
        document = json.loads(target.read_bytes())
        assert len(document["notes"]) == NOTES
        assert document["notes"][-1]["id"] == 1_000_000 + NOTES - 1
        whole = await container.gdpr_service().export_customer_data(tenant, customer.id)
        expected = CustomerDataExport.of(whole).model_dump(mode="json")
        assert {**document, "audit_trail": None} == {**expected, "audit_trail": None}
        print(f"export of {NOTES} notes: {size / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB")
    finally:
        await container.storage().close()
