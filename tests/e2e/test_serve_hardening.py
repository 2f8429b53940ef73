"""``serve`` under a hostile client: huge bodies, weak secrets, tokens that never expire."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e.test_serve import command, serving

SECRET = "a-served-secret-of-at-least-thirty-two-bytes"
HUGE = 300 * 1024 * 1024
SENT = 32 * 1024 * 1024


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def _post_huge_body(url: str, *, chunked: bool) -> tuple[int, int]:
    """POST a 300 MiB body to /customers, sending at most 32 MiB of it before the answer.

    Returns the status the server answered and the bytes sent before it did."""
    host, port = url.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    head = (
        f"POST /customers HTTP/1.1\r\nHost: {host}\r\nX-Tenant-ID: acme\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()

    def framed(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

    block = b"x" * (256 * 1024)
    piece = framed(block)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head + framed(b'{"email": "huge@example.com", "first_name": "'))
        connection.settimeout(0.05)
        answer = b""
        while sent < SENT and not answer:
            try:
                connection.sendall(piece)
                sent += len(block)
                answer = connection.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        connection.settimeout(30)
        while b"\r\n" not in answer:
            more = connection.recv(4096)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["declared length", "chunked"])
def test_a_300_mib_body_is_refused_with_413_without_being_read(
    tmp_path: Path, chunked: bool
) -> None:
    with serving(tmp_path, "--database-url", "memory://") as server:
        before = _peak_rss_kib(server.process.pid)
        status, sent = _post_huge_body(server.url, chunked=chunked)
        grown_mib = (_peak_rss_kib(server.process.pid) - before) / 1024
        still_serving = httpx.get(f"{server.url}/customers", headers={"X-Tenant-ID": "acme"})

    assert status == 413
    assert sent < SENT  # the server answered before the client sent 32 of the 300 MiB
    assert grown_mib < 16, f"the server's peak memory grew by {grown_mib:.0f} MiB"
    assert still_serving.json()["total"] == 0


def test_the_body_limit_is_an_option_of_serve(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "--database-url", "memory://", "--max-body-size", "200") as server,
        httpx.Client(base_url=server.url, headers={"X-Tenant-ID": "acme"}) as http,
    ):
        small = http.post("/customers", json={"email": "s@example.com"})
        large = http.post("/customers", json={"email": "l@example.com", "last_name": "x" * 200})

    assert small.status_code == 201
    assert large.status_code == 413
    assert large.json()["code"] == "body_too_large"


@pytest.mark.parametrize("secret", ["x", "k" * 31])
def test_serve_refuses_a_secret_shorter_than_32_bytes(tmp_path: Path, secret: str) -> None:
    result = subprocess.run(
        [*command(), "serve", "--database-url", "memory://", "--jwt-secret", secret],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: --jwt-secret is too short: {len(secret)} bytes")
    assert "RFC 7518" in result.stderr
    assert secret * 2 not in result.stderr


def _token(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_the_token_command_mints_what_serve_accepts(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "LINKBAY_JWT_SECRET": SECRET,
        "LINKBAY_JWT_AUDIENCE": "crm",
        "LINKBAY_JWT_ISSUER": "https://id.test",
    }
    minted = _token("--tenant", "acme", "--sub", "alice", "--expires", "1h", env=env)
    short = _token("--tenant", "acme", env={**env, "LINKBAY_JWT_SECRET": "short"})
    assert minted.returncode == 0, minted.stderr
    assert short.returncode == 2
    token = minted.stdout.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="crm")
    assert claims["tenant_id"] == "acme"
    assert claims["sub"] == "alice"
    assert claims["iss"] == "https://id.test"
    assert 3590 <= claims["exp"] - time.time() <= 3600

    forever = jwt.encode({"tenant_id": "acme", "aud": "crm", "iss": "https://id.test"}, SECRET)
    with (
        serving(tmp_path, "--database-url", "memory://", env=env) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        created = http.post(
            "/customers",
            json={"email": "a@example.com"},
            headers={"Authorization": f"Bearer {token}"},
        )
        refused = http.get("/customers", headers={"Authorization": f"Bearer {forever}"})

    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == "acme"
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the token carries no 'exp' claim"


def test_serve_can_accept_tokens_without_expiry_when_told(tmp_path: Path) -> None:
    forever = jwt.encode({"tenant_id": "acme"}, SECRET)
    args = ("--database-url", "memory://", "--jwt-secret", SECRET, "--jwt-allow-no-expiry")
    with serving(tmp_path, *args) as server:
        response = httpx.get(
            f"{server.url}/customers", headers={"Authorization": f"Bearer {forever}"}
        )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--tenant", "acme"), "the secret is required", id="no secret"),
        pytest.param(
            ("--tenant", "acme", "--jwt-secret", "short"),
            "--jwt-secret is too short: 5 bytes",
            id="short secret",
        ),
        pytest.param(
            ("--tenant", "acme", "--jwt-secret", SECRET, "--expires", "2y"),
            "--expires '2y' is not a lifetime",
            id="bad lifetime",
        ),
        pytest.param(
            ("--tenant", "two words", "--jwt-secret", SECRET),
            "tenant_id: must be",
            id="bad tenant",
        ),
    ],
)
def test_the_token_command_refuses_what_serve_would_not_accept(
    args: tuple[str, ...], message: str
) -> None:
    from typer.testing import CliRunner

    from linkbay_customers_cli._app import app

    result = CliRunner(env={"LINKBAY_JWT_SECRET": None}).invoke(app, ["token", *args])

    assert result.exit_code in (1, 2)
    assert result.stderr.startswith(f"Error: {message}"), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("lifetime", "seconds"), [("90", 90), ("30m", 1800), ("7d", 604_800)])
def test_token_lifetimes_are_seconds_or_a_unit(lifetime: str, seconds: int) -> None:
    from typer.testing import CliRunner

    from linkbay_customers_cli._app import app

    result = CliRunner().invoke(
        app, ["token", "-t", "acme", "--jwt-secret", SECRET, "--expires", lifetime]
    )

    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert seconds - 5 <= claims["exp"] - time.time() <= seconds
    assert "sub" not in claims
