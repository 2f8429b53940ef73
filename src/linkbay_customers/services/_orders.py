"""The orders of ``CustomerService``: recorded once per order id and folded into the
customer's analytics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linkbay_customers.domain import (
    AuditAction,
    Customer,
    InvalidInput,
    Order,
    OrderConflict,
    OrderItem,
    OrderShipping,
    Page,
    apply_order,
    check_actor,
)
from linkbay_customers.schemas import OrderCreate
from linkbay_customers.services._boundary import check_page, validated
from linkbay_customers.services._change import Transactions
from linkbay_customers.services._profile import check_not_in_the_future, resolve_phone

__all__ = ("CustomerOrders", "RecordedOrder")


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


class CustomerOrders:
    """Orders (part of ``CustomerService``)."""

    _tx: Transactions
    _phone_region: str | None
    _default_currency: str

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
        now = self._tx.clock.now()
        check_not_in_the_future("created_at", data.created_at, now)
        items = tuple(item.to_domain() for item in data.items)
        shipping = data.shipping_to_domain()
        async with self._tx.change(tenant_id, actor=actor) as change:
            customer = await change.customer(customer_id)
            existing = await change.uow.orders.get_by_order_id(data.order_id)
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
                id=await change.uow.orders.next_id(),
                tenant_id=change.uow.tenant_id,
                customer_id=customer.id,
                order_id=data.order_id,
                total=data.total,
                currency=currency,
                created_at=data.created_at or change.now,
                recorded_at=change.now,
                items=items,
                shipping=shipping,
            )
            await change.uow.orders.add(order)
            apply_order(customer, order)
            await change.save(customer, resegment=True)
            change.audit(
                AuditAction.ORDER_RECORDED,
                customer_id=customer.id,
                changed_fields=["total_orders", "total_spent", "average_order_value"],
                details={"order": order.id},
            )
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
        return await self._tx.of_customer(
            tenant_id,
            customer_id,
            lambda uow, customer: uow.orders.list_for_customer(
                customer.id, page=page, page_size=page_size
            ),
        )


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
