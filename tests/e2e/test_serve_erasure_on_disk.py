"""``linkbay-customers serve`` erases on SQLite without leaving personal data in its files."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from linkbay_customers.testing import new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from tests._databases import new_sqlite_database
from tests.e2e.test_serve import serving
from tests.integration.test_gdpr_erasure import services
from tests.integration.test_gdpr_erasure_on_disk import personal_bytes
from tests.unit.test_gdpr import live_a_life, personal_values


@pytest.mark.parametrize("anonymize", ["true", "false"])
async def test_an_erasure_through_the_server_leaves_no_personal_value_in_its_files(
    tmp_path: Path, anonymize: str
) -> None:
    url = await new_sqlite_database(tmp_path)
    database = Path(url.removeprefix("sqlite+aiosqlite:///"))
    with serving(tmp_path, "--database-url", url) as server:
        # The life is written by this process while the server runs: its pages are in
        # the shared write-ahead log, and this process's connections stay open.
        storage = SqlAlchemyStorage.from_url(url)
        try:
            service, gdpr = services(storage)
            tenant = new_tenant_id("serve")
            mario = await live_a_life(service, gdpr, tenant)
            assert set(personal_bytes(database).get("-wal", {})) >= set(personal_values())

            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                erased = await http.delete(
                    f"/customers/{mario.id}/gdpr",
                    params={"anonymize": anonymize},
                    headers={"X-Tenant-ID": tenant},
                )
            assert erased.status_code == 200, erased.text

            assert personal_bytes(database) == {}
            assert server.process.poll() is None
        finally:
            await storage.close()
