"""The port through which ``BetaGeoIntelligence`` keeps the models it fits."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from linkbay_customers.domain import ModelFit
from linkbay_customers.ports import Storage

__all__ = ("ModelFitStorage",)


@runtime_checkable
class ModelFitStorage(Storage, Protocol):
    """A storage that also keeps fitted models: one fit per tenant and model name.

    ``SqlAlchemyStorage`` and ``InMemoryStorage`` implement it (structurally: they do
    not import this adapter, which needs numpy). A third-party storage implements
    these two methods beside ``Storage`` and passes ``ModelFitStorageContract``
    (``linkbay_customers_clv.testing``). Each call is a transaction of its own.
    """

    async def load_model_fit(self, tenant_id: str, model: str) -> ModelFit | None:
        """The tenant's latest fit of ``model``, or None.

        Raises:
            StorageError: the storage failed.
        """
        ...

    async def save_model_fit(self, tenant_id: str, fit: ModelFit) -> None:
        """Store a fit, replacing the tenant's previous fit of that model.

        Raises:
            StorageRejected: the fit belongs to another tenant than ``tenant_id``.
            StorageError: the storage failed.
        """
        ...
