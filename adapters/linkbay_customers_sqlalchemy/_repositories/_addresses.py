"""Addresses and notes in SQL."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, select

from linkbay_customers.domain import Address, AddressNotFound, AddressType, CustomerNote, Page
from linkbay_customers.ports import AddressRepository, NoteRepository
from linkbay_customers_sqlalchemy._repositories._base import SqlRepository
from linkbay_customers_sqlalchemy._repositories._statements import (
    keyed,
    page_of,
    plain_insert,
    update_by_key,
)

__all__ = ("SqlAddressRepository", "SqlNoteRepository")


class _PagedByCustomer(SqlRepository):
    async def _page(
        self,
        customer_ids: Sequence[int],
        order_by: tuple[Any, ...],
        page: int,
        page_size: int,
        what: str,
    ) -> tuple[builtins.list[Any], int]:
        """One page of the rows of any of the customers and the count of all of them."""
        t = self._table
        mine = and_(self._mine, self._one_of(t.c.customer_id, customer_ids))
        rows = await self._execute(
            select(t)
            .where(mine)
            .order_by(*order_by)
            .limit(page_size)
            .offset((page - 1) * page_size),
            action=f"listing {what}",
        )
        count = await self._execute(
            select(func.count()).select_from(t).where(mine), action=f"counting {what}"
        )
        return builtins.list(rows), int(count.scalar_one())


class SqlAddressRepository(_PagedByCustomer, AddressRepository):
    """Addresses in SQL."""

    role = "address"

    def _values(self, address: Address) -> dict[str, Any]:
        self._own(address)
        values = dataclasses.asdict(address)
        values["type"] = address.type.value
        return values

    @staticmethod
    def _entity(row: Any) -> Address:
        data = dict(row._mapping)
        data["type"] = AddressType(data["type"])
        return Address(**data)

    async def add(self, address: Address) -> None:
        """Insert an address."""
        await self._execute(
            plain_insert(self._table), self._values(address), action="adding an address"
        )

    async def get(self, address_id: int) -> Address | None:
        """Fetch an address."""
        t = self._table
        row = (
            await self._execute(
                select(t).where(self._mine, t.c.id == address_id), action="reading an address"
            )
        ).first()
        return None if row is None else self._entity(row)

    async def list_for_customer(self, customer_id: int) -> builtins.list[Address]:
        """A customer's addresses, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[Address]:
        """The addresses of any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.id),
            action="listing addresses",
        )
        return [self._entity(row) for row in rows]

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[Address]:
        """One page of the addresses of any of the customers, oldest first."""
        rows, total = await self._page(
            customer_ids, (self._table.c.id,), page, page_size, "addresses"
        )
        return page_of([self._entity(row) for row in rows], total, page, page_size)

    async def update(self, address: Address) -> None:
        """Write every field of an existing address."""
        values = self._values(address)
        columns = tuple(name for name in values if name not in ("tenant_id", "id"))
        result = await self._execute(
            update_by_key(self._table, columns), keyed(values), action="updating an address"
        )
        if result.rowcount == 0:
            raise AddressNotFound(address.id)

    async def delete(self, address_id: int) -> None:
        """Remove an address."""
        t = self._table
        await self._execute(
            delete(t).where(self._mine, t.c.id == address_id), action="deleting an address"
        )

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every address of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every address of the customers."""
        return await self._delete_for_customers(customer_ids)


class SqlNoteRepository(_PagedByCustomer, NoteRepository):
    """Notes in SQL."""

    role = "note"

    async def add(self, note: CustomerNote) -> None:
        """Insert a note."""
        self._own(note)
        await self._execute(
            plain_insert(self._table), dataclasses.asdict(note), action="adding a note"
        )

    async def list_for_customer(self, customer_id: int) -> builtins.list[CustomerNote]:
        """A customer's notes, oldest first."""
        return await self.list_for_customers([customer_id])

    async def list_for_customers(self, customer_ids: Sequence[int]) -> builtins.list[CustomerNote]:
        """The notes of any of the customers, oldest first."""
        t = self._table
        rows = await self._execute(
            select(t)
            .where(self._mine, self._one_of(t.c.customer_id, customer_ids))
            .order_by(t.c.created_at, t.c.id),
            action="listing notes",
        )
        return [CustomerNote(**row._mapping) for row in rows]

    async def page_for_customers(
        self, customer_ids: Sequence[int], *, page: int, page_size: int
    ) -> Page[CustomerNote]:
        """One page of the notes of any of the customers, oldest first."""
        t = self._table
        rows, total = await self._page(
            customer_ids, (t.c.created_at, t.c.id), page, page_size, "notes"
        )
        return page_of([CustomerNote(**row._mapping) for row in rows], total, page, page_size)

    async def reassign(self, from_customer_id: int, to_customer_id: int) -> int:
        """Move every note of one customer to another."""
        return await self._reassign(from_customer_id, to_customer_id)

    async def delete_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Remove every note of the customers."""
        return await self._delete_for_customers(customer_ids)

    async def scrub_for_customers(self, customer_ids: Sequence[int]) -> int:
        """Empty the text of the customers' notes; count those that had any."""
        note = self._table.c.note
        return await self._scrub_for_customers(customer_ids, {"note": ""}, note != "")
