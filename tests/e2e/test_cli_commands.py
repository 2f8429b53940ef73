"""The ``migrate``, ``import`` and ``demo`` commands, run through typer's CliRunner."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from linkbay_customers import (
    CustomerNotFound,
    CustomerService,
    HeuristicIntelligence,
    SystemClock,
    bootstrap,
    register_storage,
)
from linkbay_customers.registry import unregister_storage
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_cli._app import app
from linkbay_customers_cli._demo import DEFAULT_DEMO_TENANT, segment_counts
from linkbay_customers_memory import InMemoryStorage
from linkbay_customers_sqlalchemy import head_revision

T = TypeVar("T")

# The commands read these; the tests say what they mean instead.
runner = CliRunner(
    env={"LINKBAY_DATABASE_URL": None, "LINKBAY_JWT_SECRET": None, "LINKBAY_PHONE_REGION": None}
)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def on_service(url: str, use: Callable[[CustomerService], Awaitable[T]]) -> T:
    async def run() -> T:
        container = bootstrap(url)
        try:
            return await use(container.customer_service())
        finally:
            await container.storage().close()

    return asyncio.run(run())


CSV_TEXT = (
    "email,first_name,last_name,phone,tags,preferences,birthday\n"
    "mario.rossi@example.com,Mario,Rossi,+39 333 1234567,vip;early_adopter,"
    '"{""language"": ""it""}",1990-05-15\n'
    "giulia.bianchi@example.com,Giulia,Bianchi,,newsletter,,\n"
    "not-an-email,Secret,Person,,,,\n"
    'luca.verdi@example.com,Luca,Verdi,,"b2b, wholesale",,\n'
    "mario.rossi@example.com,,Rossi-Ferri,,,,\n"
    "anna.neri@example.com,Anna,Neri,,,{private: json},\n"
)

JSONL_TEXT = (
    '{"email": "sofia.conti@example.com", "first_name": "Sofia", "tags": ["tea"],'
    ' "preferences": {"language": "en"}}\n'
    "\n"
    '{"email": "secret@", "first_name": "Hidden"}\n'
    '{"email": "broken@example.com", "first_name": \n'
    '{"email": "SOFIA.CONTI@example.com", "last_name": "Conti"}\n'
    '["an", "array"]\n'
    '{"email": "marco@example.com", "favourite_colour": "blue"}\n'
    '{"email": "marco@example.com"}\n'
)


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


class TestMigrate:
    def test_an_empty_database_is_migrated_once(self, empty_database_url: str) -> None:
        code, out, _ = cli("migrate", "--database-url", empty_database_url)
        assert code == 0, out
        assert f"from an empty schema to revision {head_revision()}" in out
        code, out, _ = cli("migrate", "--database-url", empty_database_url)
        assert code == 0
        assert f"is up to date at revision {head_revision()}" in out

        tenant = new_tenant_id()
        created = on_service(
            empty_database_url,
            lambda service: service.create_customer(tenant, {"email": "a@example.com"}),
        )
        assert created.email == "a@example.com"

    def test_the_default_database_is_a_file_in_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        code, out, _ = cli("migrate")
        assert code == 0, out
        assert (tmp_path / "linkbay_customers.db").is_file()
        assert str(tmp_path / "linkbay_customers.db") in out

    def test_memory_has_nothing_to_migrate(self) -> None:
        code, out, _ = cli("migrate", "--database-url", "memory://")
        assert code == 0
        assert "nothing to migrate" in out

    def test_a_password_never_shows_in_an_error(self) -> None:
        code, out, err = cli(
            "migrate", "--database-url", "postgresql://app:s3cret@127.0.0.1:1/customers"
        )
        assert code == 1
        assert err.startswith("Error: cannot use postgresql+asyncpg://app:***@127.0.0.1:1/")
        assert "s3cret" not in out + err
        assert "Traceback" not in out + err

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql://u@h/db", "Error: unsupported database URL scheme 'mysql'"),
            ("customers.db", "Error: 'customers.db' is not a database URL"),
            ("sqlite+aiosqlite:////no/such/dir/x.db", "Error: the directory /no/such/dir"),
        ],
    )
    def test_a_bad_url_is_one_line_without_a_traceback(self, url: str, message: str) -> None:
        code, out, err = cli("migrate", "--database-url", url)
        assert code == 2
        assert out == ""
        assert err.startswith(message)
        assert len(err.strip().splitlines()) == 1

    def test_a_database_that_does_not_exist_on_the_server(self, postgres_server: str) -> None:
        url = (
            make_url(postgres_server)
            .set(database="no_such_database_here")
            .render_as_string(hide_password=False)
        )
        code, _, err = cli("migrate", "--database-url", url)
        assert code == 1
        assert "no_such_database_here" in err
        assert len(err.strip().splitlines()) == 1


class TestImport:
    @pytest.mark.parametrize(
        ("region", "stored", "rejected"), [("IT", "+393331234567", []), (None, None, ["phone"])]
    )
    def test_national_numbers_are_read_in_the_region_the_environment_names(
        self,
        empty_database_url: str,
        tmp_path: Path,
        region: str | None,
        stored: str | None,
        rejected: list[str],
    ) -> None:
        source = tmp_path / "customers.csv"
        source.write_text("email,phone\nmario@example.com,333 123 4567\n")
        tenant = new_tenant_id()
        args = ["import", str(source), "--tenant", tenant, "--database-url", empty_database_url]

        result = runner.invoke(app, args, env={"LINKBAY_PHONE_REGION": region})

        assert result.exit_code == (1 if rejected else 0), result.output
        report = tmp_path / "customers.csv.rejects.csv"
        assert ([r["field"] for r in read_report(report)] if report.exists() else []) == rejected

        async def check(service: CustomerService) -> str | None:
            found = await service.search_customers(tenant, "mario@example.com")
            return found[0].phone if found else None

        assert on_service(empty_database_url, check) == stored

    def test_a_csv_file_is_imported_and_its_rejects_reported(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "customers.csv"
        source.write_text(CSV_TEXT)
        tenant = new_tenant_id()

        code, out, err = cli(
            "import", str(source), "--tenant", tenant, "--database-url", empty_database_url
        )

        assert code == 1, out + err
        assert "3 created, 1 updated, 0 unchanged, 2 rejected (6 rows)" in out
        report = tmp_path / "customers.csv.rejects.csv"
        assert str(report) in out
        rows = read_report(report)
        assert [(r["row"], r["line"], r["field"]) for r in rows] == [
            ("3", "4", "email"),
            ("6", "7", "preferences"),
        ]
        assert rows[0]["reason"].startswith("email: ")
        assert rows[1]["reason"].startswith("preferences: not valid JSON")
        for secret in ("not-an-email", "Secret", "Person", "anna", "Neri", "private"):
            assert secret not in report.read_text()

        async def check(service: CustomerService) -> None:
            mario = await service.get_customer_by_email(tenant, "mario.rossi@example.com")
            assert (mario.first_name, mario.last_name) == ("Mario", "Rossi-Ferri")
            assert mario.phone == "+393331234567"
            assert mario.tags == ["vip", "early_adopter"]
            assert mario.preferences == {"language": "it"}
            assert mario.birthday == date(1990, 5, 15)
            giulia = await service.get_customer_by_email(tenant, "giulia.bianchi@example.com")
            assert (giulia.phone, giulia.birthday, giulia.tags) == (None, None, ["newsletter"])
            luca = await service.get_customer_by_email(tenant, "luca.verdi@example.com")
            assert luca.tags == ["b2b", "wholesale"]
            with pytest.raises(CustomerNotFound):
                await service.get_customer_by_email(tenant, "anna.neri@example.com")
            assert (await service.list_customers(tenant)).total == 3

        on_service(empty_database_url, check)

    def test_a_jsonl_file_is_imported_into_its_tenant_only(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "customers.jsonl"
        source.write_text(JSONL_TEXT)
        rejects = tmp_path / "out" / "rejected.csv"
        rejects.parent.mkdir()
        tenant, other = new_tenant_id(), new_tenant_id()

        code, out, err = cli(
            "import",
            str(source),
            "-t",
            tenant,
            "--database-url",
            empty_database_url,
            "--rejects",
            str(rejects),
            "--actor",
            "ops@example.com",
            "--allow-rejects",
        )

        assert code == 0, out + err
        assert "2 created, 1 updated, 0 unchanged, 4 rejected (7 rows)" in out
        rows = read_report(rejects)
        assert [(r["row"], r["line"], r["field"]) for r in rows] == [
            ("2", "3", "email"),
            ("3", "4", ""),
            ("5", "6", ""),
            ("6", "7", "favourite_colour"),
        ]
        assert rows[1]["reason"].startswith("not valid JSON")
        assert rows[2]["reason"] == "must be a JSON object"
        assert "secret" not in rejects.read_text().lower()
        assert not (tmp_path / "customers.jsonl.rejects.csv").exists()

        async def check(service: CustomerService) -> None:
            sofia = await service.get_customer_by_email(tenant, "sofia.conti@example.com")
            assert (sofia.first_name, sofia.last_name, sofia.tags) == ("Sofia", "Conti", ["tea"])
            assert sofia.preferences == {"language": "en"}
            emails = {c.email for c in (await service.list_customers(tenant)).items}
            assert emails == {"sofia.conti@example.com", "marco@example.com"}
            assert (await service.list_customers(other)).total == 0

        on_service(empty_database_url, check)

    def test_no_report_is_written_when_every_row_is_taken(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "good.csv"
        source.write_text("email,first_name\na@example.com,Ann\nb@example.com,Ben\n")
        tenant = new_tenant_id()
        code, out, _ = cli("import", str(source), "-t", tenant, "--database-url", sqlite_url)
        assert code == 0
        assert "2 created, 0 updated, 0 unchanged, 0 rejected (2 rows)" in out
        assert list(tmp_path.iterdir()) == [source]

        code, out, _ = cli("import", str(source), "-t", tenant, "--database-url", sqlite_url)
        assert "0 created, 0 updated, 2 unchanged, 0 rejected (2 rows)" in out

    def test_the_format_option_overrides_the_extension(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "export.txt"
        source.write_text('{"email": "a@example.com"}\n')
        tenant = new_tenant_id()
        code, out, _ = cli(
            "import", str(source), "-t", tenant, "--format", "jsonl", "--database-url", sqlite_url
        )
        assert code == 0
        assert "1 created" in out

    def test_memory_is_a_dry_run(self, tmp_path: Path) -> None:
        source = tmp_path / "c.csv"
        source.write_text("email\na@example.com\nbad\n")
        code, out, _ = cli("import", str(source), "-t", "t1", "--database-url", "memory://")
        assert code == 1
        assert "1 created, 0 updated, 0 unchanged, 1 rejected (2 rows)" in out
        assert "dry run" in out

    @pytest.mark.parametrize(
        ("name", "content", "code", "message"),
        [
            ("missing.csv", None, 1, "cannot read {path}: no such file"),
            (
                "latin1.csv",
                "email,last_name\na@example.com,Müller\n".encode("latin-1"),
                1,
                "not UTF-8",
            ),
            ("columns.csv", b"email,id\n", 2, "unknown column(s) id"),
            ("sheet.xlsx", b"PK", 2, "cannot tell the format"),
        ],
    )
    def test_a_file_that_cannot_be_read_fails_before_anything_is_imported(
        self,
        sqlite_url: str,
        tmp_path: Path,
        name: str,
        content: bytes | None,
        code: int,
        message: str,
    ) -> None:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        tenant = new_tenant_id()
        exit_code, out, err = cli("import", str(path), "-t", tenant, "--database-url", sqlite_url)
        assert exit_code == code
        assert err.startswith("Error: ")
        assert message.format(path=path) in err
        assert "Traceback" not in out + err
        assert on_service(sqlite_url, lambda service: service.list_customers(tenant)).total == 0

    def test_without_migrations_a_missing_schema_says_how_to_fix_it(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "c.csv"
        source.write_text("email\na@example.com\n")
        code, out, err = cli(
            "import", str(source), "-t", "t1", "--database-url", empty_database_url, "--no-migrate"
        )
        assert code == 1
        assert err.startswith("Error: ")
        assert "run linkbay-customers migrate" in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in out + err

    def test_the_tenant_is_required(self, tmp_path: Path) -> None:
        source = tmp_path / "c.csv"
        source.write_text("email\na@example.com\n")
        code, _, err = cli("import", str(source))
        assert code == 2
        assert "--tenant" in err

    def test_an_invalid_tenant_is_one_line(self, tmp_path: Path) -> None:
        source = tmp_path / "c.csv"
        source.write_text("email\na@example.com\n")
        code, out, err = cli(
            "import", str(source), "-t", "has space", "--database-url", "memory://"
        )
        assert code == 2
        assert err.startswith("Error: --tenant 'has space': tenant_id: must be")
        assert "Importing" not in out + err  # no progress bar before the error


class TestDemo:
    def test_a_tenant_is_filled_with_customers_in_several_segments(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        code, out, err = cli("demo", "--customers", "80", "--seed", "5")
        assert code == 0, out + err
        url = f"sqlite+aiosqlite:///{tmp_path / 'linkbay_customers.db'}"
        assert "customers" in out
        assert "linkbay-customers serve" in out
        assert "X-Tenant-ID: demo" in out

        async def check(service: CustomerService) -> None:
            counts = await segment_counts(service, "demo")
            assert sum(counts.values()) == 80
            assert sum(1 for count in counts.values() if count) >= 5, counts
            page = await service.list_customers("demo", {"sort": "-total_spent"}, page_size=100)
            with_orders = [c for c in page.items if c.total_orders]
            assert len(with_orders) >= 60
            orders = await service.list_orders("demo", with_orders[0].id, page_size=100)
            assert orders.total == with_orders[0].total_orders
            assert all(order.items for order in orders.items)
            addresses = notes = 0
            for customer in page.items:
                addresses += (await service.list_addresses("demo", customer.id)).total
                notes += (await service.list_notes("demo", customer.id)).total
            assert addresses >= 60
            assert notes >= 10
            # Never scored, yet similar customers answer: the orders stored the embeddings.
            assert all(c.scored_at is None for c in page.items)
            assert all(c.embedding is not None for c in with_orders)

        on_service(url, check)

    def test_a_tenant_with_data_is_not_filled_again(self, sqlite_url: str) -> None:
        tenant = new_tenant_id()
        args = ("demo", "--tenant", tenant, "--customers", "5", "--database-url", sqlite_url)
        assert cli(*args)[0] == 0
        code, _, err = cli(*args)
        assert code == 1
        assert err.startswith(f"Error: tenant '{tenant}' already has customers")
        total = on_service(sqlite_url, lambda service: service.list_customers(tenant)).total
        assert total == 5

    def test_the_same_seed_gives_the_same_data(self, sqlite_url: str) -> None:
        first, second = new_tenant_id(), new_tenant_id()
        for tenant in (first, second):
            code, _, _ = cli(
                "demo",
                "-t",
                tenant,
                "--customers",
                "15",
                "--seed",
                "9",
                "--database-url",
                sqlite_url,
            )
            assert code == 0

        async def profiles(service: CustomerService) -> list[list[tuple[str | None, int, Decimal]]]:
            found = []
            for tenant in (first, second):
                page = await service.list_customers(tenant, {"sort": "created_at"}, page_size=100)
                found.append([(c.email, c.total_orders, c.total_spent) for c in page.items])
            return found

        a, b = on_service(sqlite_url, profiles)
        assert a == b


class _KeptStorage(InMemoryStorage):
    """Survives the command's close, so the test can look at what it stored."""

    async def close(self) -> None:
        pass


@pytest.fixture
def scratch_storage() -> Iterator[InMemoryStorage]:
    storage = _KeptStorage()
    register_storage("scratchdb", lambda url, **options: storage)
    yield storage
    unregister_storage("scratchdb")


def test_the_commands_work_on_a_storage_registered_by_a_host(
    scratch_storage: InMemoryStorage,
) -> None:
    code, out, err = cli("migrate", "--database-url", "scratchdb://x")
    assert code == 0, err
    assert "Nothing to migrate" in out
    code, out, err = cli("demo", "--database-url", "scratchdb://x", "--customers", "3")
    assert code == 0, err

    async def count() -> int:
        service = CustomerService(
            scratch_storage.unit_of_work, SystemClock(), HeuristicIntelligence()
        )
        return len((await service.list_customers(DEFAULT_DEMO_TENANT)).items)

    assert asyncio.run(count()) == 3


def test_an_unregistered_scheme_is_refused_with_the_registered_ones() -> None:
    code, _, err = cli("migrate", "--database-url", "scratchdb://x")
    assert code == 2
    assert "unsupported database URL scheme 'scratchdb'" in err
    assert "memory://..., postgresql://..., sqlite://..." in err
