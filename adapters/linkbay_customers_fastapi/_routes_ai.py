"""Customer intelligence: segment, churn risk, lifetime value, similar customers,
recommendations, and scoring a whole tenant."""

from __future__ import annotations

from fastapi import APIRouter

from linkbay_customers.domain import CustomerNotFound, ProfilingNotAllowed, StorageRoleMissing
from linkbay_customers.schemas import (
    ChurnRiskResponse,
    ClvResponse,
    RecommendationResponse,
    ScoringSummaryResponse,
    SegmentResponse,
    SimilarCustomerResponse,
)
from linkbay_customers_fastapi._context import AIRequestContext, RouteSettings
from linkbay_customers_fastapi._params import (
    CustomerId,
    PredictionMonths,
    RecommendationLimit,
    SimilarLimit,
)
from linkbay_customers_fastapi._problems import problem_responses

__all__ = ("add_ai_routes", "add_tenant_scoring_routes")


def add_tenant_scoring_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``POST /score``; it must come before ``/{customer_id}``."""

    @router.post(
        "/score",
        response_model=ScoringSummaryResponse,
        summary="Score every customer of the tenant",
        name="score_customers",
        responses=problem_responses(StorageRoleMissing),
    )
    @settings.ai_endpoint()
    async def score_customers(
        ctx: AIRequestContext, months: PredictionMonths = 12
    ) -> ScoringSummaryResponse:
        """Refresh the segment, churn risk, lifetime value (over `months`) and behaviour
        embedding of every customer of the tenant, and summarize them.

        Customers are walked by id in chunks, each chunk in its own transaction; the
        customers the profiling policy excludes are not scored and have their derived data
        cleared. Similar customers and recommendations compare the embeddings this stores.

        The request runs until the whole tenant is scored: fine for a few thousand
        customers. For a large tenant run `linkbay-customers score --tenant T` or
        `AIService.score_tenant` from a background job instead, so no HTTP timeout cuts it
        short (a chunk already committed stays scored).
        """
        summary = await ctx.service.score_tenant(ctx.tenant_id, months=months)
        return ScoringSummaryResponse.of(summary)


def add_ai_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/segment``, ``/churn-risk``, ``/clv``, ``/similar`` and
    ``/recommendations``."""

    @router.post(
        "/{customer_id}/segment",
        response_model=SegmentResponse,
        summary="Recompute a customer's segment",
        name="update_customer_segment",
        responses=problem_responses(CustomerNotFound, ProfilingNotAllowed),
    )
    @settings.ai_endpoint()
    async def update_customer_segment(
        ctx: AIRequestContext, customer_id: CustomerId
    ) -> SegmentResponse:
        """Recompute the customer's segment from its orders and store it.

        A change is recorded in the audit trail (`scores.updated`) with the acting user.
        A customer without orders is `new`.
        """
        customer = await ctx.service.update_customer_segment(
            ctx.tenant_id, customer_id, actor=ctx.actor
        )
        return SegmentResponse(customer_id=customer.id, segment=customer.segment)

    @router.get(
        "/{customer_id}/churn-risk",
        response_model=ChurnRiskResponse,
        summary="Get a customer's churn risk",
        name="get_churn_risk",
        responses=problem_responses(CustomerNotFound, ProfilingNotAllowed),
    )
    @settings.ai_endpoint()
    async def get_churn_risk(ctx: AIRequestContext, customer_id: CustomerId) -> ChurnRiskResponse:
        """The customer's churn risk, from 0 to 1, and its level: `low` below 0.3,
        `medium` below 0.6, `high` from 0.6.

        Computed now, from the customer's orders; nothing is stored. A customer without
        orders gets the risk of the intelligence's prior, growing with the time since it
        signed up.
        """
        prediction = await ctx.service.calculate_churn_risk(ctx.tenant_id, customer_id)
        return ChurnRiskResponse.of(prediction)

    @router.get(
        "/{customer_id}/clv",
        response_model=ClvResponse,
        summary="Predict a customer's lifetime value",
        name="predict_clv",
        responses=problem_responses(CustomerNotFound, ProfilingNotAllowed),
    )
    @settings.ai_endpoint()
    async def predict_clv(
        ctx: AIRequestContext, customer_id: CustomerId, months: PredictionMonths = 12
    ) -> ClvResponse:
        """The revenue expected from the customer over the next `months` months, in the
        customer's currency.

        Computed now, from the customer's orders; nothing is stored. A customer without
        orders has a predicted value of 0.
        """
        prediction = await ctx.service.predict_clv(
            ctx.tenant_id, customer_id, prediction_months=months
        )
        return ClvResponse.of(prediction)

    @router.get(
        "/{customer_id}/similar",
        response_model=list[SimilarCustomerResponse],
        summary="Find similar customers",
        name="find_similar_customers",
        responses=problem_responses(CustomerNotFound, ProfilingNotAllowed, StorageRoleMissing),
    )
    @settings.ai_endpoint()
    async def find_similar_customers(
        ctx: AIRequestContext, customer_id: CustomerId, limit: SimilarLimit = 10
    ) -> list[SimilarCustomerResponse]:
        """The customers who behave most like this one (recency, frequency, spending,
        products bought), most similar first.

        Compares the embeddings stored by scoring (`POST /customers/score`): customers
        never scored are not found, so the list may be shorter than `limit`, or empty.
        Customers the profiling policy excludes are never listed.
        """
        found = await ctx.service.find_similar_customers(ctx.tenant_id, customer_id, limit=limit)
        return [SimilarCustomerResponse.of(s) for s in found]

    @router.get(
        "/{customer_id}/recommendations",
        response_model=list[RecommendationResponse],
        summary="Recommend products to a customer",
        name="generate_recommendations",
        responses=problem_responses(CustomerNotFound, StorageRoleMissing),
    )
    @settings.ai_endpoint()
    async def generate_recommendations(
        ctx: AIRequestContext, customer_id: CustomerId, limit: RecommendationLimit = 5
    ) -> list[RecommendationResponse]:
        """Products the most similar customers bought and this one has not, best first,
        each with a score from 0 to 1 and the reason.

        A customer without orders, one whose neighbours bought nothing new, or one the
        profiling policy excludes gets the shop's best sellers instead (never personalized
        for the latter). Empty when the shop has no orders at all.
        """
        found = await ctx.service.generate_recommendations(ctx.tenant_id, customer_id, limit=limit)
        return [RecommendationResponse.of(r) for r in found]
