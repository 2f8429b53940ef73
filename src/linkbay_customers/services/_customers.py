"""CustomerService: customers, addresses, notes, orders and merges of one tenant at a time."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from linkbay_customers.domain import (
    DEFAULT_PROFILING_POLICY,
    MAX_SEARCH_LIMIT,
    Address,
    AddressNotFound,
    AddressType,
    AuditAction,
    Customer,
    CustomerNote,
    CustomerNotFound,
    DuplicateEmail,
    InvalidInput,
    InvalidMerge,
    MergeAlias,
    Order,
    OrderConflict,
    OrderItem,
    OrderShipping,
    Page,
    ProfilingPolicies,
    ProfilingPolicy,
    apply_order,
    check_actor,
    check_phone_region,
    check_preferences,
    check_tenant,
    fill_missing,
    fold_analytics,
    merge_tags,
)
from linkbay_customers.ports import Clock, CustomerIntelligence, UnitOfWork
from linkbay_customers.schemas import (
    AddressCreate,
    AddressUpdate,
    CustomerCreate,
    CustomerMergeRequest,
    CustomerNoteCreate,
    CustomerSearchFilters,
    CustomerUpdate,
    OrderCreate,
)
from linkbay_customers.services._audit import write_audit
from linkbay_customers.services._boundary import check_id, check_page, validated
from linkbay_customers.services._derived import ProfilingGate
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
    resolve_phone,
)
from linkbay_customers.services._progress import ProgressCallback
from linkbay_customers.services._subject import data_subject

__all__ = ("CustomerService", "RecordedOrder", "UnitOfWorkFactory")

UnitOfWorkFactory = Callable[[str], UnitOfWork]
"""Opens a unit of work bound to one tenant (``Storage.unit_of_work`` is one)."""

_FUTURE_ORDER_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    """The outcome of ``record_order``.

    Attributes:
        order: The stored order (the original one when the call was a retry).
        customer: The customer with analytics as they stand after the call.
        created: False when the order id was already recorded and nothing changed.
    """

    order: Order
    customer: Customer
    created: bool


async def load_customer(
    uow: UnitOfWork,
    customer_id: int,
    *,
    for_update: bool = False,
    include_deleted: bool = False,
    field: str | None = None,
) -> Customer:
    """Fetch a customer, following a merge alias to the customer it now resolves to.

    Raises:
        CustomerNotFound: no such customer in the tenant (another tenant's id included),
            or it is deleted and ``include_deleted`` is False.
    """
    if not check_id(customer_id):
        raise CustomerNotFound(customer_id, field=field)
    customer = await uow.customers.get(customer_id, include_deleted=True, for_update=for_update)
    if customer is not None and customer.is_deleted:
        target = await uow.aliases.resolve(customer_id)
        if target is not None:
            # A merged-away id is the target's, deleted or not: an export or an
            # erasure asked for by that id still reaches the person.
            customer = await uow.customers.get(
                target, include_deleted=include_deleted, for_update=for_update
            )
        elif not include_deleted:
            customer = None
    if customer is None:
        raise CustomerNotFound(customer_id, field=field)
    return customer


class CustomerService:
    """Customer management for every tenant of a storage.

    Every method takes the tenant first and works inside one unit of work of that
    tenant: another tenant's ids behave exactly like unknown ones. Every change is
    audited in the same transaction. An id that was merged away resolves to the
    customer it was merged into, for reads and changes alike.

    Args:
        uow_factory: Opens a unit of work for a tenant (``storage.unit_of_work``).
        clock: Source of the current time.
        intelligence: Keeps the segment current as customers arrive and order.
        default_currency: Currency of a customer's first order when it names none.
        profiling_policy: Whose segment the intelligence may compute: one policy for
            every tenant or a function giving each tenant's. A customer it excludes
            (who withdrew ``analytics`` consent, by default; who never gave it, with
            ``require_opt_in``) gets no segment, and every write of them (create,
            import, update, order, merge, restore) clears their derived data.
        default_phone_region: ISO 3166-1 alpha-2 code of the country whose numbering
            plan reads a phone number written without its country code
            (``"333 123 4567"`` with ``"IT"`` is stored as ``"+393331234567"``).
            None, the default, accepts only numbers that start with ``+``.

    Raises:
        ValueError: ``default_phone_region`` names no region with a numbering plan.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        intelligence: CustomerIntelligence,
        *,
        default_currency: str = "EUR",
        profiling_policy: ProfilingPolicy | ProfilingPolicies = DEFAULT_PROFILING_POLICY,
        default_phone_region: str | None = None,
    ) -> None:
        self._phone_region = check_phone_region(default_phone_region)
        self._uow_factory = uow_factory
        self._clock = clock
        self._intelligence = intelligence
        self._default_currency = default_currency
        self._profiling = ProfilingGate(profiling_policy)

    def _uow(self, tenant_id: str) -> UnitOfWork:
        return self._uow_factory(check_tenant(tenant_id))

    # ------------------------------------------------------------------ customers

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
        check_birthday(data.birthday, self._clock.now().date())
        now = self._clock.now()
        async with self._uow(tenant_id) as uow:
            # No lookup first: the storage refuses a taken email atomically, which a
            # check-then-insert could not promise under concurrent creates anyway.
            customer = build_customer(
                data, customer_id=await uow.customers.next_id(), tenant_id=uow.tenant_id, now=now
            )
            await self._profiling.settle(customer, now=now, segment_by=self._intelligence)
            await uow.customers.add(customer)
            await write_audit(
                uow,
                self._clock,
                AuditAction.CUSTOMER_CREATED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=sorted(data.model_fields_set),
            )
            await uow.commit()
        return customer

    async def get_customer(
        self, tenant_id: str, customer_id: int, *, include_deleted: bool = False
    ) -> Customer:
        """Fetch a customer; a merged-away id returns the customer it was merged into.

        Raises:
            CustomerNotFound: unknown id, another tenant's id, or a deleted customer
                when ``include_deleted`` is False.
        """
        async with self._uow(tenant_id) as uow:
            return await load_customer(uow, customer_id, include_deleted=include_deleted)

    async def get_customer_by_email(self, tenant_id: str, email: str) -> Customer:
        """Fetch a non-deleted customer by email (case-insensitive).

        Raises:
            CustomerNotFound: no such customer.
        """
        key = email.strip().lower() if isinstance(email, str) else ""
        async with self._uow(tenant_id) as uow:
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
        check_birthday(data.birthday, self._clock.now().date())
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            changed = apply_profile(customer, data, CustomerUpdate, data.model_fields_set)
            if not changed:
                return customer
            if "email" in changed and customer.email is not None:
                holder = await uow.customers.get_by_email(customer.email, include_deleted=True)
                if holder is not None and holder.id != customer.id:
                    raise DuplicateEmail(customer.email, existing_is_deleted=holder.is_deleted)
            # A profile change does not move the segment; it only drops what the
            # policy no longer allows (derived data kept from before an opt-in policy).
            changed += await self._profiling.settle(customer, now=self._clock.now())
            customer.updated_at = self._clock.now()
            await uow.customers.update(customer)
            await write_audit(
                uow,
                self._clock,
                AuditAction.CUSTOMER_UPDATED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=sorted(changed),
            )
            await uow.commit()
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
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True, include_deleted=True)
            if soft_delete:
                if customer.is_deleted:
                    return True
                customer.deleted_at = customer.updated_at = self._clock.now()
                await uow.customers.update(customer)
                await write_audit(
                    uow,
                    self._clock,
                    AuditAction.CUSTOMER_DELETED,
                    customer_id=customer.id,
                    actor=actor,
                    changed_fields=["deleted_at"],
                )
            else:
                removed = await purge_customer_rows(uow, customer)
                await write_audit(
                    uow,
                    self._clock,
                    AuditAction.CUSTOMER_HARD_DELETED,
                    customer_id=customer.id,
                    actor=actor,
                    details={"customer_ids": removed},
                )
            await uow.commit()
        return True

    async def restore_customer(
        self, tenant_id: str, customer_id: int, *, actor: str | None = None
    ) -> Customer:
        """Undo a soft delete. Restoring a customer that is not deleted changes nothing.

        Raises:
            CustomerNotFound: unknown id, another tenant's id, or an anonymized customer.
        """
        actor = check_actor(actor)
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True, include_deleted=True)
            if customer.is_anonymized:
                raise CustomerNotFound(customer_id)
            if not customer.is_deleted:
                return customer
            customer.deleted_at = None
            cleared = await self._profiling.settle(customer, now=self._clock.now())
            customer.updated_at = self._clock.now()
            await uow.customers.update(customer)
            await write_audit(
                uow,
                self._clock,
                AuditAction.CUSTOMER_RESTORED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=["deleted_at", *cleared],
            )
            await uow.commit()
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
        async with self._uow(tenant_id) as uow:
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
        async with self._uow(tenant_id) as uow:
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
            self._uow_factory,
            self._clock,
            self._intelligence,
            self._profiling,
            tenant_id,
            rows,
            schema=schema,
            chunk_size=chunk_size,
            on_progress=on_progress,
            actor=actor,
            phone_region=self._phone_region,
        )

    # ------------------------------------------------------------------ addresses

    async def add_address(
        self,
        tenant_id: str,
        customer_id: int,
        data: AddressCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Address:
        """Add an address; a new default replaces the customer's default of that type.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: a field is invalid (type, country, ...).
        """
        data = validated(AddressCreate, data)
        actor = check_actor(actor)
        now = self._clock.now()
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            if data.is_default:
                await _clear_default(uow, customer.id, data.type, keep=None)
            address = Address(
                id=await uow.addresses.next_id(),
                tenant_id=uow.tenant_id,
                customer_id=customer.id,
                created_at=now,
                updated_at=now,
                **data.model_dump(),
            )
            await uow.addresses.add(address)
            await write_audit(
                uow,
                self._clock,
                AuditAction.ADDRESS_ADDED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=sorted(data.model_fields_set),
                details={"address_id": address.id},
            )
            await uow.commit()
        return address

    async def list_addresses(self, tenant_id: str, customer_id: int) -> Sequence[Address]:
        """A customer's addresses, oldest first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
        """
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            return await uow.addresses.list_for_customer(customer.id)

    async def update_address(
        self,
        tenant_id: str,
        customer_id: int,
        address_id: int,
        data: AddressUpdate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Address:
        """Apply a partial address update.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            AddressNotFound: the address does not belong to that customer.
            InvalidInput: a field is invalid.
        """
        data = validated(AddressUpdate, data)
        actor = check_actor(actor)
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            address = await _own_address(uow, customer.id, address_id)
            changed = [
                name
                for name in sorted(data.model_fields_set)
                if getattr(address, name) != getattr(data, name)
            ]
            if not changed:
                return address
            for name in changed:
                setattr(address, name, getattr(data, name))
            if address.is_default:
                await _clear_default(uow, customer.id, address.type, keep=address.id)
            address.updated_at = self._clock.now()
            await uow.addresses.update(address)
            await write_audit(
                uow,
                self._clock,
                AuditAction.ADDRESS_UPDATED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=changed,
                details={"address_id": address.id},
            )
            await uow.commit()
        return address

    async def delete_address(
        self, tenant_id: str, customer_id: int, address_id: int, *, actor: str | None = None
    ) -> bool:
        """Delete an address.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            AddressNotFound: the address does not belong to that customer.
        """
        actor = check_actor(actor)
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            address = await _own_address(uow, customer.id, address_id)
            await uow.addresses.delete(address.id)
            await write_audit(
                uow,
                self._clock,
                AuditAction.ADDRESS_DELETED,
                customer_id=customer.id,
                actor=actor,
                details={"address_id": address.id},
            )
            await uow.commit()
        return True

    # ---------------------------------------------------------------------- notes

    async def add_note(
        self,
        tenant_id: str,
        customer_id: int,
        data: CustomerNoteCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> CustomerNote:
        """Add a note written by ``actor`` (the acting user), kept as its ``created_by``.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: empty or over-long note, or an invalid ``actor`` (named by the
                note field it fills, ``created_by``).
        """
        data = validated(CustomerNoteCreate, data)
        created_by = check_actor(actor, field="created_by")
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            note = CustomerNote(
                id=await uow.notes.next_id(),
                tenant_id=uow.tenant_id,
                customer_id=customer.id,
                note=data.note,
                created_by=created_by,
                created_at=self._clock.now(),
            )
            await uow.notes.add(note)
            await write_audit(
                uow,
                self._clock,
                AuditAction.NOTE_ADDED,
                customer_id=customer.id,
                actor=created_by,
                details={"note_id": note.id},
            )
            await uow.commit()
        return note

    async def list_notes(self, tenant_id: str, customer_id: int) -> Sequence[CustomerNote]:
        """A customer's notes, oldest first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
        """
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            return await uow.notes.list_for_customer(customer.id)

    # --------------------------------------------------------------------- orders

    async def record_order(
        self,
        tenant_id: str,
        customer_id: int,
        data: OrderCreate | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> RecordedOrder:
        """Record an order and fold it into the customer's analytics, once per order id.

        A retry (same ``order_id``, same customer, the same values for every field
        sent) changes nothing and returns the stored order with ``created=False``.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: a field is invalid, the order is dated in the future, or its
                currency differs from the customer's earlier orders.
            OrderConflict: the order id is recorded for another customer or with
                different content.
        """
        data = validated(OrderCreate, data)
        if data.shipping is not None:
            shipping_data = resolve_phone(data.shipping, self._phone_region, field="shipping.phone")
            data = data.model_copy(update={"shipping": shipping_data})
        actor = check_actor(actor)
        now = self._clock.now()
        if data.created_at is not None and data.created_at > now + _FUTURE_ORDER_TOLERANCE:
            raise InvalidInput.single("created_at", "must not be in the future")
        items = tuple(item.to_domain() for item in data.items)
        shipping = data.shipping_to_domain()
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id, for_update=True)
            existing = await uow.orders.get_by_order_id(data.order_id)
            if existing is not None:
                if existing.customer_id != customer.id or not _is_retry(
                    existing, data, items, shipping
                ):
                    raise OrderConflict(
                        f"order {data.order_id!r} is already recorded with other content "
                        "or for another customer"
                    )
                return RecordedOrder(order=existing, customer=customer, created=False)
            currency = data.currency or customer.currency or self._default_currency
            if customer.currency is not None and currency != customer.currency:
                raise InvalidInput.single(
                    "currency", f"must be {customer.currency}, the currency of earlier orders"
                )
            order = Order(
                id=await uow.orders.next_id(),
                tenant_id=uow.tenant_id,
                customer_id=customer.id,
                order_id=data.order_id,
                total=data.total,
                currency=currency,
                created_at=data.created_at or now,
                recorded_at=now,
                items=items,
                shipping=shipping,
            )
            await uow.orders.add(order)
            apply_order(customer, order)
            await self._profiling.settle(customer, now=now, segment_by=self._intelligence)
            customer.updated_at = now
            await uow.customers.update(customer)
            await write_audit(
                uow,
                self._clock,
                AuditAction.ORDER_RECORDED,
                customer_id=customer.id,
                actor=actor,
                changed_fields=["total_orders", "total_spent", "average_order_value"],
                details={"order": order.id},
            )
            await uow.commit()
        return RecordedOrder(order=order, customer=customer, created=True)

    async def update_customer_analytics(
        self, tenant_id: str, customer_id: int, order_data: Mapping[str, Any]
    ) -> None:
        """The seed's name for ``record_order``; ``order_data`` needs an ``order_id``."""
        await self.record_order(tenant_id, customer_id, order_data)

    async def list_orders(
        self, tenant_id: str, customer_id: int, *, page: int = 1, page_size: int = 20
    ) -> Page[Order]:
        """One page of a customer's orders, newest first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
            InvalidInput: ``page`` < 1 or ``page_size`` not in 1..100.
        """
        check_page(page, page_size)
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            return await uow.orders.list_for_customer(customer.id, page=page, page_size=page_size)

    # ---------------------------------------------------------------------- merge

    async def merge_customers(
        self,
        tenant_id: str,
        merge_request: CustomerMergeRequest | Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> Customer:
        """Merge a duplicate (source) into the customer that is kept (target).

        Orders and order analytics always move to the target; addresses, notes, tags
        and preferences move when the request asks for them (preferences already set
        on the target win). The source is soft-deleted and kept as an alias, so its
        id resolves to the target from then on. Retrying a merge that is done
        returns the target and changes nothing.

        Raises:
            CustomerNotFound: either customer is unknown (or of another tenant).
            InvalidMerge: self-merge, a deleted source or target, or customers whose
                orders are in different currencies.
        """
        request = validated(CustomerMergeRequest, merge_request)
        actor = check_actor(actor)
        source_id, target_id = request.source_customer_id, request.target_customer_id
        if source_id == target_id:
            raise InvalidMerge(
                "a customer cannot be merged into itself", field="target_customer_id"
            )
        now = self._clock.now()
        async with self._uow(tenant_id) as uow:
            # Lock both rows in id order so that concurrent merges cannot deadlock.
            rows = {
                cid: await uow.customers.get(cid, include_deleted=True, for_update=True)
                for cid in sorted((source_id, target_id))
            }
            source, target = rows[source_id], rows[target_id]
            if source is None:
                raise CustomerNotFound(source_id, field="source_customer_id")
            if target is None:
                raise CustomerNotFound(target_id, field="target_customer_id")
            if target.is_deleted:
                resolved = await uow.aliases.resolve(target.id)
                if resolved is None:
                    raise InvalidMerge("the target customer is deleted", field="target_customer_id")
                target = await load_customer(
                    uow, resolved, for_update=True, field="target_customer_id"
                )
            if source.is_deleted:
                if await uow.aliases.resolve(source.id) == target.id:
                    return target
                raise InvalidMerge("the source customer is deleted", field="source_customer_id")
            if target.id == source.id:
                raise InvalidMerge(
                    "a customer cannot be merged into itself", field="target_customer_id"
                )
            fold_analytics(target, source)
            await uow.orders.reassign(source.id, target.id)
            if request.merge_addresses:
                await _move_addresses(uow, source.id, target.id, now)
            if request.merge_notes:
                await uow.notes.reassign(source.id, target.id)
            if request.merge_tags:
                target.tags = merge_tags(target.tags, source.tags)
            if request.merge_preferences:
                target.preferences = check_preferences(
                    fill_missing(target.preferences, source.preferences)
                )
            await uow.aliases.repoint(source.id, target.id)
            await uow.aliases.add(
                MergeAlias(
                    tenant_id=uow.tenant_id,
                    alias_id=source.id,
                    customer_id=target.id,
                    merged_at=now,
                )
            )
            source.deleted_at = source.updated_at = target.updated_at = now
            await self._profiling.settle(target, now=now, segment_by=self._intelligence)
            # The source stays as an alias row holding its own data: it may not keep
            # derived data the policy excludes either.
            await self._profiling.settle(source, now=now)
            await uow.customers.update(source)
            await uow.customers.update(target)
            flags = request.model_dump(exclude={"source_customer_id", "target_customer_id"})
            await write_audit(
                uow,
                self._clock,
                AuditAction.CUSTOMER_MERGED,
                customer_id=target.id,
                actor=actor,
                details={"source_customer_id": source.id, **flags},
            )
            await write_audit(
                uow,
                self._clock,
                AuditAction.CUSTOMER_MERGED_INTO,
                customer_id=source.id,
                actor=actor,
                changed_fields=["deleted_at"],
                details={"target_customer_id": target.id},
            )
            await uow.commit()
        return target

    async def list_aliases(self, tenant_id: str, customer_id: int) -> Sequence[MergeAlias]:
        """The customer ids merged into a customer, oldest merge first.

        Raises:
            CustomerNotFound: unknown or deleted customer.
        """
        async with self._uow(tenant_id) as uow:
            customer = await load_customer(uow, customer_id)
            return await uow.aliases.list_for_customer(customer.id)


# -------------------------------------------------------------------------- helpers


async def purge_customer_rows(uow: UnitOfWork, customer: Customer) -> list[int]:
    """Remove a customer and everything about it, including customers merged into it
    (the rows an export of it shows, see ``data_subject``), except their audit trail,
    which holds no personal values and is never removed.

    Returns:
        The ids of the customers removed, the given one first.
    """
    ids = (await data_subject(uow, customer)).customer_ids
    await uow.aliases.delete_for_customer(customer.id)
    await uow.addresses.delete_for_customers(ids)
    await uow.notes.delete_for_customers(ids)
    await uow.orders.delete_for_customers(ids)
    await uow.consents.delete_for_customers(ids)
    await uow.customers.delete_many(ids)
    return ids


async def _own_address(uow: UnitOfWork, customer_id: int, address_id: int) -> Address:
    address = await uow.addresses.get(address_id) if check_id(address_id) else None
    if address is None or address.customer_id != customer_id:
        raise AddressNotFound(address_id)
    return address


async def _clear_default(
    uow: UnitOfWork, customer_id: int, type_: AddressType, *, keep: int | None
) -> None:
    for other in await uow.addresses.list_for_customer(customer_id):
        if other.is_default and other.type == type_ and other.id != keep:
            other.is_default = False
            await uow.addresses.update(other)


async def _move_addresses(uow: UnitOfWork, source_id: int, target_id: int, now: datetime) -> None:
    # The target's defaults win: a moved default of a type the target already has
    # a default for arrives as a plain address.
    taken = {a.type for a in await uow.addresses.list_for_customer(target_id) if a.is_default}
    for address in await uow.addresses.list_for_customer(source_id):
        if address.is_default and address.type in taken:
            address.is_default = False
            address.updated_at = now
            await uow.addresses.update(address)
    await uow.addresses.reassign(source_id, target_id)


def _is_retry(
    existing: Order,
    data: OrderCreate,
    items: tuple[OrderItem, ...],
    shipping: OrderShipping | None,
) -> bool:
    # Fields the retry leaves out (created_at, currency) take the stored values.
    return (
        existing.total == data.total
        and (data.currency is None or existing.currency == data.currency)
        and (data.created_at is None or existing.created_at == data.created_at)
        and existing.items == items
        and existing.shipping == shipping
    )
