"""The README's Python examples run as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from linkbay_customers_sqlalchemy import upgrade

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_the_examples_these_tests_run() -> None:
    blocks = python_blocks()
    assert len(blocks) == 4
    assert "asyncio.run(main())" in blocks[0]
    assert "gdpr_service" in blocks[1]
    assert "intelligence=BetaGeoIntelligence.from_storage" in blocks[2]
    assert "create_customer_router" in blocks[3]


def test_the_service_example_prints_what_it_promises(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(python_blocks()[0], str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["1 new", "1 ['mario.rossi@example.com']"]


def test_the_gdpr_and_intelligence_example_prints_what_it_promises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exec(compile(python_blocks()[1], str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["low True", "anna@example.com 1", "anonymized"]


def test_the_intelligence_example_wires_both_adapters(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(python_blocks()[2], str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.splitlines() == ["bg_nbd linkbay_ai"]


async def test_the_router_example_serves_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    await upgrade("sqlite+aiosqlite:///customers.db")
    namespace: dict[str, Any] = {"__name__": "readme"}
    await asyncio.to_thread(exec, compile(python_blocks()[3], str(README), "exec"), namespace)
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        headers = {"X-Tenant-ID": "tenant_123"}
        created = await client.post(
            "/customers", json={"email": "anna@example.com"}, headers=headers
        )
        assert created.status_code == 201
        listed = await client.get("/customers", headers=headers)
        assert [c["email"] for c in listed.json()["items"]] == ["anna@example.com"]
        missing = await client.get("/customers", headers={})
        assert missing.status_code == 400
        assert missing.headers["content-type"].startswith("application/problem+json")
    await namespace["container"].storage().close()
