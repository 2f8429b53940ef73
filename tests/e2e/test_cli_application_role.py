"""The CLI connected as the application role of docs/storage.md: a role that does not
own the tables, granted by ``grant_application_role``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from linkbay_customers_cli._app import app
from linkbay_customers_sqlalchemy import create_engine, grant_application_role, head_revision
from tests._databases import new_postgres_database
from tests.e2e.test_serve import serving
from tests.integration.conftest import as_role, new_role

runner = CliRunner(
    env={
        "LINKBAY_DATABASE_URL": None,
        "LINKBAY_OWNER_DATABASE_URL": None,
        "LINKBAY_JWT_SECRET": None,
    }
)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def _role_on(owner_url: str, *, grant: bool) -> str:
    admin = create_engine(owner_url)
    try:
        role = await new_role(admin)
        if grant:
            await grant_application_role(admin, role)
        else:
            database = admin.url.database
            async with admin.begin() as connection:
                await connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
    finally:
        await admin.dispose()
    return role


@pytest.fixture
def owner_url(postgres_server: str) -> str:
    """A new database, migrated by its owner."""
    return asyncio.run(new_postgres_database(postgres_server))


@pytest.fixture
def app_url(owner_url: str) -> str:
    """The same database as a granted application role."""
    return as_role(owner_url, asyncio.run(_role_on(owner_url, grant=True)))


def test_demo_and_import_run_as_the_application_role_on_a_current_schema(
    app_url: str, tmp_path: Path
) -> None:
    people = tmp_path / "people.jsonl"
    people.write_text('{"email": "ada@example.com"}\n{"email": "alan@example.com"}\n')

    demo = cli("demo", "--database-url", app_url, "--tenant", "shop", "--customers", "5")
    imported = cli("import", str(people), "--database-url", app_url, "--tenant", "shop")

    assert demo[0] == 0, demo[2]
    assert f"Database schema at revision {head_revision()}, the latest: no migration" in demo[1]
    assert imported[0] == 0, imported[2]
    assert "2 created" in imported[1]


def test_serve_runs_as_the_application_role_on_a_current_schema(
    app_url: str, tmp_path: Path
) -> None:
    with serving(tmp_path, "--database-url", app_url, "--demo", "--demo-customers", "5") as server:
        page = httpx.get(f"{server.url}/customers", headers={"X-Tenant-ID": "demo"}, timeout=10)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 5
        assert server.stop() == 0
    assert "no migration to run" in server.output()


def test_a_schema_to_build_needs_the_owner_url_and_then_grants_the_role(
    postgres_server: str,
) -> None:
    owner_url = asyncio.run(new_postgres_database(postgres_server, migrate=False))
    app_url = as_role(owner_url, asyncio.run(_role_on(owner_url, grant=False)))

    refused = cli("demo", "--database-url", app_url, "--customers", "3")
    built = runner.invoke(
        app,
        ["demo", "--database-url", app_url, "--customers", "3"],
        env={"LINKBAY_OWNER_DATABASE_URL": owner_url},
    )

    assert refused[0] == 1
    assert "is at no schema" in refused[2]
    assert "--owner-database-url" in refused[2]
    assert "Traceback" not in refused[2]
    assert built.exit_code == 0, built.stderr
    assert f"to revision {head_revision()}" in built.stdout


async def test_granting_a_role_that_does_not_exist_says_so(owner_url: str) -> None:
    with pytest.raises(ValueError, match="the role 'nobody_here' does not exist: create it"):
        await grant_application_role(owner_url, "nobody_here")
