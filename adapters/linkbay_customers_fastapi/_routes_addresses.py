"""A customer's addresses."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from linkbay_customers.domain import AddressNotFound, CustomerNotFound, TooManyAddresses
from linkbay_customers.schemas import AddressResponse, PageResponse
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import (
    AddressBody,
    AddressId,
    AddressUpdateBody,
    CustomerId,
    PageNumber,
    PageSize,
)
from linkbay_customers_fastapi._problems import problem_responses

__all__ = ("add_address_routes",)


def add_address_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/addresses`` and ``/{customer_id}/addresses/{address_id}``."""

    @router.post(
        "/{customer_id}/addresses",
        status_code=status.HTTP_201_CREATED,
        response_model=AddressResponse,
        summary="Add an address",
        name="add_address",
        responses=problem_responses(CustomerNotFound, TooManyAddresses),
    )
    @settings.endpoint()
    async def add_address(
        ctx: RequestContext, customer_id: CustomerId, data: AddressBody
    ) -> AddressResponse:
        """Add an address to a customer. A new default replaces the customer's default address
        of the same type."""
        address = await ctx.service.add_address(ctx.tenant_id, customer_id, data, actor=ctx.actor)
        return AddressResponse.from_domain(address)

    @router.get(
        "/{customer_id}/addresses",
        response_model=PageResponse[AddressResponse],
        summary="List a customer's addresses",
        name="list_addresses",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def list_addresses(
        ctx: RequestContext, customer_id: CustomerId, page: PageNumber = 1, page_size: PageSize = 20
    ) -> PageResponse[AddressResponse]:
        """One page of a customer's addresses, oldest first, with the total count."""
        addresses = await ctx.service.list_addresses(
            ctx.tenant_id, customer_id, page=page, page_size=page_size
        )
        return PageResponse[AddressResponse].of(
            addresses, [AddressResponse.from_domain(a) for a in addresses.items]
        )

    @router.patch(
        "/{customer_id}/addresses/{address_id}",
        response_model=AddressResponse,
        summary="Update an address",
        name="update_address",
        responses=problem_responses(CustomerNotFound, AddressNotFound),
    )
    @settings.endpoint()
    async def update_address(
        ctx: RequestContext, customer_id: CustomerId, address_id: AddressId, data: AddressUpdateBody
    ) -> AddressResponse:
        """Change the fields sent, and only those. Making an address the default of its type
        clears the previous default."""
        address = await ctx.service.update_address(
            ctx.tenant_id, customer_id, address_id, data, actor=ctx.actor
        )
        return AddressResponse.from_domain(address)

    @router.delete(
        "/{customer_id}/addresses/{address_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary="Delete an address",
        name="delete_address",
        responses=problem_responses(CustomerNotFound, AddressNotFound),
    )
    @settings.endpoint()
    async def delete_address(
        ctx: RequestContext, customer_id: CustomerId, address_id: AddressId
    ) -> Response:
        """Delete an address of a customer."""
        await ctx.service.delete_address(ctx.tenant_id, customer_id, address_id, actor=ctx.actor)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
