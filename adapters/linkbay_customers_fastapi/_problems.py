"""Errors as ``application/problem+json`` (RFC 9457), with the library's stable codes.

Every error a route can return has the same shape: ``type``, ``title``, ``status`` and
``detail`` from RFC 9457, plus ``code`` (the stable error code of ``LinkbayError``) and
``field`` (the input the error is about, or null). Validation errors add ``errors``,
one entry per offending field.
"""

from __future__ import annotations

import http
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from linkbay_customers.domain import (
    AddressNotFound,
    ConsentTypeUnknown,
    CustomerNotFound,
    DuplicateDecisionNotFound,
    DuplicateEmail,
    FieldError,
    InvalidDuplicateDecision,
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
from linkbay_customers.schemas import field_error_message

__all__ = (
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_SCHEMA_REF",
    "CONTEXT_ERRORS",
    "REQUEST_ERRORS",
    "BodyTooLarge",
    "InvalidHeader",
    "NotAuthenticated",
    "Problem",
    "ProblemFieldError",
    "ProblemResponse",
    "TenantRequired",
    "add_problem_handlers",
    "answered_by",
    "answers",
    "add_problem_schemas",
    "merge_problem_responses",
    "problem_responses",
    "problem_schemas",
    "status_for",
)

F = TypeVar("F", bound=Callable[..., Any])

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
    DuplicateDecisionNotFound: (404, "Duplicate decision not found"),
    DuplicateEmail: (409, "Email already in use"),
    InvalidMerge: (409, "Merge not possible"),
    InvalidDuplicateDecision: (409, "Duplicate decision not possible"),
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
    return _mapping(type(error))


def _mapping(error: type[LinkbayError]) -> tuple[int, str]:
    for cls in error.__mro__:
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
            message=field_error_message(item) if "msg" in item else "invalid value",
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
    the app that includes ``create_customer_router(...)``. The application's OpenAPI
    document (``app.openapi()``) then has the ``Problem`` schema every problem response
    refers to (see ``add_problem_schemas``).

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
    generate_document = app.openapi

    def openapi() -> dict[str, Any]:
        return add_problem_schemas(generate_document())

    # FastAPI's documented way to change an application's document: replace the method.
    app.openapi = openapi  # type: ignore[method-assign]
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

PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
"""Where every problem response of the OpenAPI document points: the ``Problem`` component,
which ``add_problem_schemas`` adds to the document."""

_CODES_EXTENSION = "x-problem-codes"

# Codes the framework's errors carry rather than a library error (see the handlers above).
_FRAMEWORK_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (
        400,
        "The body could not be parsed at all (nested too deep, a number too long).",
    ),
    "internal_error": (500, "The server failed to complete the request."),
}

CONTEXT_ERRORS: tuple[type[LinkbayError], ...] = (TenantRequired, InvalidHeader, NotAuthenticated)
"""What a tenant or actor dependency that declares nothing (``answers``) may answer:
the library's tenant, header and credential problems."""

REQUEST_ERRORS: tuple[type[LinkbayError], ...] = (
    *CONTEXT_ERRORS,
    InvalidInput,
    StorageRejected,
    SchemaNotMigrated,
    StorageError,
)
"""The errors any route can answer: the tenant, the headers, the credentials, the input
and the storage."""

_ANSWERS = "linkbay_problems"


def answers(*errors: type[LinkbayError]) -> Callable[[F], F]:
    """Declare the problems a tenant or actor dependency answers with, so that the
    routes' OpenAPI document lists those and no others (see ``answered_by``)."""

    def declare(dependency: F) -> F:
        vars(dependency)[_ANSWERS] = errors
        return dependency

    return declare


def answered_by(dependency: Callable[..., Any]) -> tuple[type[LinkbayError], ...]:
    """The problems a dependency declared with ``answers``; ``CONTEXT_ERRORS`` for one
    that declared none (a host's own dependency)."""
    declared = getattr(dependency, "__dict__", {}).get(_ANSWERS)
    return CONTEXT_ERRORS if declared is None else tuple(declared)


_HEADERS = {
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    }
}


def _explanation(error: type[LinkbayError]) -> str:
    doc = (error.__doc__ or "").strip().split("\n\n", 1)[0]
    # The adapter's errors name their status in parentheses; the entry is under it already.
    return re.sub(r" \(HTTP \d{3}\)", "", " ".join(doc.split())).replace("``", "`")


def _code_status(code: str) -> tuple[int, str]:
    if code in _FRAMEWORK_CODES:
        return _FRAMEWORK_CODES[code]
    for error in _STATUSES:
        if error.code == code:
            return _mapping(error)[0], _explanation(error)
    raise ValueError(f"no error has the code {code!r}")


def _response_entry(status: int, codes: Sequence[str], description: str | None) -> dict[str, Any]:
    ordered = sorted(set(codes))
    explained = "\n".join(f"- `{code}`: {_code_status(code)[1]}" for code in ordered)
    return {
        "description": description or f"{http.HTTPStatus(status).phrase}, one of:\n\n{explained}",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        _CODES_EXTENSION: ordered,
    }


def _codes_of(errors: Iterable[type[LinkbayError] | int | str]) -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for error in errors:
        if isinstance(error, str):
            status = _code_status(error)[0]
            codes = [error]
        elif isinstance(error, int):
            status = error
            codes = [cls.code for cls, (mapped, _) in _STATUSES.items() if mapped == status] + [
                code for code, (mapped, _) in _FRAMEWORK_CODES.items() if mapped == status
            ]
            codes = [code for code in codes if code != LinkbayError.code] or [_http_code(status)]
        else:
            status = _mapping(error)[0]
            codes = [error.code]
        by_status.setdefault(status, [])
        by_status[status] += [code for code in codes if code not in by_status[status]]
    return by_status


def problem_responses(
    *errors: type[LinkbayError] | int | str, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem+json errors a route can return.

    Each entry refers to the ``Problem`` component (``add_problem_handlers`` adds it to
    the application's document), lists its codes in its description, and in
    ``x-problem-codes`` for programs.

    Args:
        *errors: The library errors the route can raise (``CustomerNotFound``, ...), each
            documented under the status it maps to; the code of a framework error
            (``bad_request``, ``internal_error``); or HTTP statuses, documented with every
            code of that status.
        descriptions: Route-specific descriptions replacing the general ones, by status.
    """
    given = descriptions or {}
    return {
        status: _response_entry(status, codes, given.get(status))
        for status, codes in sorted(_codes_of(errors).items())
    }


def merge_problem_responses(
    *responses: Mapping[int | str, Mapping[str, Any]],
) -> dict[int | str, dict[str, Any]]:
    """Responses documented together: a status in several gets the codes of all of them.

    Entries not made by ``problem_responses`` (a success response, say) are kept as
    given; for a status in several, the last description given by hand wins.
    """
    merged: dict[int | str, dict[str, Any]] = {}
    for entries in responses:
        for status, entry in entries.items():
            known = merged.get(status)
            if known is None or _CODES_EXTENSION not in known or _CODES_EXTENSION not in entry:
                merged[status] = dict(entry)
                continue
            codes = [*known[_CODES_EXTENSION], *entry[_CODES_EXTENSION]]
            description = None
            for candidate in (known, entry):
                written = candidate["description"]
                if (
                    written
                    != _response_entry(int(status), candidate[_CODES_EXTENSION], None)[
                        "description"
                    ]
                ):
                    description = written
            merged[status] = _response_entry(int(status), codes, description)
    return merged


def problem_schemas() -> dict[str, dict[str, Any]]:
    """The OpenAPI component schemas of the problem document: ``Problem``, ``ProblemFieldError``."""
    schema = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    definitions: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


def add_problem_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Problem`` and ``ProblemFieldError`` schemas to an OpenAPI document.

    ``add_problem_handlers(app)`` makes ``app.openapi()`` call this; call it yourself
    when the application builds its document another way (``fastapi.openapi.utils.
    get_openapi``, say). Calling it twice changes nothing.

    Returns:
        The document, changed in place.

    Raises:
        ValueError: The document already has a different schema of one of those names
            (the application's own model named ``Problem``, say): rename that model.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in problem_schemas().items():
        existing = schemas.setdefault(name, schema)
        if existing != schema and set(existing.get("properties", {})) != set(
            schema.get("properties", {})
        ):
            raise ValueError(
                f"the OpenAPI document already has a schema named {name!r} that is not the "
                "library's; rename the application's model"
            )
    return document
