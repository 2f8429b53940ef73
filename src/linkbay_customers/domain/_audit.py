"""The audit trail's rules: what an event may say, and the keyed hash chain that
makes any change to the stored trail evident.

Every event belongs to one chain: its customer's, or the tenant-wide chain for
events about no customer. Each event carries its position in the chain and an
HMAC-SHA256, under a key the host keeps outside the database, over its own
content and the previous event's hash. Whoever can write the database but does
not hold the key cannot change, remove or insert an event without breaking the
chain at that point, and ``AuditChain.verify`` names the first event that breaks.
Chains per customer keep concurrent writes of one tenant from waiting on each other.
"""

from __future__ import annotations

import functools
import hmac
import json
import re
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linkbay_customers.domain._entities import AuditEvent

__all__ = (
    "AUDIT_DETAIL_KEYS",
    "MIN_AUDIT_KEY_BYTES",
    "TENANT_CHAIN",
    "AuditBreak",
    "AuditChain",
    "AuditVerification",
    "ChainLock",
    "ChainTip",
    "chain_of",
    "check_audit_content",
    "is_audit_label",
)

MIN_AUDIT_KEY_BYTES = 32
"""The shortest key accepted: HMAC-SHA256's output size (RFC 2104 §3)."""

TENANT_CHAIN = 0
"""The chain id of events about no customer (customer ids start at 1)."""

_ID = "id"
_IDS = "ids"
_FLAG = "flag"
_LABEL = "label"

AUDIT_DETAIL_KEYS: Mapping[str, str] = {
    "address_id": _ID,
    "note_id": _ID,
    "order": _ID,
    "source_customer_id": _ID,
    "target_customer_id": _ID,
    "other_customer_id": _ID,
    "customer_ids": _IDS,
    "merge_addresses": _FLAG,
    "merge_notes": _FLAG,
    "merge_tags": _FLAG,
    "merge_preferences": _FLAG,
    "consent_type": _LABEL,
    "format": _LABEL,
    "reason": _LABEL,
    "source": _LABEL,
}
"""The keys an event's ``details`` may hold, and the kind of value of each.

Ids are positive integers (lists of them for ``_ids`` kinds), flags are booleans,
and labels are the library's own short names (an export format, a consent type,
a model's name): never a value a person typed.
"""

_LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
_FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@functools.lru_cache(maxsize=4096, typed=True)
def _field_ok(name: str) -> bool:
    return _FIELD_PATTERN.fullmatch(name) is not None


def _fields_ok(names: tuple[Any, ...]) -> bool:
    # Events of one kind name the same few sets of fields: a set is checked once.
    try:
        return _field_set_ok(names)
    except TypeError:  # an unhashable name, which the caller reports
        return False


@functools.lru_cache(maxsize=4096, typed=True)
def _field_set_ok(names: tuple[Any, ...]) -> bool:
    return all(isinstance(name, str) and _field_ok(name) for name in names)


@functools.lru_cache(maxsize=4096, typed=True)
def _scalar_detail_problem(key: str, value: str | int | bool | None) -> str | None:
    # Most events repeat the same few keys and values (a source, a format, ids are
    # not repeated but are cheap): remembered, a bulk import checks each once.
    return _detail_problem(key, value)


def _detail_problem(key: str, value: object) -> str | None:
    kind = AUDIT_DETAIL_KEYS.get(key)
    if kind is None:
        return f"details may not hold {key!r}: audit events hold identifiers and flags only"
    ok = {
        _ID: _is_id(value),
        _IDS: isinstance(value, list) and all(_is_id(v) for v in value),
        _FLAG: isinstance(value, bool),
        _LABEL: is_audit_label(value),
    }[kind]
    return None if ok else f"details[{key!r}] must be a {kind.replace('ids', 'list of ids')}"


def check_audit_content(changed_fields: Sequence[str], details: Mapping[str, Any]) -> None:
    """Refuse an event that could carry a personal value.

    Raises:
        ValueError: a detail key outside ``AUDIT_DETAIL_KEYS``, a value of the wrong
            kind, or a changed field that is not a field name.
    """
    if not (type(changed_fields) is tuple and _fields_ok(changed_fields)):
        for name in changed_fields:
            if not isinstance(name, str) or not _field_ok(name):
                raise ValueError(f"changed_fields holds {name!r}, which is not a field name")
    for key, value in details.items():
        scalar = value is None or isinstance(value, str | int)  # bool is an int
        problem = (
            _scalar_detail_problem(key, value)
            if scalar and isinstance(key, str)
            else _detail_problem(key, value)
        )
        if problem is not None:
            raise ValueError(problem)


def is_audit_label(value: object) -> bool:
    """Whether ``value`` can stand in an event's details as a label: 1 to 64 letters,
    digits and ``_ . : / -``, starting with a letter or digit (no spaces, no ``@``)."""
    return isinstance(value, str) and _LABEL_PATTERN.fullmatch(value) is not None


def chain_of(customer_id: int | None) -> int:
    """The chain an event about ``customer_id`` (None: about no customer) belongs to."""
    return TENANT_CHAIN if customer_id is None else customer_id


@dataclass(frozen=True, slots=True)
class ChainTip:
    """The last link of a chain: its position and hash (position 0: an empty chain)."""

    sequence: int = 0
    hash: str = ""


_EMPTY_LINK = (0, "")  # the last link of an empty chain, as ``AuditChain.seal`` keeps it


@dataclass(frozen=True, slots=True)
class ChainLock:
    """Chains locked for appending: their tips, and the storage's time for new events.

    Attributes:
        tips: The last link of each chain asked for that has one.
        now: The time the storage stamps new events with (PostgreSQL's transaction
            time), or None where the service's clock gives it.
    """

    tips: Mapping[int, ChainTip]
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """Where a chain breaks: the first event (or chain) that fails verification."""

    chain: int
    event_id: int | None
    sequence: int | None
    reason: str

    def __str__(self) -> str:
        where = f"chain {self.chain}"
        if self.event_id is not None:
            where = f"event {self.event_id} ({where}, position {self.sequence})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The outcome of checking a tenant's trail against the key.

    Attributes:
        events: How many events were checked.
        chains: How many chains (customers, and the tenant-wide one) they form.
        broken: The first break found, or None when every chain is intact.
    """

    events: int
    chains: int
    broken: AuditBreak | None = None

    @property
    def intact(self) -> bool:
        """True when no event was changed, removed or inserted outside the library."""
        return self.broken is None


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once.
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


@functools.lru_cache(maxsize=256)  # the events of one change share their time
def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class AuditChain:
    """Seals audit events into per-customer hash chains, and verifies them.

    Args:
        key: The HMAC key, at least ``MIN_AUDIT_KEY_BYTES`` long. Keep it outside
            the database (an environment variable, a secrets manager, a key file
            the database's users cannot read): whoever holds it can forge links.

    Raises:
        ValueError: the key is too short.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_AUDIT_KEY_BYTES:
            raise ValueError(f"an audit key must be at least {MIN_AUDIT_KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "AuditChain(key=<hidden>)"

    def link(
        self,
        event: AuditEvent,
        sequence: int,
        previous: str,
        *,
        occurred_at: datetime | None = None,
    ) -> str:
        """The hash of ``event`` at ``sequence`` in its chain, after ``previous``
        (dated ``occurred_at`` instead of its own time, when given)."""
        content = [
            1,  # the layout of this list; a new layout would get a new number
            event.tenant_id,
            event.id,
            event.customer_id,
            sequence,
            event.actor,
            event.action.value,
            _moment(event.occurred_at if occurred_at is None else occurred_at),
            list(event.changed_fields),
            event.details,
            previous,
        ]
        return hmac.digest(self._key, _canonical_json(content).encode(), "sha256").hex()

    def seal(
        self,
        events: Iterable[AuditEvent],
        tips: Mapping[int, ChainTip],
        *,
        occurred_at: datetime | None = None,
    ) -> list[AuditEvent]:
        """The events with their positions and hashes, each chained after ``tips``
        (the chains' last links; absent chains are empty) and after the events
        before it in ``events``.

        Args:
            events: Unsealed events, in the order they happened (read once: a
                generator lets each go as soon as it is sealed).
            tips: The current last link of each chain the events belong to.
            occurred_at: The time the storage assigns (its own clock), if any.
        """
        # Links as plain tuples: a bulk import seals an event per customer, and
        # tuples of strings and numbers leave the collector's generations at once.
        last = {chain: (tip.sequence, tip.hash) for chain, tip in tips.items()}
        sealed = []
        # The events of one change share most of their content (tenant, actor, action,
        # time, often the fields and details): each shared part is encoded once, and
        # a link is the concatenation ``link`` would encode (the same bytes).
        middles: dict[tuple[Any, ...], tuple[str, str]] = {}
        key = self._key
        for event in events:
            chain = chain_of(event.customer_id)
            before, previous_hash = last.get(chain, _EMPTY_LINK)
            moment = event.occurred_at if occurred_at is None else occurred_at
            sequence = before + 1
            fields, details = event.changed_fields, event.details
            shared = (
                event.tenant_id,
                event.actor,
                event.action,
                moment,
                fields if type(fields) is tuple else id(fields),
                # By value when it can be, else by identity (the events hold their
                # details: no other object has the same id meanwhile).
                tuple(details.items()) if len(details) == 1 else id(details),
            )
            try:
                parts = middles.get(shared)
            except TypeError:  # an unhashable detail
                shared = (*shared[:5], id(details))
                parts = middles.get(shared)
            if parts is None:
                parts = middles[shared] = (
                    "[1," + _canonical_json(event.tenant_id) + ",",
                    ","
                    + ",".join(
                        _canonical_json(value)
                        for value in (
                            event.actor,
                            event.action.value,
                            _moment(moment),
                            list(event.changed_fields),
                            event.details,
                        )
                    )
                    + ",",
                )
            customer = "null" if event.customer_id is None else str(event.customer_id)
            previous = _canonical_json(previous_hash)
            content = f"{parts[0]}{event.id},{customer},{sequence}{parts[1]}{previous}]"
            digest = hmac.digest(key, content.encode(), "sha256").hex()
            # Built directly: dataclasses.replace costs as much again as the hash,
            # and the content was checked when the event was built.
            sealed.append(event.sealed(moment, sequence, digest))
            last[chain] = (sequence, digest)
        return sealed

    async def verify(
        self,
        events: AsyncIterable[tuple[AuditEvent, ChainTip | None]],
        orphans: Sequence[int] = (),
    ) -> AuditVerification:
        """Check a tenant's whole trail, streamed in bounded memory.

        Args:
            events: Every event of the tenant by chain then position, each with its
                chain's recorded tip as read in the same statement (None: no tip).
            orphans: Chains with a recorded tip but no event.

        Returns:
            How many events and chains were checked, and the first break found:
            an event whose hash does not match its content and predecessor (changed
            or inserted), a gap in the positions (removed), a chain whose last event
            is not its recorded tip (removed from the end), or a tip without events.
        """
        count = chains = 0
        current: int | None = None
        previous = ChainTip()
        recorded: ChainTip | None = None

        def ended(chain: int) -> AuditBreak | None:
            if recorded is None:
                return AuditBreak(chain, None, None, "the chain has no recorded tip")
            if recorded == previous:
                return None
            if recorded.sequence > previous.sequence:
                why = "events were removed from its end"
            else:
                why = "the tip was changed outside the library"
            return AuditBreak(
                chain,
                None,
                None,
                f"its recorded tip is position {recorded.sequence}, its last event"
                f" position {previous.sequence}: {why}",
            )

        async for event, tip in events:
            chain = chain_of(event.customer_id)
            if chain != current:
                if current is not None and (broken := ended(current)) is not None:
                    return AuditVerification(count, chains, broken)
                current, previous = chain, ChainTip()
                chains += 1
            recorded = tip
            count += 1
            expected = previous.sequence + 1
            if event.sequence != expected:
                why = f"position {event.sequence} follows position {previous.sequence}"
                return AuditVerification(
                    count,
                    chains,
                    AuditBreak(
                        chain, event.id, event.sequence, f"{why}: an event was removed or inserted"
                    ),
                )
            if event.hash is None or not hmac.compare_digest(
                event.hash, self.link(event, expected, previous.hash)
            ):
                return AuditVerification(
                    count,
                    chains,
                    AuditBreak(
                        chain,
                        event.id,
                        event.sequence,
                        "its hash does not match its content and the event before it:"
                        " it was changed or inserted outside the library",
                    ),
                )
            previous = ChainTip(expected, event.hash)
        if current is not None and (broken := ended(current)) is not None:
            return AuditVerification(count, chains, broken)
        if orphans:
            return AuditVerification(
                count, chains, AuditBreak(orphans[0], None, None, "a recorded tip has no events")
            )
        return AuditVerification(count, chains)
