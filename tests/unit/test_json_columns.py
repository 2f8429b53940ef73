"""JSON columns are read as the standard library reads them, whichever parser runs."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkbay_customers_sqlalchemy._engine import load_json

# Every value json.dumps writes: integers far beyond 64 bits, NaN and the infinities,
# floats at the ends of their range, strings with lone surrogates.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.floats()
    | st.sampled_from([5e-324, 1.7976931348623157e308, -0.0])
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def same(read: object, expected: object) -> bool:
    """Equal, of the same types all the way down (1 is not 1.0), NaN equal to NaN."""
    if type(read) is not type(expected):
        return False
    if isinstance(expected, float):
        assert isinstance(read, float)
        return (math.isnan(read) and math.isnan(expected)) or (
            read == expected and math.copysign(1, read) == math.copysign(1, expected)
        )
    if isinstance(expected, list):
        assert isinstance(read, list)
        return len(read) == len(expected) and all(map(same, read, expected))
    if isinstance(expected, dict):
        assert isinstance(read, dict)
        return list(read) == list(expected) and all(same(read[k], expected[k]) for k in expected)
    return read == expected


@settings(max_examples=400)
@given(json_values, st.booleans())
def test_a_document_reads_as_the_standard_library_reads_it(value: object, ascii: bool) -> None:
    document = json.dumps(value, ensure_ascii=ascii)
    assert same(load_json(document), json.loads(document))


def test_integers_beyond_64_bits_stay_exact() -> None:
    document = '{"big": 18446744073709551616, "low": -9223372036854775809, "n": [1, 2.5]}'
    read = load_json(document)
    assert read == {"big": 2**64, "low": -(2**63) - 1, "n": [1, 2.5]}
    assert type(read["big"]) is int
    assert type(read["low"]) is int


@pytest.mark.parametrize("document", ["{", "[1,]", "", "nul"])
def test_what_is_not_json_is_refused_as_the_standard_library_refuses_it(document: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(document)
    with pytest.raises(json.JSONDecodeError) as raised:
        load_json(document)
    assert str(raised.value) == str(expected.value)
