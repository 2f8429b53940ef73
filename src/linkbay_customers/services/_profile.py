"""Building a customer from input and applying input to one: shared by create, update, import."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from linkbay_customers.domain import (
    PROFILE_FIELDS,
    Customer,
    InvalidInput,
    check_preferences,
    is_international_phone,
    merge_patch,
    normalize_phone,
)
from linkbay_customers.schemas import CustomerCreate, extra_values

__all__ = (
    "FUTURE_TOLERANCE",
    "apply_profile",
    "build_customer",
    "check_birthday",
    "check_new_customer",
    "check_not_in_the_future",
    "customer_of_values",
    "resolve_phone",
)

M = TypeVar("M", bound=BaseModel)


def resolve_phone(data: M, region: str | None, *, field: str = "phone") -> M:
    """``data`` with its ``phone`` in E.164 form, a national number read in ``region``.

    The schema has already normalized a number written with its country code; one
    written without it is resolved here, where the host's default region is known.

    Raises:
        InvalidInput: naming ``field``: not a valid number in ``region``, or
            national with no region set.
    """
    phone = getattr(data, "phone", None)
    if phone is None or is_international_phone(phone):
        return data
    try:
        phone = normalize_phone(phone, region)
    except ValueError as exc:
        raise InvalidInput.single(field, str(exc)) from None
    return data.model_copy(update={"phone": phone})


FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far past the service's clock a given time may lie: the host's clock may run ahead."""


def check_not_in_the_future(field: str, moment: datetime | None, now: datetime) -> None:
    """A time given for something that happened (an order, a sign-up) may not lie ahead.

    Raises:
        InvalidInput: naming ``field``.
    """
    if moment is not None and moment > now + FUTURE_TOLERANCE:
        raise InvalidInput.single(field, "must not be in the future")


def check_new_customer(data: CustomerCreate, now: datetime) -> None:
    """A new customer's birthday and sign-up time may not lie in the future.

    Raises:
        InvalidInput: naming ``birthday`` or ``created_at``.
    """
    check_birthday(data.birthday, now.date())
    check_not_in_the_future("created_at", data.created_at, now)


def check_birthday(birthday: date | None, today: date) -> None:
    """A birthday may not lie in the future.

    Raises:
        InvalidInput: naming ``birthday``.
    """
    if birthday is not None and birthday > today:
        raise InvalidInput.single("birthday", "must not be in the future")


def build_customer(
    data: CustomerCreate, *, customer_id: int, tenant_id: str, now: datetime
) -> Customer:
    """A new customer from validated input (fields a host's subclass adds become extras)."""
    return customer_of_values(
        vars(data),
        extra=extra_values(data, CustomerCreate, only_set=False),
        customer_id=customer_id,
        tenant_id=tenant_id,
        now=now,
    )


def customer_of_values(
    values: Mapping[str, Any],
    *,
    extra: dict[str, Any],
    customer_id: int,
    tenant_id: str,
    now: datetime,
) -> Customer:
    """A new customer from the values of a validated ``CustomerCreate``, by field name
    (``preferences`` a mapping or its items, ``tags`` any iterable), and its extras."""
    return Customer(
        id=customer_id,
        tenant_id=tenant_id,
        email=values["email"],
        first_name=values["first_name"],
        last_name=values["last_name"],
        phone=values["phone"],
        birthday=values["birthday"],
        gender=values["gender"],
        preferences=dict(values["preferences"]),
        tags=list(values["tags"]),
        # A customer brought over from another system keeps the time it signed up.
        created_at=values["created_at"] or now,
        updated_at=now,
        extra=extra,
    )


def apply_profile(
    customer: Customer, data: BaseModel, base: type[BaseModel], fields: Collection[str]
) -> list[str]:
    """Apply the profile fields named in ``fields`` from ``data``; return what changed.

    ``preferences`` is a JSON Merge Patch (``None`` clears them all); ``tags`` and
    every other field are replaced (``None`` clears an optional field). Fields a
    host's subclass of ``base`` adds are applied to the customer's extras.
    """
    changed: list[str] = []
    for name in PROFILE_FIELDS:
        if name not in fields:
            continue
        value: Any = getattr(data, name)
        if name == "preferences":
            value = (
                {} if value is None else check_preferences(merge_patch(customer.preferences, value))
            )
        elif name == "tags":
            value = [] if value is None else list(value)
        if getattr(customer, name) != value:
            setattr(customer, name, value)
            changed.append(name)
    extras = extra_values(data, base, only_set=True)
    for name, value in extras.items():
        if name in fields and customer.extra.get(name) != value:
            customer.extra[name] = value
            changed.append(name)
    return changed
