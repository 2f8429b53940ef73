"""Duplicate detection: the tenant's likely duplicate pairs, and one customer's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from linkbay_customers.domain import CustomerNotFound, StorageRoleMissing
from linkbay_customers.schemas import DuplicateSuggestionResponse, PageResponse
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import CustomerId, PageNumber, PageSize, SimilarLimit
from linkbay_customers_fastapi._problems import problem_responses

__all__ = ("add_customer_duplicate_routes", "add_tenant_duplicate_routes")

MinProbability = Annotated[
    float,
    Query(ge=0, le=1, description="The least match probability of a pair listed, 0 to 1."),
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
