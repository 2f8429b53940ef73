"""Which database a command works on, its migrations, and its errors as one line."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkbay_customers import (
    CustomersContainer,
    ProfilingPolicy,
    SchemaNotMigrated,
    StorageError,
    bootstrap,
    storage_schemes,
)
from linkbay_customers.ports import CustomerIntelligence
from linkbay_customers.registry import RegisteredStorage, registered_storage, url_scheme
from linkbay_customers_cli._errors import CommandError

__all__ = (
    "DEFAULT_DATABASE_FILE",
    "OWNER_DATABASE_URL_ENV",
    "Migration",
    "database_errors",
    "default_database_url",
    "describe_url",
    "has_shipped_schema",
    "is_memory_url",
    "migrate_database",
    "open_container",
    "prepare_schema",
    "resolve_database_url",
)

DEFAULT_DATABASE_FILE = "linkbay_customers.db"
"""The SQLite file the commands use, in the current directory, unless told otherwise."""

OWNER_DATABASE_URL_ENV = "LINKBAY_OWNER_DATABASE_URL"
"""Where ``serve``, ``import`` and ``demo`` read the URL migrations connect with, when
``--database-url`` names a role that does not own the tables."""

_MEMORY = "memory"
# SQLSTATE insufficient_privilege: the role may not read or change what it tried to.
_INSUFFICIENT_PRIVILEGE = "42501"
_SQLITE = "sqlite+aiosqlite"
# A spelling users type that SQLAlchemy (and so the registry) no longer knows.
_ALIASES = {"postgres": "postgresql"}


def _examples() -> str:
    return ", ".join(f"{scheme}://..." for scheme in storage_schemes()) or "none registered"


def default_database_url() -> str:
    """``sqlite+aiosqlite:///<cwd>/linkbay_customers.db``."""
    return f"{_SQLITE}:///{Path.cwd() / DEFAULT_DATABASE_FILE}"


def is_memory_url(url: str) -> bool:
    """Whether the URL names the in-memory storage, which has no schema to migrate."""
    return url.split(":", 1)[0].lower() == _MEMORY


def has_shipped_schema(url: str) -> bool:
    """Whether the URL's storage is the SQL one, whose schema the shipped migrations
    build (a third-party storage's schema is its own business)."""
    found = registered_storage(url_scheme(url))
    return found is not None and _is_sql(found)


def _is_sql(found: RegisteredStorage) -> bool:
    return found.module.split(".")[0] == "linkbay_customers_sqlalchemy"


def describe_url(url: str) -> str:
    """The URL with its password masked (SQLAlchemy's rendering), fit for printing."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a URL SQLAlchemy can read, so no password it could mask: show the text
        # only when it holds no credentials at all.
        return "<unparseable URL>" if "@" in url else url


def resolve_database_url(url: str | None) -> str:
    """Check a ``--database-url`` and spell it the way its storage adapter expects.

    The scheme must be one the storage registry knows (``linkbay_customers.registry``).
    SQL URLs get the async driver the library uses (``sqlite://`` and
    ``postgresql://``, or ``postgres://``); a relative SQLite path becomes absolute.
    Other schemes go to their storage as given.

    Raises:
        CommandError: the URL is malformed, names no registered scheme or an
            unsupported driver, or a SQLite file in a directory that does not exist.
    """
    if url is None:
        return default_database_url()
    url = url.strip()
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        raise CommandError(
            f"{describe_url(url)!r} is not a database URL; use {_examples()}", exit_code=2
        )
    dialect, plus, driver = scheme.lower().partition("+")
    dialect = _ALIASES.get(dialect, dialect)
    url = f"{dialect}{plus}{driver}://{rest}"
    found = registered_storage(url_scheme(url))
    if found is None:
        raise CommandError(
            f"unsupported database URL scheme {scheme!r}; registered: {_examples()}", exit_code=2
        )
    if dialect == _MEMORY:
        return f"{_MEMORY}://"
    if not _is_sql(found):
        return url
    url = _sql_url(url)
    return _sqlite_url(rest) if url.startswith(f"{_SQLITE}://") else url


def _sql_url(url: str) -> str:
    try:
        from linkbay_customers_sqlalchemy import async_database_url
    except ImportError as error:
        raise CommandError(f"cannot use {describe_url(url)}: {error}", exit_code=2) from error
    try:
        return async_database_url(url)
    except ValueError as error:
        message = str(error).replace(url, describe_url(url))
        raise CommandError(message, exit_code=2) from None


def _sqlite_url(rest: str) -> str:
    path, _, query = rest.partition("?")
    if not path.startswith("/") or path in ("/", "/:memory:"):
        raise CommandError(
            "an in-memory SQLite database would not outlive the command; "
            "name a file (sqlite+aiosqlite:///path/to/file.db) or use memory://",
            exit_code=2,
        )
    file = Path(path[1:]).expanduser().absolute()
    if file.is_dir():
        raise CommandError(f"the SQLite database {file} is a directory", exit_code=2)
    if not file.parent.is_dir():
        raise CommandError(
            f"the directory {file.parent} for the SQLite database does not exist", exit_code=2
        )
    return f"{_SQLITE}:///{file}" + (f"?{query}" if query else "")


def _first_line(error: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else type(cause).__name__
    # asyncpg errors reach SQLAlchemy as "<class 'asyncpg...Error'>: message".
    if text.startswith("<class ") and ">: " in text:
        text = text.split(">: ", 1)[1]
    return text


@asynccontextmanager
async def database_errors(url: str) -> AsyncIterator[None]:
    """Turn failures to reach or use a database into a one-line ``CommandError``."""
    if is_memory_url(url):
        yield
        return
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SchemaNotMigrated as error:
        where = describe_url(url)
        raise CommandError(
            f"{where} has no {error.missing}: its schema {error.reason}; run"
            f" linkbay-customers migrate --database-url '{where}'"
        ) from error
    except StorageError as error:
        raise CommandError(f"{describe_url(url)}: {error}") from error
    except BrokenPipeError:
        raise  # standard output closed by its reader: not the database's doing
    except (OSError, SQLAlchemyError) as error:
        raise CommandError(f"cannot use {describe_url(url)}: {_first_line(error)}") from error
    except ImportError as error:
        raise CommandError(f"cannot use {describe_url(url)}: {error}") from error


@dataclass(frozen=True, slots=True)
class Migration:
    """The schema revision of a database before and after ``migrate_database``."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        """Whether any migration was applied."""
        return self.before != self.after

    def report(self) -> str:
        """One line saying where the schema is, and whether migrations ran."""
        if self.changed:
            before = f"revision {self.before}" if self.before else "an empty schema"
            return f"Database schema migrated from {before} to revision {self.after}."
        return f"Database schema at revision {self.after}, the latest: no migration to run."


def _permission_denied(error: BaseException) -> bool:
    for cause in (error, error.__cause__, getattr(error.__cause__, "orig", None)):
        if cause is not None and _INSUFFICIENT_PRIVILEGE in (
            getattr(cause, "sqlstate", None),
            getattr(cause, "pgcode", None),
        ):
            return True
    return False


_OWNER_HINT = (
    "run the migrations as the tables' owner: --owner-database-url URL (or "
    f"{OWNER_DATABASE_URL_ENV}), or linkbay-customers migrate --database-url OWNER_URL first"
)


async def _current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from linkbay_customers_sqlalchemy import VERSION_TABLE, create_engine

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def migrate_database(url: str, *, citus: bool = False) -> Migration:
    """Apply the shipped migrations (the schema's latest revision) to a SQL database.

    Args:
        url: The database.
        citus: Then distribute the tenant tables on Citus (``upgrade(..., citus=True)``).

    Raises:
        CommandError: the database cannot be reached or migrated, or has no Citus.
    """
    try:
        from linkbay_customers_sqlalchemy import upgrade
    except ImportError as error:
        raise CommandError(
            f"SQL databases need the SQL storage: pip install 'linkbay-customers[cli]' ({error})"
        ) from error
    async with database_errors(url):
        before = await _current_revision(url)
        try:
            await upgrade(url, citus=citus)
        except (RuntimeError, ValueError) as error:
            if not citus:
                raise
            raise CommandError(f"{describe_url(url)}: {error}") from error
        return Migration(before=before, after=await _current_revision(url))


async def _grant_role_of(url: str, owner_url: str) -> None:
    """Grant ``url``'s role what it needs on tables the owner's migrations created."""
    from sqlalchemy import make_url

    from linkbay_customers_sqlalchemy import grant_application_role

    role, owner = make_url(url), make_url(owner_url)
    if role.get_backend_name() != "postgresql" or not role.username:
        return
    if role.username == owner.username:
        return
    async with database_errors(owner_url):
        try:
            await grant_application_role(owner_url, role.username)
        except ValueError as error:
            raise CommandError(f"{describe_url(owner_url)}: {error}") from error


async def prepare_schema(url: str, owner_url: str | None = None) -> Migration | None:
    """Bring a SQL database's schema up to date before a command works on it.

    With ``owner_url`` (the tables' owner) the migrations connect with it, and the
    command then works connected with ``url``, which may be an application role
    that does not own the tables: on PostgreSQL, once migrations ran, that role is
    granted what it needs (``grant_application_role``). Without it, a
    schema already at the latest revision is left alone, so such a role can run
    the command; a schema behind is migrated with ``url``.

    Returns:
        The revisions before and after, or None for a storage without the shipped
        schema (``memory://``, a third-party storage).

    Raises:
        CommandError: the database cannot be reached, its revision cannot be read,
            or ``url``'s role may not migrate it (the message says how to).
    """
    if not has_shipped_schema(url):
        return None
    if owner_url is not None:
        migration = await migrate_database(owner_url)
        if migration.changed:
            await _grant_role_of(url, owner_url)
        return migration
    from linkbay_customers_sqlalchemy import head_revision

    try:
        async with database_errors(url):
            current = await _current_revision(url)
    except CommandError as error:
        if _permission_denied(error):
            raise CommandError(
                f"{error.message} (the role may not read the schema's revision: grant it"
                f" again with grant_application_role, or {_OWNER_HINT})"
            ) from error
        raise
    if current == head_revision():
        return Migration(before=current, after=current)
    try:
        return await migrate_database(url)
    except CommandError as error:
        if not _permission_denied(error):
            raise
        at = f"revision {current}" if current else "no schema"
        raise CommandError(
            f"{describe_url(url)} is at {at}, not {head_revision()}, and this role may"
            f" not migrate it: {_OWNER_HINT}"
        ) from error


def _check_exists(url: str) -> None:
    """Refuse a SQLite file that does not exist (connecting would create it, empty)."""
    if not url.startswith(f"{_SQLITE}:///"):
        return
    file = Path(url.removeprefix(f"{_SQLITE}:///").partition("?")[0])
    if not file.exists():
        raise CommandError(
            f"there is no database at {file}: name an existing one with --database-url, or"
            f" run linkbay-customers migrate --database-url '{url}' to create it"
        )


@asynccontextmanager
async def open_container(
    url: str,
    profiling_policy: ProfilingPolicy | None = None,
    intelligence: CustomerIntelligence | None = None,
    *,
    models: Any = None,
    existing: bool = False,
) -> AsyncIterator[CustomersContainer]:
    """A container over the database, its storage closed on the way out; every service
    in it under ``profiling_policy`` (the library's default when None), scoring with
    ``intelligence`` (the heuristics when None), and reading
    phone numbers without a country code in the region ``LINKBAY_PHONE_REGION`` names
    (unset: they must start with ``+``), the one revision 0007 migrates with.

    Args:
        url: The database (``resolve_database_url``'s).
        profiling_policy: See above.
        intelligence: See above.
        models: The host's ``ModelSet`` (``--models``), for a SQL database.
        existing: The command only reads: a SQLite file that does not exist is an
            error, not a new empty database.

    Raises:
        CommandError: the storage cannot be opened or used (see ``database_errors``),
            ``LINKBAY_PHONE_REGION`` names no region, ``models`` are given for a
            storage that is not SQL, or ``existing`` and the SQLite file is missing.
    """
    from linkbay_customers_sqlalchemy import PHONE_REGION_VARIABLE

    if existing:
        _check_exists(url)
    storage_options: dict[str, Any] = {}
    if models is not None:
        if not has_shipped_schema(url):
            raise CommandError(
                f"--models names SQL tables, and {describe_url(url)} is not a SQL database",
                exit_code=2,
            )
        storage_options["models"] = models
    region = os.environ.get(PHONE_REGION_VARIABLE) or None
    async with database_errors(url):
        try:
            container = bootstrap(
                url,
                profiling_policy=profiling_policy,
                default_phone_region=region,
                intelligence=intelligence,
                **storage_options,
            )
        except (ImportError, ValueError) as error:
            raise CommandError(f"cannot open {describe_url(url)}: {error}") from error
        try:
            yield container
        finally:
            await container.storage().close()
