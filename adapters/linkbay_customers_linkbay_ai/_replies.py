"""Reading the model's replies: strict JSON, validated by pydantic, ranges enforced.

A reply is JSON and nothing else; a Markdown code fence around it (```json ... ```)
is the one wrapping tolerated. Every problem becomes a ``ReplyError`` whose message
names what is wrong (a field and a rule) and never echoes a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkbay_customers.domain import MAX_MONEY, Segment, quantize_money

__all__ = (
    "BatchReading",
    "Judgement",
    "ReplyError",
    "Valuation",
    "read_batch",
    "read_judgement",
    "read_valuation",
)

_FENCE = re.compile(r"\A\s*```(?:json)?\s*(?P<body>.*?)\s*```\s*\Z", re.DOTALL | re.IGNORECASE)


class ReplyError(Exception):
    """A reply the adapter cannot use; the message says why, without values."""


class Judgement(BaseModel):
    """A valid reply about a customer's segment and churn risk."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    segment: Segment
    churn_risk: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


class Valuation(Judgement):
    """A valid reply that also carries the customer's lifetime value."""

    predicted_clv: float = Field(ge=0.0, le=float(MAX_MONEY), allow_inf_nan=False)

    @property
    def lifetime_value(self) -> Decimal:
        """``predicted_clv`` as money, at the stored precision."""
        return quantize_money(Decimal(repr(self.predicted_clv)))


class _BatchEntry(Valuation):
    index: int = Field(ge=0)


@dataclass(frozen=True, slots=True)
class BatchReading:
    """A batch reply read entry by entry.

    ``entries[i]`` is the valuation of the request's i-th customer, or the reason
    there is none. ``ignored`` counts entries that named no customer of the request.
    """

    entries: Sequence[Valuation | str]
    ignored: int


def _unfence(text: str) -> str:
    match = _FENCE.match(text)
    return match["body"] if match else text


def _reason(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in detail["loc"]) or "reply"
        problems.append(f"{where}: {detail['msg']}")
    return "; ".join(problems)


def read_judgement(text: str) -> Judgement:
    """The segment and churn risk in a reply; ReplyError if it is not exactly that."""
    try:
        return Judgement.model_validate_json(_unfence(text))
    except ValidationError as exc:
        raise ReplyError(_reason(exc)) from exc


def read_valuation(text: str) -> Valuation:
    """Segment, churn risk and lifetime value; ReplyError if the reply is not exactly that."""
    try:
        return Valuation.model_validate_json(_unfence(text))
    except ValidationError as exc:
        raise ReplyError(_reason(exc)) from exc


def read_batch(text: str, size: int) -> BatchReading:
    """Read a batch reply: a JSON array of objects, each keyed by its customer's index.

    Entries are validated one by one, so one bad entry costs only its customer. An
    index missing from the reply, or given twice, leaves that customer without a
    valuation. Raises ReplyError when the reply as a whole is unusable.
    """
    try:
        document = json.loads(_unfence(text))
    except json.JSONDecodeError as exc:
        raise ReplyError(f"malformed JSON at line {exc.lineno}, column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:
        raise ReplyError("malformed JSON") from exc
    if not isinstance(document, list):
        raise ReplyError("the reply is not a JSON array")
    found: dict[int, list[object]] = {}
    ignored = 0
    for item in document:
        index = item.get("index") if isinstance(item, dict) else None
        if type(index) is int and 0 <= index < size:
            found.setdefault(index, []).append(item)
        else:
            ignored += 1
    entries: list[Valuation | str] = []
    for index in range(size):
        items = found.get(index, [])
        if len(items) != 1:
            entries.append("no entry in the reply" if not items else "several entries")
            continue
        try:
            entries.append(_BatchEntry.model_validate_json(json.dumps(items[0])))
        except ValidationError as exc:
            entries.append(_reason(exc))
    return BatchReading(entries=entries, ignored=ignored)
