"""Ready-made tenant and acting-user dependencies: from headers, or from a signed JWT."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from linkbay_customers.domain import InvalidInput, check_actor, check_tenant
from linkbay_customers_fastapi._context import with_annotations
from linkbay_customers_fastapi._problems import (
    InvalidHeader,
    NotAuthenticated,
    TenantRequired,
    answers,
)

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT >= 2.10; only the type checker needs it

__all__ = ("Tenancy", "check_jwt_key", "header_tenancy", "jwt_tenancy")

_NUMERIC_DATES = ("exp", "nbf", "iat")  # the registered claims that hold a time


@dataclass(frozen=True, slots=True)
class Tenancy:
    """How requests name their tenant and acting user: two FastAPI dependencies.

    Pass them to ``create_customer_router(service, get_tenant_id=t.tenant_id,
    get_actor=t.actor)``, or use them in the host's own routes.

    Attributes:
        tenant_id: Dependency returning the request's tenant id; it rejects the request
            (400 or 401) when there is none.
        actor: Dependency returning the acting user's id, or None.
    """

    tenant_id: Callable[..., Awaitable[str]]
    actor: Callable[..., Awaitable[str | None]]


def _single_header(request: Request, name: str) -> None:
    """Refuse a request that sends a header more than once.

    Behind a gateway that appends its own header instead of replacing the client's,
    a repeated header would let the client choose which one counts.

    Raises:
        InvalidHeader: ``name`` appears more than once (HTTP 400).
    """
    count = len(request.headers.getlist(name))
    if count > 1:
        raise InvalidHeader(f"the {name} header must be sent once, not {count} times", field=name)


def _header_text(value: str | None) -> str | None:
    """A header's value read as UTF-8 where its bytes are UTF-8, else as Latin-1.

    The ASGI server hands header bytes over decoded as Latin-1 (RFC 9110's legacy
    reading), so ``tënant`` sent in UTF-8 would arrive as ``tÃ«nant``; encoding
    back gives the bytes sent. Bytes that are not UTF-8 keep their Latin-1 reading:
    ``tënant`` names one tenant in either encoding.
    """
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def header_tenancy(
    *, tenant_header: str = "X-Tenant-ID", actor_header: str = "X-Actor-ID"
) -> Tenancy:
    """Tenant and acting user read from request headers, as they are.

    Meant for a service behind a gateway that authenticates callers and sets the
    headers itself, and for trying the API out: the headers are trusted as sent.

    Args:
        tenant_header: Header naming the tenant (required; 1 to 64 printable characters
            without spaces, in UTF-8 or Latin-1). Missing or invalid: 400
            ``tenant_required``; sent twice: 400 ``invalid_header``.
        actor_header: Header naming the acting user (optional; 1 to 255 printable
            characters, in UTF-8 or Latin-1). Invalid or sent twice: 400
            ``invalid_header``.
    """

    # The header parameters have names of their own: the router resolves both
    # dependencies as one (see ``one_dependency``).
    @answers(TenantRequired, InvalidHeader)
    async def tenant_id(
        request: Request,
        tenant_header_value: str | None = Header(
            None,
            alias=tenant_header,
            description="The tenant the request acts for (required).",
            examples=["tenant_123"],
        ),
    ) -> str:
        _single_header(request, tenant_header)
        if tenant_header_value is None:
            raise TenantRequired(f"the {tenant_header} header is required", field=tenant_header)
        try:
            return check_tenant(_header_text(tenant_header_value))
        except InvalidInput:
            raise TenantRequired(
                f"the {tenant_header} header must be 1 to 64 printable characters without spaces",
                field=tenant_header,
            ) from None

    @answers(InvalidHeader)
    async def actor(
        request: Request,
        actor_header_value: str | None = Header(
            None,
            alias=actor_header,
            description="The user acting, recorded in the audit trail and on notes.",
            examples=["user_456"],
        ),
    ) -> str | None:
        _single_header(request, actor_header)
        try:
            return check_actor(_header_text(actor_header_value), field=actor_header)
        except InvalidInput as exc:
            raise InvalidHeader(
                f"the {actor_header} header must be 1 to 255 printable characters",
                field=exc.field,
            ) from None

    return Tenancy(tenant_id=tenant_id, actor=actor)


def check_jwt_key(key: Any, algorithms: Sequence[str] = ("HS256",)) -> None:
    """Refuse a key too weak for any of the algorithms, before any token is checked.

    An HMAC secret must be at least as long as the hash's output (RFC 7518 §3.2): 32
    bytes for HS256, 48 for HS384, 64 for HS512. An RSA key must have at least 2048
    bits. The minimums are PyJWT's own.

    Raises:
        ValueError: no algorithm, an unknown one, a key the algorithm cannot use, or
            a key shorter than its minimum.
    """
    if not algorithms:
        raise ValueError("jwt_tenancy needs at least one algorithm")
    for name in algorithms:
        try:
            algorithm = jwt.get_algorithm_by_name(name)
            prepared = algorithm.prepare_key(key.key if isinstance(key, jwt.PyJWK) else key)
        except NotImplementedError:
            raise ValueError(f"unknown or unavailable JWT algorithm {name!r}") from None
        except (jwt.InvalidKeyError, TypeError, ValueError) as error:
            raise ValueError(f"the key cannot be used with {name}: {error}") from None
        weakness = algorithm.check_key_length(prepared)
        if weakness:
            raise ValueError(f"the key is too weak for {name}: {weakness}")


def jwt_tenancy(
    key: Any,
    *,
    algorithms: Sequence[str] = ("HS256",),
    tenant_claim: str = "tenant_id",
    actor_claim: str | None = "sub",
    audience: str | Sequence[str] | None = None,
    issuer: str | None = None,
    leeway: float | timedelta = 0,
    required_claims: Sequence[str] = (),
    require_expiry: bool = True,
) -> Tenancy:
    """Tenant and acting user read from a signed JWT in ``Authorization: Bearer <token>``.

    The signature is always checked, and so is ``exp``, which every token must carry
    unless ``require_expiry`` is False; ``nbf`` when present, and ``aud``/``iss`` when
    configured. A request without a token, with a token that does not verify, or
    without a valid tenant claim gets 401 ``not_authenticated`` and never reaches
    the storage.

    Args:
        key: The HMAC secret for ``HS*`` algorithms (at least 32 bytes for HS256, 48
            for HS384, 64 for HS512: RFC 7518 §3.2), or the public key (PEM text, a
            ``cryptography`` key or a ``jwt.PyJWK``) for ``RS*``/``ES*``/``EdDSA``.
        algorithms: The algorithms accepted; never let the token choose.
        tenant_claim: The claim holding the tenant id.
        actor_claim: The claim holding the acting user (``sub``), or None for no actor.
        audience: The expected ``aud``; tokens for another audience, or for none, are
            refused.
        issuer: The expected ``iss``; tokens from another issuer, or from none, are
            refused.
        leeway: Clock skew tolerated on ``exp``/``nbf``, in seconds or as a timedelta.
        required_claims: Claims every token must carry besides ``exp``, such as
            ``("iat",)``.
        require_expiry: Refuse tokens without ``exp``, which would be valid forever.
            Turn off only for tokens whose lifetime the host limits otherwise.

    Raises:
        ValueError: no algorithm, or a key too weak for one of them (see
            ``check_jwt_key``).
    """
    accepted = list(algorithms)
    check_jwt_key(key, accepted)
    bearer = HTTPBearer(
        auto_error=False,
        description=f"A JWT signed by the host, carrying the tenant in `{tenant_claim}`.",
    )
    # PyJWT itself refuses a token without ``aud``/``iss`` when either is expected.
    required = dict.fromkeys([*(["exp"] if require_expiry else []), *required_claims])
    options: Options = {
        "verify_signature": True,
        "require": list(required),
        "enforce_minimum_key_length": True,
    }

    @with_annotations(credentials=Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)])
    async def claims(
        request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> dict[str, Any]:
        if len(request.headers.getlist("Authorization")) > 1:
            raise NotAuthenticated("the Authorization header must be sent once")
        if credentials is None:
            raise NotAuthenticated("a bearer token is required")
        try:
            decoded: dict[str, Any] = jwt.decode(
                credentials.credentials,
                key,
                algorithms=accepted,
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the token has expired") from None
        except jwt.MissingRequiredClaimError as error:
            raise NotAuthenticated(f"the token carries no {error.claim!r} claim") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("the token is not valid") from None
        for claim in _NUMERIC_DATES:
            value = decoded.get(claim)
            # RFC 7519, section 2: a NumericDate is a JSON number. PyJWT reads a
            # string of digits as one; a token carrying one is refused here.
            if claim in decoded and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise NotAuthenticated(f"the token's {claim!r} claim is not a number")
        return decoded

    @answers(NotAuthenticated)
    @with_annotations(payload=Annotated[dict[str, Any], Depends(claims)])
    async def tenant_id(payload: dict[str, Any]) -> str:
        try:
            return check_tenant(payload.get(tenant_claim))
        except InvalidInput:
            raise NotAuthenticated(f"the token carries no valid {tenant_claim!r} claim") from None

    @answers(NotAuthenticated)
    @with_annotations(payload=Annotated[dict[str, Any], Depends(claims)])
    async def actor(payload: dict[str, Any]) -> str | None:
        if actor_claim is None:
            return None
        try:
            return check_actor(payload.get(actor_claim))
        except InvalidInput:
            raise NotAuthenticated(f"the token's {actor_claim!r} claim is not valid") from None

    return Tenancy(tenant_id=tenant_id, actor=actor)
