"""The JSON export written section by section: the document ``CustomerDataExport``
describes, read from storage a page at a time, so a customer with a hundred thousand
notes costs a page of memory, not the document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from linkbay_customers.domain import Page
from linkbay_customers.ports import UnitOfWork
from linkbay_customers.schemas import (
    AddressResponse,
    AuditEventResponse,
    ConsentEventResponse,
    CustomerDataExport,
    CustomerNoteResponse,
    OrderResponse,
)
from linkbay_customers.services._gdpr_results import DataExport
from linkbay_customers.services._subject import DataSubject, decisions_about

__all__ = ("export_chunks",)

T = TypeVar("T")


def _dumps(value: Any) -> str:
    # As FastAPI's JSONResponse renders a document.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


async def export_chunks(
    uow: UnitOfWork, subject: DataSubject, export_date: datetime, *, page_size: int
) -> AsyncIterator[bytes]:
    """The export of a data subject as UTF-8 JSON, in pieces of at most a page of rows.

    The pieces joined are the JSON of ``CustomerDataExport.of(export)`` for the
    ``DataExport`` the same rows make (the same keys, in the same order).
    """
    ids = subject.customer_ids
    # Everything but the paged sections is small: render it whole, with the paged
    # sections empty, and fill those in as the document is written.
    head = CustomerDataExport.of(
        DataExport(
            export_date=export_date,
            customer=subject.customer,
            addresses=(),
            notes=(),
            orders=(),
            consent_history=(),
            merge_aliases=subject.aliases,
            merged_customers=subject.merged,
            # A few per person, decided one by one: read whole with the head.
            duplicate_decisions=tuple(await decisions_about(uow, ids)),
            audit_trail=(),
        )
    ).model_dump(mode="json")

    async def addresses() -> AsyncIterator[list[BaseModel]]:
        async for page in _pages(
            lambda n: uow.addresses.page_for_customers(ids, page=n, page_size=page_size)
        ):
            yield [AddressResponse.from_domain(a) for a in page]

    async def notes() -> AsyncIterator[list[BaseModel]]:
        async for page in _pages(
            lambda n: uow.notes.page_for_customers(ids, page=n, page_size=page_size)
        ):
            yield [CustomerNoteResponse.from_domain(note) for note in page]

    async def orders() -> AsyncIterator[list[BaseModel]]:
        # Stored newest first, exported oldest first: the last page first, reversed.
        async for page in _pages(
            lambda n: uow.orders.list_for_customers(ids, page=n, page_size=page_size),
            backwards=True,
        ):
            yield [OrderResponse.from_domain(o) for o in reversed(page)]

    async def consent_history() -> AsyncIterator[list[BaseModel]]:
        # A ledger of decisions: a few per consent type.
        events = await uow.consents.list_for_customers(ids)
        yield [ConsentEventResponse.from_domain(e) for e in events]

    async def audit_trail() -> AsyncIterator[list[BaseModel]]:
        async for page in _pages(
            lambda n: uow.audit.list_for_customers(ids, page=n, page_size=page_size)
        ):
            yield [AuditEventResponse.from_domain(e) for e in page]

    sections: dict[str, Callable[[], AsyncIterator[list[BaseModel]]]] = {
        "addresses": addresses,
        "notes": notes,
        "orders": orders,
        "consent_history": consent_history,
        "audit_trail": audit_trail,
    }
    opening = "{"
    for key, value in head.items():
        if key not in sections:
            yield f"{opening}{_dumps(key)}:{_dumps(value)}".encode()
            opening = ","
            continue
        yield f"{opening}{_dumps(key)}:[".encode()
        opening = ","
        first = True
        async for rows in sections[key]():
            if rows:
                piece = ",".join(_dumps(row.model_dump(mode="json")) for row in rows)
                yield (piece if first else "," + piece).encode()
                first = False
        yield b"]"
    yield b"}"


async def _pages(
    read: Callable[[int], Awaitable[Page[T]]], *, backwards: bool = False
) -> AsyncIterator[Sequence[T]]:
    first = await read(1)
    numbers = range(first.total_pages, 0, -1) if backwards else range(1, first.total_pages + 1)
    for number in numbers:
        yield first.items if number == 1 else (await read(number)).items
