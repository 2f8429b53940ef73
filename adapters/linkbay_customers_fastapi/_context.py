"""What the router factory hands to each group of routes it builds."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin

from fastapi import BackgroundTasks, Depends, Request, Response, WebSocket, params
from fastapi.dependencies.utils import get_typed_signature
from fastapi.security import SecurityScopes
from starlette.requests import HTTPConnection

from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers.services import AIService, CustomerService, GDPRService

__all__ = (
    "AIRequestContext",
    "GDPRRequestContext",
    "RequestContext",
    "RouteSettings",
    "one_dependency",
    "with_annotations",
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
R = TypeVar("R")

# Parameters FastAPI fills by their type, or from a dependency, whatever their name.
_INJECTED = (Request, HTTPConnection, WebSocket, Response, BackgroundTasks, SecurityScopes)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


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


def _merged_name(key: str, parameter: inspect.Parameter) -> str:
    """The parameter's name in the merged dependency: its own for a header, query or
    path parameter (the name says what it reads); one per type for a type FastAPI
    injects (it fills one such parameter per function); prefixed by ``key`` for a
    dependency."""
    annotation = parameter.annotation
    if isinstance(parameter.default, params.Depends):
        return f"{key}__{parameter.name}"
    if get_origin(annotation) is Annotated:
        if any(isinstance(extra, params.Depends) for extra in get_args(annotation)[1:]):
            return f"{key}__{parameter.name}"
        annotation = get_args(annotation)[0]
    for injected in _INJECTED:
        if isinstance(annotation, type) and issubclass(annotation, injected):
            return f"injected__{injected.__name__}"
    return parameter.name


def _inlined(key: str, call: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    """The parameters of an async function dependency, by their names in it, renamed
    for the merged dependency (``_merged_name``); None for a dependency FastAPI must
    call itself (a sync function, which it runs in a thread; a generator; a class)."""
    if not inspect.iscoroutinefunction(call):
        return None
    found = {}
    for parameter in get_typed_signature(call).parameters.values():
        if parameter.kind not in _NAMED:
            return None
        found[parameter.name] = parameter.replace(
            name=_merged_name(key, parameter), kind=inspect.Parameter.KEYWORD_ONLY
        )
    return found


def _same(a: inspect.Parameter, b: inspect.Parameter) -> bool:
    """Whether two dependencies' parameters of one name read the same input (two
    ``Header()`` defaults alike are two objects, equal in every setting)."""
    return a.kind == b.kind and a.annotation == b.annotation and repr(a.default) == repr(b.default)


def _shared_parameters(
    inlined: list[dict[str, inspect.Parameter] | None],
) -> tuple[int, dict[str, inspect.Parameter]]:
    """How many of the dependencies, from the first, stay dependencies FastAPI
    resolves (they run before the others, so the order holds), and the parameters
    the others share: those after the last that cannot be inlined or whose
    parameters clash with another's."""
    while True:
        nested = max((n + 1 for n, found in enumerate(inlined) if found is None), default=0)
        merged: dict[str, inspect.Parameter] = {}
        for n in range(nested, len(inlined)):
            found = inlined[n]
            assert found is not None
            if any(p.name in merged and not _same(merged[p.name], p) for p in found.values()):
                inlined[n] = None
                break
            merged.update((p.name, p) for p in found.values())
        else:
            return nested, merged


def one_dependency(
    build: Callable[..., R], **dependencies: Callable[..., Any]
) -> Callable[..., Awaitable[R]]:
    """One FastAPI dependency returning ``build(**values)``, each value that of the
    dependency of the same name, the dependencies run in the order given.

    FastAPI resolves every dependency of a request in turn, at a cost in CPU of its
    own; here the async function dependencies are called by this one, which takes
    their parameters (headers, the request, their own dependencies, resolved
    first) as its own, so a request resolves one dependency where it would resolve
    one per value. A dependency FastAPI must call itself (a sync function, a
    generator), or whose parameters clash with another's, stays a dependency of
    this one, and so do those before it. ``app.dependency_overrides`` applies to
    the dependencies' own dependencies, and to those kept as dependencies; an
    override of a dependency called by this one is called instead of it when it
    takes no parameters (``lambda: "tenant-a"``, as tests override), and refused
    with a ``TypeError`` naming it otherwise.
    """
    keys = list(dependencies)
    nested, merged = _shared_parameters([_inlined(k, dependencies[k]) for k in keys])
    parameters = [
        inspect.Parameter(
            f"{key}__value",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[Any, Depends(dependencies[key])],
        )
        for key in keys[:nested]
    ]
    inlined = [
        (key, dependencies[key], _inlined(key, dependencies[key]) or {}) for key in keys[nested:]
    ]
    # The request, to find the application's overrides of the dependencies called here.
    request_name = "injected__Request"
    if inlined and request_name not in merged:
        merged[request_name] = inspect.Parameter(
            request_name, inspect.Parameter.KEYWORD_ONLY, annotation=Request
        )

    async def dependency(**values: Any) -> R:
        resolved = {key: values[f"{key}__value"] for key in keys[:nested]}
        overrides: dict[Any, Any] = {}
        if inlined:
            overrides = getattr(values[request_name].app, "dependency_overrides", None) or {}
        for key, call, names in inlined:
            override = overrides.get(call)
            if override is not None:
                resolved[key] = await _overridden(key, override)
            else:
                resolved[key] = await call(**{inner: values[p.name] for inner, p in names.items()})
        return build(**resolved)

    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*parameters, *merged.values()]
    )
    return dependency


async def _overridden(key: str, override: Callable[..., Any]) -> Any:
    """The value of an override (``app.dependency_overrides``) of a dependency
    ``one_dependency`` calls itself: an override that takes no parameters."""
    required = [
        p.name
        for p in inspect.signature(override).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if inspect.isgeneratorfunction(override) or inspect.isasyncgenfunction(override):
        required = ["it yields"]
    if required:
        raise TypeError(
            f"the override of the router's {key} dependency takes parameters or yields"
            f" ({', '.join(required)}): override it with a function of no parameters"
            " returning the value, or override the dependencies it depends on"
        )
    value = override()
    return await value if inspect.isawaitable(value) else value
