"""``search_key``: the one folding search compares on every storage."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkbay_customers.domain import search_key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("İlker", "ilker"),
        ("ΣΊΣΥΦΟΣ", "σισυφοσ"),
        ("σίσυφος", "σισυφοσ"),
        ("Straße", "strasse"),
        ("Élodie", "elodie"),
        ("\uff2d\uff21\uff32\uff29\uff2f", "mario"),
        ("Ǆoković", "dzokovic"),
        ("mario.rossi@example.com", "mario.rossi@example.com"),
        ("", ""),
    ],
)
def test_search_key_folds_case_accents_and_compatibility_forms(text: str, key: str) -> None:
    assert search_key(text) == key


def _folded_in_full(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@given(st.text())
def test_search_key_is_idempotent_and_agrees_with_the_full_folding(text: str) -> None:
    key = search_key(text)
    assert search_key(key) == key
    assert key == _folded_in_full(text)


@given(st.text(), st.text())
def test_a_folded_substring_stays_a_substring_of_the_folded_text(a: str, b: str) -> None:
    assert search_key(b) in search_key(a + b + a)
