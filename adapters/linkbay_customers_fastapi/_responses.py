"""Responses serialized once: the model an endpoint built, as JSON bytes."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel

__all__ = ("model_response",)


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as an ``application/json`` response, serialized straight to bytes.

    A model returned by an endpoint is validated again by FastAPI against the
    route's ``response_model``, then serialized; one built with ``from_domain`` was
    validated already, and a response is sent as it is. The bytes are the ones
    FastAPI would send (fields by alias, the same JSON serializers), and the
    route's ``response_model`` still documents it.
    """
    body = model.__pydantic_serializer__.to_json(model, by_alias=True)
    return Response(body, status_code=status_code, media_type="application/json")
