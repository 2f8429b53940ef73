"""``linkbay-customers serve`` as a real process, driven over HTTP."""

from __future__ import annotations

import gc
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from linkbay_customers_cli._serve import worker_app

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def command() -> list[str]:
    beside_python = Path(sys.executable).with_name("linkbay-customers")
    if beside_python.is_file():
        return [str(beside_python)]
    found = shutil.which("linkbay-customers")
    return [found] if found else [sys.executable, "-m", "linkbay_customers_cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_TIMEOUT)


def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"serve exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"serve was not ready within {READY_TIMEOUT}s:\n{server.output()}")


@contextmanager
def serving(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    log = cwd / "serve.log"
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LINKBAY_DATABASE_URL", "LINKBAY_JWT_SECRET", "LINKBAY_PROFILING")
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command(), "serve", "--port", str(port), *args],
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**environment, **(env or {})},
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def test_customers_are_created_listed_searched_merged_and_deleted(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with serving(tmp_path, "--database-url", f"sqlite+aiosqlite:///{database}") as server:
        headers = {"X-Tenant-ID": "acme", "X-Actor-ID": "e2e"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            mario = http.post(
                "/customers",
                json={"email": "mario.rossi@example.com", "first_name": "Mario", "tags": ["vip"]},
            )
            assert mario.status_code == 201, mario.text
            duplicate = http.post(
                "/customers",
                json={"email": "m.rossi@example.com", "first_name": "Mario", "tags": ["b2b"]},
            )
            assert duplicate.status_code == 201, duplicate.text
            giulia = http.post("/customers", json={"email": "giulia@example.com"})
            assert giulia.status_code == 201
            target_id, source_id = mario.json()["id"], duplicate.json()["id"]

            listed = http.get("/customers", params={"page_size": 10}).json()
            assert listed["total"] == 3
            assert http.get("/customers", headers={"X-Tenant-ID": "other"}).json()["total"] == 0

            found = http.get("/customers/search", params={"q": "rossi"}).json()
            assert {c["id"] for c in found} == {target_id, source_id}
            found = http.get("/customers/search", params={"q": "giulia"}).json()
            assert [c["email"] for c in found] == ["giulia@example.com"]

            merged = http.post(
                "/customers/merge",
                json={"source_customer_id": source_id, "target_customer_id": target_id},
            )
            assert merged.status_code == 200, merged.text
            assert merged.json()["id"] == target_id
            assert merged.json()["tags"] == ["vip", "b2b"]
            assert http.get(f"/customers/{source_id}").json()["id"] == target_id
            assert http.get("/customers").json()["total"] == 2

            deleted = http.delete(f"/customers/{target_id}")
            assert deleted.status_code == 204
            assert http.get(f"/customers/{target_id}").status_code == 404
            remaining = http.get("/customers").json()
            assert [c["email"] for c in remaining["items"]] == ["giulia@example.com"]

            assert http.get("/docs").status_code == 200

        assert server.stop(signal.SIGINT) == 0
    output = server.output()
    assert f"{server.url}/docs" in output
    assert "Server stopped." in output
    assert "Traceback" not in output
    assert database.is_file()
    assert not (tmp_path / "linkbay_customers.db").exists()


def test_serve_demo_fills_the_demo_tenant_in_the_default_database(tmp_path: Path) -> None:
    with serving(tmp_path, "--demo", "--demo-customers", "40") as server:
        banner = server.output()
        # The banner names three requests to try, each answering with data.
        tried = re.findall(
            rf"^  curl -s '{re.escape(server.url)}(/[^']+)' -H 'X-Tenant-ID: demo'$",
            banner,
            re.MULTILINE,
        )
        assert len(tried) == 3, banner
        assert tried[0] == "/customers?segment=high_value&page_size=5"
        customer = re.fullmatch(r"/customers/(\d+)/similar\?limit=5", tried[1])
        assert customer is not None, tried
        assert tried[2] == f"/customers/{customer[1]}/recommendations"
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for path in tried:
                answer = http.get(path, headers={"X-Tenant-ID": "demo"})
                assert answer.status_code == 200, answer.text
                found = answer.json()
                assert (found["items"] if isinstance(found, dict) else found) != [], path
            page = http.get("/customers", headers={"X-Tenant-ID": "demo"}).json()
            assert page["total"] == 40
            assert any(c["total_orders"] > 0 for c in page["items"])
            segments = {c["segment"] for c in page["items"]}
            assert len(segments) >= 3, segments
        assert server.stop(signal.SIGTERM) == 0
    output = server.output()
    assert "Try the demo tenant demo" in output
    assert (tmp_path / "linkbay_customers.db").is_file()

    # A second start finds the tenant filled and leaves it alone.
    with serving(tmp_path, "--demo", "--demo-customers", "10") as server:
        page = httpx.get(f"{server.url}/customers", headers={"X-Tenant-ID": "demo"}).json()
        assert page["total"] == 40
        assert server.stop() == 0
    assert "already has data" in server.output()


def test_a_jwt_secret_from_the_environment_replaces_the_tenant_header(tmp_path: Path) -> None:
    secret = "e2e-secret-that-is-long-enough-for-hs256"
    with serving(
        tmp_path, "--database-url", "memory://", env={"LINKBAY_JWT_SECRET": secret}
    ) as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            anonymous = http.get("/customers", headers={"X-Tenant-ID": "acme"})
            assert anonymous.status_code == 401
            claims = {"tenant_id": "acme", "sub": "alice", "exp": time.time() + 600}
            token = jwt.encode(claims, secret, algorithm="HS256")
            auth = {"Authorization": f"Bearer {token}"}
            created = http.post("/customers", json={"email": "a@example.com"}, headers=auth)
            assert created.status_code == 201, created.text
            assert http.get("/customers", headers=auth).json()["total"] == 1
        assert server.stop() == 0
    output = server.output()
    assert secret not in output
    assert "signed JWTs" in output


def test_a_bad_database_url_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*command(), "serve", "--database-url", "mysql://u:pw@h/db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: unsupported database URL scheme 'mysql'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_port_in_use_stops_serve_with_an_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*command(), "serve", "--port", str(port), "--database-url", "memory://"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Error: the server could not start on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_processes_share_the_database_and_the_jwt_secret(tmp_path: Path) -> None:
    secret = "workers-secret-that-is-long-enough-for-hs256"
    args = ("--workers", "2", "--demo", "--demo-customers", "20", "--jwt-secret", secret)
    with serving(tmp_path, *args) as server:
        claims = {"tenant_id": "demo", "sub": "alice", "exp": time.time() + 600}
        token = jwt.encode(claims, secret, algorithm="HS256")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/customers", headers={"X-Tenant-ID": "demo"}).status_code == 401
            created = http.post("/customers", json={"email": "w@example.com"}, headers=auth)
            assert created.status_code == 201, created.text
            # New connections land on either worker; every one sees the same data.
            for _ in range(12):
                with httpx.Client(base_url=server.url, timeout=10) as fresh:
                    page = fresh.get("/customers", headers=auth).json()
                    assert page["total"] == 21
        assert server.stop(signal.SIGTERM) == 0
    assert secret not in server.output()


def test_workers_refuse_an_in_memory_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [*command(), "serve", "--workers", "2", "--database-url", "memory://"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "memory:// lives inside one process" in result.stderr


async def test_a_started_worker_leaves_what_it_holds_out_of_garbage_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINKBAY_DATABASE_URL", "memory://")
    monkeypatch.delenv("LINKBAY_JWT_SECRET", raising=False)
    application = worker_app()
    gc.unfreeze()
    try:
        async with application.router.lifespan_context(application):
            assert gc.get_freeze_count() > 10_000
            # The application's routes are among the objects no collection visits.
            route = application.routes[-1]
            assert gc.is_tracked(route)
            assert all(o is not route for o in gc.get_objects())
    finally:
        gc.unfreeze()
