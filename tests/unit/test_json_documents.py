"""Preferences are JSON documents of at most 16 KiB, measured exactly as stored."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from linkbay_customers.schemas import CustomerCreate

LIMIT = 16_384


def texts(max_size: int) -> st.SearchStrategy[str]:
    # Storable text as it is stored: input strings are stripped of surrounding space.
    characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    return st.text(characters, max_size=max_size).filter(lambda text: text == text.strip())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts(40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(texts(8), children, max_size=5)
    ),
    max_leaves=30,
)


def size(document: object) -> int:
    return len(json.dumps(document, ensure_ascii=False).encode("utf-8"))


def accepted(preferences: object) -> bool:
    try:
        CustomerCreate.model_validate({"email": "a@example.com", "preferences": preferences})
    except ValidationError as exc:
        refused_field = exc.errors()[0]["loc"][0]
    else:
        return True
    assert refused_field == "preferences"
    return False


@settings(max_examples=150, deadline=None)
@given(
    value=json_values,
    pad_char=st.sampled_from(["y", "é", "\x01", '"', "😀"]),
    delta=st.integers(-8, 8),
)
def test_a_document_is_accepted_exactly_when_it_serializes_within_the_limit(
    value: object, pad_char: str, delta: int
) -> None:
    base = {"value": value, "pad": ""}
    room = LIMIT - size(base) + delta
    per_char = size(pad_char) - 2
    document = {"value": value, "pad": pad_char * max(room // per_char, 0)}
    assert accepted(document) == (size(document) <= LIMIT)


@pytest.mark.parametrize(
    "document",
    [
        {f"n{i}": 10**4000 for i in range(5)},
        {"text": "\x01" * 3000},
        {"list": [[]] * 5000},
        {"keys": {f"k{i}": None for i in range(2000)}},
    ],
    ids=["huge-integer", "escaped-text", "many-lists", "many-keys"],
)
def test_documents_over_the_limit_are_refused_whatever_makes_them_large(
    document: dict[str, object],
) -> None:
    assert size(document) > LIMIT
    assert not accepted(document)
