"""Fixtures of the integration tests: the application role on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from linkbay_customers_sqlalchemy import SqlAlchemyStorage, create_engine, grant_application_role

ROLE_PASSWORD = "app-secret"


async def new_role(admin: AsyncEngine) -> str:
    """A new login role without superuser or BYPASSRLS, granted nothing yet."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    async with admin.begin() as connection:
        await connection.execute(
            text(f"CREATE ROLE {role} LOGIN PASSWORD '{ROLE_PASSWORD}' NOSUPERUSER NOBYPASSRLS")
        )
    return role


def as_role(url: str, role: str) -> str:
    """``url`` with the role's credentials."""
    return make_url(url).set(username=role, password=ROLE_PASSWORD).render_as_string(False)


@pytest.fixture
async def app_url(postgres_url: str) -> str:
    """The shared test database, reached as a fresh application role."""
    admin = create_engine(postgres_url)
    role = await new_role(admin)
    await grant_application_role(admin, role)
    await admin.dispose()
    return as_role(postgres_url, role)


@pytest.fixture
async def app_storage(app_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(app_url, pool_size=1, max_overflow=0)
    yield storage
    await storage.close()
