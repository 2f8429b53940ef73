"""An append-only audit trail: erasure goes through two SECURITY DEFINER functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

PostgreSQL only. Creates ``linkbay_scrub_customer_audit_events`` (empty the
details of customers' events) and ``linkbay_delete_customer_audit_events``
(remove customers' events), both ``(tenant text, customer_ids bigint[])``
returning how many events they changed. They run as the role running this
migration, with ``search_path`` pinned, and touch only rows of the tenant set
for the transaction (``linkbay.tenant_id``), which must equal ``tenant``.
EXECUTE is revoked from PUBLIC.

Every role other than the owner that could UPDATE or DELETE audit events (an
application role granted before this revision) loses UPDATE, DELETE and
TRUNCATE on the table and gets EXECUTE on both functions instead: the same
erasure, and no other way to rewrite the trail. The downgrade gives them back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLE = "customer_audit_events"
_SCRUB = "linkbay_scrub_customer_audit_events"
_DELETE = "linkbay_delete_customer_audit_events"
_ARGUMENTS = "(text, bigint[])"
_THEIR_ROWS = (
    "tenant_id = current_setting('linkbay.tenant_id', true)"
    " AND tenant_id = $1 AND customer_id = ANY ($2)"
)
_BOTH = f"{_SCRUB}{_ARGUMENTS}, {_DELETE}{_ARGUMENTS}"


def _create_function(name: str, table: str, body: str) -> None:
    op.execute(
        f"CREATE OR REPLACE FUNCTION {name}(tenant text, customer_ids bigint[])"
        " RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER"
        " SET search_path = pg_catalog, pg_temp"
        f" AS $$ {body.format(table=table, where=_THEIR_ROWS)} $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {name}{_ARGUMENTS} FROM PUBLIC")


def _for_each_grantee(grantees: str, *actions: str) -> None:
    """Run each of ``actions`` (``format()`` strings, ``%s`` the grantee) for each grantee."""
    steps = " ".join(f"EXECUTE format('{action}', who);" for action in actions)
    op.execute(f"DO $$ DECLARE who text; BEGIN FOR who IN {grantees} LOOP {steps} END LOOP; END $$")


def _grantees(catalog: str, oid: str, acl: str, owner: str, privileges: str) -> str:
    """The roles other than the owner holding any of ``privileges`` on one catalog object."""
    return (
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END"
        f" FROM {catalog} AS o CROSS JOIN LATERAL aclexplode(o.{acl}) AS a"
        " LEFT JOIN pg_roles AS r ON r.oid = a.grantee"
        f" WHERE o.oid = {oid} AND a.grantee <> o.{owner} AND a.privilege_type IN ({privileges})"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite has no roles: nothing to protect the trail from
    quote = bind.dialect.identifier_preparer.quote
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    # The bodies name the table with its schema: their search_path excludes it.
    table = f"{quote(schema)}.{quote(_TABLE)}"
    _create_function(
        _SCRUB,
        table,
        "WITH scrubbed AS (UPDATE {table} SET details = '{{}}'::jsonb"
        " WHERE {where} AND details <> '{{}}'::jsonb RETURNING 1)"
        " SELECT count(*) FROM scrubbed",
    )
    _create_function(
        _DELETE,
        table,
        "WITH deleted AS (DELETE FROM {table} WHERE {where} RETURNING 1)"
        " SELECT count(*) FROM deleted",
    )
    _for_each_grantee(
        _grantees("pg_class", f"'{_TABLE}'::regclass", "relacl", "relowner", "'UPDATE', 'DELETE'"),
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {_TABLE} FROM %s",
        f"GRANT EXECUTE ON FUNCTION {_BOTH} TO %s",
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _for_each_grantee(
        _grantees(
            "pg_proc", f"'{_SCRUB}{_ARGUMENTS}'::regprocedure", "proacl", "proowner", "'EXECUTE'"
        ),
        f"GRANT UPDATE, DELETE ON {_TABLE} TO %s",
    )
    op.execute(f"DROP FUNCTION IF EXISTS {_SCRUB}{_ARGUMENTS}")
    op.execute(f"DROP FUNCTION IF EXISTS {_DELETE}{_ARGUMENTS}")
