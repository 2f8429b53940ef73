from __future__ import annotations

import random

import phonenumbers
import pycountry
import pytest
from pydantic import ValidationError

from linkbay_customers import (
    CustomersContainer,
    CustomerService,
    HeuristicIntelligence,
    InvalidInput,
    bootstrap,
)
from linkbay_customers.domain import (
    COUNTRY_CODES,
    check_phone_region,
    normalize_phone,
    phone_query,
)
from linkbay_customers.schemas import AddressCreate, CustomerCreate, CustomerUpdate
from linkbay_customers.testing import FixedClock
from linkbay_customers_memory import InMemoryStorage


@pytest.fixture
def italian(storage: InMemoryStorage, clock: FixedClock) -> CustomerService:
    """A service whose host reads numbers without a country code as Italian."""
    return CustomerService(
        storage.unit_of_work, clock, HeuristicIntelligence(), default_phone_region="IT"
    )


# ------------------------------------------------------------------ normalize_phone


@pytest.mark.parametrize(
    "written",
    [
        "+393331234567",
        "+39 333 123 4567",
        "+39 333-123-4567",
        "+39 (333) 123.4567",
        "  +39/333/1234567 ",
    ],
)
def test_every_formatting_of_an_international_number_gives_one_e164(written: str) -> None:
    assert normalize_phone(written) == "+393331234567"


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        ("333 123 4567", "IT", "+393331234567"),
        ("0039 333 1234567", "IT", "+393331234567"),
        ("02 1234 5678", "IT", "+390212345678"),  # Italy keeps the leading 0
        ("020 7946 0958", "GB", "+442079460958"),  # the UK drops its trunk 0
        ("(202) 555-0143", "US", "+12025550143"),
        ("+44 (0)20 7946 0958", "IT", "+442079460958"),  # a country code wins
    ],
)
def test_a_national_number_is_read_in_the_region_given(
    written: str, region: str, e164: str
) -> None:
    assert normalize_phone(written, region) == e164


@pytest.mark.parametrize(
    "written",
    ["call me", "12", "+3912345", "+999 1234567", "+39 333 123 4567 ext. 12", "", "+"],
)
def test_what_is_not_a_valid_number_is_refused(written: str) -> None:
    with pytest.raises(ValueError, match=r"^is not a valid phone number"):
        normalize_phone(written, "IT")


def _as_phonenumbers_reads_it(written: str, region: str | None) -> str | None:
    """The E.164 form phonenumbers gives, or None where it finds no valid number."""
    try:
        number = phonenumbers.parse(written, region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _numbers_as_written() -> list[str]:
    """Every region's example numbers, written with and without separators, with a
    digit changed, added or dropped, with a trunk prefix, and random digit strings."""
    rnd = random.Random(7)
    written = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        country_code = phonenumbers.country_code_for_region(region)
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            position = rnd.randrange(len(national))
            variants = [
                national,
                national[:position] + str(rnd.randrange(10)) + national[position + 1 :],
                national + str(rnd.randrange(10)),
                national[:-1],
                "0" + national,
                "1" + national,
            ]
            for variant in variants:
                spaced = " ".join(variant[i : i + 3] for i in range(0, len(variant), 3))
                written += [
                    f"+{country_code}{variant}",
                    f"+{country_code} ({spaced[:3]}) {spaced[3:]}",
                ]
                written.append(f"+{country_code}-{variant[:4]}.{variant[4:]}")
    for _ in range(3000):
        written.append("+" + "".join(str(rnd.randrange(10)) for _ in range(rnd.randrange(1, 20))))
    written += ["+", "+0", "+00", "+1", "+12", "+123", "+ 39 333", "+39", "+800 1234 5678"]
    return written


def test_numbers_read_as_phonenumbers_reads_them_with_or_without_a_region() -> None:
    for written in _numbers_as_written():
        for region in (None, "IT", "US"):
            expected = _as_phonenumbers_reads_it(written, region)
            try:
                assert normalize_phone(written, region) == expected, written
            except ValueError:
                assert expected is None, written


def test_without_a_region_a_national_number_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="write it with its country code"):
        normalize_phone("333 123 4567")


def test_a_region_is_checked_against_the_numbering_plans() -> None:
    assert (check_phone_region("it"), check_phone_region(None)) == ("IT", None)
    with pytest.raises(ValueError, match="'XX' is not a region"):
        check_phone_region("XX")


# ------------------------------------------------------------------ the schema


def test_the_schema_normalizes_an_international_number_and_refuses_an_invalid_one() -> None:
    assert CustomerCreate(email="a@example.com", phone="+39 333 123 4567").phone == (
        "+393331234567"
    )
    with pytest.raises(ValidationError, match="is not a valid phone number"):
        CustomerCreate(email="a@example.com", phone="+39 12345")


def test_the_schema_leaves_a_national_number_to_the_service_and_its_region() -> None:
    assert CustomerCreate(email="a@example.com", phone="333 123 4567").phone == "333 123 4567"


# ------------------------------------------------------------------ the service


async def test_a_service_with_a_default_region_stores_national_numbers_in_e164(
    italian: CustomerService, tenant: str
) -> None:
    created = await italian.create_customer(
        tenant, {"email": "a@example.com", "phone": "333 123 4567"}
    )
    assert created.phone == "+393331234567"
    updated = await italian.update_customer(
        tenant, created.id, CustomerUpdate(phone="02 1234 5678")
    )
    assert updated.phone == "+390212345678"
    assert (await italian.get_customer(tenant, created.id)).phone == "+390212345678"


@pytest.mark.parametrize("phone", ["333 123 4567", "+39 12345", "call me"])
async def test_a_service_without_a_region_refuses_what_is_not_an_international_number(
    service: CustomerService, tenant: str, phone: str
) -> None:
    with pytest.raises(InvalidInput, match="is not a valid phone number") as caught:
        await service.create_customer(tenant, {"email": "a@example.com", "phone": phone})
    assert caught.value.field == "phone"


async def test_a_number_invalid_in_the_default_region_is_refused_naming_phone(
    italian: CustomerService, tenant: str
) -> None:
    customer = await italian.create_customer(tenant, {"email": "a@example.com"})
    with pytest.raises(InvalidInput) as caught:
        await italian.update_customer(tenant, customer.id, {"phone": "12"})
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("phone", "is not a valid phone number")
    ]
    assert (await italian.get_customer(tenant, customer.id)).phone is None


def test_an_unknown_default_region_is_refused_when_the_service_is_built(
    storage: InMemoryStorage, clock: FixedClock
) -> None:
    with pytest.raises(ValueError, match="'ZZ' is not a region"):
        CustomerService(
            storage.unit_of_work, clock, HeuristicIntelligence(), default_phone_region="ZZ"
        )


async def test_an_import_reads_national_numbers_in_the_region_and_rejects_the_rest(
    italian: CustomerService, service: CustomerService, tenant: str, other_tenant: str
) -> None:
    rows = [
        {"email": "a@example.com", "phone": "333 123 4567"},
        {"email": "b@example.com", "phone": "12"},
    ]
    result = await italian.import_customers(tenant, rows)
    assert (result.created, [(r.row, r.field) for r in result.rejections]) == (1, [(2, "phone")])
    a = await italian.get_customer_by_email(tenant, "a@example.com")
    assert a.phone == "+393331234567"

    regionless = await service.import_customers(other_tenant, rows[:1])
    assert [(r.row, r.field) for r in regionless.rejections] == [(1, "phone")]


async def test_an_order_s_shipping_phone_is_read_in_the_region_too(
    italian: CustomerService, tenant: str
) -> None:
    customer = await italian.create_customer(tenant, {"email": "a@example.com"})
    order = {"order_id": "A1", "total": "10", "shipping": {"phone": "333 123 4567"}}
    recorded = await italian.record_order(tenant, customer.id, order)
    assert recorded.order.shipping is not None
    assert recorded.order.shipping.phone == "+393331234567"
    # A retry written differently is the same order.
    order["shipping"] = {"phone": "+39 333 123 4567"}
    assert (await italian.record_order(tenant, customer.id, order)).created is False
    with pytest.raises(InvalidInput) as caught:
        await italian.record_order(
            tenant, customer.id, {"order_id": "A2", "total": "1", "shipping": {"phone": "12"}}
        )
    assert caught.value.field == "shipping.phone"


@pytest.mark.parametrize(
    "query",
    ["+44 20 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958", "020 7946 0958", "7946 0958"],
)
async def test_search_finds_a_number_however_it_is_written(
    service: CustomerService, tenant: str, query: str
) -> None:
    await service.create_customer(tenant, {"email": "other@example.com", "phone": "+393331234567"})
    london = await service.create_customer(
        tenant, {"email": "l@example.com", "phone": "+44 20 7946 0958"}
    )
    assert [c.id for c in await service.search_customers(tenant, query)] == [london.id]


def test_a_search_query_s_phone_form() -> None:
    assert phone_query("+44 (0)20 7946 0958") == "+442079460958"
    assert phone_query("+39 333") == "+39333"  # a prefix of a number
    assert phone_query("0039 333") == "39333"
    assert phone_query("mario") is None
    assert phone_query("000") is None


def test_the_container_and_bootstrap_pass_the_region_to_the_service() -> None:
    container = bootstrap("memory://", default_phone_region="GB")
    assert container.config.default_phone_region() == "GB"
    assert CustomersContainer().config.default_phone_region() is None


# ------------------------------------------------------------------ countries


def test_the_country_codes_are_pycountry_s_alpha_2_codes() -> None:
    assert {c.alpha_2 for c in pycountry.countries} == COUNTRY_CODES
    assert "IT" in COUNTRY_CODES
    assert "XX" not in COUNTRY_CODES


def test_an_address_country_is_an_iso_code() -> None:
    address = {"type": "shipping", "address_line1": "Via Roma 1", "city": "Milano"}
    assert AddressCreate(**address, postal_code="20100", country="it").country == "IT"
    with pytest.raises(ValidationError, match="must be an ISO 3166-1 alpha-2 country code"):
        AddressCreate(**address, postal_code="20100", country="XX")
