"""Orders and their lines in SQL."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, and_, delete, exists, func, null, or_, select, true, update

from linkbay_customers.domain import (
    Order,
    OrderConflict,
    OrderItem,
    OrderShipping,
    Page,
    ProductPurchases,
    ProductSales,
)
from linkbay_customers.ports import OrderRepository, PurchaseHistory
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._postgresql import lines_by_order_key
from linkbay_customers_sqlalchemy._repositories._statements import (
    insert_ignoring_conflict,
    page_of,
    plain_insert,
)

__all__ = ("SqlOrderRepository",)


class SqlOrderRepository(SqlRepository, OrderRepository, PurchaseHistory):
    """Orders and their lines in SQL."""

    role = "order"

    @property
    def _lines(self) -> Table:
        return self._session.models.order_line.__table__  # type: ignore[attr-defined, no-any-return]

    async def add(self, order: Order) -> None:
        """Insert an order and its lines; a taken order id raises OrderConflict."""
        self._own(order)
        t = self._table
        values = {
            "tenant_id": order.tenant_id,
            "id": order.id,
            "customer_id": order.customer_id,
            "order_id": order.order_id,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at,
            "recorded_at": order.recorded_at,
            "shipping": None if order.shipping is None else dataclasses.asdict(order.shipping),
        }
        result = await self._execute(
            insert_ignoring_conflict(self._session.dialect, t, ("tenant_id", "order_id")),
            values,
            action="adding an order",
        )
        if result.first() is None:
            raise OrderConflict(f"order {order.order_id!r} is already recorded")
        if order.items:
            await self._execute(
                plain_insert(self._lines),
                [
                    {
                        "tenant_id": order.tenant_id,
                        "order_pk": order.id,
                        "line_no": number,
                        "product_id": item.product_id,
                        "product_name": item.product_name,
                        "quantity": item.quantity,
                        "unit_price": item.unit_price,
                    }
                    for number, item in enumerate(order.items, start=1)
                ],
                action="adding order lines",
            )

    async def _with_lines(self, rows: Iterable[Any]) -> builtins.list[Order]:
        orders = [dict(row._mapping) for row in rows]
        if not orders:
            return []
        lines = self._lines
        found = await self._execute(
            select(lines)
            .where(
                lines.c.tenant_id == self._session.tenant_id,
                self._one_of(lines.c.order_pk, [o["id"] for o in orders]),
            )
            .order_by(lines.c.order_pk, lines.c.line_no),
            action="reading order lines",
        )
        items: dict[int, builtins.list[OrderItem]] = {}
        for line in found:
            items.setdefault(line.order_pk, []).append(
                OrderItem(
                    product_id=line.product_id,
                    product_name=line.product_name,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                )
            )
        return [
            Order(
                **{
                    **o,
                    "shipping": None if o["shipping"] is None else OrderShipping(**o["shipping"]),
                },
                items=tuple(items.get(o["id"], ())),
            )
            for o in orders
        ]

    async def get_by_order_id(self, order_id: str) -> Order | None:
        """Fetch an order by the host's order id."""
        t = self._table
        rows = await self._execute(
            select(t).where(self._mine, t.c.order_id == order_id), action="reading an order"
        )
        orders = await self._with_lines(rows)
        return orders[0] if orders else None

    async def list_for_customer(
        self, customer_id: int, *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of a customer's orders, newest first."""
        return await self.list_for_customers([customer_id], page=page, page_size=page_size)

    async def list_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Order]:
        """One page of the orders of any of the customers, newest first."""
        t = self._table
        mine = and_(self._mine, self._one_of(t.c.customer_id, customer_ids))
        rows = await self._execute(
            select(t)
            .where(mine)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size),
            action="listing orders",
        )
        orders = await self._with_lines(rows)
        count = await self._execute(
            select(func.count()).select_from(t).where(mine), action="counting orders"
        )
        return page_of(orders, int(count.scalar_one()), page, page_size)

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every order of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    def _lines_of_orders(self) -> Any:
        t, lines = self._table, self._lines
        return lines.join(t, and_(t.c.tenant_id == lines.c.tenant_id, t.c.id == lines.c.order_pk))

    async def purchases(self, customer_ids: Sequence[int]) -> builtins.list[ProductPurchases]:
        """Units per customer and product over the customers' order lines, in one GROUP BY.

        Each order's lines are looked up by their key (on PostgreSQL see
        ``lines_by_order_key``).
        """
        if not customer_ids:
            return []
        t, lines = self._table, self._lines
        if self._session.dialect == "postgresql":
            order_lines = lines_by_order_key(t, lines)
            source: Any = t.join(order_lines, true())
            line: Any = order_lines.c
            where = [self._mine]
        else:
            source, line = self._lines_of_orders(), lines.c
            theirs = select(t.c.id).where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            # Lines by their orders' keys: without it SQLite walks every line of the
            # tenant (its planner puts the lines first), a query that grew with the shop.
            where = [
                self._mine,
                lines.c.tenant_id == self._session.tenant_id,
                lines.c.order_pk.in_(theirs),
            ]
        rows = await self._execute(
            select(
                t.c.customer_id,
                line.product_id,
                func.max(line.product_name).label("product_name"),
                func.sum(line.quantity).label("quantity"),
            )
            .select_from(source)
            .where(*where, self._one_of(t.c.customer_id, customer_ids))
            .group_by(t.c.customer_id, line.product_id)
            .order_by(t.c.customer_id, line.product_id),
            action="reading purchases",
        )
        return [
            ProductPurchases(customer_id, product_id, product_name, int(quantity))
            for customer_id, product_id, product_name, quantity in rows
        ]

    async def best_sellers(self, *, limit: int) -> builtins.list[ProductSales]:
        """Products by distinct buyers, then units, then id, over every order line."""
        if limit <= 0:
            return []
        t, lines = self._table, self._lines
        buyers = func.count(func.distinct(t.c.customer_id))
        units = func.sum(lines.c.quantity)
        rows = await self._execute(
            select(
                lines.c.product_id,
                func.max(lines.c.product_name).label("product_name"),
                units.label("quantity"),
                buyers.label("buyers"),
            )
            .select_from(self._lines_of_orders())
            .where(self._mine, lines.c.tenant_id == self._session.tenant_id)
            .group_by(lines.c.product_id)
            .order_by(buyers.desc(), units.desc(), lines.c.product_id)
            .limit(limit),
            action="reading best sellers",
        )
        return [
            ProductSales(
                product_id=row.product_id,
                product_name=row.product_name,
                quantity=int(row.quantity),
                buyers=int(row.buyers),
            )
            for row in rows
        ]

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every order of the customers, with its lines."""
        if not customer_ids:
            return 0
        t, lines = self._table, self._lines
        theirs = select(t.c.id).where(self._mine, self._one_of(t.c.customer_id, customer_ids))
        await self._execute(
            delete(lines).where(
                lines.c.tenant_id == self._session.tenant_id, lines.c.order_pk.in_(theirs)
            ),
            action="deleting order lines",
        )
        return await self._delete_for_customers(customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Set the shipping details of the customers' orders to NULL and empty the product
        names of their lines; count the orders that had either.

        An order recorded without shipping holds a JSON ``null``, which compares
        unequal to nothing here, like SQL NULL: neither counts as a change. The
        orders are counted before either is written, so a repeated erasure counts
        none and writes nothing.
        """
        if not customer_ids:
            return 0
        t, lines = self._table, self._lines
        named = and_(
            lines.c.tenant_id == self._session.tenant_id,
            lines.c.order_pk.in_(
                select(t.c.id).where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            ),
            lines.c.product_name != "",
        )
        named_line_of_order = exists().where(
            lines.c.tenant_id == t.c.tenant_id,
            lines.c.order_pk == t.c.id,
            lines.c.product_name != "",
        )
        counted = await self._execute(
            select(func.count())
            .select_from(t)
            .where(
                self._mine,
                self._one_of(t.c.customer_id, customer_ids),
                or_(t.c.shipping != JSON.NULL, named_line_of_order),
            ),
            action="counting orders to scrub",
        )
        await self._execute(
            update(lines).where(named).values(product_name=""), action="scrubbing order lines"
        )
        await self._scrub_for_customers(
            customer_ids, {"shipping": null()}, t.c.shipping != JSON.NULL
        )
        return int(counted.scalar_one())
