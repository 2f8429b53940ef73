"""Customers: create, list, search, read, update, delete, restore and merge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import AwareDatetime, Field

from linkbay_customers.domain import (
    MAX_SEARCH_LIMIT,
    CustomerNotFound,
    CustomerSort,
    DuplicateEmail,
    InvalidMerge,
    TagMatch,
)
from linkbay_customers.schemas import (
    CustomerCreate,
    CustomerResponse,
    CustomerUpdate,
    Money,
    PageResponse,
)
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import (
    CUSTOMER_CREATE_EXAMPLES,
    CUSTOMER_UPDATE_EXAMPLES,
    CustomerId,
    MergeBody,
    PageNumber,
    PageSize,
)
from linkbay_customers_fastapi._problems import problem_responses
from linkbay_customers_fastapi._responses import model_response

__all__ = ("add_customer_routes",)

Segment = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="Only customers of this segment."),
]
MinSpent = Annotated[
    Money | None,
    Query(description="Only customers who spent at least this much (a plain decimal)."),
]
MaxSpent = Annotated[
    Money | None,
    Query(description="Only customers who spent at most this much (a plain decimal)."),
]
Tags = Annotated[
    list[Annotated[str, Field(max_length=4000)]] | None,
    Query(
        max_length=50,
        description="Tags, comma-separated (`tags=vip,early_adopter`) or repeated "
        "(`tags=vip&tags=early_adopter`), which means the same: only customers with any of "
        "them (all of them with `tags_match=all`).",
    ),
]
TagsMatch = Annotated[
    TagMatch,
    Query(
        description="With `tags`: `any` (the default) keeps customers with any of them, `all` "
        "only those with all of them."
    ),
]
IncludeDeleted = Annotated[
    bool, Query(description="Also list soft-deleted customers (`false` by default).")
]
Sort = Annotated[
    CustomerSort,
    Query(
        description="The order of the listing: `created_at`, `total_spent` or `last_order_at`, "
        "with a leading `-` for descending (newest first by default); ties are broken by id."
    ),
]
EmailContains = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=254,
        description="Only customers whose email contains this text (case-insensitive).",
    ),
]
CreatedAfter = Annotated[
    AwareDatetime | None,
    Query(description="Only customers created at or after this time (with a UTC offset)."),
]
CreatedBefore = Annotated[
    AwareDatetime | None,
    Query(description="Only customers created before this time (with a UTC offset)."),
]


def _tag_list(tags: list[str] | None) -> list[str]:
    return [
        tag for value in tags or () for tag in (part.strip() for part in value.split(",")) if tag
    ]


def add_customer_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add the customer routes. ``/search`` and ``/merge`` come before ``/{customer_id}``."""
    response_model: Any = settings.customer_response
    page_model: Any = PageResponse[response_model]

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=response_model,
        summary="Create a customer",
        name="create_customer",
        responses=problem_responses(DuplicateEmail),
    )
    @settings.endpoint(
        data=Annotated[settings.customer_create, Body(openapi_examples=CUSTOMER_CREATE_EXAMPLES)]
    )
    async def create_customer(ctx: RequestContext, data: CustomerCreate) -> Response:
        """Create a customer of the tenant. Only `email` is required; it is unique within the
        tenant, a soft-deleted customer's email included (restore that customer instead)."""
        customer = await ctx.service.create_customer(ctx.tenant_id, data, actor=ctx.actor)
        return model_response(
            settings.customer_response.from_domain(customer), status.HTTP_201_CREATED
        )

    @router.get(
        "",
        response_model=page_model,
        summary="List customers",
        name="list_customers",
    )
    @settings.endpoint()
    async def list_customers(
        ctx: RequestContext,
        page: PageNumber = 1,
        page_size: PageSize = 20,
        segment: Segment = None,
        min_total_spent: MinSpent = None,
        max_total_spent: MaxSpent = None,
        tags: Tags = None,
        tags_match: TagsMatch = TagMatch.ANY,
        email_contains: EmailContains = None,
        created_after: CreatedAfter = None,
        created_before: CreatedBefore = None,
        include_deleted: IncludeDeleted = False,
        sort: Sort = CustomerSort.CREATED_AT_DESC,
    ) -> Response:
        """One page of the tenant's customers passing every filter given, with the total count.

        `created_after` is inclusive and `created_before` exclusive. Sort with `sort`
        (a leading `-` for descending); ties are broken by id.
        """
        filters: dict[str, Any] = {
            "segment": segment,
            "min_total_spent": min_total_spent,
            "max_total_spent": max_total_spent,
            "tags": _tag_list(tags),
            "tags_match": tags_match,
            "email_contains": email_contains,
            "created_after": created_after,
            "created_before": created_before,
            "include_deleted": include_deleted,
            "sort": sort,
        }
        result = await ctx.service.list_customers(
            ctx.tenant_id,
            {name: value for name, value in filters.items() if value is not None},
            page=page,
            page_size=page_size,
        )
        items = [settings.customer_response.from_domain(c) for c in result.items]
        page_of_customers: PageResponse[CustomerResponse] = page_model.of(result, items)
        return model_response(page_of_customers)

    @router.get(
        "/search",
        response_model=list[response_model],
        summary="Search customers",
        name="search_customers",
    )
    @settings.endpoint()
    async def search_customers(
        ctx: RequestContext,
        q: str = Query(
            min_length=1, max_length=100, description="Text to look for in email, name or phone."
        ),
        limit: int = Query(20, ge=1, le=MAX_SEARCH_LIMIT, description="Most results to return."),
    ) -> list[CustomerResponse]:
        """Search the tenant's customers by email, first and last name and phone, ignoring case.

        Best matches come first: the exact email, then prefixes, then substrings.
        """
        found = await ctx.service.search_customers(ctx.tenant_id, q, limit=limit)
        return [settings.customer_response.from_domain(c) for c in found]

    @router.post(
        "/merge",
        response_model=response_model,
        summary="Merge two customers",
        name="merge_customers",
        responses=problem_responses(CustomerNotFound, InvalidMerge),
    )
    @settings.endpoint()
    async def merge_customers(ctx: RequestContext, data: MergeBody) -> Response:
        """Merge a duplicate (`source_customer_id`) into the customer kept
        (`target_customer_id`) and return the target.

        Orders always move; addresses, notes, tags and preferences move as the flags say.
        The source is soft-deleted and its id resolves to the target from then on.
        Repeating a merge that is done changes nothing. Self-merges, deleted customers
        and customers with orders in different currencies are refused (409).
        """
        target = await ctx.service.merge_customers(ctx.tenant_id, data, actor=ctx.actor)
        return model_response(settings.customer_response.from_domain(target))

    @router.get(
        "/{customer_id}",
        response_model=response_model,
        summary="Get a customer",
        name="get_customer",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def get_customer(
        ctx: RequestContext,
        customer_id: CustomerId,
        include_deleted: bool = Query(
            False, description="Also return a soft-deleted customer (to restore it, say)."
        ),
    ) -> Response:
        """A customer of the tenant, with its order analytics and scores."""
        customer = await ctx.service.get_customer(
            ctx.tenant_id, customer_id, include_deleted=include_deleted
        )
        return model_response(settings.customer_response.from_domain(customer))

    @router.patch(
        "/{customer_id}",
        response_model=response_model,
        summary="Update a customer",
        name="update_customer",
        responses=problem_responses(CustomerNotFound, DuplicateEmail),
    )
    @settings.endpoint(
        data=Annotated[settings.customer_update, Body(openapi_examples=CUSTOMER_UPDATE_EXAMPLES)]
    )
    async def update_customer(
        ctx: RequestContext, customer_id: CustomerId, data: CustomerUpdate
    ) -> Response:
        """Change the fields sent, and only those.

        `preferences` is merged as a JSON Merge Patch (a key sent as `null` is removed);
        `tags` replaces the list; `null` clears an optional field; `email` cannot be cleared.
        """
        customer = await ctx.service.update_customer(
            ctx.tenant_id, customer_id, data, actor=ctx.actor
        )
        return model_response(settings.customer_response.from_domain(customer))

    @router.delete(
        "/{customer_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary="Delete a customer",
        name="delete_customer",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def delete_customer(
        ctx: RequestContext,
        customer_id: CustomerId,
        soft_delete: bool = Query(
            True,
            description="`true` (the default) hides the customer and keeps it restorable; "
            "`false` removes it and everything about it for good.",
        ),
    ) -> Response:
        """Delete a customer: soft by default, for good with `soft_delete=false`."""
        await ctx.service.delete_customer(
            ctx.tenant_id, customer_id, soft_delete=soft_delete, actor=ctx.actor
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(
        "/{customer_id}/restore",
        response_model=response_model,
        summary="Restore a soft-deleted customer",
        name="restore_customer",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def restore_customer(ctx: RequestContext, customer_id: CustomerId) -> Response:
        """Undo a soft delete. Restoring a customer that is not deleted changes nothing."""
        customer = await ctx.service.restore_customer(ctx.tenant_id, customer_id, actor=ctx.actor)
        return model_response(settings.customer_response.from_domain(customer))
