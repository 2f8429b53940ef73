"""The contract of ``ModelFitStorage``, for a storage that keeps ``BetaGeoIntelligence``'s
fits: ``class TestMyStorage(StorageContract, ModelFitStorageContract)``.

Needs pytest and pytest-asyncio (``pip install linkbay-customers[testing,clv]``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from linkbay_customers.domain import ModelFit, StorageRejected
from linkbay_customers.ports import Storage
from linkbay_customers.testing import T0, ContractBase
from linkbay_customers_clv._fit_storage import ModelFitStorage

__all__ = ("ModelFitStorageContract",)


def _fit_storage(storage: Storage) -> ModelFitStorage:
    assert isinstance(storage, ModelFitStorage), (
        f"{type(storage).__name__} is no ModelFitStorage: it needs"
        " load_model_fit(tenant_id, model) and save_model_fit(tenant_id, fit)"
    )
    return storage


class ModelFitStorageContract(ContractBase):
    """``ModelFitStorage``: one fit per tenant and model name, replaced by the next."""

    async def test_a_model_fit_is_stored_per_tenant_and_replaced_by_the_next(
        self, storage: Storage, tenant: str, other_tenant: str
    ) -> None:
        fits = _fit_storage(storage)
        first = ModelFit(
            tenant_id=tenant,
            model="bg_nbd",
            parameters={"r": 0.243, "alpha": 4.414, "tiny": 1e-300, "huge": 1e300},
            fitted_at=T0,
            sample_size=2357,
        )
        assert await fits.load_model_fit(tenant, "bg_nbd") is None
        await fits.save_model_fit(tenant, first)
        assert await fits.load_model_fit(tenant, "bg_nbd") == first
        second = replace(first, parameters={"r": 0.5}, fitted_at=T0 + timedelta(days=1))
        await fits.save_model_fit(tenant, second)
        assert await fits.load_model_fit(tenant, "bg_nbd") == second
        assert await fits.load_model_fit(tenant, "other") is None
        with pytest.raises(StorageRejected):
            await fits.save_model_fit(tenant, replace(first, tenant_id=other_tenant))
        assert await fits.load_model_fit(other_tenant, "bg_nbd") is None
        assert await fits.load_model_fit(tenant, "bg_nbd") == second
