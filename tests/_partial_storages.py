"""Storages that lack optional roles, as a third-party storage may."""

from __future__ import annotations

from typing import Any

from linkbay_customers.ports import (
    STORAGE_ROLES,
    CustomerRepository,
    OrderRepository,
    Storage,
    UnitOfWork,
)
from linkbay_customers_memory import InMemoryStorage, InMemoryUnitOfWork


class _Exposing:
    """The methods of ``protocols`` of a repository, and nothing else."""

    def __init__(self, inner: object, protocols: list[type[Any]]) -> None:
        for protocol in protocols:
            for name, member in vars(protocol).items():
                if callable(member) and not name.startswith("_"):
                    setattr(self, name, getattr(inner, name))


class StorageWithout(InMemoryStorage):
    """The in-memory storage with the optional roles named ``missing`` left out."""

    def __init__(self, *missing: str) -> None:
        super().__init__()
        unknown = set(missing) - {role.name for role in STORAGE_ROLES}
        assert not unknown, unknown
        self._kept = [role for role in STORAGE_ROLES if role.name not in missing]

    def _protocols(self, core: type[Any], repository: str) -> list[type[Any]]:
        return [core, *(role.protocol for role in self._kept if role.repository == repository)]

    def unit_of_work(self, tenant_id: str) -> InMemoryUnitOfWork:
        uow = super().unit_of_work(tenant_id)
        uow.customers = _Exposing(uow.customers, self._protocols(CustomerRepository, "customers"))
        uow.orders = _Exposing(uow.orders, self._protocols(OrderRepository, "orders"))
        return uow


class StorageWithoutFits(Storage):
    """A storage that keeps no fitted models: only the core's ``Storage``."""

    def __init__(self) -> None:
        self._inner = InMemoryStorage()

    def unit_of_work(self, tenant_id: str) -> UnitOfWork:
        return self._inner.unit_of_work(tenant_id)

    async def close(self) -> None:
        await self._inner.close()
