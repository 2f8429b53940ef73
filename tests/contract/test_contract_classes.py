from __future__ import annotations

from collections import Counter

import pytest

from linkbay_customers.testing import StorageContract


def test_no_two_parts_of_the_contract_share_a_test_name() -> None:
    # A name defined by two parts would run only once in StorageContract.
    names = Counter(
        name for part in StorageContract.__bases__ for name in vars(part) if name.startswith("test")
    )
    assert [name for name, count in names.items() if count > 1] == []


def test_an_unknown_capability_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r"unknown capabilities \['vectors'\]") as caught:

        class Misspelt(StorageContract):
            capabilities = frozenset({"similarity", "vectors"})

    assert "'similarity'" in str(caught.value)  # the message lists the known ones
