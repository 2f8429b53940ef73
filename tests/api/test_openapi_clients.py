"""Clients generated from the OpenAPI document: typed problems, no warnings, honest codes."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from linkbay_customers import CustomersContainer, bootstrap
from linkbay_customers_fastapi import (
    PROBLEM_MEDIA_TYPE,
    add_problem_handlers,
    add_problem_schemas,
    create_app,
    create_customer_router,
    header_tenancy,
)
from tests.api._support import ORDER, tenant_headers
from tests.api.test_problems import BAD_REQUESTS

METHODS = ("get", "post", "patch", "delete", "put")
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
NUL = "must not contain NUL characters"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(bootstrap("memory://")).openapi()
    return spec


@pytest.fixture(scope="module")
def document_file(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _codes(operation: dict[str, Any]) -> dict[int, set[str]]:
    return {
        int(status): set(response["x-problem-codes"])
        for status, response in operation["responses"].items()
        if "x-problem-codes" in response
    }


# ---------------------------------------------------------------- openapi-python-client


@pytest.fixture(scope="module")
def generated_client(document_file: Path) -> Iterator[tuple[subprocess.CompletedProcess[str], str]]:
    package = "linkbay_generated_client"
    result = _run(
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        str(document_file),
        "--output-path",
        str(document_file.parent / package),
        "--meta",
        "none",
        cwd=document_file.parent,
    )
    sys.path.insert(0, str(document_file.parent))
    yield result, package
    sys.path.remove(str(document_file.parent))
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        del sys.modules[name]


def test_openapi_python_client_generates_the_client_without_warnings(
    generated_client: tuple[subprocess.CompletedProcess[str], str],
) -> None:
    result, _ = generated_client
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output


@pytest.fixture
async def generated_api(
    generated_client: tuple[subprocess.CompletedProcess[str], str],
    memory_container: CustomersContainer,
) -> AsyncIterator[tuple[str, Any]]:
    _, package = generated_client
    client_module = importlib.import_module(f"{package}.client")
    transport = httpx.ASGITransport(app=create_app(memory_container))
    client = client_module.Client(
        base_url="http://testserver",
        headers=tenant_headers("t1"),
        httpx_args={"transport": transport},
    )
    async with client:
        yield package, client


async def test_the_generated_client_returns_typed_problems(
    generated_api: tuple[str, Any],
) -> None:
    package, client = generated_api
    get_customer = importlib.import_module(f"{package}.api.customers.get_customer")
    create_customer = importlib.import_module(f"{package}.api.customers.create_customer")
    models = importlib.import_module(f"{package}.models")

    missing = await get_customer.asyncio_detailed(7, client=client)
    invalid = await create_customer.asyncio_detailed(
        client=client, body=models.CustomerCreate(email="a\x00@example.com")
    )

    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert (missing.parsed.code, missing.parsed.field) == ("customer_not_found", "customer_id")
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.Problem)
    [error] = invalid.parsed.errors
    assert isinstance(error, models.ProblemFieldError)
    assert (error.field, error.message) == ("email", "must not contain NUL characters")


# ------------------------------------------------------------- datamodel-code-generator


@pytest.fixture(scope="module")
def generated_models(
    document_file: Path,
) -> Iterator[tuple[subprocess.CompletedProcess[str], ModuleType]]:
    output = document_file.parent / "linkbay_generated_models.py"
    result = _run(
        "-m",
        "datamodel_code_generator",
        "--input",
        str(document_file),
        "--input-file-type",
        "openapi",
        "--output",
        str(output),
        "--output-model-type",
        "pydantic_v2.BaseModel",
        "--formatters",
        "builtin",
        cwd=document_file.parent,
    )
    spec = importlib.util.spec_from_file_location("linkbay_generated_models", output)
    assert spec is not None, result.stderr
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: pydantic resolves the models' annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield result, module
    del sys.modules[spec.name]


def test_datamodel_code_generator_generates_the_models_without_warnings(
    generated_models: tuple[subprocess.CompletedProcess[str], ModuleType],
) -> None:
    result, _ = generated_models

    assert result.returncode == 0, result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stderr


async def test_the_generated_models_read_the_problems_the_api_returns(
    generated_models: tuple[subprocess.CompletedProcess[str], ModuleType],
    memory_client: httpx.AsyncClient,
) -> None:
    _, module = generated_models

    response = await memory_client.post(
        "/customers",
        json={"email": "a@example.com", "tags": ["a\x00"]},
        headers=tenant_headers("t1"),
    )
    problem = module.Problem.model_validate(response.json())

    assert isinstance(problem, BaseModel)
    assert problem.code == "invalid_input"
    assert isinstance(problem.errors[0], module.ProblemFieldError)
    assert problem.errors[0].message == "must not contain NUL characters"


# ------------------------------------------------------------------------ the document


def test_every_problem_response_refers_to_the_problem_component(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    problems = 0
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                problems += 1
                assert response["content"] == {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}, (
                    method,
                    path,
                    status,
                )

    assert problems > 100
    assert schemas["Problem"]["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/ProblemFieldError"
    }
    assert "$defs" not in schemas["Problem"]


def test_every_parameter_has_a_description(document: dict[str, Any]) -> None:
    parameters = [
        (method, path, parameter["name"])
        for method, path, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description", "").strip()
    ]

    assert sum(len(op.get("parameters", [])) for _, _, op in _operations(document)) > 50
    assert parameters == []


def test_each_route_lists_only_the_codes_it_can_return(document: dict[str, Any]) -> None:
    create = _codes(document["paths"]["/customers"]["post"])
    listing = _codes(document["paths"]["/customers"]["get"])
    read = _codes(document["paths"]["/customers/{customer_id}"]["get"])
    consent = _codes(document["paths"]["/customers/{customer_id}/consent/{consent_type}"]["post"])

    assert create[409] == {"duplicate_email"}
    assert 404 not in create
    assert create[413] == {"body_too_large"}
    assert create[400] == {"tenant_required", "invalid_header", "bad_request"}
    assert not {404, 409, 413} & set(listing)
    assert listing[400] == {"tenant_required", "invalid_header"}
    assert read[404] == {"customer_not_found"}
    assert consent[422] == {"invalid_input", "consent_type_unknown"}
    for method, path, operation in _operations(document):
        for status, codes in _codes(operation).items():
            description = operation["responses"][str(status)]["description"]
            assert all(f"`{code}`" in description for code in codes), (method, path, status)


def _template(document: dict[str, Any], method: str, url: str) -> str | None:
    path = httpx.URL(url).path
    matches = [
        template
        for template, item in document["paths"].items()
        if method.lower() in item
        and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) is not None
    ]
    # Fixed segments win over parameters, as the router tries them first.
    return min(matches, key=lambda template: template.count("{"), default=None)


PROVOKED = [
    (request.values[0], request.values[1], request.values[3], request.values[4])
    for request in BAD_REQUESTS
]


async def test_every_code_the_api_returns_is_listed_for_its_route(
    document: dict[str, Any], memory_client: httpx.AsyncClient
) -> None:
    headers = tenant_headers("t1")
    customer = (
        await memory_client.post("/customers", json={"email": "a@example.com"}, headers=headers)
    ).json()["id"]
    await memory_client.post(f"/customers/{customer}/orders", json=ORDER, headers=headers)
    await memory_client.post(
        f"/customers/{customer}/consent/analytics", json={"consented": False}, headers=headers
    )
    requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        ("POST", "/customers", headers, {"json": {"email": "a@example.com"}}),
        ("POST", "/customers", {}, {"json": {"email": "b@example.com"}}),
        ("POST", "/customers", headers, {"content": b"x" * 2_000_000}),
        (
            "POST",
            "/customers/merge",
            headers,
            {"json": {"source_customer_id": customer, "target_customer_id": customer}},
        ),
        ("POST", f"/customers/{customer}/orders", headers, {"json": {**ORDER, "total": "1.00"}}),
        ("PATCH", f"/customers/{customer}/addresses/99", headers, {"json": {"city": "Roma"}}),
        (
            "POST",
            f"/customers/{customer}/consent/telepathy",
            headers,
            {"json": {"consented": True}},
        ),
        ("GET", f"/customers/{customer}/churn-risk", headers, {}),
        ("GET", "/customers/99/notes", headers, {}),
    ]
    provoked = list(PROVOKED)
    for method, url, sent, options in requests:
        response = await memory_client.request(method, url, headers=sent, **options)
        provoked.append((method, url, response.status_code, response.json()["code"]))
    provoked_codes = {code for _, _, _, code in provoked}

    assert {
        "duplicate_email",
        "tenant_required",
        "body_too_large",
        "invalid_merge",
        "order_conflict",
        "address_not_found",
        "consent_type_unknown",
        "profiling_not_allowed",
        "customer_not_found",
    } <= provoked_codes
    for method, url, status, code in provoked:
        template = _template(document, method, url)
        if template is None:  # no such route: not_found, method_not_allowed
            continue
        documented = _codes(document["paths"][template][method.lower()])
        assert code in documented.get(status, set()), (method, template, status, code)


# ------------------------------------------------------------------------- host apps


def test_a_host_app_documents_the_problem_component(
    memory_container: CustomersContainer,
) -> None:
    app = FastAPI()
    add_problem_handlers(app, framework_errors=False)
    app.include_router(
        create_customer_router(
            memory_container.customer_service(),
            get_tenant_id=header_tenancy().tenant_id,
            prefix="/api/clients",
        )
    )

    spec = app.openapi()

    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "field",
    }
    assert "ProblemFieldError" in spec["components"]["schemas"]
    response = spec["paths"]["/api/clients/{customer_id}"]["get"]["responses"]["404"]
    assert response["content"][PROBLEM_MEDIA_TYPE]["schema"] == PROBLEM_REF


def test_a_host_model_named_problem_is_refused_by_name() -> None:
    class Problem(BaseModel):
        reason: str

    app = FastAPI()

    @app.get("/thing", responses={418: {"model": Problem}})
    async def thing() -> dict[str, str]:
        return {}

    document = app.openapi()

    with pytest.raises(ValueError, match=r"'Problem'.*rename"):
        add_problem_schemas(document)


# ---------------------------------------------------------------------- field messages


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"json": {"email": "a@example.com", "first_name": "a\x00b"}}, "first_name", NUL),
        ({"json": {"email": "a\x00@example.com"}}, "email", NUL),
        (
            {
                "content": b'{"email": "a@example.com", "last_name": "\\ud800"}',
                "headers": {"content-type": "application/json"},
            },
            "last_name",
            "must be valid Unicode text",
        ),
        ({"json": {"email": "not-an-email"}}, "email", "value is not a valid email address"),
    ],
    ids=["NUL in a name", "NUL in the email", "lone surrogate", "validator message"],
)
async def test_field_errors_read_as_words(
    memory_client: httpx.AsyncClient, options: dict[str, Any], field: str, message: str
) -> None:
    headers = {**tenant_headers("t1"), **options.pop("headers", {})}

    response = await memory_client.post("/customers", headers=headers, **options)

    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(message)
    assert "pattern" not in response.json()["detail"]
    assert "Value error" not in response.json()["detail"]
