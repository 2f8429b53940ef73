"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import struct
from array import array
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ColumnElement, DateTime, Dialect, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import TypeDecorator, TypeEngine

from linkbay_customers.domain import EMBEDDING_DIMENSIONS, MONEY_QUANTUM, embedding_values

__all__ = ("Embedding", "JSONDocument", "Money", "UTCDateTime", "vector_dimensions")

_SCALE = 4  # decimal places of MONEY_QUANTUM
assert Decimal(1).scaleb(-_SCALE) == MONEY_QUANTUM


def _unprocessed(type_: TypeDecorator[Any], dialect: Dialect, coltype: Any) -> bool:
    """Whether the driver's values of ``type_``'s implementation need no processing
    of SQLAlchemy's (a hot read then calls the decorator's processing alone)."""
    impl = dialect.type_descriptor(type_.load_dialect_impl(dialect))
    return impl.result_processor(dialect, coltype) is None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes everywhere.

    TIMESTAMPTZ on PostgreSQL; on SQLite, naive UTC text (fixed-width, so it sorts
    and compares chronologically). Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be stored; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _utc(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "postgresql" and _unprocessed(self, dialect, coltype):
            return _utc  # as ``process_result_value``, without TypeDecorator's wrapping
        return super().result_processor(dialect, coltype)


def _utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (a naive one taken as UTC)."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact money with four decimal places.

    NUMERIC(19, 4) on PostgreSQL. SQLite has no decimal type (NUMERIC would be
    stored as a binary float), so there the amount is an exact integer count of
    ten-thousandths, which still compares and sorts correctly.
    """

    impl = Numeric(19, _SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(19, _SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value).quantize(MONEY_QUANTUM)
        if dialect.name == "sqlite":
            return int(amount.scaleb(_SCALE))
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-_SCALE)
        return _money(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "postgresql" and _unprocessed(self, dialect, coltype):
            return _money  # as ``process_result_value``, without TypeDecorator's wrapping
        return super().result_processor(dialect, coltype)


def _money(value: Any) -> Decimal | None:
    """A NUMERIC value as money of four decimal places."""
    if value is None:
        return None
    return (value if type(value) is Decimal else Decimal(value)).quantize(MONEY_QUANTUM)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL (indexable with GIN)."""


class _StoredFloats(GenericFunction[list[float]]):
    """A vector column as it is read: on PostgreSQL, pgvector's binary form
    (``vector_send``: a ``bytea`` of the dimension count and the big-endian 32-bit
    floats, unpacked in one call; pgvector's default is its text form, a decimal
    string parsed in Python, and a cast to ``real[]`` costs the server an array and
    the driver a value per component); elsewhere the column itself."""

    name = "stored_floats"
    inherit_cache = True
    _register = False  # not offered as ``func.stored_floats``


@compiles(_StoredFloats)
def _stored_floats(element: _StoredFloats, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_StoredFloats, "postgresql")
def _stored_floats_postgresql(element: _StoredFloats, compiler: SQLCompiler, **kw: Any) -> str:
    return f"vector_send({compiler.process(element.clauses, **kw)})"


_VECTOR_HEADER = struct.Struct(">HH")  # vector_send: dimensions, then an unused field


def _vector_floats(data: bytes) -> list[float]:
    """The 32-bit floats of pgvector's binary form (``vector_send``), as Python floats."""
    dimensions, _ = _VECTOR_HEADER.unpack_from(data)
    return list(struct.unpack_from(f">{dimensions}f", data, _VECTOR_HEADER.size))


def vector_dimensions(type_: TypeEngine[Any]) -> int | None:
    """The dimensions of an embedding column's type: the library's ``Embedding`` or
    pgvector's ``Vector`` (a host's own model); None when the type does not say."""
    found = getattr(type_, "dimensions", None) or getattr(type_, "dim", None)
    return found if isinstance(found, int) else None


class Embedding(TypeDecorator[list[float]]):
    """A fixed-length float vector: pgvector ``vector(N)`` on PostgreSQL, JSON elsewhere.

    Selected, it is read in pgvector's binary form on PostgreSQL (``vector_send``, a
    ``bytea``: ``column_expression``), on the outermost select list only: a ``SELECT
    DISTINCT`` ordered by the bare column, or a ``UNION`` with an untyped vector beside
    it, meets ``bytea`` there and fails.
    """

    impl = JSON
    cache_ok = True

    def __init__(self, dimensions: int = EMBEDDING_DIMENSIONS) -> None:
        super().__init__()
        self.dimensions = dimensions

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import Vector

            return dialect.type_descriptor(Vector(self.dimensions))
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        vector = [float(v) for v in value]
        if len(vector) != self.dimensions:
            raise ValueError(f"embeddings have {self.dimensions} dimensions, not {len(vector)}")
        return vector

    def column_expression(self, colexpr: ColumnElement[Any]) -> ColumnElement[Any]:
        # Read in binary on PostgreSQL: the stored 32-bit floats, unpacked at once.
        return _StoredFloats(colexpr, type_=self)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "postgresql":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> list[float] | None:
            if isinstance(value, bytes):  # ``vector_send``: 32-bit floats already
                return _vector_floats(value)
            if isinstance(value, str):
                # pgvector's text form, ``[0.1,0.2,...]`` (a statement of text columns).
                return array("f", map(float, value[1:-1].split(","))).tolist()
            return None if value is None else embedding_values(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> list[float] | None:
        # The stored 32-bit floats themselves, not the decimals pgvector prints them as.
        return None if value is None else embedding_values(value)
