"""The ``duplicates`` command, through typer's CliRunner on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import re
import stat
from pathlib import Path

from linkbay_customers import CustomersContainer
from linkbay_customers.testing import new_tenant_id
from tests.e2e._shell import cli_environment, run_shell
from tests.e2e.test_cli_score import cli, on_container


def _fill(url: str, tenant: str) -> list[int]:
    async def create(container: CustomersContainer) -> list[int]:
        service = container.customer_service()
        people = [
            {
                "email": "ann.lee@gmail.com",
                "first_name": "Ann",
                "last_name": "Lee",
                "phone": "+393331234567",
            },
            {
                "email": "annlee+shop@googlemail.com",
                "first_name": "Ann",
                "last_name": "Lee",
                "phone": "+393331234567",
            },
            {"email": "bob@example.com", "first_name": "Bob", "last_name": "Ray"},
        ]
        return [(await service.create_customer(tenant, p)).id for p in people]

    return on_container(url, create)


def test_the_pairs_are_written_as_csv_with_a_progress_bar(
    database_url: str, tmp_path: Path
) -> None:
    tenant = new_tenant_id("dup")
    ann, twin, _ = _fill(database_url, tenant)
    output = tmp_path / "pairs.csv"
    code, out, err = cli(
        "duplicates", "--tenant", tenant, "--database-url", database_url, "--output", str(output)
    )
    assert code == 0, err
    assert "Comparing" in out
    assert f"1 pair of tenant {tenant} at probability 0.8 or more written to" in out
    with output.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][:3] == ["customer_id", "other_id", "match_probability"]
    assert rows[0][3:] == ["keep_customer_id", "keep_reason", "agreeing", "disagreeing"]
    (row,) = rows[1:]
    assert row[:2] == [str(ann), str(twin)]
    assert float(row[2]) > 0.9
    assert row[3:5] == [str(ann), "older customer"] or row[4] == "lower id"
    assert "email: same mailbox" in row[5].split(";")
    assert stat.S_IMODE(output.stat().st_mode) == 0o600


def test_without_output_the_pairs_are_a_table(database_url: str) -> None:
    tenant = new_tenant_id("dup")
    _fill(database_url, tenant)
    code, out, err = cli("duplicates", "--tenant", tenant, "--database-url", database_url)
    assert code == 0, err
    assert "Likely duplicates of" in out
    assert "1 pair at probability 0.8 or more." in out
    none = cli(
        "duplicates",
        "--tenant",
        tenant,
        "--database-url",
        database_url,
        "--min-probability",
        "1",
    )
    assert "0 pairs at probability 1.0 or more." in none[1]


def test_a_probability_out_of_range_is_refused(database_url: str) -> None:
    code, _, err = cli(
        "duplicates", "--tenant", "t", "--database-url", database_url, "--min-probability", "2"
    )
    assert code == 2
    assert "--min-probability" in err


def test_a_pair_marked_distinct_is_not_listed_until_undone(database_url: str) -> None:
    tenant = new_tenant_id("dup")
    ann, twin, _ = _fill(database_url, tenant)
    url = ("--database-url", database_url)
    code, out, err = cli(
        "duplicates", "distinct", str(twin), str(ann), "--tenant", tenant, "--actor", "ops", *url
    )
    assert code == 0, err
    assert f"Customers {twin} and {ann} of tenant {tenant} marked as two people" in out
    listed = cli("duplicates", "--tenant", tenant, *url)
    assert "0 pairs at probability 0.8 or more." in listed[1]
    verified = cli("audit", "verify", "--tenant", tenant, *url)
    assert verified[0] == 0, verified[2]
    assert "intact" in verified[1]
    exported = cli("export", str(ann), "--tenant", tenant, *url)
    decisions = json.loads(exported[1])["duplicate_decisions"]
    assert [(d["customer_id"], d["other_id"], d["decided_by"]) for d in decisions] == [
        (ann, twin, "ops")
    ]

    code, out, err = cli("duplicates", "undo", str(ann), str(twin), "--tenant", tenant, *url)
    assert code == 0, err
    assert "are no longer marked as two people" in out
    assert "1 pair at probability 0.8 or more." in cli("duplicates", "--tenant", tenant, *url)[1]
    again = cli("duplicates", "undo", str(ann), str(twin), "--tenant", tenant, *url)
    assert again[0] == 1
    assert "were never marked as distinct people" in again[2]


def test_a_pair_that_cannot_be_decided_is_a_one_line_error(database_url: str) -> None:
    tenant = new_tenant_id("dup")
    ann, _, _ = _fill(database_url, tenant)
    url = ("--database-url", database_url)
    itself = cli("duplicates", "distinct", str(ann), str(ann), "--tenant", tenant, *url)
    assert itself[0] == 1
    assert "cannot be marked as distinct from itself" in itself[2]
    foreign = cli("duplicates", "distinct", str(ann), "999999", "--tenant", "elsewhere", *url)
    assert foreign[0] == 1
    assert "not found" in foreign[2]
    assert "Traceback" not in itself[2] + foreign[2]
    no_tenant = cli("duplicates", *url)
    assert no_tenant[0] == 2
    assert "Missing option '--tenant'" in no_tenant[2]


def test_the_pages_commands_write_the_csv_the_page_shows(tmp_path: Path) -> None:
    """docs/duplicates.md's command section, run verbatim in a fresh directory."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "duplicates.md").read_text()
    section = page[page.index("## The command") :]
    shell = re.findall(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    shown = re.findall(r"^```text\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    work = tmp_path / "work"
    work.mkdir()
    environment = cli_environment(tmp_path)

    run_shell(["bash", "-euc", shell[0]], work, environment)
    assert (work / "pairs.csv").read_text() == shown[0]
    marked = run_shell(["bash", "-euc", shell[1]], work, environment)
    assert "marked as two people" in marked
    assert "no longer marked" in marked
