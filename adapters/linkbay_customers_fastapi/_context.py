"""What the router factory hands to each group of routes it builds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers.services import AIService, CustomerService, GDPRService

__all__ = (
    "AIRequestContext",
    "GDPRRequestContext",
    "RequestContext",
    "RouteSettings",
    "with_annotations",
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What every endpoint needs: the service, and the tenant and acting user of the request."""

    service: CustomerService
    tenant_id: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class GDPRRequestContext:
    """What every GDPR endpoint needs: the GDPR service, the tenant and the acting user."""

    service: GDPRService
    tenant_id: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class AIRequestContext:
    """What every intelligence endpoint needs: the AI service, the tenant and the acting user."""

    service: AIService
    tenant_id: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """Choices made once per router: the request context dependency and the schemas.

    Attributes:
        context: ``Annotated[RequestContext, Depends(...)]``: how endpoints receive the
            request context.
        customer_create: The schema of ``POST /customers`` bodies.
        customer_update: The schema of ``PATCH /customers/{id}`` bodies.
        customer_response: The schema customers are returned as.
        gdpr_context: ``Annotated[GDPRRequestContext, Depends(...)]``, or None when the
            router has no GDPR service (and so no GDPR routes).
        ai_context: ``Annotated[AIRequestContext, Depends(...)]``, or None when the
            router has no AI service (and so no intelligence routes).
    """

    context: Any
    customer_create: type[CustomerCreate]
    customer_update: type[CustomerUpdate]
    customer_response: type[CustomerResponse]
    gdpr_context: Any = None
    ai_context: Any = None

    def endpoint(self, **annotations: object) -> Callable[[F], F]:
        """Give an endpoint its ``ctx: RequestContext`` parameter (and ``annotations``)."""
        return with_annotations(ctx=self.context, **annotations)

    def gdpr_endpoint(self, **annotations: object) -> Callable[[F], F]:
        """Give an endpoint its ``ctx: GDPRRequestContext`` parameter (and ``annotations``).

        Raises:
            RuntimeError: the router has no GDPR service.
        """
        if self.gdpr_context is None:
            raise RuntimeError("GDPR routes need a router built with a gdpr_service")
        return with_annotations(ctx=self.gdpr_context, **annotations)

    def ai_endpoint(self, **annotations: object) -> Callable[[F], F]:
        """Give an endpoint its ``ctx: AIRequestContext`` parameter (and ``annotations``).

        Raises:
            RuntimeError: the router has no AI service.
        """
        if self.ai_context is None:
            raise RuntimeError("intelligence routes need a router built with an ai_service")
        return with_annotations(ctx=self.ai_context, **annotations)


def with_annotations(**annotations: object) -> Callable[[F], F]:
    """Give an endpoint parameter annotations that are objects chosen at run time.

    With ``from __future__ import annotations`` every annotation is a string, and
    FastAPI evaluates it in the module's globals. A type or dependency known only inside
    the router factory (a host's subclass of ``CustomerCreate``, the host's tenant
    dependency) is set here as an object.
    """

    def apply(func: F) -> F:
        func.__annotations__.update(annotations)
        return func

    return apply
