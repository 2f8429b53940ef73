"""Every CustomerService test of tests/unit, run again on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from linkbay_customers_sqlalchemy import SqlAlchemyStorage
from tests.unit.test_addresses_and_notes import TestAddresses, TestNotes
from tests.unit.test_ai_service import (
    TestEmbeddingsKeptCurrent,
    TestOneCustomer,
    TestScoreTenant,
    TestSimilarityAndRecommendations,
)
from tests.unit.test_customer_service import (
    TestCreate,
    TestDeleteAndRestore,
    TestGet,
    TestListAndSearch,
    TestUpdate,
)
from tests.unit.test_duplicates import TestDuplicateDecisions, TestDuplicates
from tests.unit.test_gdpr import (
    TestAuditTrail,
    TestConsent,
    TestErasure,
    TestExport,
    TestProfilingGate,
    TestRetention,
)
from tests.unit.test_import import TestImport
from tests.unit.test_orders_and_merge import TestMerge, TestRecordOrder
from tests.unit.test_profiling_consent import (
    TestProfilingOnCustomerPaths,
    TestProfilingOnIntelligencePaths,
)
from tests.unit.test_tenant_isolation import (
    test_a_foreign_email_is_like_an_unknown_email,
    test_a_foreign_id_behaves_exactly_like_an_unknown_id,
)

__all__ = (
    "TestAddresses",
    "TestAuditTrail",
    "TestConsent",
    "TestErasure",
    "TestExport",
    "TestProfilingGate",
    "TestProfilingOnCustomerPaths",
    "TestProfilingOnIntelligencePaths",
    "TestRetention",
    "TestCreate",
    "TestDeleteAndRestore",
    "TestDuplicateDecisions",
    "TestDuplicates",
    "TestEmbeddingsKeptCurrent",
    "TestGet",
    "TestImport",
    "TestListAndSearch",
    "TestMerge",
    "TestNotes",
    "TestOneCustomer",
    "TestScoreTenant",
    "TestSimilarityAndRecommendations",
    "TestRecordOrder",
    "TestUpdate",
    "test_a_foreign_email_is_like_an_unknown_email",
    "test_a_foreign_id_behaves_exactly_like_an_unknown_id",
)


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(database_url)
    yield storage
    await storage.close()
