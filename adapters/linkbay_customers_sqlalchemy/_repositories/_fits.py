"""Statistical models fitted per tenant, in SQL."""

from __future__ import annotations

from sqlalchemy import delete, select

from linkbay_customers.domain import ModelFit
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._statements import plain_insert

__all__ = ("SqlModelFitRepository",)


class SqlModelFitRepository(SqlRepository):
    """One row per tenant and model name; saving replaces it."""

    role = "model_fit"

    async def get(self, model: str) -> ModelFit | None:
        """The tenant's fit of a model, or None."""
        t = self._table
        row = (
            await self._execute(
                select(t).where(self._mine, t.c.model == model), action="reading a model fit"
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
        self._own(fit)
        t = self._table
        await self._execute(
            delete(t).where(self._mine, t.c.model == fit.model), action="replacing a model fit"
        )
        await self._execute(
            plain_insert(t),
            {
                "tenant_id": fit.tenant_id,
                "model": fit.model,
                "parameters": dict(fit.parameters),
                "fitted_at": fit.fitted_at,
                "sample_size": fit.sample_size,
            },
            action="storing a model fit",
        )
