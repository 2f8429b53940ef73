"""The composition root: a dependency-injector container and ``bootstrap``.

The container has ``Dependency()`` slots for the adapters (storage, clock,
intelligence) and builds the services from them. A host overrides the slots it
wants to supply; ``bootstrap(database_url)`` fills them from a URL, importing the
storage adapter only when asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dependency_injector import containers, providers

from linkbay_customers.clock import SystemClock
from linkbay_customers.domain import (
    DEFAULT_CONSENT_TYPES,
    DEFAULT_PROFILING_POLICY,
    ProfilingPolicies,
    ProfilingPolicy,
)
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.ports import Clock, CustomerIntelligence, Storage
from linkbay_customers.services import AIService, CustomerService, GDPRService

__all__ = ("CustomersContainer", "bootstrap", "open_storage")


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
    country code; ``"IT"`` reads ``"333 123 4567"`` as an Italian number).
    """

    config = providers.Configuration(
        default={
            "default_currency": "EUR",
            "consent_types": DEFAULT_CONSENT_TYPES,
            "default_phone_region": None,
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
    )
    ai_service = providers.Singleton(
        AIService,
        uow_factory=storage.provided.unit_of_work,
        clock=clock,
        intelligence=intelligence,
        profiling_policy=profiling_policy,
    )
    gdpr_service = providers.Singleton(
        GDPRService,
        uow_factory=storage.provided.unit_of_work,
        clock=clock,
        consent_types=config.consent_types,
        profiling_policy=profiling_policy,
    )


def _memory_storage(url: str, **options: Any) -> Storage:
    from linkbay_customers_memory import InMemoryStorage

    return InMemoryStorage()


def _sql_storage(url: str, **options: Any) -> Storage:
    try:
        from linkbay_customers_sqlalchemy import SqlAlchemyStorage  # imported lazily
    except ImportError as exc:
        raise ImportError(
            f"{url.split(':', 1)[0]}:// needs the SQL storage: "
            "pip install 'linkbay-customers[sqlalchemy]' (or '[postgres]' for PostgreSQL)"
        ) from exc
    return SqlAlchemyStorage.from_url(url, **options)


_STORAGE_SCHEMES: dict[str, Callable[..., Storage]] = {
    "memory": _memory_storage,
    "sqlite": _sql_storage,
    "postgresql": _sql_storage,
}


def open_storage(database_url: str, **options: Any) -> Storage:
    """Open the storage adapter a URL names, importing it only now.

    Args:
        database_url: ``memory://`` for the in-memory adapter;
            ``sqlite+aiosqlite:///path.db`` or ``postgresql+asyncpg://...`` for SQL.
        **options: Passed on to the adapter.

    Raises:
        ValueError: the URL names no known adapter.
    """
    scheme = database_url.split(":", 1)[0].split("+", 1)[0].lower()
    opener = _STORAGE_SCHEMES.get(scheme)
    if opener is None:
        known = ", ".join(f"{name}://" for name in sorted(_STORAGE_SCHEMES))
        raise ValueError(f"no storage adapter for {database_url!r}; known: {known}")
    return opener(database_url, **options)


def bootstrap(
    database_url: str = "memory://",
    *,
    clock: Clock | None = None,
    intelligence: CustomerIntelligence | None = None,
    default_currency: str = "EUR",
    profiling_policy: ProfilingPolicy | ProfilingPolicies | None = None,
    default_phone_region: str | None = None,
    **storage_options: Any,
) -> CustomersContainer:
    """A wired container over the storage a URL names.

    Args:
        database_url: Which storage to open (see ``open_storage``).
        clock: Overrides the system clock.
        intelligence: Overrides the heuristic intelligence.
        default_currency: Currency of a customer's first order when it names none.
        profiling_policy: Overrides the default profiling policy (everyone but who
            refused ``analytics`` consent), for every service.
        default_phone_region: The country whose numbering plan reads a phone number
            written without its country code (see ``CustomerService``).
        **storage_options: Passed on to the storage adapter.

    Returns:
        The container; close its storage with ``await container.storage().close()``.
    """
    container = CustomersContainer()
    container.config.default_currency.from_value(default_currency)
    container.config.default_phone_region.from_value(default_phone_region)
    container.storage.override(providers.Object(open_storage(database_url, **storage_options)))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    if intelligence is not None:
        container.intelligence.override(providers.Object(intelligence))
    if profiling_policy is not None:
        container.profiling_policy.override(providers.Object(profiling_policy))
    return container
