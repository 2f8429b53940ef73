"""Value objects and the pure rules that define them."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

__all__ = (
    "COUNTRY_CODES",
    "EMBEDDING_DIMENSIONS",
    "MAX_ID",
    "MAX_MONEY",
    "MONEY_QUANTUM",
    "AddressType",
    "Segment",
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


_PHONE_FORMATTING = re.compile(r"[\s().\-/]")
_PHONE_SHAPE = re.compile(r"\+?[0-9]{4,20}")


def normalize_phone(raw: str) -> str:
    """Strip formatting characters from a phone number and check its shape.

    ``"+39 333-123 4567"`` becomes ``"+393331234567"``. Raises ValueError when what
    remains is not an optional ``+`` followed by 4 to 20 digits.
    """
    compact = _PHONE_FORMATTING.sub("", raw.strip())
    if not _PHONE_SHAPE.fullmatch(compact):
        raise ValueError("phone must be digits, optionally with a leading '+'")
    return compact


# ISO 3166-1 alpha-2: the 249 officially assigned codes.
COUNTRY_CODES: frozenset[str] = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)
