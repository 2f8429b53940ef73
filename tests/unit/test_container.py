from __future__ import annotations

import pytest
from dependency_injector import errors

from linkbay_customers import CustomersContainer, CustomerService, bootstrap
from linkbay_customers.container import open_storage
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.ports import Clock, Storage
from linkbay_customers.testing import FixedClock
from linkbay_customers_clv import BetaGeoIntelligence
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


def test_bootstrap_takes_an_intelligence_instance() -> None:
    intelligence = HeuristicIntelligence()
    container = bootstrap("memory://", intelligence=intelligence)
    assert container.customer_service()._tx.intelligence is intelligence


def test_bootstrap_builds_an_intelligence_from_the_storage_and_clock_once() -> None:
    clock = FixedClock()
    calls: list[tuple[Storage, Clock]] = []

    def factory(storage: Storage, given_clock: Clock) -> HeuristicIntelligence:
        calls.append((storage, given_clock))
        return HeuristicIntelligence()

    container = bootstrap("memory://", clock=clock, intelligence=factory)
    assert calls == []  # built on first use, not by bootstrap
    service = container.customer_service()
    assert calls == [(container.storage(), clock)]
    assert container.ai_service()._intelligence is service._tx.intelligence
    assert len(calls) == 1


def test_bootstrap_wires_beta_geo_over_the_storage_in_one_line() -> None:
    clock = FixedClock()
    container = bootstrap("memory://", clock=clock, intelligence=BetaGeoIntelligence.from_storage)
    intelligence = container.ai_service()._intelligence
    assert isinstance(intelligence, BetaGeoIntelligence)
    assert intelligence._clock is clock
    assert intelligence._storage is container.storage()


def test_an_intelligence_class_is_called_as_a_factory() -> None:
    class Named(HeuristicIntelligence):
        def __init__(self, storage: Storage, clock: Clock) -> None:
            super().__init__()
            self.storage = storage

    container = bootstrap("memory://", intelligence=Named)
    intelligence = container.customer_service()._tx.intelligence
    assert isinstance(intelligence, Named)
    assert intelligence.storage is container.storage()


def test_bootstrap_refuses_an_intelligence_that_is_neither() -> None:
    with pytest.raises(TypeError, match="factory of \\(storage, clock\\)"):
        bootstrap("memory://", intelligence=42)  # type: ignore[arg-type]


def test_a_factory_that_builds_no_intelligence_is_reported() -> None:
    container = bootstrap("memory://", intelligence=lambda storage, clock: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(errors.Error):
        container.customer_service()


def test_a_host_can_plug_its_own_adapters_into_the_slots() -> None:
    container = CustomersContainer()
    storage = InMemoryStorage()
    intelligence = HeuristicIntelligence()
    container.storage.override(storage)
    container.intelligence.override(intelligence)
    service = container.customer_service()
    assert service._tx.intelligence is intelligence


def test_a_slot_refuses_what_does_not_fit_its_port() -> None:
    container = CustomersContainer()
    container.storage.override(object())
    with pytest.raises(errors.Error):
        container.customer_service()


def test_a_missing_storage_is_reported() -> None:
    with pytest.raises(errors.Error):
        CustomersContainer().customer_service()
