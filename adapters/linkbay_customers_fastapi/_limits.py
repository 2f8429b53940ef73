"""Request bodies as the API reads them: bounded in size, and JSON in UTF-8 only."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from linkbay_customers.domain import InvalidInput, LinkbayError
from linkbay_customers_fastapi._problems import (
    REQUEST_ERRORS,
    BodyTooLarge,
    merge_problem_responses,
    problem_responses,
)

__all__ = ("DEFAULT_MAX_BODY_SIZE", "limited_route_class")

DEFAULT_MAX_BODY_SIZE = 1_048_576
"""The largest request body the API reads by default, in bytes (1 MiB): a customer
with the largest preferences and fifty tags, or an order of a thousand lines, is far
smaller."""


_UTF8 = ("utf-8", "utf-8-sig")


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _read_body(request: Request, limit: int | None) -> bytes:
    """The body, read until it exceeds ``limit`` bytes (None: whole), and no further."""
    if limit is None:
        return await request.body()
    too_large = BodyTooLarge(f"the request body must be at most {limit} bytes")
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(request: Request) -> bool:
    # FastAPI parses a body without a content type as JSON too.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return not media_type or media_type == "application/json" or media_type.endswith("+json")


def _check_utf8(body: bytes) -> None:
    # JSON exchanged between systems is UTF-8 (RFC 8259 §8.1); the standard library's
    # parser guesses UTF-16 and UTF-32 from the first bytes (ASCII text in UTF-16 is
    # valid UTF-8 with NULs between) and would accept them.
    try:
        if json.detect_encoding(body) not in _UTF8:
            raise UnicodeError
        body.decode("utf-8")
    except UnicodeError:
        raise InvalidInput.single(
            "body", "must be JSON encoded as UTF-8", type="json_invalid"
        ) from None


def limited_route_class(
    max_body_size: int | None, request_errors: Sequence[type[LinkbayError]] = REQUEST_ERRORS
) -> type[APIRoute]:
    """A route class reading at most ``max_body_size`` bytes of a request's body.

    A larger body is answered with 413 ``body_too_large`` as soon as its declared
    length or the bytes received so far exceed the limit, without reading the rest
    (None: no limit). A JSON body that is not UTF-8 is answered with 422
    ``invalid_input`` (field ``body``). Routes without a body are left as they are.

    Each route documents, besides the problems it declares, those every route can
    return (``request_errors``, ``internal_error``) and, when it reads a body, the
    body's (``bad_request``, and ``body_too_large`` under a limit).

    Raises:
        ValueError: ``max_body_size`` is neither None nor a positive number of bytes.
    """
    if max_body_size is not None and (
        isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1
    ):
        raise ValueError("max_body_size must be a positive number of bytes, or None")

    class LimitedBodyRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            super().__init__(path, endpoint, **kwargs)
            body_errors: tuple[type[BodyTooLarge] | str, ...] = ()
            if self.body_field is not None:
                body_errors = ("bad_request", BodyTooLarge) if max_body_size else ("bad_request",)
            common = problem_responses(*request_errors, "internal_error", *body_errors)
            self.responses = merge_problem_responses(common, self.responses)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if self.body_field is None:
                return handler

            async def read_then_handle(request: Request) -> Response:
                body = await _read_body(request, max_body_size)
                if body and _is_json(request):
                    _check_utf8(body)
                # Where Starlette keeps a body it has read: FastAPI then parses this one.
                request._body = body
                return await handler(request)

            return read_then_handle

    return LimitedBodyRoute
