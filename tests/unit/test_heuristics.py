from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbay_customers.domain import EMBEDDING_DIMENSIONS, Customer, Segment
from linkbay_customers.heuristics import (
    HeuristicIntelligence,
    behaviour_embedding,
    heuristic_churn_risk,
    heuristic_clv,
    heuristic_segment,
)
from linkbay_customers.ports import CustomerProfile
from linkbay_customers.testing import T0

NOW = T0


def buyer(*, orders: int, spent: str, first_days_ago: float, last_days_ago: float) -> Customer:
    total = Decimal(spent)
    return Customer(
        id=1,
        tenant_id="t",
        email="b@example.com",
        total_orders=orders,
        total_spent=total,
        average_order_value=total / orders if orders else Decimal(0),
        first_order_at=NOW - timedelta(days=first_days_ago) if orders else None,
        last_order_at=NOW - timedelta(days=last_days_ago) if orders else None,
        created_at=NOW - timedelta(days=max(first_days_ago, 1)),
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("orders", "spent", "first", "last", "segment"),
    [
        (0, "0", 400, 400, Segment.NEW),
        (2, "5000", 30, 1, Segment.NEW),
        (3, "300", 31, 10, Segment.ACTIVE),
        (3, "300", 200, 90, Segment.ACTIVE),
        (3, "1000", 200, 10, Segment.ACTIVE),
        (3, "1000.01", 200, 10, Segment.HIGH_VALUE),
        (3, "5000", 400, 90.01, Segment.AT_RISK),
        (3, "300", 400, 180, Segment.AT_RISK),
        (3, "300", 400, 180.5, Segment.DORMANT),
        (3, "300", 400, 365, Segment.DORMANT),
        (3, "300", 800, 366, Segment.CHURNED),
    ],
)
def test_segments_follow_the_seed_rules_at_their_boundaries(
    orders: int, spent: str, first: float, last: float, segment: Segment
) -> None:
    customer = buyer(orders=orders, spent=spent, first_days_ago=first, last_days_ago=last)
    assert heuristic_segment(customer, NOW) is segment


@given(
    orders=st.integers(min_value=0, max_value=500),
    spent=st.decimals(min_value=0, max_value=100_000, places=2),
    tenure=st.floats(min_value=0, max_value=3000),
    recency_a=st.floats(min_value=0, max_value=3000),
    recency_b=st.floats(min_value=0, max_value=3000),
)
def test_churn_risk_is_a_probability_that_never_falls_as_recency_grows(
    orders: int, spent: Decimal, tenure: float, recency_a: float, recency_b: float
) -> None:
    near, far = sorted((recency_a, recency_b))
    base = buyer(orders=orders, spent=str(spent), first_days_ago=tenure + far, last_days_ago=far)
    risk_far = heuristic_churn_risk(base, NOW)
    risk_near = heuristic_churn_risk(base, NOW - timedelta(days=far - near))
    assert 0.0 <= risk_near <= risk_far <= 1.0


def test_each_factor_moves_churn_risk_the_right_way_with_the_others_held() -> None:
    def risk(orders: int, spent: str, first: float, last: float) -> float:
        customer = buyer(orders=orders, spent=spent, first_days_ago=first, last_days_ago=last)
        return heuristic_churn_risk(customer, NOW)

    # Frequency: overdue against a short buying cycle is riskier than against a long one.
    assert risk(5, "500", 4 * 20 + 60, 60) > risk(5, "500", 4 * 90 + 60, 60)
    # Order count: at the same 90-day cycle and recency, more orders mean more loyalty.
    assert risk(20, "2000", 19 * 90 + 60, 60) < risk(3, "300", 2 * 90 + 60, 60)
    # Average order value: at the same cycle and recency, bigger baskets hold on longer.
    assert risk(5, "5000", 4 * 90 + 60, 60) < risk(5, "50", 4 * 90 + 60, 60)
    # A long-lapsed regular is almost certainly gone.
    assert risk(20, "2000", 800, 400) > 0.9


def test_a_customer_without_orders_gets_a_risk_from_sign_up() -> None:
    fresh = buyer(orders=0, spent="0", first_days_ago=1, last_days_ago=1)
    stale = replace(fresh, created_at=NOW - timedelta(days=300))
    assert heuristic_churn_risk(fresh, NOW) < 0.01 < 0.9 < heuristic_churn_risk(stale, NOW)


def test_clv_is_aov_times_monthly_frequency_times_horizon_times_survival() -> None:
    customer = buyer(orders=12, spent="600", first_days_ago=365.25, last_days_ago=5)
    survival = 1 - heuristic_churn_risk(customer, NOW)
    expected = 50 * 1 * 12 * survival  # AOV 50, one order a month, 12 months
    assert float(heuristic_clv(customer, 12, NOW)) == pytest.approx(expected, rel=1e-6)
    assert float(heuristic_clv(customer, 6, NOW)) == pytest.approx(expected / 2, rel=1e-6)
    assert (
        heuristic_clv(buyer(orders=0, spent="0", first_days_ago=5, last_days_ago=5), 12, NOW) == 0
    )


def test_embeddings_are_fixed_length_unit_vectors_that_reflect_behaviour() -> None:
    def embed(customer: Customer, products: dict[str, int]) -> list[float]:
        vector = behaviour_embedding(customer, products)
        assert vector is not None
        assert len(vector) == EMBEDDING_DIMENSIONS
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-9)
        return vector

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    tea_lover = embed(
        buyer(orders=8, spent="400", first_days_ago=300, last_days_ago=10), {"tea": 8}
    )
    tea_twin = embed(buyer(orders=7, spent="380", first_days_ago=280, last_days_ago=12), {"tea": 7})
    gadget = embed(buyer(orders=1, spent="2500", first_days_ago=500, last_days_ago=500), {"tv": 1})
    assert cosine(tea_lover, tea_twin) > 0.95 > cosine(tea_lover, gadget)
    again = behaviour_embedding(
        buyer(orders=8, spent="400", first_days_ago=300, last_days_ago=10), {"tea": 8}
    )
    assert again == tea_lover


async def test_an_embedding_does_not_move_with_the_clock() -> None:
    customer = buyer(orders=5, spent="250", first_days_ago=200, last_days_ago=3)
    profile = CustomerProfile(customer, {"tea": 5})
    intelligence = HeuristicIntelligence()
    today = await intelligence.embed(profile, now=NOW)
    (scored_today,) = await intelligence.score_many([profile], now=NOW, months=12)
    a_year_on = NOW + timedelta(days=365)
    later = await intelligence.embed(profile, now=a_year_on)
    (scored_later,) = await intelligence.score_many([profile], now=a_year_on, months=12)
    assert today is not None
    assert today == later == scored_today.embedding == scored_later.embedding
    assert scored_today.segment != scored_later.segment  # recency is the segment's


def test_customers_whose_orders_fell_at_the_same_time_lie_closest() -> None:
    def embed(first_days_ago: float, last_days_ago: float) -> list[float]:
        customer = buyer(
            orders=5, spent="250", first_days_ago=first_days_ago, last_days_ago=last_days_ago
        )
        vector = behaviour_embedding(customer, {"tea": 5})
        assert vector is not None
        return vector

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    # The same orders, a few days, half a year and a year and a half apart.
    reference = embed(200, 3)
    days_apart, half_a_year, later_still = embed(204, 7), embed(380, 183), embed(748, 551)
    assert cosine(reference, days_apart) > cosine(reference, half_a_year) > 0.5
    assert cosine(reference, days_apart) > cosine(reference, later_still) > 0.5
    assert 1 - cosine(reference, days_apart) > 1e-6  # far above a 32-bit float's precision


def test_a_customer_without_orders_has_no_embedding() -> None:
    newcomer = buyer(orders=0, spent="0", first_days_ago=3, last_days_ago=3)
    assert behaviour_embedding(newcomer, {}) is None


async def test_the_intelligence_scores_single_customers_and_batches_alike() -> None:
    intelligence = HeuristicIntelligence()
    customers = [
        buyer(orders=3, spent="300", first_days_ago=200, last_days_ago=20),
        buyer(orders=0, spent="0", first_days_ago=3, last_days_ago=3),
    ]
    batch = await intelligence.score_many(
        [CustomerProfile(c, {"p": 1}) for c in customers], now=NOW, months=12
    )
    for customer, scores in zip(customers, batch, strict=True):
        assert scores.segment == await intelligence.segment(customer, now=NOW)
        assert scores.churn_risk == await intelligence.churn_risk(customer, now=NOW)
        assert scores.lifetime_value == await intelligence.predict_clv(customer, months=12, now=NOW)
        assert scores.embedding == await intelligence.embed(
            CustomerProfile(customer, {"p": 1}), now=NOW
        )
        assert scores.source == "heuristic"
