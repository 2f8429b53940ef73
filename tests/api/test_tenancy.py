"""The tenancy helpers: the tenant and acting user from headers or from a signed JWT."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from linkbay_customers import CustomersContainer, CustomerService, HeuristicIntelligence
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import (
    Tenancy,
    add_problem_handlers,
    check_jwt_key,
    create_app,
    create_customer_router,
    header_tenancy,
    jwt_tenancy,
)
from linkbay_customers_memory import InMemoryStorage
from tests.api._support import assert_problem

SECRET = "a-test-secret-long-enough-for-every-hmac-algorithm-" + "x" * 16


def token(
    claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256", expires: bool = True
) -> str:
    """A signed token; it expires in a day unless ``claims`` or ``expires`` say otherwise
    (a day: parametrised tokens are made when the tests are collected, long before a
    slow run reaches them)."""
    if expires:
        claims = {"exp": time.time() + 86_400, **claims}
    return jwt.encode(claims, key, algorithm=algorithm)


def bearer(claims: dict[str, Any], **options: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(claims, **options)}"}


class SpyStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: list[str] = []

    def unit_of_work(self, tenant_id: str) -> Any:
        self.tenants.append(tenant_id)
        return super().unit_of_work(tenant_id)


@pytest.fixture
def spy() -> SpyStorage:
    return SpyStorage()


def _app(spy: SpyStorage, tenancy: Tenancy) -> FastAPI:
    service = CustomerService(spy.unit_of_work, FixedClock(), HeuristicIntelligence())
    app = FastAPI()
    add_problem_handlers(app)
    app.include_router(
        create_customer_router(service, get_tenant_id=tenancy.tenant_id, get_actor=tenancy.actor)
    )
    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def jwt_client(spy: SpyStorage) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(_app(spy, jwt_tenancy(SECRET))) as client:
        yield client


class TestJWT:
    async def test_a_valid_token_names_the_tenant_and_the_actor(
        self, jwt_client: httpx.AsyncClient, spy: SpyStorage
    ) -> None:
        headers = bearer({"tenant_id": "acme", "sub": "user_42", "exp": time.time() + 60})

        created = await jwt_client.post(
            "/customers", json={"email": "a@example.com"}, headers=headers
        )
        note = await jwt_client.post(
            f"/customers/{created.json()['id']}/notes", json={"note": "n"}, headers=headers
        )

        assert created.status_code == 201
        assert created.json()["tenant_id"] == "acme"
        assert note.json()["created_by"] == "user_42"
        assert set(spy.tenants) == {"acme"}

    async def test_tenant_and_actor_headers_are_ignored_when_a_token_is_used(
        self, jwt_client: httpx.AsyncClient, spy: SpyStorage
    ) -> None:
        headers = {**bearer({"tenant_id": "acme"}), "X-Tenant-ID": "evil", "X-Actor-ID": "mallory"}

        created = await jwt_client.post(
            "/customers", json={"email": "a@example.com"}, headers=headers
        )
        note = await jwt_client.post(
            f"/customers/{created.json()['id']}/notes", json={"note": "n"}, headers=headers
        )

        assert created.json()["tenant_id"] == "acme"
        assert note.json()["created_by"] is None
        assert set(spy.tenants) == {"acme"}

    @pytest.mark.parametrize(
        ("headers", "detail"),
        [
            pytest.param({}, "a bearer token is required", id="no token"),
            pytest.param(
                {"Authorization": "Basic dXNlcjpwYXNz"}, "a bearer token is required", id="basic"
            ),
            pytest.param(
                {"Authorization": "Bearer not.a.token"}, "the token is not valid", id="garbage"
            ),
            pytest.param(
                bearer({"tenant_id": "acme"}, key=SECRET[::-1]),
                "the token is not valid",
                id="bad signature",
            ),
            pytest.param(
                bearer({"tenant_id": "acme", "exp": time.time() - 10}),
                "the token has expired",
                id="expired",
            ),
            pytest.param(
                bearer({"tenant_id": "acme", "nbf": time.time() + 3600}),
                "the token is not valid",
                id="not yet valid",
            ),
            pytest.param(
                bearer({"tenant_id": "acme"}, algorithm="HS512"),
                "the token is not valid",
                id="other algorithm",
            ),
            pytest.param(
                {"Authorization": "Bearer " + jwt.encode({"tenant_id": "acme"}, None, "none")},
                "the token is not valid",
                id="unsigned",
            ),
            pytest.param(
                bearer({"sub": "user_42"}),
                "the token carries no valid 'tenant_id' claim",
                id="no tenant claim",
            ),
            pytest.param(
                bearer({"tenant_id": "two words"}),
                "the token carries no valid 'tenant_id' claim",
                id="invalid tenant claim",
            ),
            pytest.param(
                bearer({"tenant_id": 42}),
                "the token carries no valid 'tenant_id' claim",
                id="numeric tenant claim",
            ),
            pytest.param(
                bearer({"tenant_id": "acme", "sub": ""}),
                "the token's 'sub' claim is not valid",
                id="empty subject",
            ),
        ],
    )
    async def test_a_request_without_a_valid_token_is_a_401_that_never_reaches_the_storage(
        self,
        jwt_client: httpx.AsyncClient,
        spy: SpyStorage,
        headers: dict[str, str],
        detail: str,
    ) -> None:
        response = await jwt_client.post(
            "/customers", json={"email": "a@example.com"}, headers=headers
        )

        body = assert_problem(response, 401, "not_authenticated", "Authorization")
        assert body["detail"] == detail
        assert response.headers["www-authenticate"] == "Bearer"
        assert spy.tenants == []

    async def test_claim_names_audience_and_required_claims_are_configurable(
        self, spy: SpyStorage
    ) -> None:
        tenancy = jwt_tenancy(
            SECRET,
            tenant_claim="org",
            actor_claim="email",
            audience="customers-api",
            required_claims=("exp",),
        )
        good = {"org": "acme", "email": "ops@acme.test", "aud": "customers-api"}

        async with await _client(_app(spy, tenancy)) as client:
            ok = await client.get("/customers", headers=bearer({**good, "exp": time.time() + 60}))
            no_exp = await client.get("/customers", headers=bearer(good, expires=False))
            wrong_audience = await client.get(
                "/customers", headers=bearer({**good, "aud": "other", "exp": time.time() + 60})
            )

        assert ok.status_code == 200
        assert_problem(no_exp, 401, "not_authenticated", "Authorization")
        assert_problem(wrong_audience, 401, "not_authenticated", "Authorization")
        assert spy.tenants == ["acme"]

    async def test_leeway_accepts_a_token_just_expired(self, spy: SpyStorage) -> None:
        async with await _client(_app(spy, jwt_tenancy(SECRET, leeway=60))) as client:
            response = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme", "exp": time.time() - 5})
            )

        assert response.status_code == 200

    def test_at_least_one_algorithm_is_needed(self) -> None:
        with pytest.raises(ValueError, match="algorithm"):
            jwt_tenancy(SECRET, algorithms=())


class TestHeaders:
    async def test_header_names_are_configurable(self, spy: SpyStorage) -> None:
        tenancy = header_tenancy(tenant_header="X-Org", actor_header="X-User")
        async with await _client(_app(spy, tenancy)) as client:
            created = await client.post(
                "/customers",
                json={"email": "a@example.com"},
                headers={"X-Org": "acme", "X-User": "u1"},
            )
            note = await client.post(
                f"/customers/{created.json()['id']}/notes",
                json={"note": "n"},
                headers={"X-Org": "acme", "X-User": "u1"},
            )
            missing = await client.get("/customers", headers={"X-Tenant-ID": "acme"})

        assert created.json()["tenant_id"] == "acme"
        assert note.json()["created_by"] == "u1"
        assert_problem(missing, 400, "tenant_required", "X-Org")


async def test_create_app_with_a_secret_requires_signed_tokens(
    memory_container: CustomersContainer,
) -> None:
    app = create_app(memory_container, jwt_secret=SECRET)
    async with await _client(app) as client:
        header_only = await client.get("/customers", headers={"X-Tenant-ID": "acme"})
        signed = await client.post(
            "/customers",
            json={"email": "a@example.com"},
            headers=bearer({"tenant_id": "acme", "sub": "u1"}),
        )
        health = await client.get("/health")

    assert_problem(header_only, 401, "not_authenticated", "Authorization")
    assert signed.status_code == 201
    assert signed.json()["tenant_id"] == "acme"
    assert health.status_code == 200


class TestRepeatedHeaders:
    @pytest.mark.parametrize("header", ["X-Tenant-ID", "X-Actor-ID"])
    async def test_a_header_sent_twice_is_a_400_naming_it_that_never_reaches_the_storage(
        self, spy: SpyStorage, header: str
    ) -> None:
        headers = [("X-Tenant-ID", "a"), ("X-Actor-ID", "u1"), (header, "b")]
        async with await _client(_app(spy, header_tenancy())) as client:
            listed = await client.get("/customers", headers=headers)
            created = await client.post("/customers", json={"email": "a@x.com"}, headers=headers)

        for response in (listed, created):
            body = assert_problem(response, 400, "invalid_header", header)
            assert body["detail"] == f"the {header} header must be sent once, not 2 times"
        assert spy.tenants == []

    async def test_one_of_each_header_is_served(self, spy: SpyStorage) -> None:
        async with await _client(_app(spy, header_tenancy())) as client:
            listed = await client.get("/customers", headers={"X-Tenant-ID": "a", "X-Actor-ID": "u"})

        assert listed.status_code == 200
        assert spy.tenants == ["a"]

    async def test_two_authorization_headers_are_refused(
        self, jwt_client: httpx.AsyncClient
    ) -> None:
        good = bearer({"tenant_id": "acme"})["Authorization"]
        headers = [
            ("Authorization", good),
            ("Authorization", bearer({"tenant_id": "b"})["Authorization"]),
        ]

        response = await jwt_client.get("/customers", headers=headers)

        body = assert_problem(response, 401, "not_authenticated", "Authorization")
        assert body["detail"] == "the Authorization header must be sent once"


class TestWeakTokens:
    @pytest.mark.parametrize(
        ("key", "algorithms"),
        [
            pytest.param("x", ("HS256",), id="one byte"),
            pytest.param("k" * 31, ("HS256",), id="31 bytes"),
            pytest.param("k" * 47, ("HS384",), id="47 bytes for HS384"),
            pytest.param("k" * 63, ("HS256", "HS512"), id="63 bytes for HS512"),
        ],
    )
    def test_a_secret_shorter_than_the_hash_is_refused_when_configured(
        self, key: str, algorithms: tuple[str, ...], memory_container: CustomersContainer
    ) -> None:
        with pytest.raises(ValueError, match=r"too weak .*RFC 7518 Section 3\.2"):
            jwt_tenancy(key, algorithms=algorithms)
        with pytest.raises(ValueError, match="too weak"):
            create_app(memory_container, jwt_secret=key, jwt_algorithms=algorithms)

    def test_a_secret_of_32_bytes_is_enough_for_hs256(self) -> None:
        jwt_tenancy("k" * 32)
        check_jwt_key("k" * 64, ("HS256", "HS384", "HS512"))

    async def test_a_token_without_exp_is_refused_by_default(self, spy: SpyStorage) -> None:
        async with await _client(_app(spy, jwt_tenancy(SECRET))) as client:
            forever = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme"}, expires=False)
            )
            expiring = await client.get("/customers", headers=bearer({"tenant_id": "acme"}))

        body = assert_problem(forever, 401, "not_authenticated", "Authorization")
        assert body["detail"] == "the token carries no 'exp' claim"
        assert expiring.status_code == 200
        assert spy.tenants == ["acme"]

    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    async def test_a_time_claim_that_is_not_a_number_is_refused(
        self, spy: SpyStorage, claim: str
    ) -> None:
        later = int(time.time()) + 86_400
        earlier = int(time.time()) - 60
        value = later if claim == "exp" else earlier
        async with await _client(_app(spy, jwt_tenancy(SECRET))) as client:
            as_text = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme", claim: str(value)})
            )
            as_number = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme", claim: value})
            )

        body = assert_problem(as_text, 401, "not_authenticated", "Authorization")
        assert body["detail"] == f"the token's {claim!r} claim is not a number"
        assert as_number.status_code == 200
        assert spy.tenants == ["acme"]

    async def test_tokens_without_exp_can_be_allowed(self, spy: SpyStorage) -> None:
        async with await _client(_app(spy, jwt_tenancy(SECRET, require_expiry=False))) as client:
            forever = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme"}, expires=False)
            )

        assert forever.status_code == 200

    async def test_audience_and_issuer_are_checked_when_configured(
        self, memory_container: CustomersContainer
    ) -> None:
        app = create_app(
            memory_container, jwt_secret=SECRET, jwt_audience="crm", jwt_issuer="https://id.test"
        )
        good = {"tenant_id": "acme", "aud": "crm", "iss": "https://id.test"}
        async with await _client(app) as client:
            ok = await client.get("/customers", headers=bearer(good))
            no_aud = await client.get(
                "/customers", headers=bearer({"tenant_id": "acme", "iss": "https://id.test"})
            )
            other_iss = await client.get("/customers", headers=bearer({**good, "iss": "evil"}))
            no_exp = await client.get("/customers", headers=bearer(good, expires=False))

        assert ok.status_code == 200
        assert assert_problem(no_aud, 401, "not_authenticated", "Authorization")["detail"] == (
            "the token carries no 'aud' claim"
        )
        assert_problem(other_iss, 401, "not_authenticated", "Authorization")
        assert_problem(no_exp, 401, "not_authenticated", "Authorization")


class TestHeadersInUtf8:
    async def test_a_tenant_and_actor_sent_in_utf8_are_read_as_sent(self, spy: SpyStorage) -> None:
        headers = {"X-Tenant-ID": "tënant".encode(), "X-Actor-ID": "Zoë Ünal".encode()}
        async with await _client(_app(spy, header_tenancy())) as client:
            created = await client.post("/customers", json={"email": "a@x.com"}, headers=headers)
            listed = await client.get("/customers", headers=headers)

        assert created.status_code == 201, created.text
        assert created.json()["tenant_id"] == "tënant"
        assert [c["id"] for c in listed.json()["items"]] == [created.json()["id"]]
        assert spy.tenants == ["tënant", "tënant"]

    async def test_a_tenant_in_latin_1_or_in_utf8_is_one_tenant(self, spy: SpyStorage) -> None:
        async with await _client(_app(spy, header_tenancy())) as client:
            created = await client.post(
                "/customers", json={"email": "a@x.com"}, headers={"X-Tenant-ID": b"t\xebnant"}
            )
            listed = await client.get("/customers", headers={"X-Tenant-ID": "tënant".encode()})

        assert created.json()["tenant_id"] == "tënant"
        assert [c["id"] for c in listed.json()["items"]] == [created.json()["id"]]
