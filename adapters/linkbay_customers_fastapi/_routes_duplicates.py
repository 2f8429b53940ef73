"""Duplicate detection: the tenant's likely duplicate pairs, one customer's, and the
pairs marked as two people."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from linkbay_customers.domain import (
    MAX_ID,
    CustomerNotFound,
    DuplicateDecisionNotFound,
    InvalidDuplicateDecision,
    StorageRoleMissing,
)
from linkbay_customers.schemas import (
    DuplicateDecisionResponse,
    DuplicateSuggestionResponse,
    PageResponse,
)
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import CustomerId, PageNumber, PageSize, SimilarLimit
from linkbay_customers_fastapi._problems import problem_responses

__all__ = (
    "add_customer_duplicate_routes",
    "add_duplicate_decision_routes",
    "add_tenant_duplicate_routes",
)

MinProbability = Annotated[
    float,
    Query(ge=0, le=1, description="The least match probability of a pair listed, 0 to 1."),
]
_LIVE = " A merged-away or erased customer is refused (409)."
PairCustomerId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="One customer of the pair." + _LIVE)
]
PairOtherId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The other customer of the pair." + _LIVE)
]


def add_tenant_duplicate_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/duplicates`` (a fixed path: before ``/{customer_id}``)."""

    @router.get(
        "/duplicates",
        response_model=PageResponse[DuplicateSuggestionResponse],
        summary="List likely duplicate customers",
        name="find_duplicates",
        responses=problem_responses(StorageRoleMissing),
    )
    @settings.endpoint()
    async def find_duplicates(
        ctx: RequestContext,
        min_probability: MinProbability = 0.8,
        page: PageNumber = 1,
        page_size: PageSize = 20,
    ) -> PageResponse[DuplicateSuggestionResponse]:
        """Pairs of the tenant's customers likely to be the same person, most probable
        first, each with the fields that agree and disagree and the merge request that
        folds it (`POST /customers/merge`). Deleted, merged and erased customers never
        appear. The model is fitted on the tenant's own data at each call, without labels.
        """
        result = await ctx.service.find_duplicates(
            ctx.tenant_id, min_probability=min_probability, page=page, page_size=page_size
        )
        items = [DuplicateSuggestionResponse.from_domain(s) for s in result.items]
        return PageResponse[DuplicateSuggestionResponse].of(result, items)


def add_customer_duplicate_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/duplicates``."""

    @router.get(
        "/{customer_id}/duplicates",
        response_model=list[DuplicateSuggestionResponse],
        summary="List a customer's likely duplicates",
        name="find_duplicates_of_customer",
        responses=problem_responses(CustomerNotFound, StorageRoleMissing),
    )
    @settings.endpoint()
    async def find_duplicates_of_customer(
        ctx: RequestContext,
        customer_id: CustomerId,
        min_probability: MinProbability = 0.8,
        limit: SimilarLimit = 20,
    ) -> list[DuplicateSuggestionResponse]:
        """The customers likely to be the same person as this one, most probable first;
        `customer_id` of each suggestion is this customer."""
        found = await ctx.service.find_duplicates_of(
            ctx.tenant_id, customer_id, min_probability=min_probability, limit=limit
        )
        return [DuplicateSuggestionResponse.from_domain(s) for s in found]


def add_duplicate_decision_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/distinct`` and ``/{customer_id}/distinct/{other_id}``."""

    @router.put(
        "/{customer_id}/distinct/{other_id}",
        response_model=DuplicateDecisionResponse,
        summary="Mark two customers as two people",
        name="mark_distinct",
        responses=problem_responses(CustomerNotFound, InvalidDuplicateDecision, StorageRoleMissing),
    )
    @settings.endpoint()
    async def mark_distinct(
        ctx: RequestContext, customer_id: PairCustomerId, other_id: PairOtherId
    ) -> DuplicateDecisionResponse:
        """Record that the two customers are not the same person: the pair is never
        suggested as a duplicate again. The decision names the pair lower id first,
        with who decided and when; it is audited in both customers' trails. Marking a
        marked pair returns the stored decision and changes nothing. One customer twice,
        a merged-away or an erased customer is refused (409)."""
        decision = await ctx.service.mark_distinct(
            ctx.tenant_id, customer_id, other_id, actor=ctx.actor
        )
        return DuplicateDecisionResponse.from_domain(decision)

    @router.delete(
        "/{customer_id}/distinct/{other_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Undo marking two customers as two people",
        name="undo_distinct",
        responses=problem_responses(
            CustomerNotFound,
            DuplicateDecisionNotFound,
            InvalidDuplicateDecision,
            StorageRoleMissing,
        ),
    )
    @settings.endpoint()
    async def undo_distinct(
        ctx: RequestContext, customer_id: PairCustomerId, other_id: PairOtherId
    ) -> Response:
        """Forget the decision that the two customers are two people: the pair may be
        suggested again. Audited in both customers' trails; a pair never marked is a
        404 (`duplicate_decision_not_found`)."""
        await ctx.service.undo_distinct(ctx.tenant_id, customer_id, other_id, actor=ctx.actor)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/{customer_id}/distinct",
        response_model=list[DuplicateDecisionResponse],
        summary="List the customers marked as other people than this one",
        name="list_duplicate_decisions",
        responses=problem_responses(CustomerNotFound, StorageRoleMissing),
    )
    @settings.endpoint()
    async def list_duplicate_decisions(
        ctx: RequestContext, customer_id: CustomerId
    ) -> list[DuplicateDecisionResponse]:
        """The pairs this customer is in that were marked as two people, oldest first."""
        decisions = await ctx.service.list_duplicate_decisions(ctx.tenant_id, customer_id)
        return [DuplicateDecisionResponse.from_domain(d) for d in decisions]
