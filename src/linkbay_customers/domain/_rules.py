"""Pure business rules shared by the services and every storage adapter."""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from linkbay_customers.domain._entities import Customer, Order
from linkbay_customers.domain._errors import InvalidInput, InvalidMerge
from linkbay_customers.domain._query import CustomerFilters, TagMatch
from linkbay_customers.domain._values import (
    MAX_MONEY,
    is_international_phone,
    normalize_phone,
    quantize_money,
)

__all__ = (
    "MAX_JSON_DOCUMENT_BYTES",
    "apply_order",
    "check_preferences",
    "fill_missing",
    "fold_analytics",
    "fold_consents",
    "json_document_size",
    "matches_filters",
    "merge_patch",
    "merge_tags",
    "phone_query",
    "search_key",
    "search_rank",
)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def apply_order(customer: Customer, order: Order) -> None:
    """Fold one new order into the customer's analytics.

    Orders may arrive out of order: first/last order dates take the min/max.

    Raises:
        InvalidInput: naming ``total``, when the customer's total spent would
            exceed ``MAX_MONEY``; the customer is left unchanged.
    """
    total_spent = quantize_money(customer.total_spent + order.total)
    if total_spent > MAX_MONEY:
        raise InvalidInput.single("total", f"would take the total spent beyond {MAX_MONEY}")
    customer.currency = customer.currency or order.currency
    customer.total_orders += 1
    customer.total_spent = total_spent
    customer.average_order_value = quantize_money(customer.total_spent / customer.total_orders)
    customer.first_order_at = _earliest(customer.first_order_at, order.created_at)
    customer.last_order_at = _latest(customer.last_order_at, order.created_at)


def fold_analytics(target: Customer, source: Customer) -> None:
    """Move the source's order analytics onto the target; the source is left at zero.

    Raises:
        InvalidMerge: the two customers have orders in different currencies.
    """
    if source.currency and target.currency and source.currency != target.currency:
        raise InvalidMerge(
            f"customers have orders in different currencies ({source.currency} and "
            f"{target.currency})",
            field="source_customer_id",
        )
    total_spent = quantize_money(target.total_spent + source.total_spent)
    if total_spent > MAX_MONEY:
        raise InvalidMerge(
            f"the merged total spent would exceed {MAX_MONEY}", field="source_customer_id"
        )
    target.currency = target.currency or source.currency
    target.total_orders += source.total_orders
    target.total_spent = total_spent
    target.average_order_value = (
        quantize_money(target.total_spent / target.total_orders)
        if target.total_orders
        else target.average_order_value
    )
    target.first_order_at = _earliest(target.first_order_at, source.first_order_at)
    target.last_order_at = _latest(target.last_order_at, source.last_order_at)
    source.total_orders = 0
    source.total_spent = source.average_order_value = quantize_money(Decimal(0))
    source.first_order_at = None
    source.last_order_at = None


def fold_consents(target: Customer, source: Customer) -> list[str]:
    """Make the person's latest decision per consent type the target's current state.

    A merge makes two customers one person: for each type the source answered, its
    state replaces the target's when the target never answered or answered earlier
    (at the same instant a withdrawal wins). A consent withdrawn on the merged-away
    account therefore stays withdrawn. Returns the types taken from the source.
    """
    states = dict(target.consent_data)
    taken = []
    for kind, state in source.consent_data.items():
        current = states.get(kind)
        if (
            current is None
            or state.date > current.date
            or (state.date == current.date and current.consented and not state.consented)
        ):
            states[kind] = state
            taken.append(kind)
    target.consent_data = states
    return taken


def merge_tags(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Union of two tag lists, keeping first-seen order and dropping duplicates."""
    return list(dict.fromkeys([*first, *second]))


def fill_missing(target: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of ``source`` that ``target`` lacks, added to a copy of ``target``, deeply.

    Where both hold a value, the target's wins.
    """
    result = dict(target)
    for key, value in source.items():
        if key not in result:
            result[key] = value
        elif isinstance(value, Mapping) and isinstance(result[key], Mapping):
            result[key] = fill_missing(result[key], value)
    return result


MAX_JSON_DOCUMENT_BYTES = 16_384
"""The largest JSON document a customer holds (its preferences), serialized in UTF-8."""


def json_document_size(value: Any) -> int:
    """The size in bytes of a JSON value serialized as the storages keep it (UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def check_preferences(preferences: dict[str, Any]) -> dict[str, Any]:
    """Preferences as they are about to be stored, within ``MAX_JSON_DOCUMENT_BYTES``.

    A patch or a merge within the bound on its own can make the stored document
    outgrow it; the bound holds on what is stored.

    Raises:
        InvalidInput: the document is larger (field ``preferences``).
    """
    if json_document_size(preferences) > MAX_JSON_DOCUMENT_BYTES:
        raise InvalidInput.single(
            "preferences",
            f"the stored preferences must serialize to at most {MAX_JSON_DOCUMENT_BYTES} bytes",
        )
    return preferences


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a JSON Merge Patch (RFC 7396): ``None`` removes a key, dicts merge deeply."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            # A patch object applies to what is there, or to an empty object: the
            # nulls it holds remove keys and are never stored (RFC 7396, section 2).
            current = result.get(key)
            result[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            result[key] = value
    return result


# Ranking a search calls this once per candidate with the same query.
@functools.lru_cache(maxsize=256)
def phone_query(query: str) -> str | None:
    """The phone form of a search query, or None when it cannot be part of a phone.

    Stored numbers are E.164. A whole international number becomes its E.164 form;
    anything else of digits and formatting becomes its digits, after the ``+`` if it
    starts with one, and otherwise without leading zeros: a trunk prefix (the UK's
    ``020 7946 0958``) or an international call prefix (``0039 ...``) that E.164
    never holds. A number is then found however it is written, national forms
    included.
    """
    try:
        return normalize_phone(query)
    except ValueError:
        pass
    if any(ch.isalpha() for ch in query):
        return None
    digits = "".join(ch for ch in query if ch.isdigit())
    if is_international_phone(query):
        return f"+{digits}" if digits else None
    return digits.lstrip("0") or None


def search_key(text: str) -> str:
    """``text`` as search compares it: one folding for every storage.

    Unicode case folding (``str.casefold``) of the compatibility decomposition,
    combining marks removed: ``İlker`` → ``ilker``, ``ΣΊΣΥΦΟΣ`` and ``σίσυφος`` →
    ``σισυφοσ``, ``Straße`` → ``strasse``, ``Élodie`` → ``elodie``, fullwidth letters → ASCII ones.
    The SQL storages store it beside the names and the email, so the database
    compares what Python folded rather than folding by its own rules (PostgreSQL's
    ``lower()`` and SQLite's differ from each other and from this).
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_rank(customer: Customer, query: str) -> int | None:
    """How well a customer matches a search query; lower is better, None is no match.

    0: the email is exactly the query; 1: the email, a name or the phone starts with
    it; 2: one of them (or the full name) contains it. Text is compared as
    ``search_key`` folds it: case and accents are ignored.
    """
    q = search_key(query.strip())
    if not q:
        return None
    email = search_key(customer.email or "")
    first = search_key(customer.first_name or "")
    last = search_key(customer.last_name or "")
    full = f"{first} {last}"
    phone = customer.phone or ""
    pq = phone_query(q)
    if email == q:
        return 0
    if any(v.startswith(q) for v in (email, first, last)) or (pq and phone.startswith(pq)):
        return 1
    if any(q in v for v in (email, first, last, full)) or (pq and pq in phone):
        return 2
    return None


def matches_filters(customer: Customer, filters: CustomerFilters) -> bool:
    """Whether a customer passes a listing's filters (the reference semantics)."""
    if customer.is_deleted and not filters.include_deleted:
        return False
    if filters.segment is not None and customer.segment != filters.segment:
        return False
    if filters.min_total_spent is not None and customer.total_spent < filters.min_total_spent:
        return False
    if filters.max_total_spent is not None and customer.total_spent > filters.max_total_spent:
        return False
    if filters.tags:
        held = set(customer.tags)
        wanted = set(filters.tags)
        ok = wanted <= held if filters.tags_match is TagMatch.ALL else bool(wanted & held)
        if not ok:
            return False
    if filters.email_contains is not None and (
        search_key(filters.email_contains) not in search_key(customer.email or "")
    ):
        return False
    if filters.created_after is not None and customer.created_at < filters.created_after:
        return False
    return not (
        filters.created_before is not None and customer.created_at >= filters.created_before
    )
