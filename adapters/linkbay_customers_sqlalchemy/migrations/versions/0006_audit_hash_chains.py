"""A tamper-evident audit trail: hash chains per customer, the database's clock, no erasure path.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every audit event gets ``chain_id`` (its customer's id, 0 for events about no
customer), ``sequence`` (its position in that chain, unique) and ``hash`` (an
HMAC-SHA256 under the host's audit key over its content and the previous
event's hash); ``customer_audit_chains`` holds each chain's tip. Existing events
are chained in the order they happened, with the key the storage will use
(``LINKBAY_AUDIT_KEY``, ``LINKBAY_AUDIT_KEY_FILE``, or on SQLite the key file
beside the database); on PostgreSQL, a trail that is not empty cannot be chained
without one, and the revision stops saying so. Before chaining, the details of
old events are brought to what events may hold now: an order's reference
becomes the order's internal id, and any other value that is not an identifier,
flag or label of the library is dropped (erasure used to empty those anyway).

A trigger moves a chain's tip with every event inserted, and on PostgreSQL stamps
the event with the transaction's time. PostgreSQL only: the two erasure functions
of revision 0003 are dropped (erasure keeps the trail now, so no role may change
or remove an event in any way), and the new table gets the tenant policy of every
other one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op

from linkbay_customers.audit_keys import AuditKeyMissing, audit_chain_from
from linkbay_customers.domain import (
    AUDIT_DETAIL_KEYS,
    AuditAction,
    AuditChain,
    AuditEvent,
    ChainTip,
    chain_of,
    check_audit_content,
)
from linkbay_customers_sqlalchemy._models import (
    create_audit_triggers,
    default_models,
    drop_audit_triggers,
)
from linkbay_customers_sqlalchemy.migrations._tenancy import (
    every_tenant_visible,
    protect_tenant_table,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_EVENTS = "customer_audit_events"
_CHAINS = "customer_audit_chains"
_ORDERS = "customer_orders"
_ERASURE_FUNCTIONS = (
    "linkbay_scrub_customer_audit_events(text, bigint[])",
    "linkbay_delete_customer_audit_events(text, bigint[])",
)
_BATCH = 1000


def _key(bind: sa.engine.Connection) -> AuditChain:
    database = bind.engine.url.database
    default = (
        Path(f"{database}.audit-key")
        if bind.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        else None
    )
    chain = audit_chain_from(default_file=default)
    if chain is None:
        raise AuditKeyMissing(
            "the audit trail is not empty and must be chained with the key the application"
            " will use: set LINKBAY_AUDIT_KEY (or LINKBAY_AUDIT_KEY_FILE) and migrate again"
        )
    return chain


def _current_details(details: dict[str, Any], order_ids: dict[str, int]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in details.items():
        if key == "order_id" and isinstance(value, str) and value in order_ids:
            kept["order"] = order_ids[value]
        elif key in AUDIT_DETAIL_KEYS:
            try:
                check_audit_content((), {key: value})
            except ValueError:
                continue
            kept[key] = value
    return kept


def _chain_existing(bind: sa.engine.Connection) -> None:
    models = default_models()
    events = models.audit_event.__table__  # type: ignore[attr-defined]
    orders = models.order.__table__  # type: ignore[attr-defined]
    tips = models.audit_chain.__table__  # type: ignore[attr-defined]
    columns = [
        events.c[name]
        for name in (
            "tenant_id",
            "id",
            "customer_id",
            "actor",
            "action",
            "occurred_at",
            "changed_fields",
            "details",
        )
    ]
    if bind.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 0:
        return
    chain = _key(bind)
    rows = bind.execute(
        sa.select(*columns).order_by(
            events.c.tenant_id,
            sa.func.coalesce(events.c.customer_id, 0),
            events.c.occurred_at,
            events.c.id,
        )
    )
    order_ids: dict[str, dict[str, int]] = {}
    last: dict[tuple[str, int], ChainTip] = {}
    changes: list[dict[str, Any]] = []

    def flush() -> None:
        if changes:
            bind.execute(
                events.update()
                .where(
                    events.c.tenant_id == sa.bindparam("key_tenant"),
                    events.c.id == sa.bindparam("key_id"),
                )
                .values(
                    chain_id=sa.bindparam("new_chain"),
                    sequence=sa.bindparam("new_sequence"),
                    hash=sa.bindparam("new_hash"),
                    details=sa.bindparam("new_details", type_=events.c.details.type),
                ),
                changes,
            )
            changes.clear()

    for row in rows.fetchall():
        tenant = row.tenant_id
        if tenant not in order_ids:
            order_ids[tenant] = {
                o.order_id: o.id
                for o in bind.execute(
                    sa.select(orders.c.order_id, orders.c.id).where(orders.c.tenant_id == tenant)
                )
            }
        event = AuditEvent(
            id=row.id,
            tenant_id=tenant,
            customer_id=row.customer_id,
            actor=row.actor,
            action=AuditAction(row.action),
            occurred_at=row.occurred_at,
            changed_fields=tuple(f for f in row.changed_fields or () if _safe_field(f)),
            details=_current_details(dict(row.details or {}), order_ids[tenant]),
        )
        key = (tenant, chain_of(event.customer_id))
        (sealed,) = chain.seal([event], {key[1]: last.get(key, ChainTip())})
        assert sealed.sequence is not None
        assert sealed.hash is not None
        last[key] = ChainTip(sealed.sequence, sealed.hash)
        changes.append(
            {
                "key_tenant": tenant,
                "key_id": row.id,
                "new_chain": key[1],
                "new_sequence": sealed.sequence,
                "new_hash": sealed.hash,
                "new_details": sealed.details,
            }
        )
        if len(changes) >= _BATCH:
            flush()
    flush()
    if last:
        bind.execute(
            tips.insert(),
            [
                {"tenant_id": t, "chain_id": c, "sequence": tip.sequence, "hash": tip.hash}
                for (t, c), tip in last.items()
            ],
        )


def _safe_field(name: object) -> bool:
    try:
        check_audit_content((name,), {})  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _revision_0003() -> ModuleType:
    path = Path(__file__).with_name("0003_append_only_audit_trail.py")
    spec = importlib.util.spec_from_file_location("linkbay_revision_0003", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        _CHAINS,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "chain_id", name=op.f(f"pk_{_CHAINS}")),
    )
    with op.batch_alter_table(_EVENTS) as batch:
        batch.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sequence", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    with every_tenant_visible(_EVENTS, _ORDERS):
        _chain_existing(bind)
    with op.batch_alter_table(_EVENTS) as batch:
        for name in ("chain_id", "sequence", "hash"):
            kind = sa.String(64) if name == "hash" else sa.BigInteger()
            batch.alter_column(name, existing_type=kind, nullable=False)
        batch.create_unique_constraint(
            op.f(f"uq_{_EVENTS}_tenant_id_chain_id_sequence"),
            ["tenant_id", "chain_id", "sequence"],
        )
    # After the last batch operation: SQLite's rebuild of the table would drop it.
    create_audit_triggers(bind, default_models())
    if not postgresql:
        return
    protect_tenant_table(_CHAINS)
    for function in _ERASURE_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")


def downgrade() -> None:
    bind = op.get_bind()
    drop_audit_triggers(bind, default_models())
    if bind.dialect.name == "postgresql":
        _revision_0003().upgrade()
    with op.batch_alter_table(_EVENTS) as batch:
        batch.drop_constraint(op.f(f"uq_{_EVENTS}_tenant_id_chain_id_sequence"), type_="unique")
        batch.drop_column("hash")
        batch.drop_column("sequence")
        batch.drop_column("chain_id")
    op.drop_table(_CHAINS)
