"""Driver errors wrapped into the library's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from linkbay_customers.domain import LinkbayError, StorageError

__all__ = ("is_unique_violation", "translate_errors")


def is_unique_violation(error: IntegrityError, *columns: str) -> bool:
    """Whether ``error`` is a unique violation on a constraint covering ``columns``."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    message = str(orig)
    if sqlstate is not None:
        return sqlstate == "23505" and all(column in message for column in columns)
    return "UNIQUE constraint failed" in message and all(f".{c}" in message for c in columns)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise driver errors as ``StorageError``; library errors pass through.

    Covered: errors the database reports, a pool with no free connection within
    its timeout, and a server that cannot be reached.
    """
    try:
        yield
    except LinkbayError:
        raise
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise StorageError(f"{action} failed: {detail}") from exc
    except PoolTimeout as exc:
        raise StorageError(f"{action} failed: no free database connection in time") from exc
    except OSError as exc:
        raise StorageError(f"{action} failed: the database is unreachable ({exc})") from exc
