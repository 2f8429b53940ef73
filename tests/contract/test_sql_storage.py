from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from linkbay_customers.testing import StorageContract
from linkbay_customers_clv.testing import ModelFitStorageContract
from linkbay_customers_sqlalchemy import SqlAlchemyStorage


class TestSqlAlchemyStorage(StorageContract, ModelFitStorageContract):
    @pytest.fixture
    async def storage(self, database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
        storage = SqlAlchemyStorage.from_url(database_url)
        yield storage
        await storage.close()
