"""The standalone application: health, lifespan, and construction from a URL."""

from __future__ import annotations

import re

import httpx
from dependency_injector import providers
from fastapi import FastAPI

import linkbay_customers
from linkbay_customers import CustomersContainer, InvalidInput, bootstrap
from linkbay_customers_fastapi import (
    add_problem_handlers,
    create_app,
    create_customer_router,
    header_tenancy,
)
from linkbay_customers_memory import InMemoryStorage
from tests.api._support import assert_problem, tenant_headers


class ClosingSpy(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_health_needs_no_tenant(memory_container: CustomersContainer) -> None:
    async with await _client(create_app(memory_container)) as client:
        response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": linkbay_customers.__version__}


async def test_the_storage_is_closed_when_the_app_shuts_down() -> None:
    container = bootstrap("memory://")
    spy = ClosingSpy()
    container.storage.override(providers.Object(spy))
    app = create_app(container)

    async with app.router.lifespan_context(app):
        assert spy.closed == 0
    assert spy.closed == 1


async def test_an_app_can_be_made_from_a_database_url(sqlite_url: str, tenant: str) -> None:
    app = create_app(sqlite_url)
    try:
        async with await _client(app) as client:
            created = await client.post(
                "/customers", json={"email": "url@example.com"}, headers=tenant_headers(tenant)
            )
            fetched = await client.get(
                f"/customers/{created.json()['id']}", headers=tenant_headers(tenant)
            )
    finally:
        async with app.router.lifespan_context(app):
            pass

    assert created.status_code == 201
    assert fetched.json()["email"] == "url@example.com"


async def test_the_service_follows_overrides_of_the_container() -> None:
    container = bootstrap("memory://")
    app = create_app(container)
    replacement = InMemoryStorage()
    container.storage.override(providers.Object(replacement))
    container.customer_service.reset()

    async with await _client(app) as client:
        await client.post(
            "/customers", json={"email": "a@example.com"}, headers=tenant_headers("t")
        )

    async with replacement.unit_of_work("t") as uow:
        assert (await uow.customers.get_by_email("a@example.com")) is not None


async def test_a_problem_quoting_a_lone_surrogate_is_still_valid_json() -> None:
    def actor_of_request() -> str:
        raise InvalidInput.single("name\udc80", "bad value \ud800")

    tenancy = header_tenancy()
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            bootstrap("memory://").customer_service(),
            get_tenant_id=tenancy.tenant_id,
            get_actor=actor_of_request,
        )
    )

    async with await _client(app) as client:
        response = await client.get("/customers", headers=tenant_headers("t1"))

    body = assert_problem(response, 422, "invalid_input", "name\\udc80")
    assert body["errors"][0]["message"] == "bad value \\ud800"


async def test_the_docs_pages_load_every_asset_from_the_app_itself(
    memory_container: CustomersContainer,
) -> None:
    """/docs and /redoc work on a machine without internet: no asset from a CDN."""
    async with await _client(create_app(memory_container)) as client:
        for page, kinds in (("/docs", {".js", ".css"}), ("/redoc", {".js"})):
            html = await client.get(page)
            assert html.status_code == 200
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
            assert not [url for url in assets if "://" in url], f"{page} links a remote asset"
            loaded = set()
            for url in assets:
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert asset.content, url
                loaded.update(kind for kind in kinds if url.endswith(kind))
            assert loaded == kinds, f"{page} loads {sorted(loaded)}"
