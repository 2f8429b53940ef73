"""On PostgreSQL every listing order is read from an index, never sorted in full.

A tenant of a million customers cannot afford to sort them all for one page.
With sorting priced out (``enable_sort = off``), the plan still contains a sort
only when no index yields the order the listing asks for.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from linkbay_customers.domain import CustomerFilters, CustomerSort
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage


async def listing_plan(postgres_url: str, filters: CustomerFilters) -> list[str]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "ORDER BY" in statement:
            captured.append((statement, parameters))

    event.listen(storage.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with storage.unit_of_work(new_tenant_id()) as uow:
            await uow.customers.list(filters, page=1, page_size=20)
        (statement, parameters), *_ = captured
        async with storage.engine.connect() as connection:
            await connection.exec_driver_sql("SET enable_sort = off")
            result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return [str(line) for line in result.scalars()]
    finally:
        await storage.close()


@pytest.mark.parametrize("sort", list(CustomerSort), ids=lambda sort: sort.value)
async def test_every_listing_order_comes_from_an_index(
    postgres_url: str, sort: CustomerSort
) -> None:
    plan = await listing_plan(postgres_url, CustomerFilters(sort=sort))
    assert not [line for line in plan if "Sort" in line], "\n".join(plan)


async def test_a_segment_and_spend_listing_in_the_default_order_needs_no_sort(
    postgres_url: str,
) -> None:
    filters = CustomerFilters(segment="active", min_total_spent=Decimal(500))
    plan = await listing_plan(postgres_url, filters)
    assert not [line for line in plan if "Sort" in line], "\n".join(plan)
