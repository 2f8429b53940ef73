"""The router resolves the tenant, the acting user and the service as one dependency:
whatever kind of dependency the host gives (async or sync functions, generators,
dependencies of their own), each is resolved as FastAPI would resolve it.

The dependencies are defined in the tests, so they take their own dependencies as
default values: string annotations (this module's ``from __future__ import
annotations``) would name functions FastAPI cannot find in the module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Request

from linkbay_customers import CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import add_problem_handlers, create_customer_router
from linkbay_customers_memory import InMemoryStorage
from tests.api._support import assert_problem


def _service(storage: InMemoryStorage) -> CustomerService:
    return CustomerService(storage.unit_of_work, FixedClock(), HeuristicIntelligence())


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_sync_generator_and_nested_dependencies_are_each_resolved() -> None:
    storage = InMemoryStorage()
    service = _service(storage)
    closed: list[str] = []

    def api_key(x_api_key: str = Header()) -> str:  # sync: FastAPI runs it in a thread
        return x_api_key

    def tenant_of(key: str = Depends(api_key)) -> str:
        return f"tenant-of-{key}"

    def actor_of(request: Request, key: str = Depends(api_key)) -> Iterator[str]:
        try:
            yield f"{request.method.lower()}-{key}"
        finally:
            closed.append(key)

    async def service_of(request: Request) -> AsyncIterator[CustomerService]:
        yield service

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(service_of, get_tenant_id=tenant_of, get_actor=actor_of)
    )
    async with await _client(app) as client:
        created = await client.post(
            "/customers", json={"email": "a@example.com"}, headers={"X-API-Key": "k1"}
        )
        missing = await client.get("/customers/1")
        other = await client.get("/customers/1", headers={"X-API-Key": "k2"})
    assert created.status_code == 201
    assert_problem(missing, 422, "invalid_input", "x-api-key")
    assert_problem(other, 404, "customer_not_found", "customer_id")
    async with storage.unit_of_work("tenant-of-k1") as uow:
        (event,) = (await uow.audit.list()).items
    assert event.actor == "post-k1"
    assert closed == ["k1", "k2"]


async def test_overriding_a_dependency_of_the_tenant_dependency_takes_effect() -> None:
    storage = InMemoryStorage()
    service = _service(storage)

    async def header_key(x_api_key: str = Header()) -> str:
        return x_api_key

    async def tenant_of(key: str = Depends(header_key)) -> str:
        return f"tenant-of-{key}"

    async def fixed_key() -> str:
        return "fixed"

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(create_customer_router(service, get_tenant_id=tenant_of))
    app.dependency_overrides[header_key] = fixed_key
    async with await _client(app) as client:
        created = await client.post("/customers", json={"email": "a@example.com"})
    assert created.status_code == 201
    assert (await service.get_customer("tenant-of-fixed", created.json()["id"])).email == (
        "a@example.com"
    )


async def test_the_openapi_document_still_names_the_tenant_and_actor_headers() -> None:
    from linkbay_customers_fastapi import header_tenancy

    tenancy = header_tenancy()
    app = FastAPI()
    app.include_router(
        create_customer_router(
            _service(InMemoryStorage()), get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor
        )
    )
    operation = app.openapi()["paths"]["/customers/{customer_id}"]["get"]
    headers = {p["name"]: p["required"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"X-Tenant-ID": False, "X-Actor-ID": False}


async def test_the_tenant_dependency_runs_first_and_its_refusal_stops_the_rest() -> None:
    keys = {"good": ("tenant-a", "user-1")}
    calls: list[str] = []

    async def tenant_of(x_api_key: str = Header()) -> str:
        calls.append("tenant")
        if x_api_key not in keys:
            raise HTTPException(status_code=401, detail="unknown API key")
        return keys[x_api_key][0]

    async def actor_of(x_api_key: str = Header()) -> str:
        calls.append("actor")
        return keys[x_api_key][1]  # a KeyError for an unknown key

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            _service(InMemoryStorage()), get_tenant_id=tenant_of, get_actor=actor_of
        )
    )
    async with await _client(app) as client:
        refused = await client.get("/customers", headers={"X-API-Key": "stolen"})
        served = await client.get("/customers", headers={"X-API-Key": "good"})
    assert refused.status_code == 401
    assert served.status_code == 200
    assert calls == ["tenant", "tenant", "actor"]


async def test_overriding_the_tenant_and_actor_functions_themselves_takes_effect() -> None:
    # The way tests of a host application pin the tenant: overrides of no parameters.
    from linkbay_customers_fastapi import header_tenancy

    storage = InMemoryStorage()
    service = _service(storage)
    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor)
    )
    app.dependency_overrides[tenancy.tenant_id] = lambda: "pinned"

    async def pinned_actor() -> str:
        return "tester"

    app.dependency_overrides[tenancy.actor] = pinned_actor
    async with await _client(app) as client:
        # No X-Tenant-ID header: the override answers instead of the header dependency.
        created = await client.post("/customers", json={"email": "a@example.com"})
        read = await client.get(f"/customers/{created.json()['id']}")
    assert created.status_code == 201
    assert read.status_code == 200
    assert read.json()["tenant_id"] == "pinned"
    async with storage.unit_of_work("pinned") as uow:
        (event,) = (await uow.audit.list()).items
    assert event.actor == "tester"
    app.dependency_overrides.clear()
    async with await _client(app) as client:
        refused = await client.get("/customers")
    assert_problem(refused, 400, "tenant_required", "X-Tenant-ID")


async def test_an_override_of_the_tenant_function_that_takes_parameters_is_refused() -> None:
    from linkbay_customers_fastapi import header_tenancy

    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(_service(InMemoryStorage()), get_tenant_id=tenancy.tenant_id)
    )
    app.dependency_overrides[tenancy.tenant_id] = lambda request: "pinned"
    async with await _client(app) as client:
        with pytest.raises(TypeError, match=r"router's tenant_id dependency .*\(request\)"):
            await client.get("/customers")
