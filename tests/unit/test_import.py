from __future__ import annotations

import dataclasses
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import PrivateAttr

from linkbay_customers import CustomerService, InvalidInput
from linkbay_customers.ports import Storage
from linkbay_customers.schemas import CustomerCreate
from linkbay_customers.services import ImportProgress, ImportRejection
from linkbay_customers.testing import FixedClock


def rows(count: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"email": f"user{i}@example.com", "first_name": f"User{i}", **extra}
        for i in range(start, start + count)
    ]


class TestImport:
    async def test_new_emails_are_created_in_chunks_with_progress(
        self, service: CustomerService, tenant: str
    ) -> None:
        seen: list[ImportProgress] = []
        result = await service.import_customers(
            tenant, rows(25), chunk_size=10, on_progress=seen.append
        )
        assert (result.processed, result.created, result.updated, result.rejected) == (
            25,
            25,
            0,
            0,
        )
        assert [p.processed for p in seen] == [10, 20, 25]
        assert [p.created for p in seen] == [10, 20, 25]
        page = await service.list_customers(tenant, page_size=100)
        assert page.total == 25
        assert {c.segment for c in page.items} == {"new"}

    async def test_existing_emails_are_updated_with_the_fields_each_row_carries(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        kept = await service.create_customer(
            tenant,
            {
                "email": "user1@example.com",
                "first_name": "Old",
                "last_name": "Keep",
                "preferences": {"language": "it", "newsletter": True},
            },
        )
        clock.advance(hours=1)
        result = await service.import_customers(
            tenant,
            [
                {
                    "email": "USER1@example.com",
                    "first_name": "New",
                    "preferences": {"language": "en"},
                },
                {"email": "user2@example.com"},
            ],
        )
        assert (result.created, result.updated) == (1, 1)
        updated = await service.get_customer(tenant, kept.id)
        assert (updated.first_name, updated.last_name) == ("New", "Keep")
        assert updated.preferences == {"language": "en", "newsletter": True}
        assert updated.updated_at == clock.now()

    async def test_rows_that_change_nothing_are_counted_as_unchanged(
        self, service: CustomerService, tenant: str
    ) -> None:
        await service.import_customers(tenant, rows(3))
        again = await service.import_customers(tenant, rows(3))
        assert (again.created, again.updated, again.unchanged) == (0, 0, 3)

    async def test_bad_rows_are_rejected_with_a_reason_and_never_stop_good_ones(
        self, service: CustomerService, tenant: str
    ) -> None:
        await service.create_customer(tenant, {"email": "gone@example.com"})
        gone = await service.get_customer_by_email(tenant, "gone@example.com")
        await service.delete_customer(tenant, gone.id)
        data: list[Any] = [
            {"email": "ok1@example.com"},
            {"email": "not-an-email"},
            {"email": "ok2@example.com", "phone": "call me maybe"},
            "not a mapping",
            {"email": "gone@example.com"},
            {"email": "ok3@example.com", "shoe_size": 44},
            {"email": "ok4@example.com", "birthday": "2999-01-01"},
            {"email": "ok5@example.com"},
        ]
        result = await service.import_customers(tenant, data, chunk_size=2)
        assert (result.processed, result.created, result.rejected) == (8, 2, 6)
        assert [(r.row, r.field) for r in result.rejections] == [
            (2, "email"),
            (3, "phone"),
            (4, None),
            (5, "email"),
            (6, "shoe_size"),
            (7, "birthday"),
        ]
        assert all(isinstance(r, ImportRejection) and r.reason for r in result.rejections)
        # Every reason about a field names it first, whichever check refused the row.
        named = [r for r in result.rejections if r.field is not None]
        assert [r.reason.split(": ", 1)[0] for r in named] == [r.field for r in named]
        assert "call me maybe" not in repr(result.rejections)
        emails = {c.email for c in (await service.list_customers(tenant)).items}
        assert emails == {"ok1@example.com", "ok5@example.com"}

    async def test_a_later_row_for_the_same_email_applies_after_the_earlier(
        self, service: CustomerService, tenant: str
    ) -> None:
        result = await service.import_customers(
            tenant,
            [
                {"email": "twice@example.com", "first_name": "First"},
                {"email": "other@example.com"},
                {"email": "twice@example.com", "first_name": "Second"},
            ],
        )
        assert (result.created, result.updated) == (2, 1)
        customer = await service.get_customer_by_email(tenant, "twice@example.com")
        assert customer.first_name == "Second"

    async def test_rows_may_come_from_an_async_stream_and_progress_may_be_awaited(
        self, service: CustomerService, tenant: str
    ) -> None:
        async def stream() -> AsyncIterator[dict[str, Any]]:
            for row in rows(7):
                yield row

        seen: list[int] = []

        async def progress(p: ImportProgress) -> None:
            seen.append(p.processed)

        result = await service.import_customers(
            tenant, stream(), chunk_size=3, on_progress=progress
        )
        assert (result.created, seen) == (7, [3, 6, 7])

    async def test_every_imported_customer_is_audited_as_imported(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        await service.import_customers(tenant, rows(2), actor="importer")
        await service.import_customers(tenant, rows(1, last_name="Changed"), actor="importer")
        async with storage.unit_of_work(tenant) as uow:
            events = (await uow.audit.list()).items
        assert [(e.action.value, e.actor, e.details) for e in events] == [
            ("customer.created", "importer", {"source": "import"}),
            ("customer.created", "importer", {"source": "import"}),
            ("customer.updated", "importer", {"source": "import"}),
        ]
        assert events[2].changed_fields == ("last_name",)

    @pytest.mark.parametrize(("chunk_size", "field"), [(0, "chunk_size"), (10_001, "chunk_size")])
    async def test_an_invalid_chunk_size_is_refused(
        self, service: CustomerService, tenant: str, chunk_size: int, field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await service.import_customers(tenant, rows(1), chunk_size=chunk_size)
        assert caught.value.field == field


class TestRowsHeldBetweenChunks:
    async def test_rows_waiting_for_their_write_hold_no_models_for_the_collector(
        self, service: CustomerService, tenant: str
    ) -> None:
        alive: list[tuple[int, int]] = []

        def models() -> int:
            gc.collect()
            return sum(isinstance(o, CustomerCreate) for o in gc.get_objects())

        def progress(done: ImportProgress) -> None:
            alive.append((done.processed, models() - before))

        given = [{**row, "tags": ["vip"], "preferences": {"language": "it"}} for row in rows(30)]
        before = models()  # held by other tests, if any
        result = await service.import_customers(tenant, given, chunk_size=10, on_progress=progress)
        assert result.created == 30
        assert alive == [(10, 0), (20, 0), (30, 0)]

    async def test_held_rows_come_back_with_their_values_and_given_fields(
        self, service: CustomerService, tenant: str
    ) -> None:
        await service.create_customer(
            tenant,
            {"email": "kept@example.com", "last_name": "Kept", "tags": ["old"]},
        )
        given = [
            {
                "email": "kept@example.com",
                "tags": ["vip", "b2b"],
                "preferences": {"language": "it", "nested": {"a": [1, 2]}},
            },
            {"email": "new@example.com", "first_name": "New", "tags": ["vip"]},
        ]
        result = await service.import_customers(tenant, given, chunk_size=10)
        assert (result.created, result.updated) == (1, 1)
        kept = await service.get_customer_by_email(tenant, "kept@example.com")
        assert (kept.last_name, kept.tags) == ("Kept", ["vip", "b2b"])
        assert kept.preferences == {"language": "it", "nested": {"a": [1, 2]}}
        new = await service.get_customer_by_email(tenant, "new@example.com")
        assert (new.first_name, new.tags, new.preferences) == ("New", ["vip"], {})

    async def test_a_new_customer_holds_what_creating_them_from_the_row_makes(
        self, service: CustomerService, tenant: str
    ) -> None:
        # Built from the values the chunk holds, not from the row's model again.
        row = {
            "email": " Ada.Byron@Example.com ",
            "first_name": "Ada",
            "last_name": "Byron",
            "phone": "+39 333 123 4567",
            "birthday": "1985-12-10",
            "gender": "female",
            "tags": ["vip", "b2b", "vip"],
            "preferences": {"language": "en", "nested": {"a": [1, {"b": None}]}},
            "created_at": "2020-01-02T03:04:05+01:00",
        }
        assert (await service.import_customers(tenant, [row])).created == 1
        imported = await service.get_customer_by_email(tenant, "ada.byron@example.com")
        created = await service.create_customer(f"{tenant}-created", row)
        fields = {f.name for f in dataclasses.fields(created)} - {"id", "tenant_id", "updated_at"}
        assert {f: getattr(imported, f) for f in fields} == {f: getattr(created, f) for f in fields}
        assert imported.tags == ["vip", "b2b"]
        assert imported.preferences["nested"] == {"a": [1, {"b": None}]}

    async def test_a_host_schema_whose_models_hold_private_state_is_imported_as_validated(
        self, service: CustomerService, tenant: str
    ) -> None:
        class Tracked(CustomerCreate):
            _seen: int = PrivateAttr(default=0)

            def model_post_init(self, context: Any, /) -> None:
                self._seen = 1

        result = await service.import_customers(
            tenant,
            [{"email": "a@example.com", "tags": ["vip"]}, {"email": "b@example.com"}],
            schema=Tracked,
        )
        assert result.created == 2
        customer = await service.get_customer_by_email(tenant, "a@example.com")
        assert customer.tags == ["vip"]


class TestSignUpTimes:
    async def test_new_customers_keep_their_sign_up_and_existing_ones_their_own(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        existing = await service.create_customer(tenant, {"email": "kept@example.com"})
        long_ago = "2019-03-01T09:30:00+00:00"
        result = await service.import_customers(
            tenant,
            [
                {"email": "new@example.com", "created_at": long_ago},
                {"email": "kept@example.com", "created_at": long_ago, "first_name": "Kim"},
                {"email": "ahead@example.com", "created_at": "2999-01-01T00:00:00+00:00"},
            ],
        )
        assert (result.created, result.updated, result.rejected) == (1, 1, 1)
        assert [(r.row, r.field) for r in result.rejections] == [(3, "created_at")]
        new = await service.get_customer_by_email(tenant, "new@example.com")
        kept = await service.get_customer(tenant, existing.id)
        assert new.created_at.isoformat() == long_ago
        assert (kept.created_at, kept.first_name) == (existing.created_at, "Kim")
