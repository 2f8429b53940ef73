"""Notes about a customer."""

from __future__ import annotations

from fastapi import APIRouter, status

from linkbay_customers.domain import CustomerNotFound
from linkbay_customers.schemas import CustomerNoteResponse, PageResponse
from linkbay_customers_fastapi._context import RequestContext, RouteSettings
from linkbay_customers_fastapi._params import CustomerId, NoteBody, PageNumber, PageSize
from linkbay_customers_fastapi._problems import problem_responses

__all__ = ("add_note_routes",)


def add_note_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/notes``."""

    @router.post(
        "/{customer_id}/notes",
        status_code=status.HTTP_201_CREATED,
        response_model=CustomerNoteResponse,
        summary="Add a note",
        name="add_note",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def add_note(
        ctx: RequestContext, customer_id: CustomerId, data: NoteBody
    ) -> CustomerNoteResponse:
        """Add a note about a customer; `created_by` is the acting user of the request."""
        note = await ctx.service.add_note(ctx.tenant_id, customer_id, data, actor=ctx.actor)
        return CustomerNoteResponse.from_domain(note)

    @router.get(
        "/{customer_id}/notes",
        response_model=PageResponse[CustomerNoteResponse],
        summary="List a customer's notes",
        name="list_notes",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.endpoint()
    async def list_notes(
        ctx: RequestContext, customer_id: CustomerId, page: PageNumber = 1, page_size: PageSize = 20
    ) -> PageResponse[CustomerNoteResponse]:
        """One page of a customer's notes, oldest first, with the total count."""
        notes = await ctx.service.list_notes(
            ctx.tenant_id, customer_id, page=page, page_size=page_size
        )
        return PageResponse[CustomerNoteResponse].of(
            notes, [CustomerNoteResponse.from_domain(n) for n in notes.items]
        )
