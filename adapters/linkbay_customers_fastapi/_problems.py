"""Errors as ``application/problem+json`` (RFC 9457), with the library's stable codes.

Every error a route can return has the same shape: ``type``, ``title``, ``status`` and
``detail`` from RFC 9457, plus ``code`` (the stable error code of ``LinkbayError``) and
``field`` (the input the error is about, or null). Validation errors add ``errors``,
one entry per offending field.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from linkbay_customers.domain import (
    AddressNotFound,
    ConsentTypeUnknown,
    CustomerNotFound,
    DuplicateEmail,
    FieldError,
    InvalidInput,
    InvalidMerge,
    LinkbayError,
    OrderConflict,
    ProfilingNotAllowed,
    SchemaNotMigrated,
    StorageError,
    StorageRejected,
    StorageRoleMissing,
    TooManyAddresses,
)

__all__ = (
    "PROBLEM_MEDIA_TYPE",
    "BodyTooLarge",
    "InvalidHeader",
    "NotAuthenticated",
    "Problem",
    "ProblemFieldError",
    "ProblemResponse",
    "TenantRequired",
    "add_problem_handlers",
    "problem_responses",
    "status_for",
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:linkbay-customers:problem:"

_logger = logging.getLogger("linkbay_customers_fastapi")


# ------------------------------------------------------------------------- adapter errors


class TenantRequired(LinkbayError):
    """The request names no tenant, or one that is not a valid tenant id (HTTP 400)."""

    code = "tenant_required"
    field = "tenant_id"


class InvalidHeader(LinkbayError):
    """A request header the API reads is malformed (HTTP 400)."""

    code = "invalid_header"


class BodyTooLarge(LinkbayError):
    """The request body is larger than the API accepts (HTTP 413)."""

    code = "body_too_large"
    field = "body"


class NotAuthenticated(LinkbayError):
    """No bearer token, or one that is not valid: bad signature, expired, no tenant (HTTP 401)."""

    code = "not_authenticated"
    field = "Authorization"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.headers = {"WWW-Authenticate": "Bearer"}


# ------------------------------------------------------------------------------- the body


class ProblemFieldError(BaseModel):
    """One offending input field of a validation problem."""

    field: str = Field(description="Dotted path of the field, such as `items.0.quantity`.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable kind of error, such as `missing`.")


class Problem(BaseModel):
    """An error, as an RFC 9457 problem document with the library's stable code."""

    type: str = Field(
        description="A URI naming the kind of problem: `urn:linkbay-customers:problem:<code>`, "
        "or `about:blank` for plain HTTP errors such as an unknown route."
    )
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this occurrence.")
    code: str = Field(description="A stable, machine-readable error code.")
    field: str | None = Field(description="The input field the error is about, if any.")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Every offending field (validation errors only)."
    )


class ProblemResponse(JSONResponse):
    """A JSON response with the ``application/problem+json`` media type."""

    media_type = PROBLEM_MEDIA_TYPE


# ------------------------------------------------------------------------ status mapping

# Looked up along the error's MRO, so a subclass maps like its base.
_STATUSES: dict[type[LinkbayError], tuple[int, str]] = {
    TenantRequired: (400, "Tenant required"),
    InvalidHeader: (400, "Invalid header"),
    NotAuthenticated: (401, "Not authenticated"),
    BodyTooLarge: (413, "Request body too large"),
    CustomerNotFound: (404, "Customer not found"),
    AddressNotFound: (404, "Address not found"),
    DuplicateEmail: (409, "Email already in use"),
    InvalidMerge: (409, "Merge not possible"),
    OrderConflict: (409, "Order conflict"),
    TooManyAddresses: (409, "Too many addresses"),
    # The customer's consent state, not the caller's rights, forbids it: a conflict
    # with the stored state, which recording the consent resolves (not 403).
    ProfilingNotAllowed: (409, "Profiling not allowed"),
    ConsentTypeUnknown: (422, "Unknown consent type"),
    InvalidInput: (422, "Invalid input"),
    # A refusal the same request would meet again (a constraint of the host's
    # schema the library maps to no domain error, a missing table): the server's
    # fault, and not worth retrying, so not a 503.
    StorageRejected: (500, "Storage rejected the request"),
    # A database never migrated: no retry cures it, migrating does (its detail says how).
    SchemaNotMigrated: (500, "Database schema not migrated"),
    # The storage the host plugged in lacks an optional role the route needs: the
    # server does not support the operation, whoever asks (not the client's fault).
    StorageRoleMissing: (501, "Not supported by the storage"),
    StorageError: (503, "Storage unavailable"),
    LinkbayError: (400, "Bad request"),
}

_STORAGE_DETAIL = "The storage failed to complete the request; try again later."
_STORAGE_REJECTED_DETAIL = (
    "The storage refused to complete the request and would refuse it again: retrying will not"
    " help. The cause is in the server's log."
)
# Long enough for a lock to clear or a pool to free a connection, short enough
# not to hold a client back once the database is reachable again.
_RETRY_AFTER_SECONDS = 5


def status_for(error: LinkbayError) -> int:
    """The HTTP status code a library error maps to."""
    return _status_and_title(error)[0]


def _status_and_title(error: LinkbayError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in _STATUSES:
            return _STATUSES[cls]
    return _STATUSES[LinkbayError]  # pragma: no cover - every LinkbayError has it in its MRO


def _printable(value: Any) -> Any:
    # Field names and messages can quote the request (a JSON key, a header); a lone
    # surrogate there would make the body unencodable, so it is written out as an escape.
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value


def _problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    field: str | None,
    errors: Iterable[FieldError] | None = None,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": type_ or f"{_TYPE_PREFIX}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "field": field,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message, "type": e.type} for e in errors]
    return ProblemResponse(_printable(body), status_code=status, headers=headers)


def _linkbay_problem(error: LinkbayError) -> ProblemResponse:
    status, title = _status_and_title(error)
    detail = error.message
    headers: Mapping[str, str] | None = getattr(error, "headers", None)
    # The driver's message can quote SQL and values; it goes to the log only.
    if isinstance(error, SchemaNotMigrated):
        _logger.error("%s", error.message, exc_info=error)
    elif isinstance(error, StorageRejected):
        _logger.error("storage rejected the request: %s", error.message, exc_info=error)
        detail = _STORAGE_REJECTED_DETAIL
    elif isinstance(error, StorageError):
        _logger.warning("storage error: %s", error.message, exc_info=error)
        detail = _STORAGE_DETAIL
        headers = {"Retry-After": str(_RETRY_AFTER_SECONDS)}
    return _problem(
        status,
        code=error.code,
        title=title,
        detail=detail,
        field=error.field,
        errors=error.errors if isinstance(error, InvalidInput) else None,
        headers=headers,
    )


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def _field_name(loc: Sequence[Any], error_type: str) -> str:
    parts = [str(part) for part in loc]
    if error_type == "json_invalid":
        return "body"
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_problem(error: RequestValidationError) -> ProblemResponse:
    errors = [
        FieldError(
            field=_field_name(item.get("loc", ()), str(item.get("type", ""))),
            message=str(item.get("msg", "invalid value")),
            type=str(item.get("type", "value_error")),
        )
        for item in error.errors()
    ] or [FieldError(field="body", message="invalid request")]
    status, title = _STATUSES[InvalidInput]
    return _problem(
        status,
        code=InvalidInput.code,
        title=title,
        detail="; ".join(f"{e.field}: {e.message}" for e in errors),
        field=errors[0].field,
        errors=errors,
    )


def _http_code(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


def _http_problem(error: StarletteHTTPException) -> ProblemResponse:
    try:
        title = http.HTTPStatus(error.status_code).phrase
    except ValueError:
        title = "Error"
    detail = error.detail if isinstance(error.detail, str) else title
    return _problem(
        error.status_code,
        code=_http_code(error.status_code),
        title=title,
        detail=detail,
        field=None,
        type_="about:blank",
        headers=error.headers,
    )


def add_problem_handlers(app: FastAPI, *, framework_errors: bool = True) -> None:
    """Install the exception handlers that turn errors into problem+json responses.

    Exception handlers belong to the application, not to a router: call this once on
    the app that includes ``create_customer_router(...)``.

    Args:
        app: The FastAPI application.
        framework_errors: Also answer FastAPI's request validation errors (422), HTTP
            errors such as unknown routes (404, 405) and unexpected exceptions (500)
            with problem documents. Turn off when the application has its own handlers
            for those; library errors are handled either way.
    """

    async def on_linkbay_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, LinkbayError)
        return _linkbay_problem(exc)

    app.add_exception_handler(LinkbayError, on_linkbay_error)
    if not framework_errors:
        return

    async def on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(exc)

    async def on_http_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_problem(exc)

    async def on_unexpected_error(request: Request, exc: Exception) -> ProblemResponse:
        # Starlette logs the exception and re-raises it after this response is sent.
        return _problem(
            500,
            code="internal_error",
            title="Internal Server Error",
            detail="The server failed to complete the request.",
            field=None,
        )

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)


# ---------------------------------------------------------------------------------- OpenAPI

_DESCRIPTIONS = {
    400: "Bad request: no valid tenant, or a malformed header (`tenant_required`, "
    "`invalid_header`).",
    401: "Not authenticated: no valid bearer token, when the host authenticates requests "
    "(`not_authenticated`).",
    404: "Not found: an unknown id, or another tenant's (`customer_not_found`, "
    "`address_not_found`).",
    413: "The request body is larger than the API accepts (`body_too_large`).",
    409: "Conflict with the stored state (`duplicate_email`, `invalid_merge`, `order_conflict`).",
    422: "Invalid input; `errors` names every offending field (`invalid_input`).",
    500: "The storage refused the request and would refuse it again, so retrying will not "
    "help (`storage_rejected`: the host's schema or models need a change); or the server "
    "failed (`internal_error`).",
    503: "The storage failed for now (the database unreachable, a timeout, a lock, a "
    "serialization conflict); retrying after `Retry-After` seconds may succeed "
    "(`storage_error`).",
}

_HEADERS = {
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    }
}


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    # The problem schema is given inline: a component would need a route whose response
    # model it is, and would be listed under application/json as well.
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_PROBLEM_SCHEMA = _inline_schema(Problem)


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json errors of these statuses.

    Args:
        *statuses: The HTTP statuses to document.
        descriptions: Route-specific descriptions replacing the general ones.
    """
    given = descriptions or {}
    return {
        status: {
            "description": given.get(
                status, _DESCRIPTIONS.get(status, http.HTTPStatus(status).phrase)
            ),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }
