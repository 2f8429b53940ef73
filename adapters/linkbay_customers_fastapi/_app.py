"""``create_app``: the standalone application the CLI serves, and a worked example."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

import linkbay_customers
from linkbay_customers.container import CustomersContainer, bootstrap
from linkbay_customers.services import AIService, CustomerService, GDPRService
from linkbay_customers_fastapi._problems import add_problem_handlers
from linkbay_customers_fastapi._router import create_customer_router
from linkbay_customers_fastapi._tenancy import header_tenancy, jwt_tenancy

__all__ = ("HealthResponse", "create_app")


class HealthResponse(BaseModel):
    """The answer of ``GET /health``."""

    status: Literal["ok"]
    version: str


def create_app(
    container: CustomersContainer | str,
    *,
    jwt_secret: str | None = None,
    jwt_algorithms: tuple[str, ...] = ("HS256",),
    tenant_claim: str = "tenant_id",
    title: str = "linkbay-customers",
) -> FastAPI:
    """A FastAPI application serving the customer API over a container's storage.

    Without ``jwt_secret`` the tenant comes from the ``X-Tenant-ID`` header and the
    acting user from ``X-Actor-ID``, trusted as sent (see ``header_tenancy``): fine
    for trying the API out or behind a gateway that sets them. With ``jwt_secret``
    every request needs ``Authorization: Bearer <token>``, a JWT signed with that
    secret carrying the tenant in ``tenant_claim`` and the acting user in ``sub``.

    The application serves the GDPR routes too, with the container's
    ``gdpr_service``, and the intelligence routes, with its ``ai_service``. It closes
    the container's storage when it shuts down.

    Args:
        container: A wired container (``bootstrap(url)``), or a database URL to
            bootstrap one from (``sqlite+aiosqlite:///customers.db``, ``memory://``).
        jwt_secret: The HMAC secret tokens are signed with; None for header tenancy.
        jwt_algorithms: The accepted token algorithms.
        tenant_claim: The token claim holding the tenant id.
        title: The OpenAPI title.
    """
    if isinstance(container, str):
        container = bootstrap(container)
    wired = container
    if jwt_secret is None:
        tenancy = header_tenancy()
    else:
        tenancy = jwt_tenancy(jwt_secret, algorithms=jwt_algorithms, tenant_claim=tenant_claim)

    async def customer_service() -> CustomerService:
        # Resolved per request, so overriding the container's providers takes effect.
        service: CustomerService = wired.customer_service()
        return service

    async def gdpr_service() -> GDPRService:
        service: GDPRService = wired.gdpr_service()
        return service

    async def ai_service() -> AIService:
        service: AIService = wired.ai_service()
        return service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await wired.storage().close()

    # /docs and /redoc load Swagger UI and ReDoc from fastapi-offline's package, not
    # from a CDN, so they work on a machine without internet access.
    app = FastAPIOffline(
        title=title,
        version=linkbay_customers.__version__,
        description="Multi-tenant customer management: customers, addresses, notes, orders, "
        "GDPR (export, erasure, consent, audit trail) and customer intelligence (segments, "
        "churn risk, lifetime value, similar customers, recommendations).",
        lifespan=lifespan,
    )
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            customer_service,
            gdpr_service=gdpr_service,
            ai_service=ai_service,
            get_tenant_id=tenancy.tenant_id,
            get_actor=tenancy.actor,
        )
    )

    @app.get("/health", tags=["health"], summary="Health check", operation_id="health")
    async def health() -> HealthResponse:
        """Answers as long as the application is up; needs no tenant."""
        return HealthResponse(status="ok", version=linkbay_customers.__version__)

    return app
