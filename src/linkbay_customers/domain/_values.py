"""Value objects and the pure rules that define them."""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

import phonenumbers
import pycountry
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

__all__ = (
    "COUNTRY_CODES",
    "EMBEDDING_DIMENSIONS",
    "MAX_ID",
    "MAX_MONEY",
    "MONEY_QUANTUM",
    "AddressType",
    "Segment",
    "check_phone_region",
    "embedding_values",
    "is_international_phone",
    "normalize_phone",
    "quantize_money",
)

MONEY_QUANTUM = Decimal("0.0001")
"""Money is kept to four decimal places (enough for every ISO 4217 currency)."""

MAX_MONEY = Decimal("99999999999999.9999")
"""The largest amount any stored figure may reach, a customer's total spent included:
what NUMERIC(19, 4) holds, and within SQLite's 64-bit integers at four decimals."""

MAX_ID = 2**63 - 1
"""Identifiers are signed 64-bit integers in every storage."""

EMBEDDING_DIMENSIONS = 32
"""Length of every customer embedding (a fixed-size vector column in SQL)."""


def embedding_values(vector: Iterable[float]) -> list[float]:
    """A vector as embeddings are kept: each component rounded to a 32-bit float, the
    precision of pgvector's ``vector``, so every storage holds the same numbers and a
    recomputed embedding equals the stored one exactly."""
    return array("f", vector).tolist()


def quantize_money(value: Decimal) -> Decimal:
    """Round a money amount to the stored precision (banker's rounding)."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


class AddressType(StrEnum):
    """What an address is used for."""

    BILLING = "billing"
    SHIPPING = "shipping"
    OTHER = "other"


class Segment(StrEnum):
    """The behavioural segments of the default segmentation rules."""

    NEW = "new"
    ACTIVE = "active"
    HIGH_VALUE = "high_value"
    AT_RISK = "at_risk"
    DORMANT = "dormant"
    CHURNED = "churned"


def normalize_phone(raw: str, region: str | None = None) -> str:
    """A phone number in E.164 form, checked against the numbering plan of its country.

    ``"+39 333-123 4567"`` becomes ``"+393331234567"``; so does ``"333 123 4567"``
    with ``region="IT"``, and ``"0039 333 1234567"`` too (the region's
    international call prefix). Parsing and validation are ``phonenumbers``'
    (Google's libphonenumber metadata).

    Args:
        raw: The number as written, with any spaces, dashes, dots or brackets.
        region: ISO 3166-1 alpha-2 code of the country a number written without
            its country code belongs to. With None, only numbers that start with
            ``+`` and their country code are accepted.

    Raises:
        ValueError: not a valid number (or one with an extension, which E.164 cannot
            hold); the message starts with "is not a valid phone number".
    """
    split = _plainly_international(raw)
    if split is not None:
        country_code, national = split
        if _is_valid(country_code, national):
            return f"+{country_code}{national}"
        raise ValueError("is not a valid phone number")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or number.extension or not phonenumbers.is_valid_number(number):
        hint = "" if region or is_international_phone(raw) else _NO_REGION_HINT
        raise ValueError(f"is not a valid phone number{hint}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# "+", then digits and the separators people write between them: no letters, no
# extension marks (x # , ;), nothing ``phonenumbers.parse`` would read otherwise.
_PLAINLY_INTERNATIONAL = re.compile(r"\+[0-9][0-9 ().-]*")
_SEPARATORS = str.maketrans("", "", " ().-")
_MAX_NATIONAL_DIGITS = 17  # libphonenumber's longest national significant number


@functools.cache
def _national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The national prefix (and carrier code) ``phonenumbers.parse`` strips after the
    country code, for the region the country code stands for."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    prefix = None if metadata is None else metadata.national_prefix_for_parsing
    return re.compile(prefix) if prefix else None


def _plainly_international(raw: str) -> tuple[int, str] | None:
    """``(country code, national number)`` of a number written as ``+``, its country
    code and digits, read as ``phonenumbers.parse`` reads it, without its general
    parsing; None for any other writing, which the parser reads in full.

    The number read is the same, and ``_is_valid`` gives ``phonenumbers``' verdict
    from its plans compiled once, so the E.164 form and the refusals are the same
    too, at a sixth of the cost: a bulk import reads nearly every number this way.
    tests/unit/test_phone_numbers_and_countries.py compares the two on numbers of
    every region, so a release of ``phonenumbers`` that reads numbers otherwise
    fails there.
    """
    if len(raw) > _MAX_NATIONAL_DIGITS * 4 or not _PLAINLY_INTERNATIONAL.fullmatch(raw):
        return None
    digits = raw[1:].translate(_SEPARATORS)
    if digits[0] == "0":
        return None
    for length in (1, 2, 3):
        if int(digits[:length]) in COUNTRY_CODE_TO_REGION_CODE:
            country_code, national = int(digits[:length]), digits[length:]
            break
    else:
        return None
    if not 2 <= len(national) <= _MAX_NATIONAL_DIGITS or national[0] == "0":
        return None  # too short or long, or Italian leading zeros: the parser decides
    prefix = _national_prefix(country_code)
    if prefix is not None and prefix.match(national):
        return None  # maybe a national prefix written after the country code
    return country_code, national


_Pattern = tuple[frozenset[int], re.Pattern[str]]  # possible lengths (none: any), the digits


@dataclass(frozen=True, slots=True)
class _NumberingPlan:
    """A region's numbering plan as ``phonenumbers.is_valid_number`` reads it, compiled."""

    region: str
    own_code: bool  # the region's own country code is the one it is listed under
    leading_digits: re.Pattern[str] | None
    general: _Pattern | None
    kinds: tuple[_Pattern | None, ...]

    def fits(self, national: str) -> bool:
        """Whether the number is of one of the plan's kinds (phonenumbers' number type
        is not UNKNOWN)."""
        return _fits(national, self.general) and any(_fits(national, k) for k in self.kinds)


def _fits(national: str, pattern: _Pattern | None) -> bool:
    if pattern is None:
        return False
    lengths, digits = pattern
    return (not lengths or len(national) in lengths) and digits.fullmatch(national) is not None


def _compiled(desc: phonenumbers.PhoneNumberDesc | None) -> _Pattern | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _plan(country_code: int, region: str, metadata: PhoneMetadata) -> _NumberingPlan:
    # Whether a number is of any kind does not depend on the order they are tried
    # in: the kinds most numbers are of come first.
    kinds = [metadata.fixed_line]
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.insert(0, metadata.mobile)
    kinds += [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
    ]
    leading = metadata.leading_digits
    return _NumberingPlan(
        region,
        region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        or metadata.country_code == country_code,
        re.compile(leading) if leading is not None else None,
        _compiled(metadata.general_desc),
        tuple(_compiled(kind) for kind in kinds),
    )


@functools.cache
def _plans(country_code: int) -> tuple[_NumberingPlan, ...]:
    """The plans of the regions sharing a country code, in phonenumbers' order."""
    plans = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        if metadata is not None:
            plans.append(_plan(country_code, region, metadata))
    return tuple(plans)


def _is_valid(country_code: int, national: str) -> bool:
    """``phonenumbers.is_valid_number`` of the number: the region it belongs to (the
    only one of its country code, or the first that claims it: by its leading digits,
    or by fitting its plan), then that region's plan."""
    plans = _plans(country_code)
    if len(COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())) == 1:
        return bool(plans) and plans[0].own_code and plans[0].fits(national)
    for plan in plans:
        if plan.leading_digits is None:
            if plan.fits(national):
                return plan.own_code
        elif plan.leading_digits.match(national):
            return plan.own_code and plan.fits(national)
    return False


_NO_REGION_HINT = "; write it with its country code, such as '+39 333 123 4567'"


def is_international_phone(raw: str) -> bool:
    """Whether a number is written with its country code (it starts with ``+``)."""
    return raw.lstrip().startswith("+")


def check_phone_region(region: str | None) -> str | None:
    """A default phone region: None, or a country code ``phonenumbers`` has a plan for.

    Raises:
        ValueError: an unknown region.
    """
    if region is None:
        return None
    code = region.strip().upper() if isinstance(region, str) else ""
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a region with a phone numbering plan, such as 'IT'")
    return code


COUNTRY_CODES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)
"""ISO 3166-1 alpha-2: the officially assigned codes, as ``pycountry`` ships them."""

CURRENCY_CODES: frozenset[str] = frozenset(currency.alpha_3 for currency in pycountry.currencies)
"""ISO 4217 alphabetic codes, as ``pycountry`` ships them."""
