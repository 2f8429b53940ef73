from __future__ import annotations

import gc

import pytest

from linkbay_customers_cli._collector import BULK_THRESHOLDS, bulk_collection


def test_an_import_collects_garbage_less_often_and_restores_the_thresholds_after() -> None:
    before = gc.get_threshold()
    with bulk_collection():
        assert gc.get_threshold() == BULK_THRESHOLDS
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), bulk_collection():
        raise RuntimeError("the import failed")
    assert gc.get_threshold() == before
