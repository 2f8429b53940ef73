"""The customer aggregate of ``CustomerService``: create, read, update, delete, restore,
list, search and import customers."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from linkbay_customers.domain import (
    MAX_SEARCH_LIMIT,
    AuditAction,
    Customer,
    CustomerNotFound,
    DuplicateEmail,
    InvalidInput,
    Page,
    check_actor,
    check_tenant,
)
from linkbay_customers.schemas import CustomerCreate, CustomerSearchFilters, CustomerUpdate
from linkbay_customers.services._boundary import check_page, validated
from linkbay_customers.services._change import Change, Transactions, load_customer
from linkbay_customers.services._import import (
    DEFAULT_CHUNK_SIZE,
    ImportProgress,
    ImportResult,
    run_import,
)
from linkbay_customers.services._profile import (
    apply_profile,
    build_customer,
    check_birthday,
    check_new_customer,
    resolve_phone,
)
from linkbay_customers.services._progress import ProgressCallback

__all__ = ("CustomerRecords",)


class CustomerRecords:
    """Customers themselves (part of ``CustomerService``)."""

    _tx: Transactions
    _phone_region: str | None

    async def create_customer(
        self,
        tenant_id: str,
        data: CustomerCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Customer:
        """Create a customer.

        Raises:
            InvalidInput: a field is invalid (the error names it).
            DuplicateEmail: the email is used by another customer of the tenant,
                including a soft-deleted one, which keeps its email for a restore.
        """
        data = resolve_phone(validated(CustomerCreate, data), self._phone_region)
        actor = check_actor(actor)
        check_new_customer(data, self._tx.clock.now())
        async with self._tx.change(tenant_id, actor=actor) as change:
            # No lookup first: the storage refuses a taken email atomically, which a
            # check-then-insert could not promise under concurrent creates anyway.
            customer = build_customer(
                data, customer_id=0, tenant_id=change.uow.tenant_id, now=change.now
            )
            await change.add(customer)  # gives it its id
            change.audit(
                AuditAction.CUSTOMER_CREATED,
                customer_id=customer.id,
                changed_fields=sorted(data.model_fields_set),
            )
        return customer

    async def get_customer(
        self, tenant_id: str, customer_id: int, *, include_deleted: bool = False
    ) -> Customer:
        """Fetch a customer; a merged-away id returns the customer it was merged into.

        Raises:
            CustomerNotFound: unknown id, another tenant's id, or a deleted customer
                when ``include_deleted`` is False.
        """
        async with self._tx.read(tenant_id) as uow:
            return await load_customer(uow, customer_id, include_deleted=include_deleted)

    async def get_customer_by_email(self, tenant_id: str, email: str) -> Customer:
        """Fetch a non-deleted customer by email (case-insensitive).

        Raises:
            CustomerNotFound: no such customer.
        """
        key = email.strip().lower() if isinstance(email, str) else ""
        async with self._tx.read(tenant_id) as uow:
            customer = await uow.customers.get_by_email(key) if key else None
        if customer is None:
            raise CustomerNotFound(email, field="email")
        return customer

    async def update_customer(
        self,
        tenant_id: str,
        customer_id: int,
        data: CustomerUpdate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Customer:
        """Apply a partial update; only the fields sent change (see ``CustomerUpdate``).

        A call that changes nothing writes nothing, not even an audit record.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: a field is invalid.
            DuplicateEmail: the new email is used by another customer of the tenant.
        """
        data = resolve_phone(validated(CustomerUpdate, data), self._phone_region)
        actor = check_actor(actor)
        check_birthday(data.birthday, self._tx.clock.now().date())
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            changed = apply_profile(customer, data, CustomerUpdate, data.model_fields_set)
            if not changed:
                return customer
            if "email" in changed and customer.email is not None:
                holder = await change.uow.customers.get_by_email(
                    customer.email, include_deleted=True
                )
                if holder is not None and holder.id != customer.id:
                    raise DuplicateEmail(customer.email, existing_is_deleted=holder.is_deleted)
            # A profile change does not move the segment; it only drops what the
            # policy no longer allows (derived data kept from before an opt-in policy).
            changed += await change.save(customer)
            change.audit(
                AuditAction.CUSTOMER_UPDATED,
                customer_id=customer.id,
                changed_fields=sorted(changed),
            )
        return customer

    async def delete_customer(
        self,
        tenant_id: str,
        customer_id: int,
        *,
        soft_delete: bool = True,
        actor: str | None = None,
    ) -> bool:
        """Delete a customer: soft by default (restorable), or for good.

        A hard delete removes the customer, its addresses, notes, orders, consent
        ledger and merge aliases, and the customers merged into it. Soft-deleting a
        customer that is already deleted changes nothing.

        Returns:
            True once the customer is deleted.

        Raises:
            CustomerNotFound: unknown id or another tenant's id.
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id, include_deleted=True)
            if not soft_delete:
                await change.purge(customer, AuditAction.CUSTOMER_HARD_DELETED)
            elif not customer.is_deleted:
                await _set_deleted(change, customer, change.now, AuditAction.CUSTOMER_DELETED)
        return True

    async def restore_customer(
        self, tenant_id: str, customer_id: int, *, actor: str | None = None
    ) -> Customer:
        """Undo a soft delete. Restoring a customer that is not deleted changes nothing.

        Raises:
            CustomerNotFound: unknown id, another tenant's id, or an anonymized customer.
        """
        actor = check_actor(actor)
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id, include_deleted=True)
            if customer.is_anonymized:
                raise CustomerNotFound(customer_id)
            if customer.is_deleted:
                await _set_deleted(change, customer, None, AuditAction.CUSTOMER_RESTORED)
        return customer

    async def list_customers(
        self,
        tenant_id: str,
        filters: CustomerSearchFilters | Mapping[str, Any] | None = None,
        *,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[Customer]:
        """One page of the tenant's customers passing ``filters``, with the total count.

        Raises:
            InvalidInput: a filter is invalid, ``page`` < 1 or ``page_size`` not in 1..100.
        """
        criteria = validated(CustomerSearchFilters, filters or {})
        check_page(page, page_size)
        async with self._tx.read(tenant_id) as uow:
            return await uow.customers.list(criteria.to_filters(), page=page, page_size=page_size)

    async def search_customers(
        self, tenant_id: str, query: str, *, limit: int = 20
    ) -> Sequence[Customer]:
        """Search non-deleted customers by email, first/last name and phone.

        Matching ignores case; ``%`` and ``_`` are ordinary characters. Results come
        best first: the exact email, then prefixes, then substrings; at most ``limit``.

        Raises:
            InvalidInput: empty or over-long query, or ``limit`` not in 1..100.
        """
        q = query.strip() if isinstance(query, str) else ""
        if not 0 < len(q) <= 100 or not q.isprintable():
            raise InvalidInput.single("q", "must be 1 to 100 printable characters")
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 0 < limit <= MAX_SEARCH_LIMIT
        ):
            raise InvalidInput.single("limit", f"must be an integer from 1 to {MAX_SEARCH_LIMIT}")
        async with self._tx.read(tenant_id) as uow:
            return await uow.customers.search(q, limit=limit)

    async def import_customers(
        self,
        tenant_id: str,
        rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        on_progress: ProgressCallback[ImportProgress] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        schema: type[CustomerCreate] = CustomerCreate,
        actor: str | None = None,
    ) -> ImportResult:
        """Import customers in bulk, upserting by email.

        Rows stream from an iterable or async iterable of mappings and are written
        in chunks, one transaction each, with set-based statements. A row whose
        email is new creates a customer; a row whose email exists updates the
        fields it carries (as ``update_customer`` would), and a later row for the
        same email applies after an earlier one. A row that fails validation, or
        whose email belongs to a soft-deleted customer, is rejected with its row
        number and reason; it never stops the other rows.

        Args:
            tenant_id: The tenant to import into.
            rows: The rows: ``CustomerCreate`` fields (or those of ``schema``).
            on_progress: Called with an ``ImportProgress`` after every chunk; may
                be a coroutine function.
            chunk_size: Rows per transaction (1 to 10000).
            schema: ``CustomerCreate`` or a host's subclass of it, to validate rows.
            actor: The acting user, for the audit trail.

        Raises:
            InvalidInput: an invalid tenant, actor or chunk size.
        """
        tenant_id = check_tenant(tenant_id)
        actor = check_actor(actor)
        if not isinstance(chunk_size, int) or not 0 < chunk_size <= 10_000:
            raise InvalidInput.single("chunk_size", "must be an integer from 1 to 10000")
        return await run_import(
            self._tx,
            tenant_id,
            rows,
            schema=schema,
            chunk_size=chunk_size,
            on_progress=on_progress,
            actor=actor,
            phone_region=self._phone_region,
        )


async def _set_deleted(
    change: Change, customer: Customer, deleted_at: datetime | None, action: AuditAction
) -> None:
    # Soft delete and restore: the customer is written as any change writes it.
    customer.deleted_at = deleted_at
    cleared = await change.save(customer)
    change.audit(action, customer_id=customer.id, changed_fields=["deleted_at", *cleared])
