"""The ``linkbay-customers`` commands: serve, token, demo, migrate, import, score, export,
purge and audit.

This is a composition root: it picks the storage from ``--database-url`` and
imports the SQL and FastAPI adapters only when a command needs them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Self

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from linkbay_customers import LinkbayError, __version__
from linkbay_customers.audit_keys import new_audit_key
from linkbay_customers.domain import MAX_ID, AuditVerification, check_actor, check_tenant
from linkbay_customers.ports import CustomerIntelligence
from linkbay_customers.schemas import CustomerCreate
from linkbay_customers.services import (
    DEFAULT_CHUNK_SIZE,
    MAX_PREDICTION_MONTHS,
    DuplicateSuggestion,
    ImportProgress,
    ImportResult,
    PurgeResult,
    ScoringSummary,
)
from linkbay_customers_cli._collector import bulk_collection
from linkbay_customers_cli._customer_files import (
    CustomerFile,
    CustomerFileFormat,
    default_rejects_path,
    write_rejects,
)
from linkbay_customers_cli._database import (
    OWNER_DATABASE_URL_ENV,
    describe_url,
    has_shipped_schema,
    is_memory_url,
    migrate_database,
    open_container,
    prepare_schema,
    resolve_database_url,
)
from linkbay_customers_cli._demo import (
    DEFAULT_DEMO_CUSTOMERS,
    DEFAULT_DEMO_SEED,
    DEFAULT_DEMO_TENANT,
    DemoSummary,
    demo_customer,
    fill_demo_tenant,
    segment_counts,
    tenant_is_empty,
)
from linkbay_customers_cli._duplicates import duplicates_csv, duplicates_table
from linkbay_customers_cli._errors import CommandError
from linkbay_customers_cli._host_code import load_create_schema, load_models
from linkbay_customers_cli._postgres import postgres_app
from linkbay_customers_cli._profiling import PROFILING_ENV, ProfilingMode
from linkbay_customers_cli._serve import (
    JWT_AUDIENCE_ENV,
    JWT_ISSUER_ENV,
    JWT_SECRET_ENV,
    LOG_LEVELS,
    MAX_BODY_SIZE_ENV,
    ApiOptions,
    ServeOptions,
    check_jwt_secret,
    demo_requests,
    run_server,
)

__all__ = ("app",)

app = typer.Typer(
    name="linkbay-customers",
    help="Serve, fill, migrate, score, export and purge a linkbay-customers database.",
    no_args_is_help=True,
    add_completion=False,
    # Locals would print database passwords and JWT secrets.
    pretty_exceptions_show_locals=False,
    # Plain help: it wraps to the terminal without cutting option names or defaults.
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)

_MAX_REJECTIONS_SHOWN = 5
_MAX_PURGE_IDS_SHOWN = 50
_MAX_DUPLICATES_SHOWN = 20
_MAX_INACTIVE_DAYS = 36_500

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="LINKBAY_DATABASE_URL",
        help="sqlite+aiosqlite:///FILE, postgresql+asyncpg://USER:PW@HOST/DB or memory://",
        show_default="./linkbay_customers.db",
    ),
]
TenantOption = Annotated[
    str,
    typer.Option(
        "--tenant", "-t", metavar="TENANT", help="The tenant to work on.", show_default=False
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(metavar="ACTOR", help="Who is acting, for the audit trail.", show_default=False),
]
ProfilingOption = Annotated[
    ProfilingMode,
    typer.Option(
        envvar=PROFILING_ENV,
        help="Who may get segments and scores: everyone but who refused analytics "
        "consent (opt-out) or only who gave it (opt-in).",
    ),
]
ModelsOption = Annotated[
    str | None,
    typer.Option(
        metavar="MODULE:ATTRIBUTE",
        help="Your ModelSet (build_models), imported from the working directory: "
        "customer tables with fields of your own.",
        show_default=False,
    ),
]
MigrateOption = Annotated[
    bool,
    typer.Option(
        "--migrate/--no-migrate", help="Bring the schema up to date first (SQL databases)."
    ),
]


def _text_option(*names: str, metavar: str, envvar: str, help: str) -> Any:
    """An optional text option read from ``envvar`` too, its value never shown."""
    return typer.Option(*names, metavar=metavar, envvar=envvar, help=help, show_default=False)


OwnerDatabaseUrlOption = Annotated[
    str | None,
    _text_option(
        "--owner-database-url",
        metavar="URL",
        envvar=OWNER_DATABASE_URL_ENV,
        help="Run the migrations connected with this URL, the tables' owner, when "
        "--database-url is an application role that does not own them. Without it, a "
        "schema already current is left alone.",
    ),
]
JwtAudienceOption = Annotated[
    str | None,
    _text_option(
        metavar="AUDIENCE",
        envvar=JWT_AUDIENCE_ENV,
        help="The aud claim tokens carry (and serve requires).",
    ),
]
JwtIssuerOption = Annotated[
    str | None,
    _text_option(
        metavar="ISSUER",
        envvar=JWT_ISSUER_ENV,
        help="The iss claim tokens carry (and serve requires).",
    ),
]


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Print expected failures as one line on stderr and exit non-zero, no traceback."""
    try:
        yield
    except CommandError as error:
        error_console.print(f"[bold red]Error:[/] {escape(error.message)}")
        raise typer.Exit(error.exit_code) from None
    except LinkbayError as error:
        error_console.print(f"[bold red]Error:[/] {escape(str(error))}")
        raise typer.Exit(1) from None


def _show_version(value: bool) -> None:
    if value:
        console.print(f"linkbay-customers {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Serve, fill, migrate, score, export and purge a linkbay-customers database."""


# ------------------------------------------------------------------------ serve


@app.command()
def serve(
    database_url: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    jwt_secret: Annotated[
        str | None,
        _text_option(
            metavar="SECRET",
            envvar=JWT_SECRET_ENV,
            help="Accept only JWTs signed with this secret (HS256, at least 32 bytes; tenant "
            "in the tenant_id claim, expiry in exp) instead of X-Tenant-ID headers.",
        ),
    ] = None,
    jwt_audience: JwtAudienceOption = None,
    jwt_issuer: JwtIssuerOption = None,
    jwt_allow_no_expiry: Annotated[
        bool,
        typer.Option(
            "--jwt-allow-no-expiry",
            help="Accept tokens without an exp claim, valid forever (refused by default).",
        ),
    ] = False,
    max_body_size: Annotated[
        int | None,
        typer.Option(
            metavar="BYTES",
            envvar=MAX_BODY_SIZE_ENV,
            min=1,
            help="The largest request body read; larger ones get 413.",
            show_default="1048576 (1 MiB)",
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Fill the demo tenant first, if it is empty.")
    ] = False,
    demo_tenant: Annotated[str, typer.Option(metavar="TENANT", help="The tenant --demo fills.")] = (
        DEFAULT_DEMO_TENANT
    ),
    demo_customers: Annotated[
        int, typer.Option(min=1, max=10_000, help="How many customers --demo creates.")
    ] = DEFAULT_DEMO_CUSTOMERS,
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help=f"uvicorn's log level: {', '.join(LOG_LEVELS)}.")
    ] = "info",
    migrate: MigrateOption = True,
    owner_database_url: OwnerDatabaseUrlOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes; more than one needs a database URL (not memory://).",
        ),
    ] = 1,
    profiling: ProfilingOption = ProfilingMode.OPT_OUT,
) -> None:
    """Serve the REST API on uvicorn; interactive docs at /docs."""
    with _reported_errors():
        if log_level.lower() not in LOG_LEVELS:
            raise CommandError(
                f"unknown --log-level {log_level!r}; use one of {', '.join(LOG_LEVELS)}",
                exit_code=2,
            )
        if jwt_secret:
            check_jwt_secret(jwt_secret)
        options = ServeOptions(
            database_url=resolve_database_url(database_url),
            host=host,
            port=port,
            api=ApiOptions(
                jwt_secret=jwt_secret or None,
                jwt_audience=jwt_audience or None,
                jwt_issuer=jwt_issuer or None,
                jwt_require_expiry=not jwt_allow_no_expiry,
                max_body_size=max_body_size,
            ),
            owner_database_url=_owner_url(owner_database_url),
            migrate=migrate,
            demo_tenant=demo_tenant if demo else None,
            demo_customers=demo_customers,
            log_level=log_level.lower(),
            workers=workers,
            profiling=profiling,
        )
        run_server(options, console)


def _owner_url(url: str | None) -> str | None:
    return resolve_database_url(url) if url else None


# ------------------------------------------------------------------------ token

_DURATION = re.compile(r"([0-9]+)\s*([smhd]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_MAX_TOKEN_LIFETIME = 366 * 86_400


def _duration_seconds(text: str) -> int:
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = int(match[1]) * _DURATION_UNITS[match[2]] if match else 0
    if not 1 <= seconds <= _MAX_TOKEN_LIFETIME:
        raise CommandError(
            f"--expires {text!r} is not a lifetime: use seconds or a number with s, m, h or d"
            " (such as 30m, 1h, 7d), up to 366 days",
            exit_code=2,
        )
    return seconds


@app.command()
def token(
    tenant: TenantOption,
    sub: Annotated[
        str | None,
        typer.Option(
            "--sub", metavar="USER", help="The acting user (the sub claim).", show_default=False
        ),
    ] = None,
    expires: Annotated[
        str, typer.Option(metavar="LIFETIME", help="How long the token is valid: 30m, 1h, 7d.")
    ] = "1h",
    jwt_secret: Annotated[
        str | None,
        _text_option(
            metavar="SECRET",
            envvar=JWT_SECRET_ENV,
            help="The HS256 secret serve checks tokens with: at least 32 bytes.",
        ),
    ] = None,
    jwt_audience: JwtAudienceOption = None,
    jwt_issuer: JwtIssuerOption = None,
) -> None:
    """Print a development JWT that serve --jwt-secret accepts.

    Signed with HS256 and the secret serve uses (--jwt-secret or LINKBAY_JWT_SECRET),
    carrying the tenant in tenant_id, the user in sub, and exp (plus aud and iss when
    given). For trying the API out: production tokens come from the host's identity
    provider.
    """
    with _reported_errors():
        if not jwt_secret:
            raise CommandError(
                f"the secret is required: --jwt-secret SECRET or {JWT_SECRET_ENV}", exit_code=2
            )
        check_jwt_secret(jwt_secret)
        lifetime = _duration_seconds(expires)
        claims: dict[str, object] = {
            "tenant_id": check_tenant(tenant),
            "exp": int(time.time()) + lifetime,
        }
        sub = check_actor(sub, field="--sub")
        for name, value in (("sub", sub), ("aud", jwt_audience), ("iss", jwt_issuer)):
            if value:
                claims[name] = value
        import jwt

        typer.echo(jwt.encode(claims, jwt_secret, algorithm="HS256"))


# ------------------------------------------------------------------------- demo


@app.command(short_help="Fill an empty tenant with a synthetic shop, scored.")
def demo(
    tenant: Annotated[
        str, typer.Option("--tenant", "-t", metavar="TENANT", help="The tenant to fill.")
    ] = (DEFAULT_DEMO_TENANT),
    customers: Annotated[
        int, typer.Option(min=1, max=10_000, help="How many customers to create.")
    ] = DEFAULT_DEMO_CUSTOMERS,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data.")] = (
        DEFAULT_DEMO_SEED
    ),
    database_url: DatabaseUrlOption = None,
    migrate: MigrateOption = True,
    owner_database_url: OwnerDatabaseUrlOption = None,
    profiling: ProfilingOption = ProfilingMode.OPT_OUT,
) -> None:
    """Fill an empty tenant with synthetic customers, addresses, notes and orders; their
    segments and the embeddings of similar customers come with the orders."""
    with _reported_errors():
        url = resolve_database_url(database_url)
        owner_url = _owner_url(owner_database_url) if migrate else None
        summary, segments, demo_customer = asyncio.run(
            _fill_demo(url, owner_url, tenant, customers, seed, migrate, profiling)
        )
        _print_demo_summary(url, summary, segments, demo_customer)


async def _prepare_schema(url: str, owner_url: str | None, migrate: bool) -> None:
    if migrate:
        migration = await prepare_schema(url, owner_url)
        if migration is not None:
            console.print(migration.report())


async def _fill_demo(
    url: str,
    owner_url: str | None,
    tenant: str,
    customers: int,
    seed: int,
    migrate: bool,
    profiling: ProfilingMode,
) -> tuple[DemoSummary, dict[str, int], int | None]:
    await _prepare_schema(url, owner_url, migrate)
    async with open_container(url, profiling.policy) as container:
        service = container.customer_service()
        if not await tenant_is_empty(service, tenant):
            raise CommandError(
                f"tenant {tenant!r} already has customers; fill another one with --tenant NAME"
            )
        with Progress(
            TextColumn("Filling tenant {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(tenant, total=customers)
            summary = await fill_demo_tenant(
                service,
                tenant,
                now=container.clock().now(),
                customers=customers,
                seed=seed,
                on_progress=lambda done, _: progress.update(task, completed=done),
            )
        # No scoring needed: every order stored its customer's embedding.
        shown = await demo_customer(service, container.ai_service(), tenant)
        return summary, await segment_counts(service, tenant), shown


def _print_demo_summary(
    url: str, summary: DemoSummary, segments: dict[str, int], demo_customer: int | None = None
) -> None:
    table = Table(title=f"Demo tenant {escape(summary.tenant_id)}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, count in (
        ("customers", summary.customers),
        ("addresses", summary.addresses),
        ("notes", summary.notes),
        ("orders", summary.orders),
        ("order lines", summary.order_lines),
    ):
        table.add_row(label, str(count))
    table.add_section()
    for segment, count in segments.items():
        table.add_row(f"segment {segment}", str(count))
    console.print(table)
    if is_memory_url(url):
        console.print(
            "memory:// keeps nothing once the command ends; "
            "try [bold]linkbay-customers serve --demo --database-url memory://[/]"
        )
        return
    serve_command = "linkbay-customers serve"
    if url != resolve_database_url(None):
        serve_command += f" --database-url '{describe_url(url)}'"
    console.print(f"Serve it with: {escape(serve_command)}")
    console.print("then, for example:")
    for line in demo_requests(
        "http://127.0.0.1:8000", summary.tenant_id, jwt=False, customer_id=demo_customer
    ):
        console.print(f"  {escape(line)}")


# ---------------------------------------------------------------------- migrate


@app.command(short_help="Bring a database's schema up to date.")
def migrate(
    database_url: DatabaseUrlOption = None,
    citus: Annotated[
        bool,
        typer.Option(
            "--citus",
            help="Then distribute every tenant table by tenant_id, co-located"
            " (PostgreSQL with the citus extension).",
        ),
    ] = False,
) -> None:
    """Bring a database's schema up to date with the shipped migrations."""
    with _reported_errors():
        url = resolve_database_url(database_url)
        if is_memory_url(url):
            console.print("memory:// has no schema; nothing to migrate.")
            return
        if not has_shipped_schema(url):
            console.print(
                f"{escape(describe_url(url))}: the shipped migrations are for SQL databases; "
                "this storage's schema is its own. Nothing to migrate."
            )
            return
        migration = asyncio.run(migrate_database(url, citus=citus))
        where = escape(describe_url(url))
        if migration.changed:
            before = f"revision {migration.before}" if migration.before else "an empty schema"
            console.print(f"Migrated {where} from {before} to revision {migration.after}.")
        else:
            console.print(f"{where} is up to date at revision {migration.after}.")
        if citus:
            console.print("Every tenant table is distributed by tenant_id on Citus, co-located.")


# ----------------------------------------------------------------------- import


@app.command("import", short_help="Import customers from CSV or JSON Lines, by email.")
def import_customers(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="A .csv or .jsonl file of customers.", show_default=False
        ),
    ],
    tenant: Annotated[
        str,
        typer.Option(
            "--tenant",
            "-t",
            metavar="TENANT",
            help="The tenant to import into.",
            show_default=False,
        ),
    ],
    database_url: DatabaseUrlOption = None,
    file_format: Annotated[
        CustomerFileFormat | None,
        typer.Option(
            "--format", help="The file's format.", show_default="from the file's extension"
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Where to write the report of rejected rows, if any.",
            show_default="<file>.rejects.csv",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            metavar="ACTOR", help="Who is importing, for the audit trail.", show_default=False
        ),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Rows per transaction.")
    ] = DEFAULT_CHUNK_SIZE,
    allow_rejects: Annotated[
        bool,
        typer.Option(
            "--allow-rejects",
            help="Exit 0 even when rows were rejected (by default such an import exits 1).",
        ),
    ] = False,
    models: ModelsOption = None,
    schema: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:ATTRIBUTE",
            help="Your CustomerCreate subclass, to accept its fields (with --models).",
            show_default=False,
        ),
    ] = None,
    migrate: MigrateOption = True,
    owner_database_url: OwnerDatabaseUrlOption = None,
    profiling: ProfilingOption = ProfilingMode.OPT_OUT,
) -> None:
    """Import customers from a CSV or JSON Lines file, upserting by email.

    CSV: a header row naming CustomerCreate fields (email is required); an empty
    cell is an absent field; tags are separated by commas or semicolons;
    preferences is a JSON object. JSON Lines: one JSON object per line. Exits 1
    when a row was rejected (the others are imported), unless --allow-rejects.
    """
    with _reported_errors():
        tenant = _checked_tenant(tenant)
        url = resolve_database_url(database_url)
        owner_url = _owner_url(owner_database_url) if migrate else None
        rejects_path = rejects or default_rejects_path(file)
        _check_writable_directory(rejects_path, option="--rejects")
        host = HostCode(models=load_models(models), schema=load_create_schema(schema))
        source = CustomerFile.open(file, file_format, host.schema)
        result = asyncio.run(
            _import(url, owner_url, source, tenant, actor, chunk_size, migrate, profiling, host)
        )
        _report_import(url, source, tenant, result, rejects_path)
        if result.rejected and not allow_rejects:
            raise typer.Exit(1)


@dataclass(frozen=True, slots=True)
class HostCode:
    """The host's models and create schema, from --models and --schema."""

    models: Any = None
    schema: type[CustomerCreate] = CustomerCreate


def _checked_tenant(tenant: str) -> str:
    try:
        return check_tenant(tenant)
    except LinkbayError as error:
        raise CommandError(f"--tenant {tenant!r}: {error}", exit_code=2) from error


def _check_writable_directory(path: Path, *, option: str) -> None:
    directory = path.expanduser().absolute().parent
    if not directory.is_dir():
        raise CommandError(f"{option}: the directory {directory} does not exist", exit_code=2)
    if not os.access(directory, os.W_OK):
        raise CommandError(f"{option}: the directory {directory} is not writable", exit_code=2)


async def _import(
    url: str,
    owner_url: str | None,
    source: CustomerFile,
    tenant: str,
    actor: str | None,
    chunk_size: int,
    migrate: bool,
    profiling: ProfilingMode,
    host: HostCode,
) -> ImportResult:
    await _prepare_schema(url, owner_url, migrate)
    async with open_container(url, profiling.policy, models=host.models) as container:
        service = container.customer_service()
        with Progress(
            TextColumn("Importing {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(escape(source.path.name), total=source.row_count)

            def advance(done: ImportProgress) -> None:
                progress.update(task, completed=done.processed)

            with bulk_collection():
                return await service.import_customers(
                    tenant,
                    source.rows(),
                    on_progress=advance,
                    chunk_size=chunk_size,
                    actor=actor,
                    schema=host.schema,
                )


def _report_import(
    url: str, source: CustomerFile, tenant: str, result: ImportResult, rejects_path: Path
) -> None:
    console.print(
        f"Imported {escape(str(source.path))} into tenant {escape(tenant)}: "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.rejected} rejected ({result.processed} rows)."
    )
    if is_memory_url(url):
        console.print("memory:// keeps nothing once the command ends: this was a dry run.")
    if not result.rejections:
        return
    rejected = source.rejected_rows(result.rejections)
    write_rejects(rejects_path, rejected)
    for item in rejected[:_MAX_REJECTIONS_SHOWN]:
        where = f"row {item.row}" + (f" (line {item.line})" if item.line else "")
        console.print(f"  {where}: {escape(item.reason)}")
    if len(rejected) > _MAX_REJECTIONS_SHOWN:
        console.print(f"  ... and {len(rejected) - _MAX_REJECTIONS_SHOWN} more")
    console.print(f"Rejected rows are listed in {escape(str(rejects_path))}")


# ------------------------------------------------------------------------ score


@app.command(short_help="Score every customer of a tenant.")
def score(
    tenant: TenantOption,
    months: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_PREDICTION_MONTHS,
            help="The period the lifetime value is predicted over, in months.",
        ),
    ] = 12,
    database_url: DatabaseUrlOption = None,
    profiling: ProfilingOption = ProfilingMode.OPT_OUT,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL",
            envvar="LINKBAY_AI_MODEL",
            help="Score with this chat model instead of the heuristics, over an "
            "OpenAI-compatible endpoint (--model-url; its key in OPENAI_API_KEY). "
            "Needs the ai extra.",
            show_default=False,
        ),
    ] = None,
    model_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            envvar="OPENAI_BASE_URL",
            help="The endpoint's API root, e.g. http://localhost:11434/v1.",
            show_default="OpenAI's",
        ),
    ] = None,
) -> None:
    """Score every customer of a tenant: segment, churn risk, lifetime value, embedding.

    Customers are scored by chunks, each in its own transaction, so an interrupted
    run keeps what it scored; run it again to finish. Customers the profiling
    policy excludes (who refused analytics consent; with --profiling opt-in, who
    never gave it) are skipped and their derived data cleared. With --model, a
    customer whose reply is unusable (or missing) is scored by the heuristics; the
    summary counts customers by source.
    """
    with _reported_errors():
        url = resolve_database_url(database_url)
        summary = asyncio.run(_score(url, tenant, months, profiling, model, model_url))
        _print_scoring_summary(tenant, months, summary, model)


_MODEL_SOURCE = "linkbay_ai"  # the source --model's scores are recorded under


@asynccontextmanager
async def _chat_model(
    model: str | None, model_url: str | None
) -> AsyncIterator[CustomerIntelligence | None]:
    if model is None:
        yield None
        return
    try:
        from linkbay_customers_linkbay_ai import LinkBayAIIntelligence, OpenAIChatClient
    except ImportError as error:
        raise CommandError(f"--model: {error}") from error
    # Local servers want a key but ignore it.
    api_key = os.environ.get("OPENAI_API_KEY") or "unused"
    async with OpenAIChatClient(base_url=model_url, api_key=api_key, model=model) as client:
        yield LinkBayAIIntelligence(client, name=_MODEL_SOURCE)


@contextmanager
def _tenant_progress(verb: str, tenant: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar of the customers of a tenant done, and the callback that moves it (customers
    added meanwhile stretch the total)."""
    with Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(escape(tenant), total=total)

        def advance(done: int) -> None:
            progress.update(task, completed=done, total=max(total, done))

        yield advance


async def _score(
    url: str,
    tenant: str,
    months: int,
    profiling: ProfilingMode,
    model: str | None = None,
    model_url: str | None = None,
) -> ScoringSummary:
    async with (
        _chat_model(model, model_url) as intelligence,
        open_container(url, profiling.policy, intelligence, existing=True) as container,
    ):
        # One count query gives the bar its total; customers added meanwhile stretch it.
        page = await container.customer_service().list_customers(tenant, page_size=1)
        service = container.ai_service()
        if not page.total:
            return await service.score_tenant(tenant, months=months)
        with _tenant_progress("Scoring", tenant, page.total) as advance:
            return await service.score_tenant(tenant, months=months, on_progress=advance)


duplicates_app = typer.Typer(
    name="duplicates",
    short_help="Find a tenant's likely duplicates, or mark pairs as two people.",
    rich_markup_mode=None,
)
app.add_typer(duplicates_app)


@duplicates_app.callback(invoke_without_command=True)
def duplicates(
    context: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", "-t", metavar="TENANT", help="The tenant to work on.", show_default=False
        ),
    ] = None,
    min_probability: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="The least match probability of a pair listed."),
    ] = 0.8,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write every pair to FILE as CSV (readable by its owner only).",
            show_default="a table of the most probable pairs",
        ),
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Find a tenant's likely duplicate customers (--tenant is required).

    Pairs come from blocking (same mailbox, phone, names, birthday or postcode), are
    compared field by field and scored by a model fitted on the tenant's own pairs.
    The CSV has the header customer_id,other_id,match_probability, then the customer
    a merge keeps, why, and the fields that agree and disagree. Merge a pair with
    POST /customers/merge; a pair marked as two people (duplicates distinct) is
    never listed.
    """
    if context.invoked_subcommand is not None:
        return
    if tenant is None:
        context.fail("Missing option '--tenant' / '-t'.")
    with _reported_errors():
        url = resolve_database_url(database_url)
        found = asyncio.run(_duplicates(url, tenant, min_probability))
        if output is not None:
            _write_private_file(output, duplicates_csv(found).encode("utf-8"))
            console.print(
                f"{len(found)} {_plural(len(found), 'pair')} of tenant {escape(tenant)} at "
                f"probability {min_probability} or more written to {escape(str(output))}."
            )
            return
        shown = found[:_MAX_DUPLICATES_SHOWN]
        console.print(duplicates_table(shown, title=f"Likely duplicates of {escape(tenant)}"))
        more = (
            f" (the first {len(shown)} shown; --output FILE writes all)"
            if found[len(shown) :]
            else ""
        )
        console.print(
            f"{len(found)} {_plural(len(found), 'pair')} at probability {min_probability} "
            f"or more{more}."
        )


def _pair_argument(name: str, help: str) -> Any:
    return typer.Argument(metavar=name, min=1, max=MAX_ID, help=help, show_default=False)


PairCustomerArgument = Annotated[int, _pair_argument("CUSTOMER_ID", "One customer of the pair.")]
PairOtherArgument = Annotated[int, _pair_argument("OTHER_ID", "The other customer.")]


@duplicates_app.command("distinct", short_help="Mark two customers as two people.")
def duplicates_distinct(
    customer_id: PairCustomerArgument,
    other_id: PairOtherArgument,
    tenant: TenantOption,
    actor: ActorOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Mark two customers as two people: the pair is never suggested again.

    The decision is kept with who decided (--actor) and when, and recorded in both
    customers' audit trails. Marking a marked pair changes nothing. Undo it with
    duplicates undo.
    """
    _decide(database_url, tenant, customer_id, other_id, actor, undo=False)


@duplicates_app.command("undo", short_help="Undo marking two customers as two people.")
def duplicates_undo(
    customer_id: PairCustomerArgument,
    other_id: PairOtherArgument,
    tenant: TenantOption,
    actor: ActorOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Forget that two customers were marked as two people.

    The pair may be suggested again; the undoing is recorded in both customers'
    audit trails. A pair never marked is an error.
    """
    _decide(database_url, tenant, customer_id, other_id, actor, undo=True)


def _decide(
    database_url: str | None,
    tenant: str,
    customer_id: int,
    other_id: int,
    actor: str | None,
    *,
    undo: bool,
) -> None:
    """Mark a pair as two people, or undo that, and say what was done."""

    async def decide(url: str) -> None:
        async with open_container(url, existing=True) as container:
            service = container.customer_service()
            if undo:
                await service.undo_distinct(tenant, customer_id, other_id, actor=actor)
            else:
                await service.mark_distinct(tenant, customer_id, other_id, actor=actor)

    with _reported_errors():
        asyncio.run(decide(resolve_database_url(database_url)))
    done = (
        "are no longer marked as two people."
        if undo
        else "marked as two people: the pair is not suggested again."
    )
    console.print(f"Customers {customer_id} and {other_id} of tenant {escape(tenant)} {done}")


async def _duplicates(url: str, tenant: str, min_probability: float) -> list[DuplicateSuggestion]:
    async with open_container(url, existing=True) as container:
        service = container.customer_service()
        page = await service.list_customers(tenant, page_size=1)
        if not page.total:
            return await service.list_duplicates(tenant, min_probability=min_probability)
        with _tenant_progress("Comparing", tenant, page.total) as advance:
            return await service.list_duplicates(
                tenant, min_probability=min_probability, on_progress=advance
            )


def _print_scoring_summary(
    tenant: str, months: int, summary: ScoringSummary, model: str | None = None
) -> None:
    if not summary.customers:
        console.print(f"Tenant {escape(tenant)} has no customers: nothing to score.")
        return
    scored = summary.customers - summary.skipped_without_consent
    table = Table(title=f"Scored tenant {escape(tenant)}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers", str(summary.customers))
    table.add_row("scored", str(scored))
    table.add_row("skipped for consent", str(summary.skipped_without_consent))
    table.add_section()
    for segment, count in sorted(summary.per_segment.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"segment {escape(segment)}", str(count))
    table.add_section()
    for bucket, count in summary.churn_risk_distribution.items():
        table.add_row(f"churn risk {bucket}", str(count))
    table.add_section()
    table.add_row(f"predicted CLV, {months} months", f"{summary.total_predicted_clv:,.2f}")
    for source, count in sorted(summary.sources.items()):
        table.add_row(f"source {escape(source)}", str(count))
    table.add_row("embeddings written", str(summary.embeddings_written))
    console.print(table)
    fell_back = scored - summary.sources.get(_MODEL_SOURCE, 0)
    if model is not None and fell_back:
        console.print(
            f"{fell_back} of {scored} customers were scored by the heuristics, not by"
            f" {escape(model)}: its replies were missing or unusable (the warnings say why)."
        )


# ----------------------------------------------------------------------- export


class ExportFileFormat(StrEnum):
    """What ``export`` writes: the JSON document, or a ZIP of one CSV file per section."""

    JSON = "json"
    CSV = "csv"


@app.command(short_help="Export everything held about a customer (GDPR access).")
def export(
    customer_id: Annotated[
        int,
        typer.Argument(
            metavar="CUSTOMER_ID",
            min=1,
            max=MAX_ID,
            help="The customer to export.",
            show_default=False,
        ),
    ],
    tenant: TenantOption,
    database_url: DatabaseUrlOption = None,
    export_format: Annotated[
        ExportFileFormat,
        typer.Option("--format", help="JSON, or a ZIP of CSV files (needs --output)."),
    ] = ExportFileFormat.JSON,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the export to FILE (readable by its owner only).",
            show_default="standard output",
        ),
    ] = None,
    actor: ActorOption = None,
    models: ModelsOption = None,
) -> None:
    """Export everything held about a customer (GDPR right of access).

    The profile, addresses, notes, orders, consent state and history, derived data
    and audit trail; soft-deleted and anonymized customers too. The export is
    recorded in the customer's audit trail.
    """
    with _reported_errors():
        if export_format is ExportFileFormat.CSV and output is None:
            raise CommandError(
                "--format csv writes a ZIP archive: name the file with --output FILE",
                exit_code=2,
            )
        if output is not None and not output.expanduser().absolute().parent.is_dir():
            raise CommandError(
                f"the directory {output.expanduser().absolute().parent} does not exist",
                exit_code=2,
            )
        url = resolve_database_url(database_url)
        host_models = load_models(models)
        if output is None:  # JSON: a CSV archive needs a file
            asyncio.run(
                _export_json(url, tenant, customer_id, actor, sys.stdout.buffer.write, host_models)
            )
            sys.stdout.buffer.write(b"\n")
            return
        if export_format is ExportFileFormat.CSV:
            archive = asyncio.run(_export_csv(url, tenant, customer_id, actor, host_models))
            _write_private_file(output, archive)
        else:
            with _PrivateFile(output) as target:
                asyncio.run(
                    _export_json(url, tenant, customer_id, actor, target.write, host_models)
                )
        console.print(
            f"Exported customer {customer_id} of tenant {escape(tenant)} "
            f"to {escape(str(output))} ({export_format.value})."
        )


async def _export_csv(
    url: str, tenant: str, customer_id: int, actor: str | None, models: Any = None
) -> bytes:
    async with open_container(url, models=models, existing=True) as container:
        archive: bytes = await container.gdpr_service().export_customer_data_csv(
            tenant, customer_id, actor=actor
        )
        return archive


async def _export_json(
    url: str,
    tenant: str,
    customer_id: int,
    actor: str | None,
    write: Callable[[bytes], object],
    models: Any = None,
) -> None:
    """Write the JSON export as it is read, a page of rows at a time."""
    async with open_container(url, models=models, existing=True) as container:
        service = container.gdpr_service()
        # Closed here when a write fails (a reader that stopped early), so the
        # export's unit of work ends before the storage closes.
        stream = service.stream_customer_data(tenant, customer_id, actor=actor)
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                write(chunk)


class _PrivateFile:
    """A file only its owner can read (when it is created), opened at the first write:
    an export that fails before its first piece leaves an existing file as it was."""

    def __init__(self, path: Path) -> None:
        self._path = path.expanduser()
        self._stream: BinaryIO | None = None

    def write(self, content: bytes) -> None:
        try:
            if self._stream is None:
                descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                self._stream = os.fdopen(descriptor, "wb")
            self._stream.write(content)
        except OSError as error:
            raise CommandError(f"cannot write {self._path}: {error.strerror or error}") from error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self._stream is not None:
            self._stream.close()


def _write_private_file(path: Path, content: bytes) -> None:
    """Write personal data to a file only its owner can read (when it is created)."""
    with _PrivateFile(path) as target:
        target.write(content)


# ------------------------------------------------------------------------ audit

audit_app = typer.Typer(
    name="audit",
    help="Check the audit trail's hash chains, or make a key for them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(audit_app)
app.add_typer(postgres_app)


@audit_app.command("verify")
def audit_verify(tenant: TenantOption, database_url: DatabaseUrlOption = None) -> None:
    """Check a tenant's audit trail against its hash chains.

    Finds any event changed, removed or inserted outside the library, with the key
    of LINKBAY_AUDIT_KEY (or LINKBAY_AUDIT_KEY_FILE, or the SQLite key file). Exits
    0 when every chain is intact, 1 naming the first event that breaks one, and 1
    for a tenant with no audit event at all (a misspelt tenant id checks nothing).
    """
    with _reported_errors():
        url = resolve_database_url(database_url)
        verification = asyncio.run(_verify(url, tenant))
    checked = (
        f"{verification.events} {_plural(verification.events, 'event')} in"
        f" {verification.chains} {_plural(verification.chains, 'chain')}"
    )
    if verification.broken is None and verification.chains == 0:
        error_console.print(
            f"[bold red]No audit trail for tenant {escape(tenant)}:[/] no event is recorded"
            " for it, so nothing was checked. Is the tenant id (or the database) right?"
        )
        raise typer.Exit(1)
    if verification.broken is None:
        console.print(f"Audit trail of tenant {escape(tenant)} intact: checked {checked}.")
        return
    error_console.print(
        f"[bold red]Audit trail of tenant {escape(tenant)} broken[/] at"
        f" {escape(str(verification.broken))} (checked {checked})."
    )
    raise typer.Exit(1)


async def _verify(url: str, tenant: str) -> AuditVerification:
    async with open_container(url, existing=True) as container:
        return await container.gdpr_service().verify_audit_trail(tenant)


@audit_app.command("key")
def audit_key() -> None:
    """Print a new random audit key for LINKBAY_AUDIT_KEY.

    Keep it where the database's users cannot read it (a secrets manager, the
    service's environment); with it, anyone could forge the trail's hashes.
    """
    typer.echo(new_audit_key())


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


# ------------------------------------------------------------------------ purge


@app.command(short_help="Anonymize customers inactive for too long.")
def purge(
    tenant: TenantOption,
    inactive_days: Annotated[
        int,
        typer.Option(
            "--inactive-days",
            metavar="DAYS",
            min=1,
            max=_MAX_INACTIVE_DAYS,
            help="Customers with no order and no change for this many days qualify.",
            show_default=False,
        ),
    ],
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Anonymize them; without it, only list who would be."),
    ] = False,
    database_url: DatabaseUrlOption = None,
    actor: ActorOption = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Customers per transaction.")
    ] = 500,
) -> None:
    """Anonymize customers inactive for too long (GDPR storage limitation).

    A dry run by default: lists the customers that would be anonymized. With
    --apply they are anonymized for good, a chunk per transaction, each with a
    data.anonymized audit event.
    """
    with _reported_errors():
        url = resolve_database_url(database_url)
        period = timedelta(days=inactive_days)
        if not apply:
            result = asyncio.run(_purge_dry_run(url, tenant, period, chunk_size))
            _report_purge_dry_run(tenant, inactive_days, result)
            return
        result = asyncio.run(_purge(url, tenant, period, actor, chunk_size))
        if not result.count:
            _report_nothing_to_purge(tenant, inactive_days)
            return
        console.print(
            f"Anonymized {result.count} customer{'s' if result.count != 1 else ''} of tenant "
            f"{escape(tenant)} inactive since before {_moment(result)}."
        )


async def _purge_dry_run(url: str, tenant: str, period: timedelta, chunk_size: int) -> PurgeResult:
    async with open_container(url, existing=True) as container:
        service = container.gdpr_service()
        return await service.purge_inactive(tenant, period, dry_run=True, chunk_size=chunk_size)


async def _purge(
    url: str, tenant: str, period: timedelta, actor: str | None, chunk_size: int
) -> PurgeResult:
    async with open_container(url, existing=True) as container:
        service = container.gdpr_service()
        # A dry run first gives the progress bar its total.
        planned = await service.purge_inactive(tenant, period, dry_run=True, chunk_size=chunk_size)
        if not planned.count:
            return planned
        with Progress(
            TextColumn("Anonymizing {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(escape(tenant), total=planned.count)
            return await service.purge_inactive(
                tenant,
                period,
                dry_run=False,
                actor=actor,
                chunk_size=chunk_size,
                on_progress=lambda done: progress.update(task, completed=done),
            )


def _moment(result: PurgeResult) -> str:
    return result.cutoff.strftime("%Y-%m-%d %H:%M UTC")


def _report_nothing_to_purge(tenant: str, inactive_days: int) -> None:
    console.print(
        f"No customer of tenant {escape(tenant)} has been inactive for {inactive_days} "
        f"{_plural(inactive_days, 'day')}: nothing to anonymize."
    )


def _report_purge_dry_run(tenant: str, inactive_days: int, result: PurgeResult) -> None:
    if not result.count:
        _report_nothing_to_purge(tenant, inactive_days)
        return
    shown = result.customer_ids[:_MAX_PURGE_IDS_SHOWN]
    table = Table(title=f"Would be anonymized: {result.count}")
    table.add_column("customer id", justify="right")
    for customer_id in shown:
        table.add_row(str(customer_id))
    console.print(table)
    if result.count > len(shown):
        console.print(f"  ... and {result.count - len(shown)} more")
    console.print(
        f"Dry run: {result.count} customer{'s' if result.count != 1 else ''} of tenant "
        f"{escape(tenant)} had no order and no change since before {_moment(result)}; "
        "nothing was changed. Run again with --apply to anonymize them."
    )
