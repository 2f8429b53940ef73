"""The audit trail's rules in the core: what an event may say, the chain, the key."""

from __future__ import annotations

import dataclasses
import gc
import os
import stat
from pathlib import Path

import pytest

from linkbay_customers import AIService, CustomerService, GDPRService, HeuristicIntelligence
from linkbay_customers.audit_keys import AuditKeyMissing, audit_chain_from
from linkbay_customers.domain import (
    AuditAction,
    AuditChain,
    AuditEvent,
    ChainTip,
    ProfilingPolicy,
    chain_of,
)
from linkbay_customers.services._change import Transactions
from linkbay_customers.services._derived import ProfilingGate
from linkbay_customers.testing import T0, FixedClock
from linkbay_customers_memory import InMemoryStorage
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, upgrade

KEY = b"k" * 32


@pytest.fixture
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither key variable set (the suite sets LINKBAY_AUDIT_KEY for every other test)."""
    monkeypatch.delenv("LINKBAY_AUDIT_KEY", raising=False)
    monkeypatch.delenv("LINKBAY_AUDIT_KEY_FILE", raising=False)


def event(**fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "id": 1,
        "tenant_id": "t",
        "customer_id": 7,
        "actor": None,
        "action": AuditAction.CUSTOMER_UPDATED,
        "occurred_at": T0,
    }
    values.update(fields)
    return AuditEvent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "details",
    [
        {"email": "mario@example.com"},
        {"note_id": "Mario"},
        {"customer_ids": [1, "2"]},
        {"merge_notes": "yes"},
        {"source": "Mario Rossi <mario@example.com>"},
        {"order_id": "A-1001"},
    ],
)
def test_an_event_that_could_carry_a_personal_value_cannot_be_built(details: object) -> None:
    with pytest.raises(ValueError, match="details"):
        event(details=details)


def test_changed_fields_are_field_names_only() -> None:
    assert event(changed_fields=("email", "consent_data")).changed_fields == (
        "email",
        "consent_data",
    )
    with pytest.raises(ValueError, match="not a field name"):
        event(changed_fields=("mario@example.com",))


def test_sealing_chains_each_customer_apart_and_any_change_breaks_the_link() -> None:
    chain = AuditChain(KEY)
    first, second, other = chain.seal([event(id=1), event(id=2), event(id=3, customer_id=8)], {})
    assert [(e.sequence, e.customer_id) for e in (first, second, other)] == [(1, 7), (2, 7), (1, 8)]
    assert second.hash == chain.link(second, 2, first.hash or "")
    assert chain.link(event(id=2, actor="someone"), 2, first.hash or "") != second.hash
    assert AuditChain(b"x" * 32).link(second, 2, first.hash or "") != second.hash
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuditChain(b"short")


def test_the_key_comes_from_code_then_the_environment_then_the_storages_file(
    tmp_path: Path,
) -> None:
    named = tmp_path / "named.key"
    named.write_text("n" * 40 + "\n")
    default = tmp_path / "db.audit-key"
    given = audit_chain_from(KEY, environ={"LINKBAY_AUDIT_KEY": "e" * 40})
    from_env = audit_chain_from(environ={"LINKBAY_AUDIT_KEY": "e" * 40})
    from_file = audit_chain_from(environ={"LINKBAY_AUDIT_KEY_FILE": str(named)})
    made = audit_chain_from(default_file=default, environ={})
    again = audit_chain_from(default_file=default, environ={})
    sealed = event()
    for chain in (given, from_env, from_file, made, again):
        assert chain is not None
    assert given.link(sealed, 1, "") == AuditChain(KEY).link(sealed, 1, "")
    assert from_env.link(sealed, 1, "") == AuditChain(b"e" * 40).link(sealed, 1, "")
    assert from_file.link(sealed, 1, "") == AuditChain(b"n" * 40).link(sealed, 1, "")
    assert made.link(sealed, 1, "") == again.link(sealed, 1, "")
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert audit_chain_from(environ={}) is None
    with pytest.raises(AuditKeyMissing, match="LINKBAY_AUDIT_KEY"):
        audit_chain_from(environ={"LINKBAY_AUDIT_KEY": "too short"})
    with pytest.raises(AuditKeyMissing, match="cannot read"):
        audit_chain_from(environ={"LINKBAY_AUDIT_KEY_FILE": str(tmp_path / "missing")})


@pytest.mark.usefixtures("no_key_in_the_environment")
def test_postgresql_without_a_key_refuses_to_start() -> None:
    with pytest.raises(AuditKeyMissing, match="PostgreSQL needs an audit key"):
        SqlAlchemyStorage.from_url("postgresql+asyncpg://app@localhost/shop")


@pytest.mark.usefixtures("no_key_in_the_environment")
async def test_the_embedded_default_keeps_its_key_beside_the_database(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    for attempt in range(2):  # a restart reads the same key: the trail still verifies
        storage = SqlAlchemyStorage.from_url(url)
        try:
            clock = FixedClock()
            service = CustomerService(storage.unit_of_work, clock, HeuristicIntelligence())
            await service.create_customer("t", {"email": f"{attempt}@example.com"})
            verification = await GDPRService(storage.unit_of_work, clock).verify_audit_trail("t")
        finally:
            await storage.close()
        assert (verification.intact, verification.events) == (True, attempt + 1)
    assert stat.S_IMODE(os.stat(f"{database}.audit-key").st_mode) == 0o600


@pytest.mark.usefixtures("no_key_in_the_environment")
async def test_a_memory_storage_without_a_key_makes_one_for_its_lifetime() -> None:
    storage = InMemoryStorage()
    clock = FixedClock()
    await CustomerService(storage.unit_of_work, clock, HeuristicIntelligence()).create_customer(
        "t", {"email": "m@example.com"}
    )
    assert (await GDPRService(storage.unit_of_work, clock).verify_audit_trail("t")).intact


def test_names_that_go_into_the_trail_are_checked_when_the_services_are_built() -> None:
    storage = InMemoryStorage()
    clock = FixedClock()
    with pytest.raises(ValueError, match="consent_types"):
        GDPRService(storage.unit_of_work, clock, consent_types=("e-mail marketing",))

    class Named(HeuristicIntelligence):
        name = "Anna's model"

    with pytest.raises(ValueError, match="recorded in the audit trail"):
        AIService(storage.unit_of_work, clock, Named())
    kinds = GDPRService(storage.unit_of_work, clock, consent_types=("sms", "ads:v2")).consent_types
    assert kinds == ("sms", "ads:v2")
    assert event(changed_fields=("companyName",)).changed_fields == ("companyName",)


def test_a_flag_is_a_boolean_and_an_id_is_not_even_after_the_other_was_checked() -> None:
    assert event(details={"merge_notes": True}).details == {"merge_notes": True}
    with pytest.raises(ValueError, match="merge_notes"):
        event(details={"merge_notes": 1})
    assert event(details={"note_id": 1}).details == {"note_id": 1}
    with pytest.raises(ValueError, match="note_id"):
        event(details={"note_id": True})


@pytest.mark.usefixtures("no_key_in_the_environment")
async def test_reading_without_writing_the_trail_makes_no_key_file(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    storage = SqlAlchemyStorage.from_url(url)
    try:
        service = CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())
        assert (await service.list_customers("t")).total == 0
    finally:
        await storage.close()
    names = _names_in(tmp_path)
    assert "shop.db" in names
    assert "shop.db.audit-key" not in names


def _names_in(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


def test_a_sealed_event_keeps_every_field_and_gets_its_position_hash_and_time() -> None:
    original = event(actor="ops@shop", changed_fields=("email",), details={"source": "import"})
    later = T0.replace(year=T0.year + 1)
    (sealed,) = AuditChain(KEY).seal([original], {}, occurred_at=later)
    assert sealed == dataclasses.replace(
        original,
        occurred_at=later,
        sequence=1,
        hash=AuditChain(KEY).link(original, 1, "", occurred_at=later),
    )


def test_a_batch_sealed_at_once_links_as_each_event_alone_would() -> None:
    # Events sharing parts of their content (as an import's do), and events that do not:
    # every hash is the one ``link`` computes, whatever the batch shares.
    chain = AuditChain(KEY)
    shared = {"source": "import"}
    events = [
        event(
            id=n + 1,
            tenant_id='tenant-è"',
            customer_id=None if n % 7 == 0 else n % 5 + 1,
            actor=None if n % 2 else "ops ü@shop",
            action=AuditAction.CUSTOMER_CREATED if n % 3 else AuditAction.CUSTOMER_UPDATED,
            occurred_at=T0.replace(second=n % 2),
            changed_fields=("email", "tags") if n % 3 else (),
            details=shared if n % 2 else {"customer_ids": [1, n + 1], "merge_notes": True},
        )
        for n in range(60)
    ]
    tips = {3: ChainTip(4, "ab" * 32), 0: ChainTip(2, 'not "hex"')}
    sealed = chain.seal(events, tips)
    last = dict(tips)
    for original, stored in zip(events, sealed, strict=True):
        tip = last.get(chain_of(original.customer_id), ChainTip())
        assert stored.sequence == tip.sequence + 1
        assert stored.hash == chain.link(original, tip.sequence + 1, tip.hash)
        assert stored == dataclasses.replace(original, sequence=stored.sequence, hash=stored.hash)
        last[chain_of(original.customer_id)] = ChainTip(tip.sequence + 1, stored.hash)


def test_an_event_of_checked_content_is_the_event_built_as_usual() -> None:
    values = {
        "id": 3,
        "tenant_id": "t",
        "customer_id": 7,
        "actor": "ops",
        "action": AuditAction.CUSTOMER_CREATED,
        "occurred_at": T0,
        "changed_fields": ("email",),
        "details": {"source": "import"},
    }
    assert AuditEvent.of_checked_content(**values) == AuditEvent(**values)  # type: ignore[arg-type]


async def test_the_events_a_change_holds_are_left_out_of_garbage_collections() -> None:
    storage = InMemoryStorage()
    tx = Transactions(storage.unit_of_work, FixedClock(), ProfilingGate(ProfilingPolicy()))
    details = {"source": "import"}
    async with tx.change("t", actor="ops") as change:
        for customer_id in range(1, 51):
            change.audit(
                AuditAction.CUSTOMER_CREATED,
                customer_id=customer_id,
                changed_fields=("email",),
                details=details,
            )
        change.audit(AuditAction.CUSTOMER_UPDATED, customer_id=1, changed_fields=["tags"])
        change.audit(AuditAction.CUSTOMER_UPDATED, customer_id=2)
        # A tuple is left out once a collection finds nothing in it the collector
        # tracks, which may take a second one for a tuple of tuples.
        gc.collect()
        gc.collect()
        held = change._records
        assert len(held) == 52
        assert [record for record in held if gc.is_tracked(record)] == []
    async with storage.unit_of_work("t") as uow:
        events = (await uow.audit.list(page_size=100)).items
    assert [(e.action, e.customer_id, e.changed_fields, e.details) for e in events[-3:]] == [
        (AuditAction.CUSTOMER_CREATED, 50, ("email",), {"source": "import"}),
        (AuditAction.CUSTOMER_UPDATED, 1, ("tags",), {}),
        (AuditAction.CUSTOMER_UPDATED, 2, (), {}),
    ]
    assert {e.actor for e in events} == {"ops"}
