"""Every statement the library sends to PostgreSQL is router-executable on Citus.

A dedicated PostgreSQL logs every statement it receives (``log_statement = all``,
with the session and the virtual transaction of each); a representative part of
the suite runs against it in a child pytest: the storage contract and the
services' tests on PostgreSQL (import by COPY, scoring, similarity, erasure,
retention, the audit chain). The server's log is then read
back with PostgreSQL's own parser (``tests._citus_routing``): each statement on
tenant tables must pin every one of them to one tenant by an equality on
``tenant_id``, or be one of the few listed below with the reason it may not.

The log is the server's, so nothing the library sends escapes it: statements of
SQLAlchemy, raw asyncpg COPY, the tenant setting of each transaction.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from linkbay_customers_sqlalchemy import create_engine
from linkbay_customers_sqlalchemy._models import default_models
from tests._child_pytest import run_pytest
from tests._citus_routing import (
    DML_STATEMENTS,
    TENANT_COLUMN,
    describe,
    parameters_of_log,
    router_problems,
    split_statements,
    statement_kind,
    tables_of,
)
from tests._databases import POSTGRES_URL_VARIABLE, embedded_postgres_url

ROOT = Path(__file__).resolve().parents[2]

# What the child run covers: the storage contract (every repository, COPY of bulk
# imports, similarity, duplicate candidates, merging, the audit trail) and the
# services on PostgreSQL where they send statements of their own (import, scoring,
# similar customers, erasure, retention, the audit trail's verification).
RECORDED_RUN = (
    "tests/contract/test_sql_storage.py",
    "tests/integration/test_service_on_sql.py",
)
RECORDED_TESTS = (
    "not sqlite and not memory and (TestSqlAlchemyStorage or TestImport or TestScoreTenant"
    " or TestSimilarityAndRecommendations or TestErasure or TestRetention or TestAuditTrail)"
)

LOG_PREFIX = "@@linkbay "
# Each record of the server's log starts with the prefix, the session and the
# virtual transaction; a statement's further lines follow without it.
_RECORD = re.compile(rf"{LOG_PREFIX}(\S*) (\S*) @@ (\w+):  (.*)", re.DOTALL)
_STATEMENT = re.compile(r"(?:statement: |execute (fetch from )?[^:]*: )(.*)", re.DOTALL)

TENANT_TABLES = frozenset(
    table.name for table in default_models().metadata.tables.values() if TENANT_COLUMN in table.c
)
VERSION_TABLE = "linkbay_alembic_version"

UTILITY_STATEMENTS = {
    "TransactionStmt": "BEGIN, COMMIT, ROLLBACK and savepoints: Citus runs the transaction"
    " on the shards its statements reach (one, for a routed statement)",
    "VariableShowStmt": "SHOW of a server setting, sent by the drivers on connecting",
    "CreatedbStmt": "the test suite creating its database, no statement of the library",
    "DiscardStmt": "DISCARD PLANS before an import's email probes: the session's plans on"
    " the coordinator are made anew, the shards' own statements are Citus's",
}
"""Statements that read or write no row, with why each is fine on Citus."""

MIGRATION_STATEMENTS = {
    ("InsertStmt", frozenset({"customer_embeddings", "customers"})): "0005 moves every"
    " tenant's embeddings into their own table",
    ("SelectStmt", frozenset({"customer_audit_events"})): "0006 counts the events to chain",
    ("SelectStmt", frozenset({"customers"})): "0007 reads every tenant's stored phones",
    ("SelectStmt", frozenset({"customer_orders"})): "0007 reads every tenant's shipping phones",
    ("InsertStmt", frozenset({"customer_id_counters", "customers", "customer_audit_events"})): (
        "0008 seeds each tenant's counters past the ids it has used"
    ),
    (
        "InsertStmt",
        frozenset({"customer_id_counters", "customer_orders", "customer_audit_events"}),
    ): ("0008, the same for orders"),
    (
        "InsertStmt",
        frozenset({"customer_id_counters", "customer_notes", "customer_audit_events"}),
    ): ("0008, the same for notes"),
    (
        "InsertStmt",
        frozenset({"customer_id_counters", "customer_addresses", "customer_audit_events"}),
    ): "0008, the same for addresses",
    ("InsertStmt", frozenset({"customer_id_counters", "customer_consent_events"})): (
        "0008, the same for consent events"
    ),
    ("InsertStmt", frozenset({"customer_id_counters", "customer_audit_events"})): (
        "0008, the same for audit events"
    ),
    ("InsertStmt", frozenset({"customer_embeddings"})): (
        "0011 moves every tenant's embeddings into the partitioned table"
    ),
}
"""Statements of migrations that span every tenant, keyed by kind and tables.

A migration runs once, as the tables' owner, in one transaction that records its
revision. The Citus layout (``upgrade(..., citus=True)``) distributes the tables
after the migrations, so on a new database these run on plain tables; on a
distributed schema, Citus runs such statements on every shard (co-located
INSERT … SELECT by ``tenant_id`` is pushed down to each shard), not routed.
Every other statement of a migration is DDL or a grant, which Citus propagates
to the shards."""


@dataclass
class Statement:
    """One statement as the server received it."""

    session: str
    transaction: str
    sql: str
    parameters: dict[int, str | None] = field(default_factory=dict)

    @functools.cached_property
    def kind(self) -> str:
        return statement_kind(self.sql)

    @functools.cached_property
    def problems(self) -> list[str]:
        """Why it would not be routed to one shard (empty: it would)."""
        return router_problems(self.sql, TENANT_TABLES, self.parameters)


def read_statement_log(log: str) -> list[Statement]:
    """The statements of a server log written with ``LOG_PREFIX``, with their parameters."""
    records: list[list[str]] = []
    for line in log.split("\n"):
        if line.startswith(LOG_PREFIX):
            match = _RECORD.match(line)
            records.append(list(match.groups()) if match else ["", "", "", ""])
        elif records:
            records[-1][3] += "\n" + line
    statements: list[Statement] = []
    for session, transaction, level, message in records:
        if level == "LOG" and (found := _STATEMENT.match(message)) and not found.group(1):
            # A simple query may hold several statements (``BEGIN; SELECT set_config…``).
            for sql in split_statements(found.group(2)):
                statements.append(Statement(session, transaction, sql))
        elif (
            level == "DETAIL"
            and message.startswith("Parameters:")
            and statements
            and statements[-1].session == session
        ):
            statements[-1].parameters = parameters_of_log(message)
    return statements


def in_migrations(statements: list[Statement]) -> set[tuple[str, str]]:
    """The transactions (session, virtual transaction) that record an Alembic revision."""
    return {
        (statement.session, statement.transaction)
        for statement in statements
        if statement.kind in ("InsertStmt", "UpdateStmt", "DeleteStmt")
        and VERSION_TABLE in tables_of(statement.sql)
    }


async def _log_every_statement(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("ALTER SYSTEM SET log_statement = 'all'"))
            await connection.execute(
                text(f"ALTER SYSTEM SET log_line_prefix = '{LOG_PREFIX}%c %v @@ '")
            )
            await connection.execute(text("SELECT pg_reload_conf()"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[Statement]:
    """Every statement the recorded run sent, read from its own server's log."""
    root = tmp_path_factory.mktemp("citus")
    server = embedded_postgres_url(root / "server")
    url = next(server)
    try:
        asyncio.run(_log_every_statement(url))
        run_pytest(
            [f"--basetemp={root / 'run'}", "-k", RECORDED_TESTS, *RECORDED_RUN],
            cwd=ROOT,
            environment={POSTGRES_URL_VARIABLE: url},
            timeout=900,
            at_least=100,
        )
        log = (root / "server" / "log").read_text(errors="replace")
    finally:
        server.close()
    return read_statement_log(log)


def test_every_statement_on_tenant_tables_is_routed_to_one_tenant(
    recorded: list[Statement],
) -> None:
    migrations = in_migrations(recorded)
    unrouted: Counter[str] = Counter()
    checked = 0
    for statement in recorded:
        if (statement.session, statement.transaction) in migrations:
            continue
        if statement.kind not in DML_STATEMENTS:
            continue
        checked += 1
        if statement.problems:
            unrouted[f"{describe(statement.sql, 400)}\n    {'; '.join(statement.problems)}"] += 1
    assert checked > 500
    assert not unrouted, "\n".join(f"{n}x {entry}" for entry, n in unrouted.most_common(20))


def test_the_recorded_run_reaches_every_tenant_table_and_every_path(
    recorded: list[Statement],
) -> None:
    migrations = in_migrations(recorded)
    library = [s for s in recorded if (s.session, s.transaction) not in migrations]
    touched = {
        table
        for statement in library
        if statement.kind in DML_STATEMENTS
        for table in tables_of(statement.sql) & TENANT_TABLES
    }
    # A tenant table no recorded statement reaches is a table whose statements go
    # unchecked: add the tests that use it to RECORDED_RUN.
    assert touched == TENANT_TABLES, f"not reached: {sorted(TENANT_TABLES - touched)}"
    sql = [" ".join(statement.sql.split()) for statement in library]
    copied = {
        table
        for statement in library
        if statement.kind == "CopyStmt"
        for table in tables_of(statement.sql)
    }
    assert {"customers", "customer_audit_events"} <= copied  # bulk import, audit trail
    assert any("set_config('linkbay.tenant_id'" in one for one in sql)  # row-level security
    assert any("<=>" in one and "customer_embeddings" in one for one in sql)  # similarity
    assert any("strpos(" in one for one in sql)  # duplicate candidates


def test_statements_outside_one_tenant_are_the_listed_ones(recorded: list[Statement]) -> None:
    migrations = in_migrations(recorded)
    assert migrations, "the recorded run migrated its database"
    unlisted: set[str] = set()
    reasons_used: set[tuple[str, frozenset[str]]] = set()
    for statement in recorded:
        kind = statement.kind
        if (statement.session, statement.transaction) in migrations:
            if kind not in DML_STATEMENTS:
                continue  # DDL and grants, propagated to the shards by Citus
            if not statement.problems:
                continue
            signature = (kind, tables_of(statement.sql) & TENANT_TABLES)
            if signature in MIGRATION_STATEMENTS:
                reasons_used.add(signature)
            else:
                unlisted.add(f"migration {kind} {describe(statement.sql)}")
        elif kind not in DML_STATEMENTS and kind not in UTILITY_STATEMENTS:
            unlisted.add(f"{kind} {describe(statement.sql)}")
    assert not unlisted, "\n".join(sorted(unlisted))
    # The list says nothing it does not need to: each entry was met.
    assert reasons_used == set(MIGRATION_STATEMENTS)
