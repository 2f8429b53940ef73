"""A customer's orders, recorded once per order id."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from linkbay_customers.domain import CustomerNotFound, OrderConflict
from linkbay_customers.schemas import OrderResponse, PageResponse
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import CustomerId, OrderBody, PageNumber, PageSize
from linkbay_customers_fastapi._problems import problem_responses

__all__ = ("add_order_routes",)


def add_order_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/orders``."""

    @router.post(
        "/{customer_id}/orders",
        status_code=status.HTTP_201_CREATED,
        response_model=OrderResponse,
        summary="Record an order",
        name="record_order",
        responses={
            200: {
                "description": "The order id was already recorded with the same content "
                "(a retry): the stored order is returned and nothing changes.",
                "model": OrderResponse,
            },
            **problem_responses(CustomerNotFound, OrderConflict),
        },
    )
    @settings.endpoint()
    async def record_order(
        ctx: RequestContext, customer_id: CustomerId, data: OrderBody, response: Response
    ) -> OrderResponse:
        """Record an order from the host's order system and fold it into the customer's
        analytics (total orders, total spent, average order value, segment).

        Recording is idempotent by `order_id`: sending the same order again returns the
        stored order with 200 and changes nothing. The same `order_id` with other content
        or for another customer is refused (409). `created_at` defaults to now and may
        not lie in the future; `currency` defaults to that of the customer's earlier orders.
        """
        recorded = await ctx.service.record_order(ctx.tenant_id, customer_id, data, actor=ctx.actor)
        if not recorded.created:
            response.status_code = status.HTTP_200_OK
        return OrderResponse.from_domain(recorded.order)

    @router.get(
        "/{customer_id}/orders",
        response_model=PageResponse[OrderResponse],
        summary="List a customer's orders",
        name="list_orders",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def list_orders(
        ctx: RequestContext, customer_id: CustomerId, page: PageNumber = 1, page_size: PageSize = 20
    ) -> PageResponse[OrderResponse]:
        """One page of a customer's orders, newest first."""
        result = await ctx.service.list_orders(
            ctx.tenant_id, customer_id, page=page, page_size=page_size
        )
        items = [OrderResponse.from_domain(o) for o in result.items]
        return PageResponse[OrderResponse].of(result, items)
