"""The OpenAPI document, and the router embedded in a host's own application."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from linkbay_customers import CustomersContainer, CustomerService
from linkbay_customers.schemas import CustomerCreate, CustomerResponse, CustomerUpdate
from linkbay_customers_fastapi import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    add_problem_handlers,
    create_app,
    create_customer_router,
    header_tenancy,
    jwt_tenancy,
)
from tests.api._support import assert_problem, tenant_headers

METHODS = ("get", "post", "patch", "delete", "put")
CONFLICTS = {
    ("post", "/customers"),
    ("patch", "/customers/{customer_id}"),
    ("post", "/customers/merge"),
    ("post", "/customers/{customer_id}/orders"),
    # invalid_duplicate_decision
    ("put", "/customers/{customer_id}/distinct/{other_id}"),
    ("delete", "/customers/{customer_id}/distinct/{other_id}"),
    # profiling_not_allowed
    ("post", "/customers/{customer_id}/segment"),
    ("get", "/customers/{customer_id}/churn-risk"),
    ("get", "/customers/{customer_id}/clv"),
    ("get", "/customers/{customer_id}/similar"),
}


@pytest.fixture
def spec(memory_container: CustomersContainer) -> dict[str, Any]:
    document: dict[str, Any] = create_app(memory_container).openapi()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/customers")
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_has_a_summary_a_description_and_an_id(spec: dict[str, Any]) -> None:
    operations = _operations(spec)

    # 21 customer routes (2 of duplicates, 3 of duplicate decisions), 6 GDPR, 6 intelligence
    assert len(operations) == 33
    for method, path, operation in operations:
        assert operation["summary"], (method, path)
        assert operation["description"], (method, path)
        assert operation["tags"] == ["customers"]
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(set(ids)) == len(ids)
    assert "create_customer" in ids


def test_every_operation_documents_its_problems(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        statuses = {int(code) for code in operation["responses"]}
        expected = {400, 422, 500, 503}
        if "{" in path or path == "/customers/merge":
            expected.add(404)
        if (method, path) in CONFLICTS:
            expected.add(409)
        assert expected <= statuses, (method, path)
        for status in expected:
            content = operation["responses"][str(status)]["content"]
            assert set(content) == {PROBLEM_MEDIA_TYPE}, (method, path, status)
            assert content[PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert set(operation["responses"]["503"]["headers"]) == {"Retry-After"}, (method, path)
        assert "storage_rejected" in operation["responses"]["500"]["description"]


def _context_codes(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The (status, code) pairs of the tenant and credential problems the document's
    customer routes list."""
    context = {"tenant_required", "invalid_header", "not_authenticated"}
    return {
        (status, code)
        for _, _, operation in _operations(document)
        for status, response in operation["responses"].items()
        for code in response.get("x-problem-codes", ())
        if code in context
    }


async def test_each_route_lists_the_tenancy_problems_of_its_tenancy_and_no_others(
    memory_container: CustomersContainer,
) -> None:
    """Header tenancy never answers 401; a JWT one never answers the headers' 400s; a
    host's own dependency may answer any of them."""
    headers = create_app(memory_container).openapi()
    signed = create_app(memory_container, jwt_secret="s" * 40).openapi()

    async def host_tenant() -> str:
        return "shop"

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(memory_container.customer_service(), get_tenant_id=host_tenant)
    )

    assert _context_codes(headers) == {("400", "tenant_required"), ("400", "invalid_header")}
    assert _context_codes(signed) == {("401", "not_authenticated")}
    assert _context_codes(app.openapi()) == {
        ("400", "tenant_required"),
        ("400", "invalid_header"),
        ("401", "not_authenticated"),
    }


def test_success_responses_name_their_models(spec: dict[str, Any]) -> None:
    def success(method: str, path: str) -> tuple[str, Any]:
        responses = spec["paths"][path][method]["responses"]
        code = next(c for c in responses if c.startswith("2"))
        content = responses[code].get("content", {}).get("application/json", {})
        return code, content.get("schema")

    assert success("post", "/customers") == (
        "201",
        {"$ref": "#/components/schemas/CustomerResponse"},
    )
    assert success("get", "/customers")[1]["$ref"].endswith("PageResponse_CustomerResponse_")
    assert success("get", "/customers/search")[1]["items"] == {
        "$ref": "#/components/schemas/CustomerResponse"
    }
    assert success("delete", "/customers/{customer_id}") == ("204", None)
    orders = spec["paths"]["/customers/{customer_id}/orders"]["post"]["responses"]
    assert {"200", "201"} <= set(orders)
    assert orders["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderResponse"
    }


def test_parameters_carry_their_bounds(spec: dict[str, Any]) -> None:
    parameters = {
        p["name"]: p for p in spec["paths"]["/customers"]["get"]["parameters"] if "name" in p
    }

    assert parameters["page_size"]["schema"]["maximum"] == 100
    assert parameters["page_size"]["schema"]["default"] == 20
    assert parameters["page"]["schema"]["minimum"] == 1
    assert parameters["X-Tenant-ID"]["in"] == "header"
    assert {"segment", "tags", "email_contains", "created_after", "created_before"} <= set(
        parameters
    )


def test_the_problem_schema_matches_the_problem_model(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["Problem"]

    assert set(schema["properties"]) == set(Problem.model_fields)
    assert set(schema["required"]) == {"type", "title", "status", "detail", "code", "field"}


async def test_the_docs_pages_are_served(memory_container: CustomersContainer) -> None:
    transport = httpx.ASGITransport(app=create_app(memory_container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        docs = await client.get("/docs")
        document = await client.get("/openapi.json")

    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert document.json()["info"]["title"] == "linkbay-customers"


def test_a_jwt_app_documents_the_bearer_scheme(memory_container: CustomersContainer) -> None:
    spec = create_app(memory_container, jwt_secret="s" * 64).openapi()

    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in spec["paths"]["/customers"]["get"]["security"]


# --------------------------------------------------------------------------- embedding


class CompanyCustomerCreate(CustomerCreate):
    company_name: str | None = None


class CompanyCustomerUpdate(CustomerUpdate):
    company_name: str | None = None


class CompanyCustomerResponse(CustomerResponse):
    company_name: str | None = None


@pytest.fixture
def host_app(memory_container: CustomersContainer) -> FastAPI:
    """A host with its own API-key check, tenant resolution, prefix and models."""
    keys = {"key-acme": "acme", "key-globex": "globex"}

    def tenant_of_key(x_api_key: str = Header()) -> str:
        tenant = keys.get(x_api_key)
        if tenant is None:
            raise HTTPException(status_code=403, detail="unknown API key")
        return tenant

    def current_user(x_user: str | None = Header(None)) -> str | None:
        return x_user

    def service() -> CustomerService:
        result: CustomerService = memory_container.customer_service()
        return result

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(
            service,
            get_tenant_id=tenant_of_key,
            get_actor=current_user,
            prefix="/api/v1/clients",
            tags=["crm"],
            dependencies=[Depends(tenant_of_key)],
            customer_create_schema=CompanyCustomerCreate,
            customer_update_schema=CompanyCustomerUpdate,
            customer_response_schema=CompanyCustomerResponse,
        ),
    )
    return app


@pytest.fixture
async def host_client(host_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=host_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_a_host_mounts_the_router_with_its_own_auth_and_models(
    host_client: httpx.AsyncClient,
) -> None:
    acme = {"X-API-Key": "key-acme", "X-User": "alice"}

    created = await host_client.post(
        "/api/v1/clients", json={"email": "ceo@acme.com", "company_name": "ACME"}, headers=acme
    )
    url = f"/api/v1/clients/{created.json()['id']}"
    updated = await host_client.patch(url, json={"company_name": "ACME Corp"}, headers=acme)
    listed = await host_client.get("/api/v1/clients", headers=acme)
    searched = await host_client.get("/api/v1/clients/search", params={"q": "acme"}, headers=acme)
    note = await host_client.post(f"{url}/notes", json={"note": "n"}, headers=acme)
    foreign = await host_client.get(url, headers={"X-API-Key": "key-globex"})
    refused = await host_client.get(url, headers={"X-API-Key": "nope"})

    assert created.status_code == 201
    assert created.json()["company_name"] == "ACME"
    assert created.json()["tenant_id"] == "acme"
    assert updated.json()["company_name"] == "ACME Corp"
    assert [c["company_name"] for c in listed.json()["items"]] == ["ACME Corp"]
    assert [c["company_name"] for c in searched.json()] == ["ACME Corp"]
    assert note.json()["created_by"] == "alice"
    assert_problem(foreign, 404, "customer_not_found", "customer_id")
    assert_problem(refused, 403, "forbidden")


def test_a_host_router_documents_the_host_models(host_app: FastAPI) -> None:
    spec = host_app.openapi()
    create = spec["paths"]["/api/v1/clients"]["post"]
    schemas = spec["components"]["schemas"]

    assert create["tags"] == ["crm"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompanyCustomerCreate"
    }
    assert "company_name" in schemas["CompanyCustomerResponse"]["properties"]
    assert "company_name" in schemas["CompanyCustomerUpdate"]["properties"]
    assert not any(path.startswith("/customers") for path in spec["paths"])


async def test_the_service_may_be_chosen_per_request(
    memory_container: CustomersContainer,
) -> None:
    from linkbay_customers import bootstrap

    regions = {"eu": memory_container, "us": bootstrap("memory://")}
    tenancy = header_tenancy()

    def service_of_region(x_region: str = Header("eu")) -> CustomerService:
        result: CustomerService = regions[x_region].customer_service()
        return result

    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(create_customer_router(service_of_region, get_tenant_id=tenancy.tenant_id))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        created = await client.post(
            "/customers", json={"email": "a@example.com"}, headers=tenant_headers("t1")
        )
        in_eu = await client.get(f"/customers/{created.json()['id']}", headers=tenant_headers("t1"))
        in_us = await client.get(
            f"/customers/{created.json()['id']}",
            headers={**tenant_headers("t1"), "X-Region": "us"},
        )

    assert in_eu.status_code == 200
    assert_problem(in_us, 404, "customer_not_found", "customer_id")


def test_two_routers_can_share_one_app(memory_container: CustomersContainer) -> None:
    service = memory_container.customer_service()
    tenancy = jwt_tenancy("k" * 64)
    app = FastAPI()
    for version in ("v1", "v2"):
        app.include_router(
            create_customer_router(
                service,
                get_tenant_id=tenancy.tenant_id,
                prefix=f"/{version}/customers",
                generate_unique_id_function=lambda route, v=version: f"{v}_{route.name}",
            )
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a duplicate operation id would warn
        spec = app.openapi()

    assert spec["paths"]["/v1/customers/{customer_id}"]["get"]["operationId"] == "v1_get_customer"
    assert spec["paths"]["/v2/customers/{customer_id}"]["get"]["operationId"] == "v2_get_customer"
