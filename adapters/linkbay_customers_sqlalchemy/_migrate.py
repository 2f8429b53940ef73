"""Applying the shipped Alembic migrations from Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers_sqlalchemy._citus import distribute_on_citus, has_citus
from linkbay_customers_sqlalchemy._engine import create_engine
from linkbay_customers_sqlalchemy._models import default_models

__all__ = (
    "PARTITION_MARK",
    "PHONE_REGION_VARIABLE",
    "VERSION_TABLE",
    "alembic_config",
    "head_revision",
    "schema_filter",
    "upgrade",
)

VERSION_TABLE = "linkbay_alembic_version"
"""Where the applied revision is recorded (apart from a host's own ``alembic_version``)."""

PHONE_REGION_VARIABLE = "LINKBAY_PHONE_REGION"
"""The environment variable naming the region revision 0007 reads stored phone numbers
without a country code in (unset: they stay as they are); the CLI's default phone
region too."""

PARTITION_MARK = "__part_"
"""What the name of a partition of a table holds, after the table's name (PostgreSQL's
partitions of the embeddings, see revision 0011)."""

_SCRIPTS = Path(__file__).parent / "migrations"


def schema_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """An Alembic ``include_object`` hook for one dialect.

    It leaves out what the mapped schema does not describe there: the library's
    version table, the partitions of a partitioned table, and indexes declared for
    another dialect only.
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and name == VERSION_TABLE:
            return False
        if type_ == "table" and reflected and compare_to is None and PARTITION_MARK in (name or ""):
            return False  # a partition: the models describe the partitioned table
        condition = getattr(obj, "_ddl_if", None)
        if type_ == "index" and condition is not None and condition.dialect is not None:
            return bool(condition.dialect == dialect)
        return True

    return include_object


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the shipped migrations lead to: what ``upgrade`` reaches."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("the package's migrations are missing")
    return head


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(
    database: str | AsyncEngine, revision: str = "head", *, citus: bool = False
) -> None:
    """Bring a database's schema up to ``revision`` (the latest by default).

    Args:
        database: A database URL, or an engine to use (it is left open).
        revision: The Alembic revision to reach.
        citus: On a PostgreSQL with Citus, then distribute every tenant table by
            ``tenant_id``, co-located (``citus_layout_statements``), in a
            transaction of its own; tables already distributed are left as they are.

    Raises:
        RuntimeError: ``citus`` on a database without the citus extension; nothing
            is migrated then.
        ValueError: ``citus`` on a database that is not PostgreSQL.
    """
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        if citus:
            if engine.dialect.name != "postgresql":
                raise ValueError("the Citus layout is for PostgreSQL databases")
            async with engine.connect() as connection:
                await has_citus(connection)
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade, revision)
            await connection.commit()
        if citus:
            async with engine.begin() as connection:
                await distribute_on_citus(connection, default_models().metadata)
    finally:
        if isinstance(database, str):
            await engine.dispose()
