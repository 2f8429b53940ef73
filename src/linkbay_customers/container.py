"""The composition root: a dependency-injector container and ``bootstrap``.

The container has ``Dependency()`` slots for the adapters (storage, clock,
intelligence) and builds the services from them. A host overrides the slots it
wants to supply; ``bootstrap(database_url)`` fills them from a URL, through the
registry of storage schemes (``linkbay_customers.registry``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from dependency_injector import containers, providers

from linkbay_customers.clock import SystemClock
from linkbay_customers.domain import (
    DEFAULT_CONSENT_TYPES,
    DEFAULT_MAX_ADDRESSES,
    DEFAULT_PROFILING_POLICY,
    ProfilingPolicies,
    ProfilingPolicy,
)
from linkbay_customers.heuristics import EMBEDDING_VERSION, HeuristicIntelligence
from linkbay_customers.ports import Clock, CustomerIntelligence, Storage
from linkbay_customers.registry import open_storage
from linkbay_customers.services import AIService, CustomerService, GDPRService

__all__ = ("CustomersContainer", "IntelligenceFactory", "bootstrap", "open_storage")

IntelligenceFactory: TypeAlias = Callable[[Storage, Clock], CustomerIntelligence]
"""Builds an intelligence over the container's storage and clock (``BetaGeoIntelligence``
reads orders through the storage's unit of work)."""


class CustomersContainer(containers.DeclarativeContainer):
    """The library's container.

    Slots:
        storage: a ``Storage`` (required).
        clock: a ``Clock``; the system clock unless overridden.
        intelligence: a ``CustomerIntelligence``; the heuristics unless overridden.
        profiling_policy: a ``ProfilingPolicy``, or a function giving each tenant's;
            the one every service that computes or clears derived data is given.

    Configuration: ``default_currency`` ("EUR"), ``consent_types`` (the seed's three),
    ``default_phone_region`` (None: phone numbers must start with ``+`` and their
    country code; ``"IT"`` reads ``"333 123 4567"`` as an Italian number),
    ``max_addresses_per_customer`` (50), ``embedding_version`` (the heuristics'
    layout; name another when the intelligence embeds differently).
    """

    config = providers.Configuration(
        default={
            "default_currency": "EUR",
            "consent_types": DEFAULT_CONSENT_TYPES,
            "default_phone_region": None,
            "max_addresses_per_customer": DEFAULT_MAX_ADDRESSES,
            "embedding_version": EMBEDDING_VERSION,
        }
    )

    # The ports are runtime-checkable Protocols: the slots check what is plugged in.
    storage = providers.Dependency(instance_of=Storage)  # type: ignore[type-abstract]
    clock = providers.Dependency(
        instance_of=Clock,  # type: ignore[type-abstract]
        default=providers.Singleton(SystemClock),
    )
    intelligence = providers.Dependency(
        instance_of=CustomerIntelligence,  # type: ignore[type-abstract]
        default=providers.Singleton(HeuristicIntelligence),
    )

    profiling_policy = providers.Object(DEFAULT_PROFILING_POLICY)

    customer_service = providers.Singleton(
        CustomerService,
        uow_factory=storage.provided.unit_of_work,
        clock=clock,
        intelligence=intelligence,
        default_currency=config.default_currency,
        profiling_policy=profiling_policy,
        default_phone_region=config.default_phone_region,
        max_addresses_per_customer=config.max_addresses_per_customer,
        embedding_version=config.embedding_version,
    )
    ai_service = providers.Singleton(
        AIService,
        uow_factory=storage.provided.unit_of_work,
        clock=clock,
        intelligence=intelligence,
        profiling_policy=profiling_policy,
        embedding_version=config.embedding_version,
    )
    gdpr_service = providers.Singleton(
        GDPRService,
        uow_factory=storage.provided.unit_of_work,
        clock=clock,
        consent_types=config.consent_types,
        profiling_policy=profiling_policy,
    )


def bootstrap(
    database_url: str = "memory://",
    *,
    clock: Clock | None = None,
    intelligence: CustomerIntelligence | IntelligenceFactory | None = None,
    default_currency: str = "EUR",
    profiling_policy: ProfilingPolicy | ProfilingPolicies | None = None,
    default_phone_region: str | None = None,
    max_addresses_per_customer: int = DEFAULT_MAX_ADDRESSES,
    **storage_options: Any,
) -> CustomersContainer:
    """A wired container over the storage a URL names.

    Args:
        database_url: Which storage to open: a scheme in the registry
            (``linkbay_customers.registry.open_storage``).
        clock: Overrides the system clock.
        intelligence: Overrides the heuristic intelligence: an intelligence, or a
            factory called once, on first use, with the container's storage and
            clock (``BetaGeoIntelligence.from_storage``).
        default_currency: Currency of a customer's first order when it names none.
        profiling_policy: Overrides the default profiling policy (everyone but who
            refused ``analytics`` consent), for every service.
        default_phone_region: The country whose numbering plan reads a phone number
            written without its country code (see ``CustomerService``).
        max_addresses_per_customer: The most addresses a customer may have.
        **storage_options: Passed on to the storage adapter.

    Returns:
        The container; close its storage with ``await container.storage().close()``.

    Raises:
        ValueError: the URL names no registered storage scheme.
        ImportError: the scheme's adapter needs an extra that is not installed.
        TypeError: ``intelligence`` is neither an intelligence nor callable.
    """
    container = CustomersContainer()
    container.config.default_currency.from_value(default_currency)
    container.config.default_phone_region.from_value(default_phone_region)
    container.config.max_addresses_per_customer.from_value(max_addresses_per_customer)
    container.storage.override(providers.Object(open_storage(database_url, **storage_options)))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    # A class passes a runtime Protocol check (it has the methods): it is a factory.
    if isinstance(intelligence, CustomerIntelligence) and not isinstance(intelligence, type):
        container.intelligence.override(providers.Object(intelligence))
    elif callable(intelligence):
        container.intelligence.override(
            providers.Singleton(intelligence, container.storage, container.clock)
        )
    elif intelligence is not None:
        raise TypeError(
            "intelligence must be a CustomerIntelligence or a factory of (storage, clock), "
            f"not {type(intelligence).__name__}"
        )
    if profiling_policy is not None:
        container.profiling_policy.override(providers.Object(profiling_policy))
    return container
