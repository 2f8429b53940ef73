from __future__ import annotations

import re
from pathlib import Path

import pytest

from linkbay_customers_cli._database import (
    DEFAULT_DATABASE_FILE,
    default_database_url,
    describe_url,
    resolve_database_url,
)
from linkbay_customers_cli._errors import CommandError


def test_the_default_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite+aiosqlite:///{tmp_path / DEFAULT_DATABASE_FILE}"
    assert default_database_url() == expected
    assert resolve_database_url(None) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("memory://", "memory://"),
        ("postgresql://u:pw@db.example.com/app", "postgresql+asyncpg://u:pw@db.example.com/app"),
        ("postgres://u@localhost:5433/app", "postgresql+asyncpg://u@localhost:5433/app"),
        ("postgresql+asyncpg://u@h/app?ssl=require", "postgresql+asyncpg://u@h/app?ssl=require"),
    ],
)
def test_urls_get_the_async_drivers_the_library_uses(given: str, expected: str) -> None:
    assert resolve_database_url(given) == expected


def test_sqlite_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_database_url("sqlite:///here.db") == f"sqlite+aiosqlite:///{tmp_path}/here.db"
    assert (
        resolve_database_url(f"sqlite+aiosqlite:///{tmp_path}/x.db")
        == f"sqlite+aiosqlite:///{tmp_path}/x.db"
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'; registered: memory://"),
        ("postgresql+psycopg://u@h/db", "unsupported database driver 'postgresql+psycopg'"),
        ("customers.db", "is not a database URL"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite+aiosqlite:///:memory:", "in-memory SQLite"),
        ("sqlite+aiosqlite:////no/such/directory/x.db", "directory /no/such/directory"),
        ("postgresql://u:pw@h:port/db", "is not a valid database URL"),
    ],
)
def test_urls_that_cannot_work_are_refused_with_a_reason(given: str, message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)) as caught:
        resolve_database_url(given)
    assert caught.value.exit_code == 2
    assert "pw" not in caught.value.message


def test_a_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is a directory"):
        resolve_database_url(f"sqlite:///{tmp_path}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://app:s3cret@db:5432/x", "postgresql+asyncpg://app:***@db:5432/x"),
        ("postgresql+asyncpg://app@db/x", "postgresql+asyncpg://app@db/x"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        (
            "postgresql+asyncpg://app:p%40ss@db/x?ssl=require",
            "postgresql+asyncpg://app:***@db/x?ssl=require",
        ),
        ("memory://", "memory://"),
        ("customers.db", "customers.db"),
        ("postgresql://u:pw@h:port/db", "<unparseable URL>"),
    ],
)
def test_passwords_are_masked_when_a_url_is_shown(url: str, shown: str) -> None:
    assert describe_url(url) == shown
