"""``create_customer_router``: the REST API of the customer service, as a FastAPI router."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, params
from fastapi.routing import APIRoute

from linkbay_customers.domain import InvalidInput, LinkbayError, check_actor, check_tenant
from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers.services import (
    AIService,
    CustomerService,
    GDPRService,
)
from linkbay_customers_fastapi._context import (
    AIRequestContext,
    GDPRRequestContext,
    RequestContext,
    RouteSettings,
    one_dependency,
)
from linkbay_customers_fastapi._limits import DEFAULT_MAX_BODY_SIZE, limited_route_class
from linkbay_customers_fastapi._problems import (
    CONTEXT_ERRORS,
    REQUEST_ERRORS,
    TenantRequired,
    answered_by,
    answers,
)
from linkbay_customers_fastapi._routes_addresses import add_address_routes
from linkbay_customers_fastapi._routes_ai import add_ai_routes, add_tenant_scoring_routes
from linkbay_customers_fastapi._routes_customers import add_customer_routes
from linkbay_customers_fastapi._routes_duplicates import (
    add_customer_duplicate_routes,
    add_duplicate_decision_routes,
    add_tenant_duplicate_routes,
)
from linkbay_customers_fastapi._routes_gdpr import add_gdpr_routes, add_tenant_audit_routes
from linkbay_customers_fastapi._routes_notes import add_note_routes
from linkbay_customers_fastapi._routes_orders import add_order_routes

__all__ = (
    "AI_ROUTE_GROUPS",
    "GDPR_ROUTE_GROUPS",
    "ROUTE_GROUPS",
    "RouteGroup",
    "create_customer_router",
)

RouteGroup = Callable[[APIRouter, RouteSettings], None]
"""Adds one group of routes to the router, given the settings of the router."""

ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    add_customer_routes,
    add_address_routes,
    add_note_routes,
    add_order_routes,
    add_customer_duplicate_routes,
    add_duplicate_decision_routes,
)
"""The route groups every router has, in the order they are added."""

GDPR_ROUTE_GROUPS: tuple[RouteGroup, ...] = (add_gdpr_routes,)
"""The route groups a router built with a GDPR service adds after ``ROUTE_GROUPS``;
``add_tenant_audit_routes`` (a fixed path) goes before them all."""

AI_ROUTE_GROUPS: tuple[RouteGroup, ...] = (add_ai_routes,)
"""The route groups a router built with an AI service adds last;
``add_tenant_scoring_routes`` (a fixed path) goes before them all."""


@answers()
async def _no_actor() -> None:
    # async: FastAPI runs a plain function in a worker thread, a costly hop
    return None


def _request_errors(
    get_tenant_id: Callable[..., Any], get_actor: Callable[..., Any]
) -> tuple[type[LinkbayError], ...]:
    """What every route can answer with these dependencies: theirs (``answers``; one
    that declares nothing may answer every tenancy problem, the 400 of a tenant id
    that is not valid included), and the input's and the storage's problems."""
    given = (*answered_by(get_tenant_id), *answered_by(get_actor))
    context = tuple(error for error in CONTEXT_ERRORS if error in given)
    return (*context, *(e for e in REQUEST_ERRORS if e not in CONTEXT_ERRORS))


def _route_id(route: APIRoute) -> str:
    return route.name


def _service_dependency(service: Any, kind: type[Any]) -> Callable[..., Any]:
    """The service as a dependency: an instance is wrapped, a dependency kept as is."""
    if isinstance(service, kind):
        instance = service

        async def get_service() -> Any:
            return instance

        return get_service
    if not callable(service):
        raise TypeError(f"expected a {kind.__name__} or a dependency returning one")
    dependency: Callable[..., Any] = service
    return dependency


def _checked_tenant(tenant_id: Any) -> str:
    try:
        return check_tenant(tenant_id)
    except InvalidInput:
        raise TenantRequired("the request names no valid tenant") from None


def create_customer_router(
    customer_service: CustomerService | Callable[..., Any],
    *,
    get_tenant_id: Callable[..., Any],
    gdpr_service: GDPRService | Callable[..., Any] | None = None,
    ai_service: AIService | Callable[..., Any] | None = None,
    get_actor: Callable[..., Any] | None = None,
    prefix: str = "/customers",
    tags: Sequence[str | Enum] = ("customers",),
    dependencies: Sequence[params.Depends] = (),
    customer_create_schema: type[CustomerCreate] = CustomerCreate,
    customer_update_schema: type[CustomerUpdate] = CustomerUpdate,
    customer_response_schema: type[CustomerResponse] = CustomerResponse,
    generate_unique_id_function: Callable[[APIRoute], str] = _route_id,
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
) -> APIRouter:
    """Build the customer REST API as a router to include in a FastAPI application.

    Every route runs for the tenant ``get_tenant_id`` resolves, as the user ``get_actor``
    resolves; both are ordinary FastAPI dependencies (functions, async functions or
    callables, with dependencies of their own), so the host decides how requests
    authenticate. ``header_tenancy()`` and ``jwt_tenancy(...)`` provide ready ones.
    The router resolves the tenant, the actor and the service as one dependency per
    request (FastAPI's CPU per dependency counts on the hottest routes): an async
    function among them is called by that one, with its parameters resolved as
    FastAPI resolves them, so ``app.dependency_overrides`` reaches its own
    dependencies; an override of the function itself is called in its place when it
    takes no parameters (``app.dependency_overrides[get_tenant] = lambda: "t1"``)
    and refused with a ``TypeError`` otherwise; any other kind (a sync function, a
    generator, a class) stays a dependency FastAPI resolves and can override.

    Errors are raised as library errors; install ``add_problem_handlers(app)`` on the
    application to answer them with ``application/problem+json`` bodies.

    Args:
        customer_service: The service, or a FastAPI dependency that returns it (to pick
            a service per request, say).
        gdpr_service: The ``GDPRService``, or a dependency that returns it, for the GDPR
            routes: ``/{customer_id}/export``, ``/{customer_id}/gdpr``,
            ``/{customer_id}/consent``, ``/{customer_id}/audit`` and ``/audit-events``.
            None (the default): the router serves no GDPR routes. It must work on the
            same storage as ``customer_service``.
        ai_service: The ``AIService``, or a dependency that returns it, for the
            intelligence routes: ``/{customer_id}/segment``, ``/{customer_id}/churn-risk``,
            ``/{customer_id}/clv``, ``/{customer_id}/similar``,
            ``/{customer_id}/recommendations`` and ``POST /score``. None (the default):
            the router serves no intelligence routes. It must work on the same storage
            as ``customer_service``.
        get_tenant_id: Dependency returning the request's tenant id. A value that is not
            a valid tenant id is answered with 400 (``tenant_required``); raise your own
            error (401, say) from the dependency to answer otherwise.
        get_actor: Dependency returning the acting user's id (or None); recorded in the
            audit trail and as the author of notes. None: requests act anonymously.
        prefix: Path prefix of every route.
        tags: OpenAPI tags of every route.
        dependencies: More dependencies run for every route (authorization, say).
        customer_create_schema: A subclass of ``CustomerCreate`` carrying the host's extra
            customer fields; the body of ``POST /customers``.
        customer_update_schema: Likewise for ``PATCH /customers/{customer_id}``.
        customer_response_schema: A subclass of ``CustomerResponse`` returning those fields.
        generate_unique_id_function: Makes each route's OpenAPI ``operationId``; by default
            the route's name (``create_customer``, ...). Pass another function when the
            router is included more than once in an application, so the ids stay unique.
        max_body_size: The largest request body read, in bytes (1 MiB by default). A
            larger one is answered with 413 ``body_too_large`` without being read
            whole. None: no limit here (the host limits bodies in front of the API).
            Either way a JSON body must be UTF-8 (422 ``invalid_input`` otherwise).

    Returns:
        A new router; call once per application (or per mount point).
    """
    actor_dependency = get_actor or _no_actor

    def context_of(
        kind: type[Any], context: type[Any], service: Any, label: str
    ) -> Callable[..., Any]:
        """The request context dependency of a service: one dependency resolving the
        tenant, the acting user and the service (see ``one_dependency``)."""

        def build(tenant_id: Any, actor: Any, service: Any) -> Any:
            tenant_id = _checked_tenant(tenant_id)
            if not isinstance(service, kind):
                raise TypeError(f"the {label} dependency returned {type(service).__name__}")
            return context(service=service, tenant_id=tenant_id, actor=check_actor(actor))

        return one_dependency(
            build,
            tenant_id=get_tenant_id,
            actor=actor_dependency,
            service=_service_dependency(service, kind),
        )

    request_context = context_of(CustomerService, RequestContext, customer_service, "service")
    gdpr_context: Any = None
    if gdpr_service is not None:
        gdpr_context = Annotated[
            GDPRRequestContext,
            Depends(context_of(GDPRService, GDPRRequestContext, gdpr_service, "GDPR service")),
        ]
    ai_context: Any = None
    if ai_service is not None:
        ai_context = Annotated[
            AIRequestContext,
            Depends(context_of(AIService, AIRequestContext, ai_service, "AI service")),
        ]

    router = APIRouter(
        route_class=limited_route_class(
            max_body_size, _request_errors(get_tenant_id, actor_dependency)
        ),
        prefix=prefix,
        tags=list(tags),
        dependencies=list(dependencies),
        generate_unique_id_function=generate_unique_id_function,
    )
    settings = RouteSettings(
        context=Annotated[RequestContext, Depends(request_context)],
        customer_create=customer_create_schema,
        customer_update=customer_update_schema,
        customer_response=customer_response_schema,
        gdpr_context=gdpr_context,
        ai_context=ai_context,
    )
    # Starlette tries routes in order: fixed paths before ``/{customer_id}``.
    fixed: tuple[RouteGroup, ...] = (add_tenant_duplicate_routes,)
    groups = ROUTE_GROUPS
    if gdpr_context is not None:
        fixed += (add_tenant_audit_routes,)
        groups += GDPR_ROUTE_GROUPS
    if ai_context is not None:
        fixed += (add_tenant_scoring_routes,)
        groups += AI_ROUTE_GROUPS
    for add_routes in (*fixed, *groups):
        add_routes(router, settings)
    return router
