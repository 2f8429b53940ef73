"""What revisions that add a tenant table do on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

TENANT_MATCHES = "tenant_id = current_setting('linkbay.tenant_id', true)"

# Roles other than the owner that may write customers: the application roles
# granted before the revision that adds a table.
_WRITERS = (
    "SELECT DISTINCT quote_ident(r.rolname)"
    " FROM pg_class AS o CROSS JOIN LATERAL aclexplode(o.relacl) AS a"
    " JOIN pg_roles AS r ON r.oid = a.grantee"
    " WHERE o.oid = 'customers'::regclass AND a.grantee <> o.relowner"
    " AND a.privilege_type = 'INSERT'"
)


def protect_tenant_table(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Give a new table the tenant policy of every other one (row-level security,
    forced), and grant ``privileges`` on it to every role that may write customers."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )
    grant_to_writers(f"{privileges} ON {table}")


def grant_to_writers(privileges: str) -> None:
    """``GRANT <privileges> TO`` every role other than the owner that may write customers."""
    op.execute(
        "DO $$ DECLARE who text; BEGIN"
        f" FOR who IN {_WRITERS} LOOP"
        f" EXECUTE format('GRANT {privileges} TO %s', who);"
        " END LOOP; END $$"
    )


@contextmanager
def every_tenant_visible(*tables: str) -> Iterator[None]:
    """Let the migrating role (the tables' owner) read and write every tenant's rows
    of ``tables`` for a moment: forced row-level security would show it none.
    The DDL is part of the migration's transaction. Elsewhere (SQLite, no row-level
    security) it does nothing."""
    tables = tables if op.get_bind().dialect.name == "postgresql" else ()
    for table in tables:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    yield
    for table in tables:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
