"""The prompts: a customer's behavioural facts and the exact JSON shape wanted back.

Prompts are built from an allowlist of order analytics. Nothing personal reaches
the model: no email, name, phone, birthday, gender, address, note, tag, preference,
host column, customer id or tenant id. In a batch, customers are told apart by
their position in the request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from linkbay_customers.domain import Customer, Segment
from linkbay_customers.heuristics import (
    ACTIVE_WINDOW,
    AT_RISK_WINDOW,
    DORMANT_WINDOW,
    HIGH_VALUE_SPEND,
    NEW_WINDOW,
)

__all__ = ("SEGMENT_RULES", "batch_prompt", "customer_facts", "customer_prompt")

SEGMENT_RULES: dict[Segment, str] = {
    Segment.NEW: f"no orders yet, or the first order at most {NEW_WINDOW.days} days ago",
    Segment.ACTIVE: (
        f"the last order at most {ACTIVE_WINDOW.days} days ago"
        f" and at most {HIGH_VALUE_SPEND} spent in total"
    ),
    Segment.HIGH_VALUE: (
        f"the last order at most {ACTIVE_WINDOW.days} days ago"
        f" and more than {HIGH_VALUE_SPEND} spent in total"
    ),
    Segment.AT_RISK: f"the last order {ACTIVE_WINDOW.days} to {AT_RISK_WINDOW.days} days ago",
    Segment.DORMANT: f"the last order {AT_RISK_WINDOW.days} to {DORMANT_WINDOW.days} days ago",
    Segment.CHURNED: f"the last order more than {DORMANT_WINDOW.days} days ago",
}
"""The default segmentation rules in words, for the model's context."""

_FIELDS = """\
Fields: orders is the number of orders; total_spent and average_order_value are \
money in the given currency; days_since_first_order and days_since_last_order count \
days before today (null without an order); tenure_days counts days since the \
customer signed up."""


def _money(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.01")))


def _days_since(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    return max(int((now - moment).total_seconds() // 86_400), 0)


def customer_facts(customer: Customer, now: datetime) -> dict[str, object]:
    """What the model learns about a customer: order analytics, nothing personal."""
    return {
        "orders": customer.total_orders,
        "total_spent": _money(customer.total_spent),
        "average_order_value": _money(customer.average_order_value),
        "currency": customer.currency,
        "days_since_first_order": _days_since(customer.first_order_at, now),
        "days_since_last_order": _days_since(customer.last_order_at, now),
        "tenure_days": _days_since(customer.created_at, now),
    }


def _rules() -> str:
    lines = [f"- {segment.value}: {SEGMENT_RULES[segment]}" for segment in Segment]
    return "Segments, by the shop's rules (the first that matches wins):\n" + "\n".join(lines)


def _estimates(months: int | None) -> str:
    lines = [
        "- segment: the customer's segment under the rules above",
        "- churn_risk: the probability, from 0 to 1, that the customer does not buy again soon",
    ]
    if months is not None:
        lines.append(
            f"- predicted_clv: the revenue expected from the customer over the next {months}"
            " months, in the customer's currency, at least 0"
        )
    return "Estimate:\n" + "\n".join(lines)


def _shape(months: int | None, *, indexed: bool) -> str:
    segments = " | ".join(json.dumps(segment.value) for segment in Segment)
    keys = ['"index": <the customer\'s index>'] if indexed else []
    keys += [f'"segment": {segments}', '"churn_risk": <number from 0 to 1>']
    if months is not None:
        keys.append('"predicted_clv": <number, at least 0>')
    return "{" + ", ".join(keys) + "}"


def customer_prompt(customer: Customer, *, now: datetime, months: int | None) -> str:
    """The prompt scoring one customer; ``months`` asks for the lifetime value too."""
    facts = json.dumps(customer_facts(customer, now))
    return "\n\n".join(
        [
            "You score one customer of an online shop from their purchase behaviour alone.",
            f"Customer facts:\n{facts}\n{_FIELDS}",
            _rules(),
            _estimates(months),
            "Reply with one JSON object and nothing else (no prose, no comments),"
            f" with exactly these keys:\n{_shape(months, indexed=False)}",
        ]
    )


def batch_prompt(customers: Sequence[Customer], *, now: datetime, months: int) -> str:
    """The prompt scoring several customers, each known by its index in the request."""
    rows = (json.dumps({"index": i, **customer_facts(c, now)}) for i, c in enumerate(customers))
    facts = "[\n" + ",\n".join(rows) + "\n]"
    return "\n\n".join(
        [
            f"You score {len(customers)} customers of an online shop from their purchase"
            " behaviour alone. Score each customer independently.",
            f'Customers (a JSON array; "index" identifies each customer):\n{facts}\n{_FIELDS}',
            _rules(),
            _estimates(months),
            "Reply with one JSON array and nothing else (no prose, no comments): one object"
            f" per customer, each with exactly these keys:\n{_shape(months, indexed=True)}",
        ]
    )
