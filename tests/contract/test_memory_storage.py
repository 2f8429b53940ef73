from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from linkbay_customers.testing import StorageContract
from linkbay_customers_clv.testing import ModelFitStorageContract
from linkbay_customers_memory import InMemoryStorage


class TestInMemoryStorage(StorageContract, ModelFitStorageContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[InMemoryStorage]:
        storage = InMemoryStorage()
        yield storage
        await storage.close()
