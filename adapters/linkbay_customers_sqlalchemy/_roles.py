"""The PostgreSQL role an application connects as."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers_sqlalchemy._engine import create_engine
from linkbay_customers_sqlalchemy._migrate import VERSION_TABLE
from linkbay_customers_sqlalchemy._models import ModelSet, default_models

__all__ = ("application_role_grants", "grant_application_role")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _qualified(name: str, schema: str | None) -> str:
    return _quote(name) if schema is None else f"{_quote(schema)}.{_quote(name)}"


def application_role_grants(role: str, models: ModelSet | None = None) -> list[str]:
    """The statements giving an application role what it needs, and nothing more.

    The role must not own the tables and must not have BYPASSRLS: then the
    row-level security policies bind it, as a second wall behind the tenant
    filter of every query. The audit trail is append-only for it: SELECT and
    INSERT only (any UPDATE, DELETE or TRUNCATE granted before is taken back).
    The id counters only ever advance: SELECT, INSERT and UPDATE, no DELETE.
    The schema's revision is readable (SELECT on the migrations' version table), so
    the role can tell whether the schema is current, and never changes it.
    """
    models = models or default_models()
    who = _quote(role)
    statements = []
    for name, table in models.tables().items():
        target = _qualified(table.name, table.schema)
        if name == "audit_event":
            statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {target} FROM {who}")
            statements.append(f"GRANT SELECT, INSERT ON {target} TO {who}")
        elif name == "id_counter":
            statements.append(f"REVOKE DELETE, TRUNCATE ON {target} FROM {who}")
            statements.append(f"GRANT SELECT, INSERT, UPDATE ON {target} TO {who}")
        else:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {target} TO {who}")
    statements.append(f"GRANT SELECT ON {_quote(VERSION_TABLE)} TO {who}")
    return statements


async def grant_application_role(
    database: str | AsyncEngine, role: str, *, models: ModelSet | None = None
) -> None:
    """Grant an existing role what an application needs (run as the tables' owner).

    Args:
        database: A PostgreSQL URL, or an engine to use (it is left open).
        role: The role the application connects as.
        models: The models whose tables to grant; the default ones unless given.

    Raises:
        ValueError: no role of that name exists (create it first).
    """
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        async with engine.begin() as connection:
            found = await connection.scalar(
                text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
            )
            if found is None:
                raise ValueError(
                    f"the role {role!r} does not exist: create it first "
                    f"(CREATE ROLE {_quote(role)} LOGIN PASSWORD '...'), then grant it"
                )
            for statement in application_role_grants(role, models):
                await connection.execute(text(statement))
    finally:
        if isinstance(database, str):
            await engine.dispose()
