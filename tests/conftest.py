from __future__ import annotations

import pytest

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_memory import InMemoryStorage


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def memory_storage() -> InMemoryStorage:
    return InMemoryStorage()


@pytest.fixture
def service(memory_storage: InMemoryStorage, clock: FixedClock) -> CustomerService:
    return CustomerService(memory_storage.unit_of_work, clock, HeuristicIntelligence())


@pytest.fixture
def tenant() -> str:
    return new_tenant_id("a")


@pytest.fixture
def other_tenant() -> str:
    return new_tenant_id("b")
