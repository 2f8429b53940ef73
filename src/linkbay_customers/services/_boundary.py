"""Checks every service applies to what crosses its boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from linkbay_customers.domain import MAX_ID, MAX_PAGE_SIZE, FieldError, InvalidInput
from linkbay_customers.schemas import field_error_message

__all__ = (
    "check_id",
    "check_page",
    "invalid_input_from",
    "validated",
)

M = TypeVar("M", bound=BaseModel)


def invalid_input_from(
    error: ValidationError, *, prefix: tuple[str | int, ...] = ()
) -> InvalidInput:
    """Turn pydantic's error into the library's, naming each field by its dotted path."""
    errors = [
        FieldError(
            field=".".join(str(part) for part in (*prefix, *item["loc"])) or "body",
            message=field_error_message(item),
            type=item["type"],
        )
        for item in error.errors(include_url=False)
    ]
    return InvalidInput(errors)


def validated(
    schema: type[M], data: M | Mapping[str, Any], *, prefix: tuple[str | int, ...] = ()
) -> M:
    """Accept a schema instance as is, or validate a mapping into one.

    ``prefix`` names where the mapping sits in a larger input (``("metadata",)``).

    Raises:
        InvalidInput: the mapping does not validate; every offending field is named.
    """
    if isinstance(data, schema):
        return data
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise invalid_input_from(exc, prefix=prefix) from None


def check_id(value: object) -> bool:
    """Whether a value can be an identifier at all (a positive signed 64-bit integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def check_page(page: object, page_size: object, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
    """Pages count from 1; a page holds 1 to ``max_page_size`` items."""
    if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= 1_000_000:
        raise InvalidInput.single("page", "must be an integer from 1 to 1000000")
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or not 1 <= page_size <= max_page_size
    ):
        raise InvalidInput.single("page_size", f"must be an integer from 1 to {max_page_size}")
