"""GDPRService: access and portability, erasure, the consent ledger, the audit trail
and retention, over the same ports as the customer service."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence, Set
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from linkbay_customers.domain import (
    DEFAULT_CONSENT_TYPES,
    DEFAULT_PROFILING_POLICY,
    AuditAction,
    AuditEvent,
    AuditVerification,
    ChainTip,
    ConsentEvent,
    ConsentState,
    ConsentTypeUnknown,
    Customer,
    InvalidInput,
    Page,
    ProfilingPolicies,
    ProfilingPolicy,
    anonymize,
    chain_of,
    check_actor,
    check_tenant,
    is_audit_label,
)
from linkbay_customers.ports import Clock, UnitOfWork
from linkbay_customers.schemas import ConsentMetadata, CustomerDataExport
from linkbay_customers.services._boundary import check_page, validated
from linkbay_customers.services._change import (
    Change,
    Transactions,
    UnitOfWorkFactory,
    load_customer,
)
from linkbay_customers.services._derived import ProfilingGate
from linkbay_customers.services._export_stream import export_chunks
from linkbay_customers.services._gdpr_results import (
    ConsentHistory,
    DataExport,
    Erasure,
    PurgeResult,
)
from linkbay_customers.services._progress import ProgressCallback, report_progress
from linkbay_customers.services._subject import (
    DataSubject,
    data_subject,
    data_subjects,
    filed_under,
    forget_decisions,
    subject_records,
)

__all__ = ("GDPRService", "export_as_csv_zip")

_AUDIT_PAGE = 1000
# Rows per read of a streamed export, and the most a caller may ask for: a page of
# 200 short notes costs about 1 MB on its way through.
_STREAM_PAGE = 200
_MAX_STREAM_PAGE = 1000
_PURGE_CHUNK = 500


class GDPRService:
    """Data-subject rights and accountability for every tenant of a storage.

    Every method takes the tenant first and works inside units of work of that
    tenant; another tenant's ids behave exactly like unknown ones. Every change,
    and every export, writes an audit event in the same transaction.

    Args:
        uow_factory: Opens a unit of work for a tenant (``storage.unit_of_work``).
        clock: Source of the current time.
        consent_types: The consent types accepted; the seed's three by default.
        profiling_policy: The rule for profiling (segments, scores, similarity,
            recommendations): one policy for all tenants, or a function giving each
            tenant's. Withdrawing the governing consent clears the derived data.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        consent_types: Sequence[str] = DEFAULT_CONSENT_TYPES,
        profiling_policy: ProfilingPolicy | ProfilingPolicies = DEFAULT_PROFILING_POLICY,
    ) -> None:
        types = tuple(consent_types)
        if not types or not all(is_audit_label(t) for t in types):
            # A consent type is recorded in the audit trail's details.
            raise ValueError(
                "consent_types must be names of 1 to 64 letters, digits or _ . : / -, at least one"
            )
        if "events" in types:
            raise ValueError("'events' cannot be a consent type: the history lists events under it")
        self._consent_types = types
        self._tx = Transactions(uow_factory, clock, ProfilingGate(profiling_policy))

    @property
    def consent_types(self) -> tuple[str, ...]:
        """The consent types this service accepts."""
        return self._consent_types

    def profiling_policy(self, tenant_id: str) -> ProfilingPolicy:
        """The profiling policy of a tenant."""
        return self._tx.profiling.policy(check_tenant(tenant_id))

    # ------------------------------------------------------- access and portability

    async def export_customer_data(
        self, tenant_id: str, customer_id: int, *, actor: str | None = None
    ) -> DataExport:
        """Everything held about a customer (GDPR art. 15 and 20).

        The profile with the host's extra fields, the consent state, derived data with
        when and by what it was computed, and the customers merged into it (ids and
        the data their rows still hold); then every address, note, order with its
        lines, consent decision and audit event of the customer and of the customers
        merged into it, each with the ``customer_id`` it is filed under. Soft-deleted
        and anonymized customers can be exported too. The export itself is audited.

        ``CustomerDataExport.of(export).model_dump(mode="json")`` (in
        ``linkbay_customers.schemas``) is the JSON document the REST API serves.

        Raises:
            CustomerNotFound: unknown id or another tenant's id.
        """
        return await self._export(tenant_id, customer_id, actor, "json")

    async def stream_customer_data(
        self,
        tenant_id: str,
        customer_id: int,
        *,
        actor: str | None = None,
        page_size: int = _STREAM_PAGE,
    ) -> AsyncGenerator[bytes, None]:
        """The JSON document of ``export_customer_data``, as UTF-8 pieces read from
        storage a page at a time: the memory an export takes does not grow with the
        customer's notes, orders and audit events. The REST API and the CLI serve this.

        The document is read in one unit of work, as ``export_customer_data`` reads it,
        and the export is audited when the last piece has been read: read it to the
        end (an export left unfinished is rolled back and not recorded; close the
        generator, ``contextlib.aclosing``, to end its unit of work at once). The
        error of an unknown customer comes with the first piece.

        Args:
            tenant_id: The tenant.
            customer_id: The customer (a merged-away id exports its target).
            actor: The acting user, recorded in the audit trail.
            page_size: Rows read at a time (1 to 1000; the memory taken grows with it).

        Raises:
            CustomerNotFound: unknown id or another tenant's id.
            InvalidInput: ``page_size`` is not in 1..1000.
        """
        check_page(1, page_size, max_page_size=_MAX_STREAM_PAGE)
        async with self._exporting(tenant_id, customer_id, actor, "json") as (change, subject):
            async for chunk in export_chunks(change.uow, subject, change.now, page_size=page_size):
                yield chunk

    @asynccontextmanager
    async def _exporting(
        self, tenant_id: str, customer_id: int, actor: str | None, format: str
    ) -> AsyncIterator[tuple[Change, DataSubject]]:
        """The change an export is read and audited in, with the person exported."""
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await load_customer(change.uow, customer_id, include_deleted=True)
            subject = await data_subject(change.uow, customer)
            change.audit(
                AuditAction.DATA_EXPORTED, customer_id=customer.id, details={"format": format}
            )
            yield change, subject

    async def _export(
        self, tenant_id: str, customer_id: int, actor: str | None, format: str
    ) -> DataExport:
        async with self._exporting(tenant_id, customer_id, actor, format) as (change, subject):
            records = await subject_records(change.uow, subject)
        return DataExport(
            export_date=change.now,
            customer=subject.customer,
            addresses=tuple(records.addresses),
            notes=tuple(records.notes),
            orders=tuple(reversed(records.orders)),
            consent_history=tuple(records.consent_events),
            merge_aliases=subject.aliases,
            merged_customers=subject.merged,
            duplicate_decisions=tuple(records.duplicate_decisions),
            audit_trail=tuple(records.audit_events),
        )

    async def export_customer_data_csv(
        self, tenant_id: str, customer_id: int, *, actor: str | None = None
    ) -> bytes:
        """The same export as a ZIP of CSV files, one per section.

        ``customer.csv``, ``analytics.csv``, ``addresses.csv``, ``notes.csv``,
        ``orders.csv``, ``order_items.csv``, ``consent.csv``, ``consent_history.csv``,
        ``merge_aliases.csv``, ``merged_customers.csv``, ``duplicate_decisions.csv`` and
        ``audit_trail.csv``;
        nested values are JSON text. Every row about a person carries its
        ``customer_id``, order lines included.

        Raises:
            CustomerNotFound: unknown id or another tenant's id.
        """
        export = await self._export(tenant_id, customer_id, actor, "csv")
        return export_as_csv_zip(CustomerDataExport.of(export).model_dump(mode="json"))

    # --------------------------------------------------------------------- erasure

    async def delete_customer_data(
        self,
        tenant_id: str,
        customer_id: int,
        *,
        anonymize: bool = True,
        actor: str | None = None,
    ) -> Erasure:
        """Erase a customer's personal data (GDPR art. 17).

        Anonymization and hard deletion both reach exactly the rows
        ``export_customer_data`` shows: those of the customer and of every customer
        merged into it.

        Anonymization (the default) removes every personal value from every table —
        the profile and the host's personal extra fields, addresses, note texts, the
        source, IP address and user agent of consent records, order shipping details
        and the product names of order lines, the embedding — and keeps the
        non-identifying analytics (order counts, totals, dates) and the host's order
        ids. It cannot be undone, and repeating it changes nothing.

        Hard deletion (``anonymize=False``) removes every row about them.

        Both keep the audit trail, which holds no personal values (accountability,
        art. 5(2)), and add their own event to it: ``data.anonymized`` per customer,
        or one ``data.erased`` tombstone naming the erased ids.

        Returns:
            Who was erased, how and when; ``ErasureResult.of(erasure)`` (in
            ``linkbay_customers.schemas``) is the seed's JSON shape, ``{"success",
            "method", "customer_id", "deleted_at"}``.

        Raises:
            CustomerNotFound: unknown id or another tenant's id (or already deleted
                for good).
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id, include_deleted=True)
            if not anonymize:
                await change.purge(customer, AuditAction.DATA_ERASED)
                return Erasure(customer_id=customer.id, method="deleted", deleted_at=change.now)
            subject = await data_subject(change.uow, customer)
            await _anonymize_many(change, subject.customers, "request")
        assert customer.deleted_at is not None
        return Erasure(customer_id=customer.id, method="anonymized", deleted_at=customer.deleted_at)

    # --------------------------------------------------------------------- consent

    def _check_consent_type(self, consent_type: object) -> str:
        if not isinstance(consent_type, str) or consent_type not in self._consent_types:
            raise ConsentTypeUnknown(str(consent_type)[:64], self._consent_types)
        return consent_type

    async def update_consent(
        self,
        tenant_id: str,
        customer_id: int,
        consent_type: str,
        consented: bool,
        *,
        metadata: ConsentMetadata | Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ConsentEvent:
        """Record a consent decision (GDPR art. 7): append it to the ledger and make it
        the current state.

        ``metadata`` says where the decision was taken (``source``, ``ip_address``,
        ``user_agent``); it can never set the decision or its date, which come from
        ``consented`` and the clock. Withdrawing the consent that governs profiling
        clears the customer's derived data (segment, scores, embedding).

        Returns:
            The new ledger entry (truthy, like the seed's ``True``).

        Raises:
            ConsentTypeUnknown: the type is not one the service is configured for.
            InvalidInput: ``consented`` is not a boolean, or the metadata is invalid.
            CustomerNotFound: unknown, deleted or another tenant's customer.
        """
        kind = self._check_consent_type(consent_type)
        if not isinstance(consented, bool):
            raise InvalidInput.single("consented", "must be true or false")
        details = _consent_metadata(metadata)
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            previous = customer.consent_data.get(kind)
            event = ConsentEvent(
                id=await change.uow.consents.next_id(),
                tenant_id=change.uow.tenant_id,
                customer_id=customer.id,
                consent_type=kind,
                consented=consented,
                occurred_at=change.now,
                previous=None if previous is None else previous.consented,
                source=details.source,
                ip_address=None if details.ip_address is None else str(details.ip_address),
                user_agent=details.user_agent,
            )
            customer.consent_data = {
                **customer.consent_data,
                kind: ConsentState(
                    consented=consented,
                    date=change.now,
                    source=event.source,
                    ip_address=event.ip_address,
                    user_agent=event.user_agent,
                ),
            }
            await change.uow.consents.append(event)
            # Giving consent computes nothing here (the next order or scoring does);
            # losing it clears the derived data at once.
            cleared = await change.save(customer)
            change.audit(
                AuditAction.CONSENT_UPDATED,
                customer_id=customer.id,
                changed_fields=["consent_data", *cleared],
                details={"consent_type": kind},
            )
        return event

    async def has_consent(self, tenant_id: str, customer_id: int, consent_type: str) -> bool:
        """Whether the customer's current decision for the type is a yes.

        Raises:
            ConsentTypeUnknown: the type is not one the service is configured for.
            CustomerNotFound: unknown, deleted or another tenant's customer.
        """
        kind = self._check_consent_type(consent_type)
        async with self._tx.read(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
        state = customer.consent_data.get(kind)
        return state is not None and state.consented

    async def get_consent_history(self, tenant_id: str, customer_id: int) -> ConsentHistory:
        """The current decision per consent type and every decision ever recorded,
        oldest first: the person's, under the customer's id and the ids merged into it
        (each decision names the ``customer_id`` it was recorded for).

        ``ConsentHistoryResponse.of(history)`` (in ``linkbay_customers.schemas``) is the
        seed's JSON shape: the current state keyed by type, the decisions under
        ``events``.

        Raises:
            CustomerNotFound: unknown, deleted or another tenant's customer.
        """

        async def history(uow: UnitOfWork, customer: Customer) -> ConsentHistory:
            aliases = await uow.aliases.list_for_customer(customer.id)
            events = await uow.consents.list_for_customers(filed_under(customer.id, aliases))
            return ConsentHistory(current=dict(customer.consent_data), events=tuple(events))

        return await self._tx.of_customer(tenant_id, customer_id, history)

    # ----------------------------------------------------------------- audit trail

    async def list_audit_events(
        self,
        tenant_id: str,
        *,
        customer_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> Page[AuditEvent]:
        """The tenant's audit trail, oldest first, optionally of one customer id (erased
        customers' tombstones included) and within ``[since, until)`` (GDPR art. 30).

        Raises:
            InvalidInput: a bad page, page size, id or time range.
        """
        check_page(page, page_size, max_page_size=_AUDIT_PAGE)
        if customer_id is not None and (
            not isinstance(customer_id, int) or isinstance(customer_id, bool) or customer_id < 1
        ):
            raise InvalidInput.single("customer_id", "must be a positive integer")
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (
                not isinstance(moment, datetime) or moment.utcoffset() is None
            ):
                raise InvalidInput.single(name, "must be a timezone-aware datetime")
        if since is not None and until is not None and until <= since:
            raise InvalidInput.single("until", "must be later than since")
        async with self._tx.read(tenant_id) as uow:
            return await uow.audit.list(
                customer_id=customer_id, since=since, until=until, page=page, page_size=page_size
            )

    async def verify_audit_trail(self, tenant_id: str) -> AuditVerification:
        """Check that no audit event of a tenant was changed, removed or inserted
        outside the library (the keyed hash chains, see ``AuditChain``).

        Reads the whole trail in chunks, in one transaction, in bounded memory.

        Returns:
            How many events and chains were checked, and the first break, if any.
        """
        async with self._tx.read(tenant_id) as uow:
            orphans = await uow.audit.orphan_tips(limit=1)
            return await uow.audit_chain.verify(_chained_events(uow), orphans)

    # ------------------------------------------------------------------- retention

    async def purge_inactive(
        self,
        tenant_id: str,
        inactive_for: timedelta,
        *,
        dry_run: bool = True,
        actor: str | None = None,
        chunk_size: int = _PURGE_CHUNK,
        on_progress: ProgressCallback[int] | None = None,
    ) -> PurgeResult:
        """Anonymize the customers with no order and no change for longer than
        ``inactive_for`` (storage limitation, GDPR art. 5(1)(e)), each with the
        customers merged into it, as ``delete_customer_data`` does.

        Works through the tenant in chunks by id, each chunk in its own transaction
        and a fixed number of statements. A dry run (the default) changes nothing and
        lists who would be anonymized. ``on_progress`` gets the number of customers
        anonymized (or, in a dry run, found) so far, after every chunk; an async
        callback is awaited.

        Raises:
            InvalidInput: ``inactive_for`` is not a positive period of at least a day.
        """
        if not isinstance(inactive_for, timedelta) or inactive_for < timedelta(days=1):
            raise InvalidInput.single("inactive_for", "must be a period of at least one day")
        if not isinstance(chunk_size, int) or not 1 <= chunk_size <= 10_000:
            raise InvalidInput.single("chunk_size", "must be an integer from 1 to 10000")
        actor = check_actor(actor)
        try:
            cutoff = self._tx.clock.now() - inactive_for
        except OverflowError:
            raise InvalidInput.single("inactive_for", "reaches back before year 1") from None
        affected: list[int] = []
        affected_ids: set[int] = set()
        after_id = 0
        while True:
            if dry_run:
                # Lists only: a read-only unit, which on SQLite takes no write lock.
                async with self._tx.read(tenant_id) as uow:
                    chunk, due = await _inactive_chunk(
                        uow, cutoff, after_id, chunk_size, affected_ids
                    )
            else:
                async with self._tx.change(tenant_id, actor=actor) as change:
                    chunk, due = await _inactive_chunk(
                        change.uow, cutoff, after_id, chunk_size, affected_ids
                    )
                    await _anonymize_many(change, list(due.values()), "retention")
            if not chunk:
                break
            affected.extend(due)
            affected_ids.update(due)
            after_id = chunk[-1].id
            await report_progress(on_progress, len(affected))
        return PurgeResult(dry_run=dry_run, cutoff=cutoff, customer_ids=tuple(affected))


# -------------------------------------------------------------------------- helpers


def _consent_metadata(metadata: ConsentMetadata | Mapping[str, Any] | None) -> ConsentMetadata:
    if metadata is None:
        return ConsentMetadata()
    if not isinstance(metadata, ConsentMetadata | Mapping):
        raise InvalidInput.single("metadata", "must be an object")
    return validated(ConsentMetadata, metadata, prefix=("metadata",))


async def _chained_events(uow: UnitOfWork) -> AsyncIterator[tuple[AuditEvent, ChainTip | None]]:
    after: tuple[int, int] | None = None
    while True:
        rows = await uow.audit.chained(after=after, limit=_AUDIT_PAGE)
        for row in rows:
            yield row
        if len(rows) < _AUDIT_PAGE:
            return
        last = rows[-1][0]
        after = (chain_of(last.customer_id), last.sequence or 0)


async def _inactive_chunk(
    uow: UnitOfWork, cutoff: datetime, after_id: int, limit: int, done: Set[int]
) -> tuple[list[Customer], dict[int, Customer]]:
    """The next chunk of inactive customers after ``after_id``, and who is due among them.

    A person is anonymized whole, in one transaction: with the customers merged into
    it, which a later chunk would otherwise reach (or, in a dry run, list a second
    time); those in ``done`` were reached already.
    """
    chunk = list(await uow.customers.list_inactive(cutoff, after_id=after_id, limit=limit))
    due = {
        c.id: c
        for subject in await data_subjects(uow, chunk)
        for c in subject.customers
        if c.id not in done and not c.is_anonymized
    }
    return chunk, due


async def _anonymize_many(change: Change, customers: Sequence[Customer], reason: str) -> None:
    """Anonymize customers with a fixed number of statements, however many they are."""
    uow = change.uow
    extra_erasure = uow.customers.extra_erasure()
    changes = {c.id: anonymize(c, change.now, extra_erasure) for c in customers}
    changed = [c for c in customers if changes[c.id]]
    if not changed:
        return
    ids = [c.id for c in changed]
    await change.save_many(changed)
    await uow.addresses.delete_for_customers(ids)
    await uow.notes.scrub_for_customers(ids)
    await uow.orders.scrub_for_customers(ids)
    await uow.consents.scrub_for_customers(ids)
    await forget_decisions(uow, ids)
    for customer in changed:
        change.audit(
            AuditAction.DATA_ANONYMIZED,
            customer_id=customer.id,
            changed_fields=changes[customer.id],
            details={"reason": reason},
        )


_CSV_SECTIONS = (
    "addresses",
    "notes",
    "consent_history",
    "merge_aliases",
    "merged_customers",
    "duplicate_decisions",
    "audit_trail",
)


# A cell a spreadsheet would run as a formula starts with one of these (OWASP, "CSV
# Injection"): the archive goes to people who open it in one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A value as its CSV cell: documents as JSON text, and text a spreadsheet would
    read as a formula behind a single quote, which shows it as text."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def export_as_csv_zip(document: Mapping[str, Any]) -> bytes:
    """A JSON export (``export_customer_data``) as a ZIP of CSV files, one per section."""
    files: dict[str, list[Mapping[str, Any]]] = {
        "customer": [document["customer"]],
        "analytics": [document["analytics"]],
        "orders": [{k: v for k, v in o.items() if k != "items"} for o in document["orders"]],
        "order_items": [
            {"customer_id": o["customer_id"], "order_id": o["order_id"], "line": n, **item}
            for o in document["orders"]
            for n, item in enumerate(o["items"], start=1)
        ],
        "consent": [{"consent_type": k, **v} for k, v in document["consent"].items()],
        **{name: list(document[name]) for name in _CSV_SECTIONS},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "export.json",
            json.dumps(
                {"export_date": document["export_date"], "export_format": "csv"},
                ensure_ascii=False,
            ),
        )
        for name, rows in files.items():
            archive.writestr(f"{name}.csv", _csv_text(rows))
    return buffer.getvalue()
