"""The CLI tells the truth: exit codes, checks before writes, no stray files, readable help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkbay_customers_cli._app import app

ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner(
    env={"LINKBAY_DATABASE_URL": None, "LINKBAY_JWT_SECRET": None, "LINKBAY_PHONE_REGION": None}
)

NINE_ROWS = "email\n" + "".join(
    f"{'ok' if i % 3 == 0 else 'bad'}{i}{'@example.com' if i % 3 == 0 else ''}\n" for i in range(9)
)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _csv(tmp_path: Path, text: str = NINE_ROWS) -> Path:
    source = tmp_path / "customers.csv"
    source.write_text(text)
    return source


def _import(source: Path, database: Path, *options: str) -> tuple[int, str, str]:
    url = f"sqlite+aiosqlite:///{database}"
    return cli("import", str(source), "-t", "shop", "--database-url", url, *options)


class TestImportExitCode:
    def test_rejected_rows_make_the_import_exit_1_unless_allowed(self, tmp_path: Path) -> None:
        source = _csv(tmp_path)
        url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"

        code, out, err = cli("import", str(source), "-t", "shop", "--database-url", url)
        assert code == 1, out + err
        assert "3 created, 0 updated, 0 unchanged, 6 rejected (9 rows)" in out

        code, out, err = cli(
            "import", str(source), "-t", "shop", "--database-url", url, "--allow-rejects"
        )
        assert code == 0, out + err
        assert "0 created, 0 updated, 3 unchanged, 6 rejected (9 rows)" in out

    def test_a_reject_report_in_a_missing_directory_is_refused_before_anything_is_written(
        self, tmp_path: Path
    ) -> None:
        source = _csv(tmp_path)
        database = tmp_path / "shop.db"
        code, out, err = _import(source, database, "--rejects", str(tmp_path / "nonexistent/r.csv"))
        assert code == 2, out + err
        assert f"--rejects: the directory {tmp_path / 'nonexistent'} does not exist" in err
        assert not database.exists()  # not migrated, nothing imported
        assert "Importing" not in out + err

    def test_an_invalid_tenant_is_refused_before_the_database_is_touched(
        self, tmp_path: Path
    ) -> None:
        source = _csv(tmp_path)
        database = tmp_path / "shop.db"
        code, out, err = cli(
            "import", str(source), "-t", "", "--database-url", f"sqlite+aiosqlite:///{database}"
        )
        assert code == 2, out + err
        assert err.startswith("Error: --tenant ''")
        assert "Importing" not in out + err
        assert not database.exists()


@pytest.fixture
def fresh_modules() -> Iterator[None]:
    """Forget the modules a test imported from its working directory."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name in ("shop_models", "broken", "shipped_models"):
            del sys.modules[name]


@pytest.mark.usefixtures("fresh_modules")
class TestHostCode:
    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--models", "shop_models", "is not module:attribute"),
            ("--models", "no_such_module:models", "cannot import no_such_module"),
            ("--models", "shop_models:nothing", "shop_models has no attribute nothing"),
            ("--models", "shop_models:ShopCustomerCreate", "not a ModelSet"),
            ("--schema", "shop_models:models", "is not a subclass of"),
            ("--models", "broken:models", "importing broken failed: RuntimeError: boom"),
        ],
    )
    def test_a_bad_import_string_is_one_line_naming_the_option(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: str, message: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delitem(sys.modules, "shop_models", raising=False)
        monkeypatch.delitem(sys.modules, "broken", raising=False)
        monkeypatch.setattr(sys, "path", list(sys.path))
        (tmp_path / "shop_models.py").write_text(
            "from linkbay_customers.schemas import CustomerCreate\n"
            "from linkbay_customers_sqlalchemy import build_models\n"
            "from sqlalchemy.orm import DeclarativeBase\n\n\n"
            "class Base(DeclarativeBase):\n    pass\n\n\n"
            "models = build_models(Base)\n\n\n"
            "class ShopCustomerCreate(CustomerCreate):\n    pass\n"
        )
        (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
        source = _csv(tmp_path, "email\na@example.com\n")
        database = tmp_path / "shop.db"

        code, out, err = _import(source, database, option, value)

        assert code == 2, out + err
        assert err.startswith(f"Error: {option} '{value}'")
        assert message in err
        assert "Traceback" not in out + err
        assert not database.exists()

    def test_models_need_a_sql_database(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "path", list(sys.path))
        monkeypatch.delitem(sys.modules, "shipped_models", raising=False)
        (tmp_path / "shipped_models.py").write_text(
            "from linkbay_customers_sqlalchemy import default_models\n\nmodels = default_models()\n"
        )
        source = _csv(tmp_path, "email\na@example.com\n")
        code, _, err = cli(
            "import",
            str(source),
            "-t",
            "shop",
            "--database-url",
            "memory://",
            "--models",
            "shipped_models:models",
        )
        assert code == 2
        assert "--models names SQL tables" in err


class TestReadOnlyCommands:
    @pytest.mark.parametrize(
        "command",
        [
            ["export", "1", "-t", "shop"],
            ["audit", "verify", "-t", "shop"],
            ["purge", "-t", "shop", "--inactive-days", "30"],
            ["score", "-t", "shop"],
        ],
    )
    def test_a_missing_sqlite_file_is_an_error_and_is_not_created(
        self, tmp_path: Path, command: list[str]
    ) -> None:
        database = tmp_path / "nothere.db"
        url = f"sqlite+aiosqlite:///{database}"
        code, out, err = cli(*command, "--database-url", url)
        assert code == 1, out + err
        assert f"there is no database at {database}" in err
        assert f"run linkbay-customers migrate --database-url '{url}'" in err
        assert not database.exists()
        assert list(tmp_path.iterdir()) == []


def test_a_database_never_migrated_is_one_line_naming_the_command(
    empty_database_url: str,
) -> None:
    if empty_database_url.startswith("sqlite"):
        # An existing, empty SQLite file (a database nobody migrated).
        Path(empty_database_url.removeprefix("sqlite+aiosqlite:///")).touch()
    code, out, err = cli("export", "1", "-t", "shop", "--database-url", empty_database_url)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "has no table 'customers': its schema was never migrated; run linkbay-customers" in (
        " ".join(lines)
    )
    assert "migrate --database-url '" in err


def test_purge_says_one_day_not_one_days(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    assert cli("migrate", "--database-url", url)[0] == 0
    code, out, _ = cli("purge", "-t", "shop", "--inactive-days", "1", "--database-url", url)
    assert code == 0
    assert "has been inactive for 1 day: nothing to anonymize." in out
    code, out, _ = cli("purge", "-t", "shop", "--inactive-days", "2", "--database-url", url)
    assert "has been inactive for 2 days: nothing to anonymize." in out


COMMANDS = [
    [],
    ["serve"],
    ["token"],
    ["demo"],
    ["migrate"],
    ["import"],
    ["score"],
    ["export"],
    ["purge"],
    ["duplicates"],
    ["duplicates", "distinct"],
    ["duplicates", "undo"],
    ["audit"],
    ["audit", "verify"],
    ["audit", "key"],
    ["postgres"],
    ["postgres", "start"],
    ["postgres", "stop"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_fits_80_columns_and_cuts_nothing(command: list[str]) -> None:
    environment = {**os.environ, "COLUMNS": "80", "TERMINAL_WIDTH": "80"}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "adapters")])
    run = subprocess.run(
        [sys.executable, "-m", "linkbay_customers_cli", *command, "--help"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    too_long = [line for line in run.stdout.splitlines() if len(line) > 80]
    assert too_long == []
    assert "…" not in run.stdout
    # click cuts a command's summary in a listing with "...".
    assert [line for line in run.stdout.splitlines() if re.search(r"[\w,]\.\.\.$", line)] == []
    if command == ["import"]:
        text = " ".join(run.stdout.split())
        assert "postgresql+asyncpg://USER:PW@HOST/DB or memory://" in text
        assert "[env var: LINKBAY_DATABASE_URL; default: (./linkbay_customers.db)]" in text
