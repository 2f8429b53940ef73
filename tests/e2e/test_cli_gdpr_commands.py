"""The ``export`` and ``purge`` commands, run through typer's CliRunner on SQLite."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from linkbay_customers import CustomerNotFound, CustomersContainer, bootstrap
from linkbay_customers.testing import FixedClock, new_tenant_id
from linkbay_customers_cli._app import app
from tests.api._support import ADDRESS, ORDER

T = TypeVar("T")

runner = CliRunner(env={"LINKBAY_DATABASE_URL": None, "LINKBAY_JWT_SECRET": None})
LONG_AGO = timedelta(days=400)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def on_container(
    url: str, use: Callable[[CustomersContainer], Awaitable[T]], *, ago: timedelta | None = None
) -> T:
    """Run ``use`` on a container over ``url``; its clock stands ``ago`` in the past if given."""

    async def run() -> T:
        clock = None if ago is None else FixedClock(datetime.now(UTC) - ago)
        container = bootstrap(url, clock=clock)
        try:
            return await use(container)
        finally:
            await container.storage().close()

    return asyncio.run(run())


def create_customers(
    url: str, tenant: str, emails: list[str], *, ago: timedelta | None = None
) -> list[int]:
    async def create(container: CustomersContainer) -> list[int]:
        service = container.customer_service()
        return [(await service.create_customer(tenant, {"email": e})).id for e in emails]

    return on_container(url, create, ago=ago)


def audit_actions(url: str, tenant: str, customer_id: int) -> list[tuple[str, str | None]]:
    async def actions(container: CustomersContainer) -> list[tuple[str, str | None]]:
        page = await container.gdpr_service().list_audit_events(tenant, customer_id=customer_id)
        return [(str(e.action), e.actor) for e in page.items]

    return on_container(url, actions)


@pytest.fixture
def customer(sqlite_url: str) -> tuple[str, int]:
    tenant = new_tenant_id()

    async def create(container: CustomersContainer) -> int:
        service = container.customer_service()
        created = await service.create_customer(
            tenant, {"email": "mario.rossi@example.com", "first_name": "Mario"}
        )
        await service.add_address(tenant, created.id, ADDRESS)
        await service.record_order(tenant, created.id, ORDER)
        await container.gdpr_service().update_consent(tenant, created.id, "marketing", True)
        return created.id

    return tenant, on_container(sqlite_url, create)


class TestExport:
    def test_json_goes_to_standard_output_and_is_audited(
        self, sqlite_url: str, customer: tuple[str, int]
    ) -> None:
        tenant, customer_id = customer

        code, out, err = cli(
            "export",
            str(customer_id),
            "--tenant",
            tenant,
            "--database-url",
            sqlite_url,
            "--actor",
            "dpo@example.com",
        )

        assert code == 0, out + err
        document = json.loads(out)
        assert document["customer"]["email"] == "mario.rossi@example.com"
        assert [a["city"] for a in document["addresses"]] == ["Milano"]
        assert [o["order_id"] for o in document["orders"]] == [ORDER["order_id"]]
        assert document["consent"]["marketing"]["consented"] is True
        assert ("data.exported", "dpo@example.com") in audit_actions(
            sqlite_url, tenant, customer_id
        )

    def test_json_is_written_to_a_file_only_its_owner_can_read(
        self, sqlite_url: str, customer: tuple[str, int], tmp_path: Path
    ) -> None:
        tenant, customer_id = customer
        target = tmp_path / "mario.json"

        code, out, err = cli(
            "export",
            str(customer_id),
            "-t",
            tenant,
            "-o",
            str(target),
            "--database-url",
            sqlite_url,
        )

        assert code == 0, out + err
        assert json.loads(target.read_text())["customer"]["first_name"] == "Mario"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert f"Exported customer {customer_id} of tenant {tenant}" in out
        assert "mario.rossi" not in out

    def test_csv_is_a_zip_of_one_file_per_section(
        self, sqlite_url: str, customer: tuple[str, int], tmp_path: Path
    ) -> None:
        tenant, customer_id = customer
        target = tmp_path / "mario.zip"

        code, out, err = cli(
            "export",
            str(customer_id),
            "-t",
            tenant,
            "--format",
            "csv",
            "--output",
            str(target),
            "--database-url",
            sqlite_url,
        )

        assert code == 0, out + err
        with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
            names = set(archive.namelist())
            customer_csv = archive.read("customer.csv").decode("utf-8")
        assert {"customer.csv", "addresses.csv", "orders.csv", "consent_history.csv"} <= names
        assert "mario.rossi@example.com" in customer_csv

    def test_a_reader_that_stops_early_ends_the_export_quietly_and_unrecorded(
        self, sqlite_url: str, customer: tuple[str, int]
    ) -> None:
        """``export ... | head``: the pipe closes before the document is written."""
        tenant, customer_id = customer
        command = [sys.executable, "-m", "linkbay_customers_cli", "export", str(customer_id)]
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first byte
        try:
            done = subprocess.run(
                [*command, "--tenant", tenant, "--database-url", sqlite_url],
                stdout=write,
                stderr=subprocess.PIPE,
                timeout=120,
                check=False,
            )
        finally:
            os.close(write)

        assert done.returncode == 1  # Click's status for a closed standard output
        assert done.stderr.decode() == ""
        assert ("data.exported", None) not in audit_actions(sqlite_url, tenant, customer_id)

    def test_csv_needs_an_output_file(self, sqlite_url: str, customer: tuple[str, int]) -> None:
        tenant, customer_id = customer

        code, out, err = cli(
            "export",
            str(customer_id),
            "-t",
            tenant,
            "--format",
            "csv",
            "--database-url",
            sqlite_url,
        )

        assert code == 2
        assert out == ""
        assert err.startswith("Error: --format csv writes a ZIP archive")
        assert ("data.exported", None) not in audit_actions(sqlite_url, tenant, customer_id)

    def test_a_missing_output_directory_fails_before_exporting(
        self, sqlite_url: str, customer: tuple[str, int], tmp_path: Path
    ) -> None:
        tenant, customer_id = customer

        code, _, err = cli(
            "export",
            str(customer_id),
            "-t",
            tenant,
            "-o",
            str(tmp_path / "nowhere" / "x.json"),
            "--database-url",
            sqlite_url,
        )

        assert code == 2
        assert err.startswith(f"Error: the directory {tmp_path / 'nowhere'} does not exist")
        assert ("data.exported", None) not in audit_actions(sqlite_url, tenant, customer_id)

    def test_an_unknown_or_foreign_customer_is_one_line(
        self, sqlite_url: str, customer: tuple[str, int]
    ) -> None:
        _, customer_id = customer

        code, out, err = cli(
            "export", str(customer_id), "-t", new_tenant_id(), "--database-url", sqlite_url
        )

        assert code == 1
        assert out == ""
        assert err.strip() == f"Error: customer {customer_id} not found"

    @pytest.mark.parametrize("argument", ["0", "-3", "abc", str(2**63)])
    def test_an_invalid_customer_id_is_a_usage_error(self, argument: str) -> None:
        code, _, err = cli("export", "-t", "t1", "--database-url", "memory://", "--", argument)

        assert code == 2
        assert "CUSTOMER_ID" in err

    def test_the_tenant_is_required(self) -> None:
        code, _, err = cli("export", "1", "--database-url", "memory://")

        assert code == 2
        assert "--tenant" in err


class TestPurge:
    def test_a_dry_run_lists_the_inactive_customers_and_changes_nothing(
        self, sqlite_url: str
    ) -> None:
        tenant, other = new_tenant_id(), new_tenant_id()
        old = create_customers(sqlite_url, tenant, ["a@example.com", "b@example.com"], ago=LONG_AGO)
        create_customers(sqlite_url, tenant, ["recent@example.com"])
        create_customers(sqlite_url, other, ["elsewhere@example.com"], ago=LONG_AGO)

        code, out, err = cli(
            "purge", "-t", tenant, "--inactive-days", "365", "--database-url", sqlite_url
        )

        assert code == 0, out + err
        assert "Would be anonymized: 2" in out
        for customer_id in old:
            assert re.search(rf"│\s*{customer_id}\s*│", out), out
        assert "Dry run: 2 customers of tenant" in out
        assert "--apply" in out

        async def emails(container: CustomersContainer) -> list[str | None]:
            service = container.customer_service()
            return [(await service.get_customer(tenant, c)).email for c in old]

        assert on_container(sqlite_url, emails) == ["a@example.com", "b@example.com"]

    def test_apply_anonymizes_the_inactive_customers_of_the_tenant_only(
        self, sqlite_url: str
    ) -> None:
        tenant, other = new_tenant_id(), new_tenant_id()
        old = create_customers(sqlite_url, tenant, ["a@example.com", "b@example.com"], ago=LONG_AGO)
        [recent] = create_customers(sqlite_url, tenant, ["recent@example.com"])
        [elsewhere] = create_customers(sqlite_url, other, ["x@example.com"], ago=LONG_AGO)

        code, out, err = cli(
            "purge",
            "-t",
            tenant,
            "--inactive-days",
            "365",
            "--apply",
            "--actor",
            "retention-job",
            "--chunk-size",
            "1",
            "--database-url",
            sqlite_url,
        )

        assert code == 0, out + err
        assert f"Anonymized 2 customers of tenant {tenant}" in out

        async def check(container: CustomersContainer) -> None:
            service, gdpr = container.customer_service(), container.gdpr_service()
            for customer_id in old:
                with pytest.raises(CustomerNotFound):
                    await service.get_customer(tenant, customer_id)
                export = await gdpr.export_customer_data(tenant, customer_id)
                assert export.customer.email is None
                assert export.customer.is_anonymized is True
            assert (await service.get_customer(tenant, recent)).email == "recent@example.com"
            assert (await service.get_customer(other, elsewhere)).email == "x@example.com"

        on_container(sqlite_url, check)
        assert ("data.anonymized", "retention-job") in audit_actions(sqlite_url, tenant, old[0])

        code, out, _ = cli(
            "purge", "-t", tenant, "--inactive-days", "365", "--apply", "--database-url", sqlite_url
        )
        assert code == 0
        assert "nothing to anonymize" in out

    def test_a_long_list_is_cut_short(self, sqlite_url: str) -> None:
        tenant = new_tenant_id()
        emails = [f"c{n}@example.com" for n in range(53)]
        create_customers(sqlite_url, tenant, emails, ago=LONG_AGO)

        code, out, _ = cli(
            "purge", "-t", tenant, "--inactive-days", "30", "--database-url", sqlite_url
        )

        assert code == 0
        assert "Would be anonymized: 53" in out
        assert "... and 3 more" in out

    def test_nobody_inactive_means_nothing_to_do(self, sqlite_url: str) -> None:
        tenant = new_tenant_id()
        create_customers(sqlite_url, tenant, ["recent@example.com"])

        code, out, _ = cli(
            "purge", "-t", tenant, "--inactive-days", "30", "--database-url", sqlite_url
        )

        assert code == 0
        assert f"No customer of tenant {tenant} has been inactive for 30 days" in out

    @pytest.mark.parametrize(
        "args",
        [
            ("--inactive-days", "0"),
            ("--inactive-days", "36501"),
            ("--inactive-days", "soon"),
            (),
        ],
    )
    def test_the_period_is_required_and_bounded(self, args: tuple[str, ...]) -> None:
        code, _, err = cli("purge", "-t", "t1", "--database-url", "memory://", *args)

        assert code == 2
        assert "--inactive-days" in err

    def test_a_database_without_the_schema_says_how_to_fix_it(
        self, empty_database_url: str
    ) -> None:
        code, out, err = cli(
            "purge", "-t", "t1", "--inactive-days", "30", "--database-url", empty_database_url
        )

        assert code == 1
        assert "run linkbay-customers migrate" in err
        assert "Traceback" not in out + err
