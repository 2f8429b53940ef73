"""Bulk import: stream rows in chunks, upsert by email, report every rejected row."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import typing
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from linkbay_customers.domain import AuditAction, Customer, InvalidInput
from linkbay_customers.ports import bulk_import
from linkbay_customers.schemas import CustomerCreate, added_fields
from linkbay_customers.services._boundary import invalid_input_from
from linkbay_customers.services._change import Change, Transactions
from linkbay_customers.services._profile import (
    apply_profile,
    build_customer,
    check_new_customer,
    customer_of_values,
    resolve_phone,
)
from linkbay_customers.services._progress import ProgressCallback, report_progress

__all__ = (
    "DEFAULT_CHUNK_SIZE",
    "ImportProgress",
    "ImportRejection",
    "ImportResult",
    "run_import",
)

DEFAULT_CHUNK_SIZE = 5000
"""Rows per transaction of an import unless told otherwise: each chunk costs about ten
round trips to the database whatever its size (on PostgreSQL), and holds its rows in
memory."""
_YIELD_EVERY = 64


@dataclass(frozen=True, slots=True)
class ImportRejection:
    """A row that was not imported, and why.

    Attributes:
        row: The row's position in the input, counting from 1.
        field: The offending field, when one is to blame.
        reason: What is wrong with the row. Never contains the row's values.
    """

    row: int
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """How far an import has come."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class ImportResult(ImportProgress):
    """The outcome of an import: the counts and a reason for every rejected row."""

    rejections: tuple[ImportRejection, ...] = field(default=())


async def _numbered(
    rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[tuple[int, Any]]:
    if isinstance(rows, AsyncIterable):
        number = 0
        async for row in rows:
            number += 1
            yield number, row
    else:
        for number, row in enumerate(rows, start=1):
            yield number, row


class _Tally:
    def __init__(self) -> None:
        self.processed = self.created = self.updated = self.unchanged = 0
        self.rejections: list[ImportRejection] = []

    def reject(self, row: int, field: str | None, reason: str) -> None:
        self.rejections.append(ImportRejection(row=row, field=field, reason=reason))

    def progress(self) -> ImportProgress:
        return ImportProgress(
            processed=self.processed,
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            rejected=len(self.rejections),
        )


def _validate(
    schema: type[CustomerCreate],
    number: int,
    row: Any,
    tally: _Tally,
    now: datetime,
    phone_region: str | None,
) -> CustomerCreate | None:
    """The row validated, or None when it is rejected (its reason in ``tally``)."""
    if not isinstance(row, Mapping):
        tally.reject(number, None, "a row must be a mapping of field names to values")
        return None
    try:
        data = schema.model_validate(row)
    except ValidationError as exc:
        error = invalid_input_from(exc)
        tally.reject(number, error.field, error.message)
        return None
    try:
        check_new_customer(data, now)
        data = resolve_phone(data, phone_region)
    except InvalidInput as exc:
        tally.reject(number, exc.field, exc.message)
        return None
    return data


_Packed = tuple[Any, ...]
"""A validated row as an import holds it until its chunk is written (see ``_Packing``)."""


class _Packing:
    """Validated rows kept as flat tuples of plain values until their chunk is written.

    A chunk's rows live for seconds, across the previous chunk's writes: as pydantic
    models (each an object, its ``__dict__``, its set of given fields, its tags) they
    reach the collector's oldest generation and cost every full collection, and a
    full collection comes every few thousand such rows. A tuple of strings, numbers
    and such tuples is left out of collections at once (one holding a dict, even an
    empty one, never is): lists are held as tuples, dicts as tuples of their items.
    A row is ``(number, index of its set of given fields, which values were lists,
    which were dicts, *values)``; a row whose model holds more than its fields
    (pydantic extras or private attributes) is kept as ``(number, model)``.
    """

    __slots__ = (
        "_containers",
        "_field_sets",
        "_indexes",
        "_names",
        "_plain",
        "_schema",
        "email_at",
    )

    def __init__(self, schema: type[CustomerCreate]) -> None:
        self._schema = schema
        self._names = tuple(schema.model_fields)
        # The fields declared as lists or dicts: only their values are converted (a
        # container elsewhere is held as it is, and only keeps its row collected).
        self._containers = tuple(
            (position, name)
            for position, (name, info) in enumerate(schema.model_fields.items())
            if (typing.get_origin(info.annotation) or info.annotation) in (list, dict)
        )
        self._field_sets: list[frozenset[str]] = []
        self._indexes: dict[frozenset[str], int] = {}
        # No field of a host's own: a new customer is built from the held values.
        self._plain = not added_fields(schema, CustomerCreate)
        self.email_at = 4 + self._names.index("email")
        """Where a packed row holds its email."""

    def validated(
        self, number: int, row: Any, tally: _Tally, now: datetime, phone_region: str | None
    ) -> _Packed | None:
        """The row validated and packed, or None when it is rejected (see ``_validate``)."""
        data = _validate(self._schema, number, row, tally, now, phone_region)
        return None if data is None else self.pack(number, data)

    def pack(self, number: int, data: CustomerCreate) -> _Packed:
        """The row as it is held."""
        if data.__pydantic_extra__ or data.__pydantic_private__:
            return (number, data)
        given = frozenset(data.model_fields_set)
        index = self._indexes.get(given)
        if index is None:
            index = self._indexes[given] = len(self._field_sets)
            self._field_sets.append(given)
        held = vars(data)
        values = [held[name] for name in self._names]
        lists = dicts = 0
        for position, _ in self._containers:
            value = values[position]
            kind = type(value)
            if kind is list:
                values[position], lists = tuple(value), lists | 1 << position
            elif kind is dict:
                values[position], dicts = tuple(value.items()), dicts | 1 << position
        return (number, index, lists, dicts, *values)

    def email(self, row: _Packed) -> str:
        """The row's (normalized) email."""
        return row[1].email if len(row) == 2 else row[self.email_at]  # type: ignore[no-any-return]

    def given(self, row: _Packed) -> frozenset[str]:
        """The names of the fields the row gave."""
        if len(row) == 2:
            return frozenset(row[1].model_fields_set)
        return self._field_sets[row[1]]

    def model(self, row: _Packed) -> CustomerCreate:
        """The row's validated model again (its values as validated, not validated again)."""
        if len(row) == 2:
            return row[1]  # type: ignore[no-any-return]
        values = dict(zip(self._names, row[4:], strict=True))
        lists: int = row[2]
        dicts: int = row[3]
        if lists or dicts:
            for position, name in self._containers:
                if lists >> position & 1:
                    values[name] = list(values[name])
                elif dicts >> position & 1:
                    values[name] = dict(values[name])
        return self._schema.model_construct(set(self._field_sets[row[1]]), **values)

    def customer(
        self, row: _Packed, *, customer_id: int, tenant_id: str, now: datetime
    ) -> Customer:
        """The new customer of the row (``build_customer`` of its model): from the values
        held, without the model, where the schema adds no field of the host's."""
        if len(row) == 2 or not self._plain:
            return build_customer(
                self.model(row), customer_id=customer_id, tenant_id=tenant_id, now=now
            )
        # Lists and dicts are held as tuples, which the customer's list() and dict() take.
        values = dict(zip(self._names, row[4:], strict=True))
        return customer_of_values(
            values, extra={}, customer_id=customer_id, tenant_id=tenant_id, now=now
        )


async def run_import(
    tx: Transactions,
    tenant_id: str,
    rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    *,
    schema: type[CustomerCreate],
    chunk_size: int,
    on_progress: ProgressCallback[ImportProgress] | None,
    actor: str | None,
    phone_region: str | None,
) -> ImportResult:
    """Import rows chunk by chunk, one transaction per chunk (see CustomerService).

    Validating a chunk overlaps with writing the previous one: writes run one at
    a time, in input order, in a task, while the rows that follow are validated.
    """
    tally = _Tally()
    packing = _Packing(schema)
    chunk: list[_Packed] = []
    emails: set[str] = set()
    writing: asyncio.Task[None] | None = None

    async def write(batch: list[_Packed]) -> None:
        # Run again whole when the storage aborts it for a conflict with concurrent
        # writes (an email taken since it was looked up): the next run sees them.
        written = await tx.change_retried(
            tenant_id,
            functools.partial(_write_chunk, chunk=batch, packing=packing),
            actor=actor,
        )
        written.add_to(tally)
        tally.processed += len(batch)
        await report_progress(on_progress, tally.progress())

    async def flush() -> None:
        nonlocal writing, chunk
        if writing is not None:
            # The previous chunk first: a later row for an email applies after it.
            await writing
            writing = None
        if chunk:
            writing = asyncio.create_task(write(chunk))
            chunk = []
            emails.clear()

    now = tx.clock.now()
    try:
        async for number, row in _numbered(rows):
            if number % _YIELD_EVERY == 0:
                # Let the write in progress reach the database between our rows.
                await asyncio.sleep(0)
                now = tx.clock.now()
            packed = packing.validated(number, row, tally, now, phone_region)
            if packed is None:
                tally.processed += 1
                continue
            email = packing.email(packed)
            if email in emails:
                # A later row for the same email applies after the earlier one.
                await flush()
            chunk.append(packed)
            emails.add(email)
            if len(chunk) >= chunk_size:
                await flush()
        await flush()  # starts writing the last chunk
        await flush()  # and waits for it
    finally:
        if writing is not None:
            # Only when the import is failing: stop the write, keep its error quiet.
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
    return ImportResult(
        **dataclasses.asdict(tally.progress()),
        rejections=tuple(sorted(tally.rejections, key=lambda r: r.row)),
    )


@dataclass(slots=True)
class _Written:
    """What writing a chunk did, counted apart until its transaction commits."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[tuple[int, str, str]] = field(default_factory=list)

    def add_to(self, tally: _Tally) -> None:
        tally.created += self.created
        tally.updated += self.updated
        tally.unchanged += self.unchanged
        for number, name, reason in self.rejections:
            tally.reject(number, name, reason)


async def _write_chunk(change: Change, *, chunk: list[_Packed], packing: _Packing) -> _Written:
    uow = change.uow
    written = _Written()
    email = packing.email
    existing = await bulk_import(uow).get_many_by_email([email(row) for row in chunk])
    # The chunk's packed rows are kept, not copied, and a row's model is rebuilt only
    # for as long as it is needed (see ``_Packing``).
    fresh: list[_Packed] = []
    changed: list[tuple[Customer, list[str]]] = []
    for row in chunk:
        holder = existing.get(email(row))
        if holder is None:
            fresh.append(row)
        elif holder.is_deleted:
            written.rejections.append(
                (row[0], "email", "email: belongs to a deleted customer; restore it instead")
            )
        else:
            data = packing.model(row)
            fields = apply_profile(holder, data, CustomerCreate, data.model_fields_set)
            if fields:
                # As update_customer: the segment stays, what the policy excludes goes.
                fields += await change.derive(holder)
                changed.append((holder, fields))
            else:
                written.unchanged += 1

    ids = await bulk_import(uow).next_ids(len(fresh))
    created = [
        packing.customer(row, customer_id=customer_id, tenant_id=uow.tenant_id, now=change.now)
        for row, customer_id in zip(fresh, ids, strict=True)
    ]
    refused = await change.add_many(created)
    if refused:
        numbers = {email(row): row[0] for row in fresh}
        for taken in refused:
            written.rejections.append(
                (numbers[taken], "email", "email: taken by a concurrent write; import again")
            )
        kept = [c.email not in refused for c in created]
        created = [c for c, keep in zip(created, kept, strict=True) if keep]
        fresh = [item for item, keep in zip(fresh, kept, strict=True) if keep]
    await change.save_many([c for c, _ in changed])
    # Events of one kind share their fields and details: checked and encoded once.
    details = {"source": "import"}
    field_sets: dict[frozenset[str], tuple[str, ...]] = {}
    for customer, row in zip(created, fresh, strict=True):
        names = packing.given(row)
        given = field_sets.get(names)
        if given is None:
            given = field_sets[names] = tuple(sorted(names))
        change.audit(
            AuditAction.CUSTOMER_CREATED,
            customer_id=customer.id,
            changed_fields=given,
            details=details,
        )
    for customer, fields in changed:
        change.audit(
            AuditAction.CUSTOMER_UPDATED,
            customer_id=customer.id,
            changed_fields=sorted(fields),
            details=details,
        )
    written.created = len(created)
    written.updated = len(changed)
    return written
