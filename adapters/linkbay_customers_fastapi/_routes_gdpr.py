"""GDPR: access and portability (export), erasure, consent and the audit trail."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from linkbay_customers.domain import AuditEvent, ConsentTypeUnknown, CustomerNotFound, Page
from linkbay_customers.schemas import (
    AuditEventResponse,
    ConsentEventResponse,
    ConsentHistoryResponse,
    CustomerDataExport,
    ErasureResult,
    PageResponse,
)
from linkbay_customers_fastapi._context import GDPRRequestContext, RouteSettings
from linkbay_customers_fastapi._params import (
    AuditCustomerId,
    AuditPageSize,
    AuditSince,
    AuditUntil,
    ConsentBody,
    ConsentType,
    CustomerId,
    PageNumber,
)
from linkbay_customers_fastapi._problems import problem_responses
from linkbay_customers_fastapi._schemas import ExportFormat

__all__ = ("add_gdpr_routes", "add_tenant_audit_routes")

ZIP_MEDIA_TYPE = "application/zip"
# Exports and trails are personal data: no shared cache may keep a copy.
_NO_STORE = {"Cache-Control": "no-store"}
# An export up to this size stays in memory on its way out; a larger one goes to a
# temporary file (unlinked at once, removed when the response ends).
_SPOOL_IN_MEMORY = 1024 * 1024
_SPOOL_READ = 64 * 1024


async def _spooled(spool: IO[bytes]) -> AsyncIterator[bytes]:
    with spool:
        while chunk := spool.read(_SPOOL_READ):
            yield chunk


ExportFormatQuery = Annotated[
    ExportFormat,
    Query(
        alias="format",
        description="`json` (the default) or `csv`: a ZIP of one CSV file per section "
        "(`customer.csv`, `addresses.csv`, `orders.csv`, ...).",
    ),
]


def _audit_page(page: Page[AuditEvent]) -> PageResponse[AuditEventResponse]:
    items = [AuditEventResponse.from_domain(e) for e in page.items]
    return PageResponse[AuditEventResponse].of(page, items)


def add_tenant_audit_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/audit-events``; it must come before ``/{customer_id}``."""

    @router.get(
        "/audit-events",
        response_model=PageResponse[AuditEventResponse],
        summary="List the tenant's audit trail",
        name="list_audit_events",
    )
    @settings.gdpr_endpoint()
    async def list_audit_events(
        ctx: GDPRRequestContext,
        customer_id: AuditCustomerId = None,
        since: AuditSince = None,
        until: AuditUntil = None,
        page: PageNumber = 1,
        page_size: AuditPageSize = 100,
    ) -> PageResponse[AuditEventResponse]:
        """One page of the tenant's audit trail, oldest first (GDPR art. 30).

        Every change to a customer, every export and every erasure is recorded with
        the acting user and the names of the fields changed, never their values.
        `customer_id` narrows the trail to one customer id, an erased customer's
        tombstone included (an id with no events gives an empty page); `since` is
        inclusive and `until` exclusive.
        """
        result = await ctx.service.list_audit_events(
            ctx.tenant_id,
            customer_id=customer_id,
            since=since,
            until=until,
            page=page,
            page_size=page_size,
        )
        return _audit_page(result)


def add_gdpr_routes(router: APIRouter, settings: RouteSettings) -> None:
    """Add ``/{customer_id}/export``, ``/gdpr``, ``/consent`` and ``/audit``."""

    @router.get(
        "/{customer_id}/export",
        response_model=CustomerDataExport,
        summary="Export a customer's data",
        name="export_customer_data",
        responses={
            200: {
                "description": "Everything held about the customer: JSON by default, a ZIP "
                "of CSV files with `format=csv` (served as an attachment).",
                "content": {ZIP_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            },
            **problem_responses(CustomerNotFound),
        },
    )
    @settings.gdpr_endpoint()
    async def export_customer_data(
        ctx: GDPRRequestContext,
        customer_id: CustomerId,
        export_format: ExportFormatQuery = ExportFormat.JSON,
    ) -> Response:
        """Everything held about a customer and the customers merged into it (GDPR art.
        15 and 20): the profile, addresses, notes, orders with their lines, the consent
        state and its history, derived data, the ids merged into it and the audit trail;
        each address, note, order, consent decision and audit event names the
        `customer_id` it is filed under. A merged-away id exports the same person.

        Soft-deleted and anonymized customers can be exported too. The export itself is
        recorded in the audit trail (`data.exported`).
        """
        if export_format is ExportFormat.CSV:
            archive = await ctx.service.export_customer_data_csv(
                ctx.tenant_id, customer_id, actor=ctx.actor
            )
            return Response(
                content=archive,
                media_type=ZIP_MEDIA_TYPE,
                headers={
                    **_NO_STORE,
                    "Content-Disposition": (
                        f'attachment; filename="customer-{customer_id}-export.zip"'
                    ),
                },
            )
        # Read whole into a spooled file before answering: the export's transaction
        # ends before the first byte goes out (a slow client holds no lock), and the
        # memory it takes is the spool's, not the document's.
        # Closed by the response once sent (or here on an error).
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            async for chunk in ctx.service.stream_customer_data(
                ctx.tenant_id, customer_id, actor=ctx.actor
            ):
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return StreamingResponse(_spooled(spool), media_type="application/json", headers=_NO_STORE)

    @router.delete(
        "/{customer_id}/gdpr",
        response_model=ErasureResult,
        summary="Erase a customer's personal data",
        name="erase_customer_data",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.gdpr_endpoint()
    async def erase_customer_data(
        ctx: GDPRRequestContext,
        customer_id: CustomerId,
        anonymize: bool = Query(
            True,
            description="`true` (the default) removes every personal value and keeps the "
            "non-identifying analytics; `false` removes every row about the customer.",
        ),
    ) -> ErasureResult:
        """Erase a customer's personal data (GDPR art. 17); cannot be undone.

        Anonymization (the default) clears the profile, deletes the addresses, blanks
        the notes, and scrubs consent records, order shipping details and audit
        details, for the customer and the customers merged into it; order counts and
        totals stay. The customer is then deleted (`GET` answers 404) but can still be
        exported. Repeating it changes nothing.

        Hard deletion (`anonymize=false`) removes every row, audit events included,
        leaving one `data.erased` event without personal data; the id is then unknown.
        """
        erasure = await ctx.service.delete_customer_data(
            ctx.tenant_id, customer_id, anonymize=anonymize, actor=ctx.actor
        )
        return ErasureResult.of(erasure)

    @router.post(
        "/{customer_id}/consent/{consent_type}",
        response_model=ConsentEventResponse,
        summary="Record a consent decision",
        name="update_consent",
        responses=problem_responses(CustomerNotFound, ConsentTypeUnknown),
    )
    @settings.gdpr_endpoint()
    async def update_consent(
        ctx: GDPRRequestContext,
        customer_id: CustomerId,
        consent_type: ConsentType,
        data: ConsentBody,
    ) -> ConsentEventResponse:
        """Give or withdraw a consent (GDPR art. 7): the decision is appended to the
        customer's consent ledger and becomes the current state; the new ledger entry is
        returned.

        `metadata` (`source`, `ip_address`, `user_agent`) is recorded as sent. The API
        never takes the IP address or user agent from the request itself: the request
        may come from the host's backend rather than from the person deciding, so the
        host decides what to record. The date is the server's time. Withdrawing the
        consent that governs profiling clears the customer's segment and scores.
        """
        event = await ctx.service.update_consent(
            ctx.tenant_id,
            customer_id,
            consent_type,
            data.consented,
            metadata=data.metadata,
            actor=ctx.actor,
        )
        return ConsentEventResponse.from_domain(event)

    @router.get(
        "/{customer_id}/consent",
        response_model=ConsentHistoryResponse,
        summary="Get a customer's consent state and history",
        name="get_consent_history",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.gdpr_endpoint()
    async def get_consent_history(
        ctx: GDPRRequestContext, customer_id: CustomerId
    ) -> ConsentHistoryResponse:
        """The current decision for each consent type ever decided, keyed by type (the
        seed's shape), and under `events` every decision recorded, oldest first."""
        history = await ctx.service.get_consent_history(ctx.tenant_id, customer_id)
        return ConsentHistoryResponse.of(history)

    @router.get(
        "/{customer_id}/audit",
        response_model=PageResponse[AuditEventResponse],
        summary="List a customer's audit trail",
        name="list_customer_audit_events",
        responses=problem_responses(CustomerNotFound),
    )
    @settings.gdpr_endpoint()
    async def list_customer_audit_events(
        ctx: GDPRRequestContext,
        customer_id: CustomerId,
        since: AuditSince = None,
        until: AuditUntil = None,
        page: PageNumber = 1,
        page_size: AuditPageSize = 100,
    ) -> PageResponse[AuditEventResponse]:
        """One page of the audit events recorded under a customer id, oldest first.

        The trail outlives the customer: a deleted, anonymized or erased customer's
        events (an erased one's tombstone) are listed too. An id with no event at all
        is unknown (404). Events are listed under the id they were recorded for: a
        merged id lists its own events, not those of the customer it merged into.
        """
        result = await ctx.service.list_audit_events(
            ctx.tenant_id,
            customer_id=customer_id,
            since=since,
            until=until,
            page=page,
            page_size=page_size,
        )
        if result.total == 0 and not await _has_audit_events(ctx, customer_id, since, until):
            raise CustomerNotFound(customer_id)
        return _audit_page(result)


async def _has_audit_events(
    ctx: GDPRRequestContext, customer_id: int, since: datetime | None, until: datetime | None
) -> bool:
    # Every customer has at least its creation event, so no event at all means no such
    # id in this tenant; an empty window of a known id is just an empty page.
    if since is None and until is None:
        return False
    found = await ctx.service.list_audit_events(
        ctx.tenant_id, customer_id=customer_id, page=1, page_size=1
    )
    return found.total > 0
