"""The email check agrees with email-validator on every address."""

from __future__ import annotations

import email_validator
from hypothesis import example, given, settings
from hypothesis import strategies as st

from linkbay_customers.schemas import normalize_email

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
LOCAL_CHARS = ATEXT + '."() ,:;<>@[\\]üßé\x7f'
DOMAINS = [
    "gmail.com",
    "EXAMPLE.com",
    "sub.domain.co.uk",
    "xn--bcher-kva.example",
    "bücher.de",
    "localhost",
    "host.local",
    "site.test",
    "a.invalid",
    "x.onion",
    "example",
    "1.2.3.4",
    "[192.0.2.1]",
    "-bad.com",
    "bad-.com",
    "a..b.com",
    "trailing.com.",
    "under_score.com",
    "a" * 63 + ".com",
    "a" * 64 + ".com",
    ".".join(["abcdefghij"] * 25) + ".com",
    "",
]


def reference(address: str) -> str | None:
    try:
        return email_validator.validate_email(
            address, check_deliverability=False
        ).normalized.lower()
    except email_validator.EmailNotValidError:
        return None


def ours(address: str) -> str | None:
    try:
        return normalize_email(address)
    except ValueError:
        return None


@settings(max_examples=3000, deadline=None)
@given(
    local=st.one_of(
        st.text(alphabet=ATEXT + ".", min_size=0, max_size=70),
        st.text(alphabet=LOCAL_CHARS, min_size=0, max_size=20),
    ),
    domain=st.one_of(
        st.sampled_from(DOMAINS),
        st.text(alphabet="abcz09-.", min_size=0, max_size=30),
    ),
)
@example(local="Mario.Rossi", domain="Example.COM")
@example(local="a" * 64, domain="b" * 60 + ".com" + ".c" * 90)
@example(local="PostMaster", domain="gmail.com")
def test_the_email_check_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert ours(address) == reference(address)


@given(st.text(max_size=40))
def test_arbitrary_text_is_judged_as_email_validator_judges_it(text: str) -> None:
    assert ours(text) == reference(text)
