"""Driver errors wrapped into the library's errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from linkbay_customers.domain import (
    LinkbayError,
    SchemaNotMigrated,
    StorageError,
    StorageRejected,
    TransactionConflict,
)

__all__ = ("is_unique_violation", "sqlstate", "storage_error", "translate_errors")

# PostgreSQL SQLSTATE classes (the first two characters) of failures a later
# attempt may not meet: 08 connection exception, 40 transaction rollback
# (serialization failure, deadlock), 53 insufficient resources (too many
# connections, disk full), 57 operator intervention (statement timeout, server
# shutting down), 58 system error (I/O); 55P03, a lock not available in time;
# and 25006, a write reaching a server demoted to a standby by a failover.
# Every other class is a refusal the same statement would meet again: 23
# integrity, 22 data, 42 syntax or access (a missing table, column or function).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_SQLSTATES = frozenset({"55P03", "25006"})
# Of those, the transaction's own conflicts with concurrent ones, which rerunning
# it may resolve: serialization failure and deadlock detected.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})

# SQLite's primary result codes of the same kind: BUSY, LOCKED, NOMEM, INTERRUPT,
# IOERR, FULL, CANTOPEN, PROTOCOL. The others (ERROR for a missing table or
# column, CONSTRAINT, MISMATCH, TOOBIG, RANGE, READONLY, ...) are refusals.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6, 7, 9, 10, 13, 14, 15})

# What the SQLAlchemy class says when the driver gives no code: these are refusals;
# OperationalError, InterfaceError and the rest may pass (a lost connection).
_REFUSALS = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


# SQLSTATE undefined_table and undefined_column, and how SQLite and PostgreSQL name
# what is missing.
_UNDEFINED = {"42P01", "42703"}
_MISSING = re.compile(
    r'no such table: (?:\w+\.)?(?P<t1>\w+)|relation "(?:\w+\.)?(?P<t2>\w+)" does not exist'
    r"|no such column: (?P<c1>[\w.]+)|column (?P<c2>[\w.]+) does not exist"
    r'|column "(?P<c3>\w+)" of relation "(?P<t3>\w+)" does not exist'
)


def _missing(driver_error: BaseException | None) -> str | None:
    """The table (or ``table.column``) a statement found missing, by the driver's code
    and message."""
    match = _MISSING.search(str(driver_error))
    if match is None:
        return None
    sqlstate = _sqlstate(driver_error)
    if sqlstate is not None and sqlstate not in _UNDEFINED:
        return None
    found = match.groupdict()
    if found["c3"]:
        return f"{found['t3']}.{found['c3']}"
    return next(value for value in found.values() if value)


def _sqlstate(driver_error: BaseException | None) -> str | None:
    # asyncpg's errors carry it; SQLAlchemy's adaptation of them copies it, and
    # keeps the original as the cause.
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(
        getattr(driver_error, "__cause__", None), "sqlstate", None
    )
    return sqlstate if isinstance(sqlstate, str) else None


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE code of a SQLAlchemy ``DBAPIError`` or a driver's error, if it has one."""
    return _sqlstate(error.orig if isinstance(error, DBAPIError) else error)


def _is_transient(driver_error: BaseException | None) -> bool | None:
    """Whether the driver's code says retrying may succeed; None when it gives none."""
    sqlstate = _sqlstate(driver_error)
    if sqlstate is not None:
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    sqlite_code = getattr(driver_error, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _TRANSIENT_SQLITE_CODES  # the extended code's primary
    return None


def storage_error(message: str, error: BaseException) -> StorageError:
    """The library error for a driver's error: ``StorageRejected`` when retrying cannot
    help, ``TransactionConflict`` for a deadlock or a serialization failure.

    A missing table or column is ``SchemaNotMigrated``: the database was never
    migrated, or not to the revision the models need.

    Args:
        message: What failed, for the log (it may quote the driver's message).
        error: A SQLAlchemy ``DBAPIError`` or the driver's own exception.
    """
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    if _sqlstate(driver_error) in _CONFLICT_SQLSTATES:
        return TransactionConflict(message)
    missing = _missing(driver_error)
    if missing is not None:
        # Every table and column a statement of the library names is its models'.
        return SchemaNotMigrated(missing)
    transient = _is_transient(driver_error)
    if transient is None and isinstance(error, DBAPIError):
        transient = error.connection_invalidated or not isinstance(error, _REFUSALS)
    return StorageError(message) if transient is not False else StorageRejected(message)


def is_unique_violation(error: IntegrityError, *columns: str) -> bool:
    """Whether ``error`` is a unique violation on a constraint covering ``columns``."""
    orig = error.orig
    sqlstate = _sqlstate(orig)
    message = str(orig)
    if sqlstate is not None:
        return sqlstate == "23505" and all(column in message for column in columns)
    return "UNIQUE constraint failed" in message and all(f".{c}" in message for c in columns)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise driver errors as ``StorageError``; library errors pass through.

    Covered: errors the database reports (``StorageRejected`` for those that
    retrying cannot fix), a pool with no free connection within its timeout, and
    a server that cannot be reached.
    """
    try:
        yield
    except LinkbayError:
        raise
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise storage_error(f"{action} failed: {detail}", exc) from exc
    except PoolTimeout as exc:
        raise StorageError(f"{action} failed: no free database connection in time") from exc
    except OSError as exc:
        raise StorageError(f"{action} failed: the database is unreachable ({exc})") from exc
