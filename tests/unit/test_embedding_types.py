"""The dimensions of an embedding column, whichever type declares it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgvector.sqlalchemy import Vector
from sqlalchemy import JSON

from linkbay_customers.domain import EMBEDDING_DIMENSIONS
from linkbay_customers.testing import new_tenant_id
from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from linkbay_customers_sqlalchemy._types import Embedding, vector_dimensions
from tests._databases import new_sqlite_database


def test_the_librarys_type_and_pgvectors_both_tell_their_dimensions() -> None:
    assert vector_dimensions(Embedding(8)) == 8
    assert vector_dimensions(Embedding()) == EMBEDDING_DIMENSIONS
    assert vector_dimensions(Vector(5)) == 5


def test_a_type_that_does_not_say_has_no_dimensions() -> None:
    assert vector_dimensions(JSON()) is None
    assert vector_dimensions(Vector()) is None


async def test_an_exact_search_refuses_a_query_of_other_dimensions(tmp_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(await new_sqlite_database(tmp_path))
    try:
        async with storage.unit_of_work(new_tenant_id()) as uow:
            with pytest.raises(ValueError, match=f"have {EMBEDDING_DIMENSIONS} dimensions, not 3"):
                await uow.customers.nearest([1.0, 0.0, 0.0], limit=5)
    finally:
        await storage.close()
