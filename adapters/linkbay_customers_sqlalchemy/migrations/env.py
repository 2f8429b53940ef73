"""Alembic environment of the shipped migrations.

Runs on a connection handed over by ``linkbay_customers_sqlalchemy.upgrade``
(``config.attributes["connection"]``), or on ``sqlalchemy.url`` when run from the
``alembic`` command line.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from linkbay_customers_sqlalchemy._engine import create_engine
from linkbay_customers_sqlalchemy._migrate import VERSION_TABLE, schema_filter
from linkbay_customers_sqlalchemy._models import default_models

config = context.config
target_metadata = default_models().metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=schema_filter(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_on_url(config.get_main_option("sqlalchemy.url") or ""))
