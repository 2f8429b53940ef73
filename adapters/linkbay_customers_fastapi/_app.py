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
from linkbay_customers.domain import SchemaNotMigrated, StorageError
from linkbay_customers.services import AIService, CustomerService, GDPRService
from linkbay_customers_fastapi._limits import DEFAULT_MAX_BODY_SIZE
from linkbay_customers_fastapi._problems import add_problem_handlers, problem_responses
from linkbay_customers_fastapi._router import create_customer_router
from linkbay_customers_fastapi._tenancy import header_tenancy, jwt_tenancy

__all__ = ("HealthResponse", "create_app")


class HealthResponse(BaseModel):
    """The answer of ``GET /health`` and ``GET /health/ready``."""

    status: Literal["ok"]
    version: str


def create_app(
    container: CustomersContainer | str,
    *,
    jwt_secret: str | None = None,
    jwt_algorithms: tuple[str, ...] = ("HS256",),
    tenant_claim: str = "tenant_id",
    jwt_audience: str | None = None,
    jwt_issuer: str | None = None,
    jwt_require_expiry: bool = True,
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    title: str = "linkbay-customers",
) -> FastAPI:
    """A FastAPI application serving the customer API over a container's storage.

    Without ``jwt_secret`` the tenant comes from the ``X-Tenant-ID`` header and the
    acting user from ``X-Actor-ID``, trusted as sent (see ``header_tenancy``): fine
    for trying the API out or behind a gateway that sets them. With ``jwt_secret``
    every request needs ``Authorization: Bearer <token>``, a JWT signed with that
    secret carrying the tenant in ``tenant_claim``, the acting user in ``sub`` and an
    expiry in ``exp`` (see ``jwt_tenancy``).

    ``GET /health`` answers 200 while the process is up (liveness); ``GET
    /health/ready`` answers 200 only while the storage answers too, and 503
    ``storage_error`` otherwise (readiness).

    The application serves the GDPR routes too, with the container's
    ``gdpr_service``, and the intelligence routes, with its ``ai_service``. It closes
    the container's storage when it shuts down.

    Args:
        container: A wired container (``bootstrap(url)``), or a database URL to
            bootstrap one from (``sqlite+aiosqlite:///customers.db``, ``memory://``).
        jwt_secret: The HMAC secret tokens are signed with (at least 32 bytes for
            HS256); None for header tenancy.
        jwt_algorithms: The accepted token algorithms.
        tenant_claim: The token claim holding the tenant id.
        jwt_audience: The ``aud`` every token must carry, if any.
        jwt_issuer: The ``iss`` every token must carry, if any.
        jwt_require_expiry: Refuse tokens without ``exp``.
        max_body_size: The largest request body read, in bytes; None for no limit.
        title: The OpenAPI title.

    Raises:
        ValueError: ``jwt_secret`` is too short for ``jwt_algorithms``.
    """
    if isinstance(container, str):
        container = bootstrap(container)
    wired = container
    if jwt_secret is None:
        tenancy = header_tenancy()
    else:
        tenancy = jwt_tenancy(
            jwt_secret,
            algorithms=jwt_algorithms,
            tenant_claim=tenant_claim,
            audience=jwt_audience,
            issuer=jwt_issuer,
            require_expiry=jwt_require_expiry,
        )

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
            max_body_size=max_body_size,
        )
    )

    @app.get("/health", tags=["health"], summary="Liveness", operation_id="health")
    async def health() -> HealthResponse:
        """Answers as long as the application is up, whatever the storage; needs no tenant."""
        return HealthResponse(status="ok", version=linkbay_customers.__version__)

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="Readiness",
        operation_id="health_ready",
        responses=problem_responses(StorageError, SchemaNotMigrated),
    )
    async def ready() -> HealthResponse:
        """Answers 200 when the storage answers too, 503 `storage_error` while it does not;
        needs no tenant."""
        await wired.storage().ping()
        return HealthResponse(status="ok", version=linkbay_customers.__version__)

    return app
