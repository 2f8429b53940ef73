"""Statistical models fitted per tenant, in SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, insert, select

from linkbay_customers.domain import ModelFit, StorageRejected
from linkbay_customers.ports import ModelFitRepository

if TYPE_CHECKING:
    from linkbay_customers_sqlalchemy._storage import SqlAlchemyUnitOfWork

__all__ = ("SqlModelFitRepository",)


class SqlModelFitRepository(ModelFitRepository):
    """One row per tenant and model name; saving replaces it."""

    def __init__(self, uow: SqlAlchemyUnitOfWork) -> None:
        self._uow = uow

    @property
    def _table(self) -> Table:
        return self._uow.models.model_fit.__table__  # type: ignore[attr-defined, no-any-return]

    async def get(self, model: str) -> ModelFit | None:
        """The tenant's fit of a model, or None."""
        t = self._table
        row = (
            await self._uow.execute(
                select(t).where(t.c.tenant_id == self._uow.tenant_id, t.c.model == model),
                action="reading a model fit",
            )
        ).first()
        if row is None:
            return None
        return ModelFit(
            tenant_id=row.tenant_id,
            model=row.model,
            parameters={k: float(v) for k, v in row.parameters.items()},
            fitted_at=row.fitted_at,
            sample_size=int(row.sample_size),
        )

    async def save(self, fit: ModelFit) -> None:
        """Store a fit, replacing the tenant's previous fit of that model."""
        if fit.tenant_id != self._uow.tenant_id:
            raise StorageRejected("the row belongs to another tenant than the unit of work")
        t = self._table
        await self._uow.execute(
            delete(t).where(t.c.tenant_id == fit.tenant_id, t.c.model == fit.model),
            action="replacing a model fit",
        )
        await self._uow.execute(
            insert(t),
            {
                "tenant_id": fit.tenant_id,
                "model": fit.model,
                "parameters": dict(fit.parameters),
                "fitted_at": fit.fitted_at,
                "sample_size": fit.sample_size,
            },
            action="storing a model fit",
        )
