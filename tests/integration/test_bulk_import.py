from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.domain import Customer
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._repositories import SqlCustomerRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import COPY_MIN_ROWS


@pytest.fixture
async def postgres_storage(postgres_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    yield storage
    await storage.close()


def _rows(prefix: str, count: int) -> list[dict[str, object]]:
    return [{"email": f"{prefix}{n}@example.com", "first_name": "Ada"} for n in range(count)]


async def test_an_import_chunk_whose_copy_meets_a_concurrent_email_runs_again_whole(
    postgres_storage: SqlAlchemyStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = CustomerService(postgres_storage.unit_of_work, FixedClock(), HeuristicIntelligence())
    tenant = new_tenant_id()
    # COPY has succeeded on both tables: it now runs without a savepoint.
    assert (await service.import_customers(tenant, _rows("a", COPY_MIN_ROWS))).created == (
        COPY_MIN_ROWS
    )
    late = await service.create_customer(tenant, {"email": "late@example.com"})
    # The email is committed after the chunk looked it up, as by a concurrent writer:
    # the first lookup misses it, so the chunk's COPY meets it.
    lookup = SqlCustomerRepository.get_many_by_email
    lookups: list[int] = []

    async def racing_lookup(
        self: SqlCustomerRepository, emails: Sequence[str]
    ) -> Mapping[str, Customer]:
        found = await lookup(self, emails)
        lookups.append(len(found))
        return found if len(lookups) > 1 else {}

    monkeypatch.setattr(SqlCustomerRepository, "get_many_by_email", racing_lookup)
    rows = [*_rows("b", COPY_MIN_ROWS), {"email": "late@example.com", "first_name": "Late"}]

    result = await service.import_customers(tenant, rows)

    assert (result.created, result.updated, result.rejected) == (COPY_MIN_ROWS, 1, 0)
    assert lookups == [1, 1]  # the chunk ran twice; the second run saw the customer
    assert (await service.get_customer(tenant, late.id)).first_name == "Late"
    assert (await service.list_customers(tenant)).total == 2 * COPY_MIN_ROWS + 1
    gdpr = GDPRService(postgres_storage.unit_of_work, FixedClock())
    assert (await gdpr.list_audit_events(tenant)).total == 2 * COPY_MIN_ROWS + 2
    assert (await gdpr.verify_audit_trail(tenant)).intact
    # The next chunks copy again, without a savepoint.
    monkeypatch.setattr(SqlCustomerRepository, "get_many_by_email", lookup)
    assert (await service.import_customers(tenant, _rows("c", COPY_MIN_ROWS))).created == (
        COPY_MIN_ROWS
    )
    assert (await gdpr.verify_audit_trail(tenant)).intact
