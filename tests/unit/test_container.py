from __future__ import annotations

import pytest
from dependency_injector import errors

from linkbay_customers import CustomersContainer, CustomerService, bootstrap
from linkbay_customers.container import open_storage
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_memory import InMemoryStorage


async def test_bootstrap_wires_services_over_the_storage_a_url_names() -> None:
    clock = FixedClock()
    container = bootstrap("memory://", clock=clock, default_currency="CHF")
    service = container.customer_service()
    assert isinstance(service, CustomerService)
    assert service is container.customer_service()  # one service per container
    assert isinstance(container.storage(), InMemoryStorage)
    customer = await service.create_customer("t1", {"email": "a@example.com"})
    assert customer.created_at == clock.now()
    order = await service.record_order("t1", customer.id, {"order_id": "1", "total": 1})
    assert order.order.currency == "CHF"
    await container.storage().close()


def test_an_unknown_url_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"memory://"):
        open_storage("mongodb://localhost/db")


def test_a_host_can_plug_its_own_adapters_into_the_slots() -> None:
    container = CustomersContainer()
    storage = InMemoryStorage()
    intelligence = HeuristicIntelligence()
    container.storage.override(storage)
    container.intelligence.override(intelligence)
    service = container.customer_service()
    assert service._intelligence is intelligence


def test_a_slot_refuses_what_does_not_fit_its_port() -> None:
    container = CustomersContainer()
    container.storage.override(object())
    with pytest.raises(errors.Error):
        container.customer_service()


def test_a_missing_storage_is_reported() -> None:
    with pytest.raises(errors.Error):
        CustomersContainer().customer_service()
