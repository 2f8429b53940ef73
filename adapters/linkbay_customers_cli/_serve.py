"""``serve``: the API on uvicorn, in one event loop from migrations to shutdown.

Migrations, the demo data and the server share one event loop, so database
connections opened before serving (and the in-memory storage) stay usable by it.
With ``--workers N`` the command migrates and fills the demo tenant first, then
uvicorn runs N worker processes, each building the application with
``worker_app()`` from the environment (database URL, JWT settings, body limit,
profiling mode).
SIGINT and SIGTERM stop the server gracefully and the command then exits with 0.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from linkbay_customers import bootstrap
from linkbay_customers_cli._database import (
    describe_url,
    is_memory_url,
    open_container,
    prepare_schema,
)
from linkbay_customers_cli._demo import demo_customer, fill_demo_tenant, tenant_is_empty
from linkbay_customers_cli._errors import CommandError
from linkbay_customers_cli._profiling import PROFILING_ENV, ProfilingMode

if TYPE_CHECKING:
    from fastapi import FastAPI

    from linkbay_customers import CustomersContainer

__all__ = (
    "ApiOptions",
    "ServeOptions",
    "base_url",
    "check_jwt_secret",
    "demo_requests",
    "run_server",
    "worker_app",
)

DATABASE_URL_ENV = "LINKBAY_DATABASE_URL"
JWT_SECRET_ENV = "LINKBAY_JWT_SECRET"
JWT_AUDIENCE_ENV = "LINKBAY_JWT_AUDIENCE"
JWT_ISSUER_ENV = "LINKBAY_JWT_ISSUER"
JWT_ALLOW_NO_EXPIRY_ENV = "LINKBAY_JWT_ALLOW_NO_EXPIRY"
MAX_BODY_SIZE_ENV = "LINKBAY_MAX_BODY_SIZE"

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """How the served application authenticates requests and bounds their bodies.

    Attributes:
        jwt_secret: Accept only JWTs signed with it (HS256); None for tenant headers.
        jwt_audience: The ``aud`` tokens must carry, if any.
        jwt_issuer: The ``iss`` tokens must carry, if any.
        jwt_require_expiry: Refuse tokens without ``exp``.
        max_body_size: The largest request body, in bytes; None for the adapter's
            default (1 MiB).
    """

    jwt_secret: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_require_expiry: bool = True
    max_body_size: int | None = None

    def environment(self) -> dict[str, str | None]:
        """These options as the environment ``worker_app`` reads (None: unset)."""
        return {
            JWT_SECRET_ENV: self.jwt_secret,
            JWT_AUDIENCE_ENV: self.jwt_audience,
            JWT_ISSUER_ENV: self.jwt_issuer,
            JWT_ALLOW_NO_EXPIRY_ENV: None if self.jwt_require_expiry else "1",
            MAX_BODY_SIZE_ENV: None if self.max_body_size is None else str(self.max_body_size),
        }

    @classmethod
    def from_environment(cls) -> ApiOptions:
        """The options ``environment()`` wrote."""
        size = os.environ.get(MAX_BODY_SIZE_ENV)
        return cls(
            jwt_secret=os.environ.get(JWT_SECRET_ENV) or None,
            jwt_audience=os.environ.get(JWT_AUDIENCE_ENV) or None,
            jwt_issuer=os.environ.get(JWT_ISSUER_ENV) or None,
            jwt_require_expiry=not os.environ.get(JWT_ALLOW_NO_EXPIRY_ENV),
            max_body_size=int(size) if size else None,
        )


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` was asked to do."""

    database_url: str
    host: str
    port: int
    api: ApiOptions = ApiOptions()
    owner_database_url: str | None = None
    migrate: bool = True
    demo_tenant: str | None = None
    demo_customers: int = 200
    log_level: str = "info"
    workers: int = 1
    profiling: ProfilingMode = ProfilingMode.OPT_OUT


@dataclass(slots=True)
class _ServeState:
    serving: bool = False


def base_url(host: str, port: int) -> str:
    """The URL a browser on this machine reaches the server at."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def demo_requests(url: str, tenant: str, *, jwt: bool, customer_id: int | None = None) -> list[str]:
    """Three curl lines to try on a demo tenant: its best customers, then, for
    ``customer_id``, its similar customers and recommendations."""
    auth = '-H "Authorization: Bearer $TOKEN"' if jwt else f"-H 'X-Tenant-ID: {tenant}'"
    first = f"curl -s '{url}/customers?segment=high_value&page_size=5' {auth}"
    if customer_id is None:
        return [
            first,
            f"curl -s '{url}/customers/search?q=rossi' {auth}",
            f"curl -s '{url}/customers?page_size=5&sort=-total_spent' {auth}",
        ]
    return [
        first,
        f"curl -s '{url}/customers/{customer_id}/similar?limit=5' {auth}",
        f"curl -s '{url}/customers/{customer_id}/recommendations' {auth}",
    ]


def _fastapi_adapter(command: str) -> Any:
    try:
        import linkbay_customers_fastapi
    except ImportError as error:
        raise CommandError(
            f"{command} needs the FastAPI adapter: pip install 'linkbay-customers[cli]' ({error})"
        ) from error
    return linkbay_customers_fastapi


def check_jwt_secret(secret: str, *, option: str = "--jwt-secret") -> None:
    """Refuse a JWT secret too short for HS256 (RFC 7518 §3.2: 32 bytes or more).

    Raises:
        CommandError: the secret is too short (exit code 2).
    """
    try:
        _fastapi_adapter("signing tokens").check_jwt_key(secret, ("HS256",))
    except ValueError:
        raise CommandError(
            f"{option} is too short: {len(secret.encode())} bytes, and HS256 needs at least"
            " 32 (RFC 7518 §3.2); make one with: python -c 'import secrets;"
            " print(secrets.token_urlsafe(48))'",
            exit_code=2,
        ) from None


def _create_app(container: CustomersContainer | str, api: ApiOptions) -> FastAPI:
    adapter = _fastapi_adapter("serve")
    extra: dict[str, Any] = {}
    if api.max_body_size is not None:
        extra["max_body_size"] = api.max_body_size
    app: FastAPI = adapter.create_app(
        container,
        jwt_secret=api.jwt_secret,
        jwt_audience=api.jwt_audience,
        jwt_issuer=api.jwt_issuer,
        jwt_require_expiry=api.jwt_require_expiry,
        **extra,
    )
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            # What the server holds from now on (modules, models, routes, pools) is
            # left out of garbage collections: a full collection of it paused every
            # request in flight for about 0.1 s, a few times a minute under load.
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    return app


async def _fill_demo(
    container: CustomersContainer, tenant: str, customers: int, console: Console
) -> int | None:
    """Fill the demo tenant when empty; the customer to show off (no scoring needed:
    every order stored its customer's embedding)."""
    service = container.customer_service()
    if await tenant_is_empty(service, tenant):
        await _fill_empty_demo(container, tenant, customers, console)
    else:
        console.print(f"Demo tenant [bold]{escape(tenant)}[/] already has data.")
    return await demo_customer(service, container.ai_service(), tenant)


async def _fill_empty_demo(
    container: CustomersContainer, tenant: str, customers: int, console: Console
) -> None:
    service = container.customer_service()
    with Progress(
        TextColumn("Filling the demo tenant"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("demo", total=customers)
        summary = await fill_demo_tenant(
            service,
            tenant,
            now=container.clock().now(),
            customers=customers,
            on_progress=lambda done, _: progress.update(task, completed=done),
        )
    console.print(
        f"Demo tenant [bold]{escape(tenant)}[/]: {summary.customers} customers, "
        f"{summary.orders} orders, {summary.addresses} addresses, {summary.notes} notes."
    )


def _print_banner(
    options: ServeOptions, console: Console, demo_customer: int | None = None
) -> None:
    url = base_url(options.host, options.port)
    console.print(f"[bold]linkbay-customers API[/] on {url}")
    console.print(f"  docs:     {url}/docs")
    console.print(f"  database: {escape(describe_url(options.database_url))}")
    console.print(f"  profiling: {options.profiling.description}")
    if options.api.jwt_secret:
        console.print(
            "  tenancy:  signed JWTs (Authorization: Bearer), tenant in the tenant_id claim"
        )
    else:
        console.print("  tenancy:  X-Tenant-ID header; X-Actor-ID names who acts, for the audit")
    if options.demo_tenant:
        console.print(f"Try the demo tenant [bold]{escape(options.demo_tenant)}[/]:")
        jwt = bool(options.api.jwt_secret)
        for line in demo_requests(url, options.demo_tenant, jwt=jwt, customer_id=demo_customer):
            console.print(f"  {escape(line)}")
        if options.api.jwt_secret:
            console.print(
                f"  ($TOKEN: linkbay-customers token --tenant {options.demo_tenant}"
                " --sub you --expires 1h, with the same secret)"
            )


def worker_app() -> FastAPI:
    """The application of one worker process of ``serve --workers N``.

    Reads the database URL, the JWT settings, the body limit and the profiling mode
    from ``LINKBAY_DATABASE_URL``, ``LINKBAY_JWT_SECRET`` (``..._AUDIENCE``,
    ``..._ISSUER``, ``..._ALLOW_NO_EXPIRY``), ``LINKBAY_MAX_BODY_SIZE`` and
    ``LINKBAY_PROFILING``, which ``serve`` sets before it starts the workers.
    """
    profiling = ProfilingMode(os.environ.get(PROFILING_ENV, ProfilingMode.OPT_OUT))
    container = bootstrap(os.environ[DATABASE_URL_ENV], profiling_policy=profiling.policy)
    return _create_app(container, ApiOptions.from_environment())


async def _migrate(options: ServeOptions, console: Console) -> None:
    if is_memory_url(options.database_url):
        console.print("memory:// keeps the data only while the server runs.")
    elif options.migrate:
        migration = await prepare_schema(options.database_url, options.owner_database_url)
        if migration is not None:
            console.print(migration.report())


async def _prepare(options: ServeOptions, console: Console) -> int | None:
    """Migrate and fill the demo tenant before worker processes start."""
    await _migrate(options, console)
    if not options.demo_tenant:
        return None
    async with open_container(options.database_url, options.profiling.policy) as container:
        return await _fill_demo(container, options.demo_tenant, options.demo_customers, console)


def _serve_workers(options: ServeOptions, console: Console, state: _ServeState) -> None:
    import uvicorn

    if is_memory_url(options.database_url):
        raise CommandError(
            "memory:// lives inside one process; use --workers 1 or a database URL", exit_code=2
        )
    demo_customer = asyncio.run(_prepare(options, console))
    os.environ[DATABASE_URL_ENV] = options.database_url
    os.environ[PROFILING_ENV] = options.profiling
    for name, value in options.api.environment().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _print_banner(options, console, demo_customer)
    state.serving = True
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level=options.log_level,
    )


async def _serve(options: ServeOptions, console: Console, state: _ServeState) -> None:
    import uvicorn

    await _migrate(options, console)
    async with open_container(options.database_url, options.profiling.policy) as container:
        demo_customer = None
        if options.demo_tenant:
            demo_customer = await _fill_demo(
                container, options.demo_tenant, options.demo_customers, console
            )
        app = _create_app(container, options.api)
        server = uvicorn.Server(
            uvicorn.Config(app, host=options.host, port=options.port, log_level=options.log_level)
        )
        _print_banner(options, console, demo_customer)
        state.serving = True
        await server.serve()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _interrupting_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt; uvicorn takes them over while serving.

    uvicorn stops gracefully on either signal, then raises it again with the
    handler it found, which lands here: the command ends without a traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_server(options: ServeOptions, console: Console) -> None:
    """Migrate, optionally fill the demo tenant, and serve until stopped.

    Raises:
        CommandError: the database or the FastAPI adapter is unusable, the server
            cannot listen, or the command was interrupted before serving.
    """
    state = _ServeState()
    with _interrupting_signals():
        try:
            if options.workers > 1:
                _serve_workers(options, console, state)
            else:
                asyncio.run(_serve(options, console, state))
        except KeyboardInterrupt:
            if not state.serving:
                raise CommandError("interrupted before the server started", exit_code=130) from None
        except SystemExit as exit_:
            # uvicorn exits when it cannot start (port taken, ...), after logging why.
            if exit_.code not in (None, 0):
                raise CommandError(
                    f"the server could not start on {options.host}:{options.port} (see above)"
                ) from None
    console.print("Server stopped.")
