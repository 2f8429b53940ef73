"""GDPRService: access, erasure, consent, audit and retention, on any storage.

The classes here run again on SQLite and PostgreSQL (tests/integration); a storage
fixture that is not the in-memory one needs only ``storage`` overridden.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from linkbay_customers import (
    ConsentTypeUnknown,
    CustomerNotFound,
    CustomerService,
    Erasure,
    GDPRService,
    InvalidInput,
    ProfilingPolicy,
)
from linkbay_customers.domain import AuditAction, Customer
from linkbay_customers.ports import Storage, UnitOfWork
from linkbay_customers.schemas import (
    ConsentHistoryResponse,
    CustomerCreate,
    CustomerDataExport,
    ErasureResult,
)
from linkbay_customers.testing import FixedClock


async def exported(gdpr: GDPRService, tenant: str, customer_id: int, **options: Any) -> Any:
    """The export as the REST API and the CLI give it out (JSON)."""
    export = await gdpr.export_customer_data(tenant, customer_id, **options)
    return CustomerDataExport.of(export).model_dump(mode="json")


async def consent_history(gdpr: GDPRService, tenant: str, customer_id: int) -> Any:
    """The consent history as the REST API gives it out (JSON)."""
    history = await gdpr.get_consent_history(tenant, customer_id)
    return ConsentHistoryResponse.of(history).model_dump(mode="json")


PROFILE = {
    "email": "Mario.Rossi@Example.com",
    "first_name": "Mario",
    "last_name": "Rossi",
    "phone": "+39 333 123 4567",
    "birthday": "1985-04-12",
    "gender": "male",
    "preferences": {"language": "it", "newsletter_topic": "cycling"},
    "tags": ["vip", "milan-store"],
}
HOME = {
    "type": "shipping",
    "address_line1": "Via Roma 42",
    "address_line2": "Scala B",
    "city": "Milano",
    "state": "MI",
    "postal_code": "20121",
    "country": "IT",
    "is_default": True,
}
OFFICE = {
    "type": "billing",
    "address_line1": "Corso Buenos Aires 7",
    "city": "Bergamo",
    "postal_code": "24121",
    "country": "IT",
}
SHIPPING = {
    "recipient_name": "Mario Rossi",
    "address_line1": "Via Roma 42",
    "city": "Milano",
    "postal_code": "20121",
    "country": "IT",
    "phone": "+39 333 123 4567",
}
OLD_ACCOUNT = {"email": "mrossi.old@example.org", "first_name": "Marietto", "phone": "+39 02 9876"}
IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux) Firefox/131"
NOTE = "Asked for invoices to Scala B, doorbell broken"


async def live_a_life(service: CustomerService, gdpr: GDPRService, tenant: str) -> Customer:
    """Create, update, addresses, notes, orders, consent changes and a merge."""
    mario = await service.create_customer(tenant, PROFILE, actor="clerk-1")
    await service.update_customer(tenant, mario.id, {"last_name": "Rossi-Bianchi"})
    await service.add_address(tenant, mario.id, HOME)
    await service.add_address(tenant, mario.id, OFFICE)
    await service.add_note(tenant, mario.id, {"note": NOTE}, actor="clerk-2")
    await service.record_order(
        tenant,
        mario.id,
        {
            "order_id": "ORD-1",
            "total": "120.50",
            "currency": "EUR",
            "items": [
                {
                    "product_id": "bike-7",
                    "product_name": "Gravel bike bell",
                    "quantity": 2,
                    "unit_price": "60.25",
                }
            ],
            "shipping": SHIPPING,
        },
    )
    await gdpr.update_consent(
        tenant, mario.id, "marketing", True, metadata={"ip_address": IP, "user_agent": AGENT}
    )
    await gdpr.update_consent(
        tenant, mario.id, "analytics", True, metadata={"source": "signup-form"}
    )
    await gdpr.update_consent(
        tenant, mario.id, "marketing", False, metadata={"source": "unsubscribe"}
    )
    old = await service.create_customer(tenant, OLD_ACCOUNT)
    await service.add_note(tenant, old.id, {"note": "Old account, moved house"})
    await service.merge_customers(
        tenant, {"source_customer_id": old.id, "target_customer_id": mario.id}
    )
    return await service.get_customer(tenant, mario.id)


OLD_NOTE = "Old account: call after 6 pm"
OLD_ORDER = {"order_id": "OLD-1", "total": "15", "currency": "EUR"}
ENGRAVED = "Silver ring, engraved 'Mario & Giulia 12.06.2015'"
SECTIONS = ("addresses", "notes", "orders", "consent_history", "audit_trail")
"""The sections of an export whose rows are filed under a customer id."""


async def merge_keeping_rows_apart(
    service: CustomerService, gdpr: GDPRService, tenant: str
) -> tuple[Customer, Customer]:
    """Two accounts of one person, merged without moving notes or addresses, so that
    rows of every kind stay under both ids. Returns the target and the source."""
    mario = await service.create_customer(tenant, PROFILE)
    await service.add_address(tenant, mario.id, HOME)
    await service.add_note(tenant, mario.id, {"note": NOTE})
    await gdpr.update_consent(
        tenant, mario.id, "marketing", True, metadata={"source": "signup-form"}
    )
    await service.record_order(
        tenant,
        mario.id,
        {
            "order_id": "ORD-1",
            "total": "89",
            "currency": "EUR",
            "items": [
                {"product_id": "ring-1", "product_name": ENGRAVED, "quantity": 1, "unit_price": 89}
            ],
            "shipping": SHIPPING,
        },
    )
    old = await service.create_customer(tenant, OLD_ACCOUNT)
    await service.add_address(tenant, old.id, OFFICE)
    await service.add_note(tenant, old.id, {"note": OLD_NOTE})
    await gdpr.update_consent(
        tenant,
        old.id,
        "analytics",
        True,
        metadata={"source": "old shop, assisted by Giulia", "ip_address": IP, "user_agent": AGENT},
    )
    await service.record_order(tenant, old.id, OLD_ORDER)
    await service.merge_customers(
        tenant,
        {
            "source_customer_id": old.id,
            "target_customer_id": mario.id,
            "merge_notes": False,
            "merge_addresses": False,
        },
    )
    return await service.get_customer(tenant, mario.id), old


def personal_values() -> list[str]:
    """Every personal value the scripted life wrote, as stored."""
    return [
        "mario.rossi@example.com",
        "Mario",
        "Rossi-Bianchi",
        "+393331234567",
        "1985-04-12",
        "cycling",
        "milan-store",
        "Via Roma 42",
        "Scala B",
        "Corso Buenos Aires 7",
        "Bergamo",
        "20121",
        NOTE,
        IP,
        AGENT,
        "mrossi.old@example.org",
        "Marietto",
        "+39029876",
        "Old account, moved house",
        # Free text a host fills and that can name the person: consent sources and
        # product names (an engraving, a dedication).
        "signup-form",
        "unsubscribe",
        "Gravel bike bell",
    ]


class TestExport:
    async def test_an_export_after_a_scripted_life_holds_every_value_and_no_one_else(
        self,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        other_tenant: str,
    ) -> None:
        bystander = await service.create_customer(
            tenant, {"email": "luigi.verdi@example.com", "first_name": "Luigi"}
        )
        await service.add_note(tenant, bystander.id, {"note": "Luigi prefers email"})
        await service.create_customer(
            other_tenant, {"email": "other.tenant@example.com", "last_name": "Esposito"}
        )
        mario = await live_a_life(service, gdpr, tenant)

        export = await exported(gdpr, tenant, mario.id, actor="dpo")

        text = json.dumps(export, ensure_ascii=False)
        for value in [*personal_values(), "ORD-1"]:
            assert value in text, value
        for foreign in ("luigi", "Luigi prefers email", "other.tenant", "Esposito"):
            assert foreign not in text.lower() if foreign.islower() else foreign not in text
        assert export["export_format"] == "json"
        assert export["customer"]["email"] == "mario.rossi@example.com"
        assert export["customer"]["total_orders"] == 1
        assert len(export["addresses"]) == 2
        assert [n["note"] for n in export["notes"]] == [NOTE, "Old account, moved house"]
        assert export["orders"][0]["shipping"]["recipient_name"] == "Mario Rossi"
        assert export["consent"]["marketing"]["consented"] is False
        assert [e["consent_type"] for e in export["consent_history"]] == [
            "marketing",
            "analytics",
            "marketing",
        ]
        assert export["merged_customers"][0]["email"] == "mrossi.old@example.org"
        assert export["analytics"]["total_spent"] == 120.5
        actions = [e["action"] for e in export["audit_trail"]]
        assert actions.count(AuditAction.CONSENT_UPDATED) == 3
        assert AuditAction.CUSTOMER_MERGED_INTO in actions or "customer.merged" in actions

    async def test_the_export_is_audited_with_no_personal_value(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        await gdpr.export_customer_data(tenant, mario.id, actor="dpo")
        page = await gdpr.list_audit_events(tenant, customer_id=mario.id)
        exported = [e for e in page.items if e.action is AuditAction.DATA_EXPORTED]
        assert len(exported) == 1
        assert exported[0].actor == "dpo"
        assert "mario" not in repr(exported[0]).lower()

    async def test_the_csv_export_is_a_zip_with_one_file_per_section(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await live_a_life(service, gdpr, tenant)
        archive = zipfile.ZipFile(io.BytesIO(await gdpr.export_customer_data_csv(tenant, mario.id)))
        names = set(archive.namelist())
        assert {"customer.csv", "addresses.csv", "notes.csv", "orders.csv"} <= names
        assert {"order_items.csv", "consent_history.csv", "audit_trail.csv"} <= names
        customer = list(csv.DictReader(io.StringIO(archive.read("customer.csv").decode())))
        assert customer[0]["email"] == "mario.rossi@example.com"
        items = list(csv.DictReader(io.StringIO(archive.read("order_items.csv").decode())))
        assert items[0]["product_name"] == "Gravel bike bell"
        history = archive.read("consent_history.csv").decode()
        assert IP in history
        assert AGENT in history
        trail = (await gdpr.list_audit_events(tenant, customer_id=mario.id)).items
        assert trail[-1].action is AuditAction.DATA_EXPORTED
        assert trail[-1].details == {"format": "csv"}

    async def test_an_export_holds_every_row_of_the_customers_merged_into_it(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)

        export = await exported(gdpr, tenant, mario.id)

        assert [(a["customer_id"], a["address_line1"]) for a in export["addresses"]] == [
            (mario.id, HOME["address_line1"]),
            (old.id, OFFICE["address_line1"]),
        ]
        assert [(n["customer_id"], n["note"]) for n in export["notes"]] == [
            (mario.id, NOTE),
            (old.id, OLD_NOTE),
        ]
        assert [(e["customer_id"], e["consent_type"]) for e in export["consent_history"]] == [
            (mario.id, "marketing"),
            (old.id, "analytics"),
        ]
        assert export["consent_history"][1]["ip_address"] == IP
        assert sorted((o["customer_id"], o["order_id"]) for o in export["orders"]) == [
            (mario.id, "OLD-1"),  # a merge always moves the orders
            (mario.id, "ORD-1"),
        ]
        about_old = [e["action"] for e in export["audit_trail"] if e["customer_id"] == old.id]
        assert about_old == [
            AuditAction.CUSTOMER_CREATED,
            AuditAction.ADDRESS_ADDED,
            AuditAction.NOTE_ADDED,
            AuditAction.CONSENT_UPDATED,
            AuditAction.ORDER_RECORDED,
            AuditAction.CUSTOMER_MERGED_INTO,
        ]
        assert [c["id"] for c in export["merged_customers"]] == [old.id]

    async def test_the_merged_away_id_exports_the_same_person(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)
        by_alias = await exported(gdpr, tenant, old.id)
        by_target = await exported(gdpr, tenant, mario.id)
        assert by_alias["customer"]["id"] == mario.id
        for section in (*SECTIONS, "merged_customers"):
            if section != "audit_trail":  # the second export adds its own data.exported
                assert by_alias[section] == by_target[section], section
        assert by_target["audit_trail"][:-1] == by_alias["audit_trail"]

    async def test_a_merged_away_id_still_reaches_its_target_once_that_is_erased(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)
        erased = await gdpr.delete_customer_data(tenant, mario.id)
        export = await exported(gdpr, tenant, old.id)
        assert export["customer"]["id"] == mario.id
        assert export["customer"]["is_anonymized"] is True
        assert [n["customer_id"] for n in export["notes"]] == [mario.id, old.id]
        assert await gdpr.delete_customer_data(tenant, old.id) == erased

    async def test_every_csv_row_about_the_person_names_its_customer_id(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)
        archive = zipfile.ZipFile(io.BytesIO(await gdpr.export_customer_data_csv(tenant, mario.id)))

        def rows(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO(archive.read(f"{name}.csv").decode())))

        both = {str(mario.id), str(old.id)}
        for name in ("addresses", "notes", "consent_history", "audit_trail"):
            assert {row["customer_id"] for row in rows(name)} == both, name
        for name in ("orders", "order_items"):
            assert {row["customer_id"] for row in rows(name)} == {str(mario.id)}, name
        assert [row["product_name"] for row in rows("order_items")] == [ENGRAVED]

    async def test_another_tenants_customer_cannot_be_exported(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, other_tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        with pytest.raises(CustomerNotFound):
            await gdpr.export_customer_data(other_tenant, mario.id)
        assert (await gdpr.list_audit_events(other_tenant)).total == 0


class TestErasure:
    async def test_anonymization_removes_every_personal_value_and_keeps_the_analytics(
        self,
        storage: Storage,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
    ) -> None:
        mario = await live_a_life(service, gdpr, tenant)
        clock.advance(days=1)

        result = await gdpr.delete_customer_data(tenant, mario.id, anonymize=True, actor="dpo")

        assert result == Erasure(customer_id=mario.id, method="anonymized", deleted_at=clock.now())
        assert ErasureResult.of(result).model_dump(mode="json") == {
            "success": True,
            "method": "anonymized",
            "customer_id": mario.id,
            "deleted_at": clock.now().isoformat().replace("+00:00", "Z"),
        }
        with pytest.raises(CustomerNotFound):
            await service.get_customer(tenant, mario.id)
        kept = await service.get_customer(tenant, mario.id, include_deleted=True)
        assert kept.is_anonymized
        assert (kept.total_orders, kept.total_spent) == (1, mario.total_spent)
        assert kept.first_order_at == mario.first_order_at
        export = json.dumps(await exported(gdpr, tenant, mario.id))
        for value in personal_values():
            assert value not in export, value
        assert "ORD-1" in export  # the order itself stays, without its shipping details

    @pytest.mark.parametrize("anonymize", [True, False], ids=["anonymize", "delete"])
    async def test_erasure_reaches_exactly_the_rows_the_export_shows(
        self,
        storage: Storage,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        anonymize: bool,
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)
        luigi = await service.create_customer(tenant, {"email": "luigi.verdi@example.com"})
        await service.add_address(tenant, luigi.id, OFFICE)
        await service.add_note(tenant, luigi.id, {"note": "Luigi prefers email"})
        await gdpr.update_consent(
            tenant, luigi.id, "marketing", True, metadata={"source": "signup-form"}
        )
        export = await exported(gdpr, tenant, mario.id)
        ids = {row["customer_id"] for section in SECTIONS for row in export[section]}
        assert ids == {mario.id, old.id}
        async with storage.unit_of_work(tenant) as uow:
            luigi_before = await _rows_of(uow, [luigi.id])

        await gdpr.delete_customer_data(tenant, mario.id, anonymize=anonymize)

        async with storage.unit_of_work(tenant) as uow:
            left = await _rows_of(uow, sorted(ids))
            assert await _rows_of(uow, [luigi.id]) == luigi_before
            customers = [await uow.customers.get(cid, include_deleted=True) for cid in ids]
        if not anonymize:
            assert customers == [None, None]
            assert left == {"addresses": [], "notes": [], "orders": [], "consents": []}
            return
        assert all(c is not None and c.is_anonymized and c.email is None for c in customers)
        assert left["addresses"] == []
        assert [(n.id, n.customer_id, n.note) for n in left["notes"]] == [
            (n["id"], n["customer_id"], "") for n in export["notes"]
        ]
        assert sorted(o.order_id for o in left["orders"]) == ["OLD-1", "ORD-1"]
        assert all(o.shipping is None for o in left["orders"])
        assert {i.product_name for o in left["orders"] for i in o.items} == {""}
        assert [
            (e.id, e.customer_id, e.consented, e.source, e.ip_address, e.user_agent)
            for e in left["consents"]
        ] == [
            (e["id"], e["customer_id"], e["consented"], None, None, None)
            for e in export["consent_history"]
        ]

    async def test_anonymization_clears_consent_sources_and_product_names_and_keeps_order_ids(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario, _ = await merge_keeping_rows_apart(service, gdpr, tenant)
        await gdpr.delete_customer_data(tenant, mario.id)

        export = await exported(gdpr, tenant, mario.id)

        states = [*export["consent"].values()]
        states += [s for c in export["merged_customers"] for s in c["consent_data"].values()]
        # The target's marketing, the analytics the merge took from the old account
        # (its source, IP address and user agent with it), and the old account's own.
        assert [(s["consented"], s["source"], s["ip_address"]) for s in states] == [
            (True, None, None)
        ] * 3
        assert {e["source"] for e in export["consent_history"]} == {None}
        assert sorted(o["order_id"] for o in export["orders"]) == ["OLD-1", "ORD-1"]
        (line,) = [i for o in export["orders"] for i in o["items"]]
        assert (line["product_id"], line["product_name"], line["quantity"]) == ("ring-1", "", 1)
        assert ENGRAVED not in json.dumps(export)

    async def test_anonymization_is_idempotent(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        first = await gdpr.delete_customer_data(tenant, mario.id)
        events = (await gdpr.list_audit_events(tenant, customer_id=mario.id)).total
        clock.advance(hours=5)
        assert await gdpr.delete_customer_data(tenant, mario.id) == first
        assert (await gdpr.list_audit_events(tenant, customer_id=mario.id)).total == events

    async def test_an_anonymized_customer_frees_its_email_and_cannot_be_restored(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        await gdpr.delete_customer_data(tenant, mario.id)
        with pytest.raises(CustomerNotFound):
            await service.restore_customer(tenant, mario.id)
        again = await service.create_customer(tenant, {"email": PROFILE["email"]})
        assert again.id != mario.id

    async def test_hard_deletion_keeps_the_trail_and_adds_a_tombstone(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        mario = await live_a_life(service, gdpr, tenant)
        aliases = await service.list_aliases(tenant, mario.id)
        ids = {mario.id, aliases[0].alias_id}
        before = [e for e in (await gdpr.list_audit_events(tenant)).items if e.customer_id in ids]

        result = await gdpr.delete_customer_data(tenant, mario.id, anonymize=False, actor="dpo")

        assert (result.method, result.customer_id) == ("deleted", mario.id)
        with pytest.raises(CustomerNotFound):
            await exported(gdpr, tenant, mario.id)
        with pytest.raises(CustomerNotFound):
            await service.get_customer(tenant, aliases[0].alias_id, include_deleted=True)
        trail = (await gdpr.list_audit_events(tenant)).items
        about = [e for e in trail if e.customer_id in ids]
        # Accountability (Art. 5(2)): every event stays, unchanged, and the erasure adds its own.
        assert about[:-1] == before
        assert len(before) > 5
        tombstone = about[-1]
        assert tombstone.action == AuditAction.DATA_ERASED
        assert tombstone.actor == "dpo"
        assert tombstone.changed_fields == ()
        assert set(tombstone.details) == {"customer_ids"}
        assert (await gdpr.verify_audit_trail(tenant)).intact

    async def test_erasure_of_another_tenants_customer_is_not_found_and_changes_nothing(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, other_tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        for anonymize in (True, False):
            with pytest.raises(CustomerNotFound):
                await gdpr.delete_customer_data(other_tenant, mario.id, anonymize=anonymize)
        assert (await service.get_customer(tenant, mario.id)).email == "mario.rossi@example.com"


async def _rows_of(uow: UnitOfWork, customer_ids: list[int]) -> dict[str, list[Any]]:
    """The rows filed under the customers, read one customer at a time (independently
    of the set-based reads the service uses)."""
    rows: dict[str, list[Any]] = {"addresses": [], "notes": [], "orders": [], "consents": []}
    for cid in customer_ids:
        rows["addresses"] += await uow.addresses.list_for_customer(cid)
        rows["notes"] += await uow.notes.list_for_customer(cid)
        rows["orders"] += (await uow.orders.list_for_customer(cid, page=1, page_size=100)).items
        rows["consents"] += await uow.consents.list_for_customer(cid)
    return rows


class TestConsent:
    async def test_decisions_are_a_ledger_oldest_first_with_the_previous_state(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        first = await gdpr.update_consent(
            tenant, mario.id, "marketing", True, metadata={"ip_address": IP, "user_agent": AGENT}
        )
        clock.advance(days=3)
        await gdpr.update_consent(tenant, mario.id, "marketing", False)
        clock.advance(days=1)
        await service.update_customer(tenant, mario.id, {"first_name": "Mariano"})

        history = await consent_history(gdpr, tenant, mario.id)

        assert first.previous is None
        assert history["marketing"]["consented"] is False
        assert history["marketing"]["date"] == "2025-01-04T12:00:00Z"
        assert [(e["consented"], e["previous"]) for e in history["events"]] == [
            (True, None),
            (False, True),
        ]
        assert history["events"][0]["ip_address"] == IP
        assert history["events"][0]["user_agent"] == AGENT
        assert not await gdpr.has_consent(tenant, mario.id, "marketing")
        assert not await gdpr.has_consent(tenant, mario.id, "cookies")

    async def test_metadata_can_never_set_the_decision_or_its_date(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        for key, value in (("consented", True), ("date", "2020-01-01T00:00:00Z")):
            with pytest.raises(InvalidInput) as caught:
                await gdpr.update_consent(
                    tenant, mario.id, "marketing", False, metadata={key: value}
                )
            assert caught.value.field == f"metadata.{key}"
        with pytest.raises(InvalidInput) as caught:
            await gdpr.update_consent(
                tenant, mario.id, "marketing", True, metadata={"ip_address": "x"}
            )
        assert caught.value.field == "metadata.ip_address"
        with pytest.raises(InvalidInput) as caught:
            await gdpr.update_consent(tenant, mario.id, "marketing", "yes")  # type: ignore[arg-type]
        assert caught.value.field == "consented"
        assert (await consent_history(gdpr, tenant, mario.id)) == {"events": []}

    async def test_consent_types_are_configurable_and_unknown_ones_refused(
        self, storage: Storage, service: CustomerService, clock: FixedClock, tenant: str
    ) -> None:
        gdpr = GDPRService(storage.unit_of_work, clock, consent_types=("newsletter", "sms"))
        mario = await service.create_customer(tenant, PROFILE)
        await gdpr.update_consent(tenant, mario.id, "sms", True)
        assert await gdpr.has_consent(tenant, mario.id, "sms")
        with pytest.raises(ConsentTypeUnknown) as caught:
            await gdpr.update_consent(tenant, mario.id, "marketing", True)
        assert caught.value.field == "consent_type"
        assert "newsletter, sms" in caught.value.message
        with pytest.raises(ConsentTypeUnknown):
            await gdpr.has_consent(tenant, mario.id, "marketing")

    def test_events_cannot_be_a_consent_type(self, storage: Storage, clock: FixedClock) -> None:
        with pytest.raises(ValueError, match="'events' cannot be a consent type"):
            GDPRService(storage.unit_of_work, clock, consent_types=("marketing", "events"))

    async def test_a_failed_transaction_leaves_neither_the_change_nor_its_audit_record(
        self,
        storage: Storage,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        before = (await gdpr.list_audit_events(tenant)).total

        def failing_factory(tenant_id: str) -> Any:
            uow = storage.unit_of_work(tenant_id)

            async def broken_commit() -> None:
                raise RuntimeError("the database went away before commit")

            monkeypatch.setattr(uow, "commit", broken_commit)
            return uow

        broken = GDPRService(failing_factory, clock)
        with pytest.raises(RuntimeError):
            await broken.update_consent(tenant, mario.id, "marketing", True)
        assert await consent_history(gdpr, tenant, mario.id) == {"events": []}
        assert (await gdpr.list_audit_events(tenant)).total == before

    async def test_consent_history_survives_later_changes_and_anonymization(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        await gdpr.update_consent(tenant, mario.id, "marketing", True, metadata={"ip_address": IP})
        await service.update_customer(tenant, mario.id, {"tags": ["x"]})
        await gdpr.delete_customer_data(tenant, mario.id)
        export = await exported(gdpr, tenant, mario.id)
        assert [(e["consent_type"], e["consented"]) for e in export["consent_history"]] == [
            ("marketing", True)
        ]
        assert export["consent_history"][0]["ip_address"] is None
        assert export["consent"]["marketing"]["consented"] is True


class TestProfilingGate:
    async def test_withdrawing_analytics_consent_clears_and_stops_profiling(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await service.create_customer(tenant, PROFILE)
        order = {"order_id": "O-1", "total": "10", "currency": "EUR"}
        assert (await service.record_order(tenant, mario.id, order)).customer.segment
        await gdpr.update_consent(tenant, mario.id, "analytics", False)
        assert (await service.get_customer(tenant, mario.id)).segment is None
        recorded = await service.record_order(tenant, mario.id, {**order, "order_id": "O-2"})
        assert recorded.customer.segment is None
        await gdpr.update_consent(tenant, mario.id, "analytics", True)
        recorded = await service.record_order(tenant, mario.id, {**order, "order_id": "O-3"})
        assert recorded.customer.segment is not None

    async def test_an_opt_in_policy_profiles_only_who_consented(
        self, storage: Storage, clock: FixedClock, tenant: str
    ) -> None:
        from linkbay_customers import HeuristicIntelligence

        policy = ProfilingPolicy(require_opt_in=True)
        service = CustomerService(
            storage.unit_of_work, clock, HeuristicIntelligence(), profiling_policy=policy
        )
        gdpr = GDPRService(storage.unit_of_work, clock, profiling_policy=policy)
        mario = await service.create_customer(tenant, PROFILE)
        order = {"order_id": "O-1", "total": "10", "currency": "EUR"}
        assert (await service.record_order(tenant, mario.id, order)).customer.segment is None
        await gdpr.update_consent(tenant, mario.id, "analytics", True)
        recorded = await service.record_order(tenant, mario.id, {**order, "order_id": "O-2"})
        assert recorded.customer.segment is not None


class TestAuditTrail:
    async def test_every_change_is_audited_with_field_names_only(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        mario = await live_a_life(service, gdpr, tenant)
        await exported(gdpr, tenant, mario.id)
        await gdpr.delete_customer_data(tenant, mario.id)
        trail = (await gdpr.list_audit_events(tenant, page_size=1000)).items
        actions = {e.action for e in trail}
        assert {
            AuditAction.CUSTOMER_CREATED,
            AuditAction.CUSTOMER_UPDATED,
            AuditAction.ADDRESS_ADDED,
            AuditAction.NOTE_ADDED,
            AuditAction.ORDER_RECORDED,
            AuditAction.CONSENT_UPDATED,
            AuditAction.CUSTOMER_MERGED,
            AuditAction.DATA_EXPORTED,
            AuditAction.DATA_ANONYMIZED,
        } <= actions
        text = repr(trail)
        for value in personal_values():
            assert value not in text, value

    async def test_the_trail_is_listed_by_customer_and_time_window(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        start = clock.now()
        mario = await service.create_customer(tenant, PROFILE)
        clock.advance(hours=1)
        luigi = await service.create_customer(tenant, {"email": "luigi@example.com"})
        clock.advance(hours=1)
        await service.update_customer(tenant, mario.id, {"first_name": "M"})
        mine = await gdpr.list_audit_events(tenant, customer_id=mario.id)
        assert [e.action for e in mine.items] == [
            AuditAction.CUSTOMER_CREATED,
            AuditAction.CUSTOMER_UPDATED,
        ]
        # The times as stored: PostgreSQL stamps events with its own clock.
        times = [e.occurred_at for e in (await gdpr.list_audit_events(tenant)).items]
        window = await gdpr.list_audit_events(tenant, since=times[1], until=times[2])
        assert [e.customer_id for e in window.items] == [luigi.id]
        with pytest.raises(InvalidInput) as caught:
            await gdpr.list_audit_events(tenant, since=start, until=start)
        assert caught.value.field == "until"
        with pytest.raises(InvalidInput) as caught:
            await gdpr.list_audit_events(tenant, since=datetime(2025, 1, 1))  # naive
        assert caught.value.field == "since"


class TestRetention:
    async def test_a_dry_run_lists_and_a_real_run_anonymizes_the_inactive(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        idle = [
            await service.create_customer(tenant, {"email": f"idle{n}@example.com"})
            for n in range(5)
        ]
        buyer = await service.create_customer(tenant, {"email": "buyer@example.com"})
        clock.advance(days=400)
        await service.record_order(
            tenant, buyer.id, {"order_id": "R-1", "total": "5", "currency": "EUR"}
        )
        touched = await service.create_customer(tenant, {"email": "new@example.com"})

        dry = await gdpr.purge_inactive(tenant, timedelta(days=365), chunk_size=2)
        assert dry.dry_run
        assert dry.customer_ids == tuple(c.id for c in idle)
        assert dry.cutoff == clock.now() - timedelta(days=365)
        assert (await service.get_customer(tenant, idle[0].id)).email == "idle0@example.com"

        awaited: list[int] = []

        async def report(done: int) -> None:
            await asyncio.sleep(0)
            awaited.append(done)

        await gdpr.purge_inactive(tenant, timedelta(days=365), chunk_size=2, on_progress=report)
        assert awaited == [2, 4, 5]

        seen: list[int] = []
        done = await gdpr.purge_inactive(
            tenant, timedelta(days=365), dry_run=False, chunk_size=2, on_progress=seen.append
        )
        assert done.customer_ids == dry.customer_ids
        assert seen == [2, 4, 5]
        for customer in idle:
            kept = await service.get_customer(tenant, customer.id, include_deleted=True)
            assert kept.is_anonymized
            assert kept.email is None
        assert (await service.get_customer(tenant, buyer.id)).email == "buyer@example.com"
        assert (await service.get_customer(tenant, touched.id)).email == "new@example.com"
        again = await gdpr.purge_inactive(tenant, timedelta(days=365), dry_run=False)
        assert again.count == 0

    async def test_a_person_is_anonymized_whole_even_if_the_run_stops_after_a_chunk(
        self,
        storage: Storage,
        service: CustomerService,
        gdpr: GDPRService,
        tenant: str,
        clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        mario, old = await merge_keeping_rows_apart(service, gdpr, tenant)
        idle = await service.create_customer(tenant, {"email": "idle@example.com"})
        clock.advance(days=400)
        dry = await gdpr.purge_inactive(tenant, timedelta(days=365), chunk_size=1)
        assert dry.customer_ids == (mario.id, old.id, idle.id)
        commits = 0

        def stopping_after_one_commit(tenant_id: str) -> Any:
            uow = storage.unit_of_work(tenant_id)
            commit = uow.commit

            async def counted_commit() -> None:
                nonlocal commits
                commits += 1
                if commits > 1:
                    raise RuntimeError("the run was stopped")
                await commit()

            monkeypatch.setattr(uow, "commit", counted_commit)
            return uow

        stopping = GDPRService(stopping_after_one_commit, clock)
        with pytest.raises(RuntimeError):
            await stopping.purge_inactive(tenant, timedelta(days=365), dry_run=False, chunk_size=1)

        async with storage.unit_of_work(tenant) as uow:
            kept = await uow.customers.get_many([mario.id, old.id, idle.id])
        assert [(c.id, c.is_anonymized) for c in kept] == [
            (mario.id, True),
            (old.id, True),
            (idle.id, False),
        ]

    async def test_the_period_must_be_at_least_a_day(self, gdpr: GDPRService, tenant: str) -> None:
        for bad in (timedelta(hours=1), timedelta(days=-3), 30, timedelta(days=999_999)):
            with pytest.raises(InvalidInput) as caught:
                await gdpr.purge_inactive(tenant, bad)  # type: ignore[arg-type]
            assert caught.value.field == "inactive_for"


def test_the_clock_of_the_fixture_is_utc(clock: FixedClock) -> None:
    assert clock.now().tzinfo is UTC


class LoyaltyCustomerCreate(CustomerCreate):
    loyalty_card: str | None = None
    store: str | None = None


async def test_a_storage_that_declares_nothing_about_extra_fields_empties_them_all(
    service: CustomerService, gdpr: GDPRService, tenant: str
) -> None:
    customer = await service.create_customer(
        tenant, LoyaltyCustomerCreate(email="card@example.com", loyalty_card="LC-1", store="Milan")
    )

    await gdpr.delete_customer_data(tenant, customer.id)

    erased = await service.get_customer(tenant, customer.id, include_deleted=True)
    assert erased.extra == {"loyalty_card": None, "store": None}
    events = (await gdpr.list_audit_events(tenant, customer_id=customer.id)).items
    anonymized = [e for e in events if e.action is AuditAction.DATA_ANONYMIZED]
    assert {"loyalty_card", "store"} <= set(anonymized[0].changed_fields)
