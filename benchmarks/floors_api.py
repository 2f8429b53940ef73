"""The floors of the HTTP benchmark: the same correct work as the library's routes,
written by hand with FastAPI and an asyncpg pool, and a bare route.

``benchmarks/api.py`` serves this application with uvicorn, as many workers as the
library's server, and drives both with the same wrk scripts:

- ``GET /floor/customers/{id}``: per request a connection from the pool, a
  transaction, the tenant setting the row-level security policies read
  (``linkbay.tenant_id``), the customer's row joined to its embedding (the same
  SELECT the library sends), 404 when there is none, the customer as JSON.
- ``POST /floor/customers``: the body checked by a small pydantic model; in one
  transaction the tenant setting, the tenant's next customer id and audit id (the
  library's per-tenant counters), the INSERT of the customer with its search keys
  (the library's ``search_key`` folding; a taken email: 409),
  the chain tip locked (created when missing), the event's HMAC-SHA256 link over
  the library's layout, and the INSERT of the audit event, whose trigger moves the
  tip; the customer as JSON (201). The events verify with ``audit verify``.
- ``GET /bare/customers/{id}``: no database at all, the cost of FastAPI and uvicorn.

Settings come from the environment: ``FLOOR_DATABASE_URL`` (a ``postgresql://``
DSN), ``FLOOR_POOL_SIZE`` (the library's default of 10 unless set) and
``LINKBAY_AUDIT_KEY``, the key the library's server seals its events with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from linkbay_customers.domain import search_key
from linkbay_customers.schemas import CustomerResponse

TENANT_SETTING = "SELECT set_config('linkbay.tenant_id', $1, true)"

SELECT_CUSTOMER = """
SELECT c.*, e.embedding, e.version AS embedding_version
FROM customers AS c
LEFT OUTER JOIN customer_embeddings AS e
  ON e.tenant_id = c.tenant_id AND e.customer_id = c.id
WHERE c.tenant_id = $1 AND c.id = $2
"""
RESOLVE_ALIAS = (
    "SELECT customer_id FROM customer_merge_aliases WHERE tenant_id = $1 AND alias_id = $2"
)

NEXT_ID = """
INSERT INTO customer_id_counters (tenant_id, kind, last_id) VALUES ($1, $2, 1)
ON CONFLICT (tenant_id, kind) DO UPDATE SET last_id = customer_id_counters.last_id + 1
RETURNING last_id
"""
INSERT_CUSTOMER = """
INSERT INTO customers (
  tenant_id, id, email, first_name, last_name, phone, preferences, tags,
  total_orders, total_spent, average_order_value, segment, consent_data,
  is_anonymized, created_at, updated_at, search_email, search_first_name, search_last_name
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, 'new', '{}', false, $9, $9, $10, $11, $12)
ON CONFLICT (tenant_id, email) DO NOTHING
RETURNING *
"""
LOCK_CHAIN = """
INSERT INTO customer_audit_chains (tenant_id, chain_id, sequence, hash) VALUES ($1, $2, 0, '')
ON CONFLICT (tenant_id, chain_id) DO UPDATE SET sequence = customer_audit_chains.sequence
RETURNING sequence, hash, now()
"""
INSERT_AUDIT = """
INSERT INTO customer_audit_events (
  tenant_id, id, customer_id, actor, action, occurred_at, changed_fields, details,
  chain_id, sequence, hash
) VALUES ($1, $2, $3, NULL, 'customer.created', $4, $5, '{}', $3, $6, $7)
"""

# The fields the library's responses carry, read from the same columns.
RESPONSE_FIELDS = tuple(CustomerResponse.model_fields)
JSON_COLUMNS = ("preferences", "tags")


class NewCustomer(BaseModel):
    """The body of ``POST /floor/customers``."""

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field([], max_length=50)
    preferences: dict[str, Any] = {}

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _customer_json(row: asyncpg.Record) -> dict[str, Any]:
    out = {name: _json_value(row[name]) for name in RESPONSE_FIELDS}
    for name in JSON_COLUMNS:
        out[name] = json.loads(out[name])
    return out


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "status": status, "code": code, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _link(key: bytes, values: list[Any]) -> str:
    """The library's audit link: HMAC-SHA256 of the event's content as sorted JSON."""
    message = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


pool: asyncpg.Pool | None = None
AUDIT_KEY = os.environ.get("LINKBAY_AUDIT_KEY", "").encode()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global pool
    size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
    pool = await asyncpg.create_pool(os.environ["FLOOR_DATABASE_URL"], min_size=size, max_size=size)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


def _tenant(value: str | None) -> str | None:
    if value is None or not 1 <= len(value) <= 64 or not value.isprintable() or " " in value:
        return None
    return value


@app.get("/floor/customers/{customer_id}")
async def get_customer(
    customer_id: int, x_tenant_id: Annotated[str | None, Header()] = None
) -> Any:
    tenant = _tenant(x_tenant_id)
    if tenant is None:
        return _problem(400, "tenant_required", "the X-Tenant-ID header is required")
    assert pool is not None
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        await connection.execute(TENANT_SETTING, tenant)
        row = await connection.fetchrow(SELECT_CUSTOMER, tenant, customer_id)
        if row is not None and row["deleted_at"] is not None:
            # A merged-away customer answers as the one it was merged into.
            target = await connection.fetchval(RESOLVE_ALIAS, tenant, customer_id)
            row = None
            if target is not None:
                row = await connection.fetchrow(SELECT_CUSTOMER, tenant, target)
                if row is not None and row["deleted_at"] is not None:
                    row = None
    if row is None:
        return _problem(404, "customer_not_found", f"customer {customer_id} not found")
    return JSONResponse(_customer_json(row))


@app.post("/floor/customers", status_code=201)
async def create_customer(
    data: NewCustomer, request: Request, x_tenant_id: Annotated[str | None, Header()] = None
) -> Any:
    tenant = _tenant(x_tenant_id)
    if tenant is None:
        return _problem(400, "tenant_required", "the X-Tenant-ID header is required")
    assert pool is not None
    now = datetime.now(UTC)
    searched = (data.email, data.first_name, data.last_name)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(TENANT_SETTING, tenant)
        customer_id = await connection.fetchval(NEXT_ID, tenant, "customers")
        row = await connection.fetchrow(
            INSERT_CUSTOMER,
            tenant,
            customer_id,
            data.email,
            data.first_name,
            data.last_name,
            data.phone,
            json.dumps(data.preferences),
            json.dumps(data.tags),
            now,
            *(None if value is None else search_key(value) for value in searched),
        )
        if row is None:
            # Nothing of the transaction is kept: the counter moves back too.
            raise _Duplicate(data.email)
        event_id = await connection.fetchval(NEXT_ID, tenant, "customer_audit_events")
        tip, previous, moment = await connection.fetchrow(LOCK_CHAIN, tenant, customer_id)
        changed = sorted(data.model_fields_set)
        sequence = tip + 1
        content = [
            1,
            tenant,
            event_id,
            customer_id,
            sequence,
            None,
            "customer.created",
            moment.astimezone(UTC).isoformat(timespec="microseconds"),
            changed,
            {},
            previous,
        ]
        await connection.execute(
            INSERT_AUDIT,
            tenant,
            event_id,
            customer_id,
            moment,
            json.dumps(changed),
            sequence,
            _link(AUDIT_KEY, content),
        )
    return JSONResponse(_customer_json(row), status_code=201)


class _Duplicate(Exception):
    pass


@app.exception_handler(_Duplicate)
async def _duplicate(_: Request, error: _Duplicate) -> JSONResponse:
    return _problem(409, "duplicate_email", f"the email {error.args[0]} is taken")


@app.get("/bare/customers/{customer_id}")
async def bare(customer_id: int) -> dict[str, int]:
    return {"id": customer_id}
