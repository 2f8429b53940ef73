from __future__ import annotations

import io
import itertools
import json
import logging
import math
import random
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from linkbay_customers import CustomerService, GDPRService, InvalidInput
from linkbay_customers.domain import (
    COMPARISONS,
    MAX_BLOCK_SIZE,
    AuditAction,
    CustomerNotFound,
    DuplicateDecision,
    DuplicateDecisionNotFound,
    InvalidDuplicateDecision,
    MatchModel,
    MatchRecord,
    ModelFit,
    Page,
    StorageRejected,
    blocking_keys,
    blocks,
    compare_records,
    fit_match_model,
    jaro_winkler,
    normalize_email,
)
from linkbay_customers.ports import Storage, duplicate_candidates
from linkbay_customers.schemas import CustomerDataExport
from linkbay_customers.services import DuplicateSuggestion, _duplicates
from linkbay_customers.testing import FixedClock

ADDRESS = {"type": "shipping", "address_line1": "Via Roma 1", "city": "Milano", "country": "IT"}


def _plain_jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler as the textbook writes it, one character at a time."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(max(len(a), len(b)) // 2 - 1, 0)
    matched_b = [False] * len(b)
    a_matches: list[str] = []
    for i, char in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not matched_b[j] and b[j] == char:
                matched_b[j] = True
                a_matches.append(char)
                break
    if not a_matches:
        return 0.0
    b_matches = [b[j] for j in range(len(b)) if matched_b[j]]
    transpositions = sum(x != y for x, y in zip(a_matches, b_matches, strict=True)) / 2
    n = len(a_matches)
    jaro = (n / len(a) + n / len(b) + (n - transpositions) / n) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


class TestComparisons:
    @pytest.mark.parametrize(
        ("email", "mailbox"),
        [
            ("John.Smith+shop@Gmail.com", "johnsmith@gmail.com"),
            ("j.o.h.n@googlemail.com", "john@gmail.com"),
            ("John.Smith+shop@example.com", "john.smith@example.com"),
            ("not-an-email", None),
            (None, None),
        ],
    )
    def test_an_email_normalizes_to_the_mailbox_it_reaches(
        self, email: str | None, mailbox: str | None
    ) -> None:
        assert normalize_email(email) == mailbox

    def test_jaro_winkler_gives_the_published_values(self) -> None:
        assert jaro_winkler("martha", "marhta") == pytest.approx(0.9611, abs=1e-4)
        assert jaro_winkler("dwayne", "duane") == pytest.approx(0.84, abs=1e-4)
        assert jaro_winkler("dixon", "dicksonx") == pytest.approx(0.8133, abs=1e-4)
        assert jaro_winkler("abc", "xyz") == 0.0
        assert jaro_winkler("", "") == 1.0

    def test_jaro_winkler_equals_the_plain_formulation_to_the_last_bit(self) -> None:
        rng = random.Random(16)
        alphabets = ("ab", "abcde", "abcdefghijklmnopqrstuvwxyz àéß", "Via Roma 12")
        pairs = [
            tuple("".join(rng.choice(alphabet) for _ in range(rng.randrange(13))) for _ in range(2))
            for alphabet in alphabets
            for _ in range(5000)
        ]
        pairs += [("martha", "marhta"), ("dixon", "dicksonx"), ("a", "ab"), ("ab", "ba")]
        differing = [(a, b) for a, b in pairs if jaro_winkler(a, b) != _plain_jaro_winkler(a, b)]
        assert differing == []

    def test_each_comparison_gives_its_levels(self) -> None:
        base = MatchRecord(
            1,
            email="ann.lee@gmail.com",
            phone="+393331234567",
            first_name="Ann",
            last_name="Lee",
            birthday=date(1990, 3, 4),
            postal_codes=frozenset({"20121"}),
            streets=frozenset({"Via Roma 1"}),
            cities=frozenset({"Milano"}),
        )
        same = MatchRecord(
            2,
            email="AnnLee+x@googlemail.com",
            phone="+393331234567",
            first_name="ann",
            last_name="LEE",
            birthday=date(1990, 3, 4),
            postal_codes=frozenset({"20121"}),
            streets=frozenset({"via roma 1"}),
            cities=frozenset({"milano"}),
        )
        assert [c.name for c in COMPARISONS] == [
            "email",
            "phone",
            "first_name",
            "last_name",
            "birthday",
            "address",
            "city",
        ]
        assert compare_records(base, same) == (2, 2, 2, 2, 4, 4, 2)
        close = MatchRecord(
            3,
            email="ann.lee@example.com",
            phone="+3903331234567",
            first_name="Leee",
            last_name="Ann",
            birthday=date(1990, 4, 3),
            postal_codes=frozenset({"20122"}),
            streets=frozenset({"Via Roma 1a"}),
            cities=frozenset({"Milan"}),
        )
        # Names in the other order are compared crosswise; a typo leaves them similar.
        assert compare_records(base, close) == (0, 1, 2, 1, 3, 2, 1)
        typed = MatchRecord(
            4,
            first_name="Bob",
            last_name="Lee",
            birthday=date(1990, 3, 14),
            postal_codes=frozenset({"21021"}),
            streets=frozenset({"Corso Como 5"}),
            cities=frozenset({"Roma"}),
        )
        assert compare_records(base, typed) == (None, None, 0, 2, 2, 1, 0)
        assert compare_records(base, replace(typed, birthday=date(1990, 7, 9))) == (
            (None, None, 0, 2, 1, 1, 0)
        )
        assert compare_records(base, MatchRecord(5)) == (None,) * len(COMPARISONS)

    def test_blocking_keys_bring_swapped_names_and_mailboxes_together(self) -> None:
        a = MatchRecord(1, email="a.b@gmail.com", first_name="Ann", last_name="Lee")
        b = MatchRecord(2, email="ab+x@googlemail.com", first_name="Lee", last_name="Ann")
        shared = blocking_keys(a) & blocking_keys(b)
        assert shared == {"e:ab@gmail.com", "l:ab", "s:ann|lee"}


class TestBlocking:
    def test_a_key_held_by_more_than_a_block_allows_proposes_nothing(self) -> None:
        crowd = [MatchRecord(n, phone="+14155550100") for n in range(1, MAX_BLOCK_SIZE + 2)]
        full = [MatchRecord(n, phone="+14155550111") for n in range(100, 100 + MAX_BLOCK_SIZE)]
        alone = [MatchRecord(500, phone="+14155550122")]
        assert blocks([*crowd, *full, *alone]) == {"p:155550111": [r.customer_id for r in full]}

    def test_a_phone_under_another_country_code_shares_its_key(self) -> None:
        a = MatchRecord(1, phone="+393331234567")
        b = MatchRecord(2, phone="+3903331234567")
        assert blocking_keys(a) & blocking_keys(b) == {"p:331234567"}


def _simulated(
    rng: random.Random, m: list[list[float]], u: list[list[float]], matches: int, others: int
) -> list[tuple[int | None, ...]]:
    """Comparison vectors drawn from known m and u, a tenth of the fields missing."""
    vectors = []
    for count, distributions in ((matches, m), (others, u)):
        for _ in range(count):
            vectors.append(
                tuple(
                    None if rng.random() < 0.1 else rng.choices(range(len(p)), weights=p)[0]
                    for p in distributions
                )
            )
    return vectors


def _known(top: bool) -> list[list[float]]:
    """Per comparison, a distribution over its levels: rising to the top level for
    matches, falling from the bottom one for the others (weights rise with the level)."""
    distributions = []
    for k, comparison in enumerate(COMPARISONS):
        size = len(comparison.levels)
        raw = [(j + 1) ** (2 + k % 2) if top else (size - j) ** (3 + k % 2) for j in range(size)]
        distributions.append([x / sum(raw) for x in raw])
    return distributions


class TestFellegiSunter:
    def test_em_recovers_known_m_and_u_without_labels(self) -> None:
        true_m, true_u = _known(top=True), _known(top=False)
        vectors = _simulated(random.Random(7), true_m, true_u, matches=6000, others=14000)
        model = fit_match_model(vectors)
        assert model.prior == pytest.approx(0.3, abs=0.02)
        for fitted, known in ((model.m, true_m), (model.u, true_u)):
            for levels, true_levels in zip(fitted, known, strict=True):
                assert list(levels) == pytest.approx(true_levels, abs=0.03)

    def test_em_never_makes_a_closer_agreement_evidence_against_a_match(self) -> None:
        # Most candidate pairs share only names (a name block), a few share only a
        # birthday; EM without constraint splits them by block, not by match.
        vectors = [(0, None, 2, 2, None, 1, 2)] * 6000 + [(0, 0, 0, 0, 4, 0, 0)] * 800
        vectors += [(2, 2, 2, 2, 4, 4, 2)] * 300 + [(1, None, 2, 1, None, 3, 2)] * 100
        vectors += [(0, 2, 1, 1, None, 2, 1)] * 200
        model = fit_match_model(vectors)
        for m, u in zip(model.m, model.u, strict=True):
            weights = [math.log(x / y) for x, y in zip(m, u, strict=True)]
            assert all(low <= high + 1e-9 for low, high in itertools.pairwise(weights))
        assert model.probability((2, 2, 2, 2, 4, 4, 2)) > 0.99

    def test_the_priors_weigh_every_level_up_from_the_lowest(self) -> None:
        model = MatchModel()
        for m, u in zip(model.m, model.u, strict=True):
            weights = [math.log(x / y) for x, y in zip(m, u, strict=True)]
            assert weights == sorted(weights)
            assert weights[0] < 0 < weights[-1]
            assert sum(m) == pytest.approx(1)
            assert sum(u) == pytest.approx(1)

    def test_the_priors_hold_a_tiny_tenant_and_yield_to_a_large_one(self) -> None:
        prior = MatchModel()
        tiny = fit_match_model(
            [
                (2, None, 2, 2, None, None, None),
                (0, 2, 2, 2, None, None, None),
                (0, None, 2, 2, None, None, None),
                (0, None, 2, 0, None, 4, 2),
            ]
        )
        moved = [
            abs(x - y)
            for fitted, default in ((tiny.m, prior.m), (tiny.u, prior.u))
            for a, b in zip(fitted, default, strict=True)
            for x, y in zip(a, b, strict=True)
        ]
        assert max(moved) < 0.06
        assert abs(tiny.prior - prior.prior) < 0.06
        # Every level keeps some probability, so no vector is certain either way.
        assert all(0 < p < 1 for levels in (*tiny.m, *tiny.u) for p in levels)
        # A large tenant's data outweigh the priors: its EM lands near the truth.
        true_m, true_u = _known(top=True), _known(top=False)
        large = fit_match_model(_simulated(random.Random(3), true_m, true_u, 3000, 30000))
        assert large.u[2][2] == pytest.approx(true_u[2][2], abs=0.01)
        assert abs(large.u[2][2] - prior.u[2][2]) > 0.2

    @pytest.mark.parametrize(
        ("vector", "likely"),
        [
            # The names and the phone, another email: one person who changed address.
            ((0, 2, 2, 2, None, None, None), True),
            # The same mailbox under a +tag, with or without the names.
            ((2, None, 2, 2, None, None, None), True),
            ((2, None, None, None, None, None, None), True),
            # The names and the birthday, or the names and the address.
            ((0, None, 2, 2, 4, None, None), True),
            ((None, None, 2, 2, None, 4, 2), True),
            # The same names only, with or without another email: two people so named.
            ((0, None, 2, 2, None, None, None), False),
            ((None, None, 2, 2, None, None, None), False),
            ((0, 0, 0, 0, 0, 0, 0), False),
        ],
    )
    def test_the_priors_alone_call_what_a_person_would(
        self, vector: tuple[int | None, ...], likely: bool
    ) -> None:
        assert (MatchModel().probability(vector) > 0.5) is likely

    def test_the_default_model_weighs_agreement_up_and_disagreement_down(self) -> None:
        model = MatchModel()
        only_email = (2, *(None,) * (len(COMPARISONS) - 1))
        assert model.probability((2, None, 2, 2, None, None, None)) > model.probability(only_email)
        assert model.probability((None,) * len(COMPARISONS)) == pytest.approx(model.prior)


async def _customer(service: CustomerService, tenant: str, **fields: Any) -> int:
    return (await service.create_customer(tenant, fields)).id


async def _twins(service: CustomerService, tenant: str) -> list[int]:
    """Six pairs of customers sharing a phone: 12 customers, 6 candidate pairs."""
    return [
        await _customer(service, tenant, email=f"s{n}.{twin}@example.com", phone=f"+1415555010{n}")
        for n in range(6)
        for twin in range(2)
    ]


class TestDuplicates:
    @pytest.fixture
    def fits(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """The number of pairs of each fit of the duplicate model the services make."""
        made: list[int] = []

        def counting(patterns: Any, **options: Any) -> MatchModel:
            made.append(sum(patterns.values()))
            return fit_match_model(patterns, **options)

        monkeypatch.setattr(_duplicates, "fit_match_model", counting)
        return made

    async def test_likely_pairs_are_found_with_their_fields_and_merge(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        ann = await _customer(
            service,
            tenant,
            email="ann.lee@gmail.com",
            first_name="Ann",
            last_name="Lee",
            phone="+393331234567",
            birthday=date(1990, 3, 4),
        )
        clock.advance(timedelta(days=1))
        twin = await _customer(
            service,
            tenant,
            email="annlee+shop@googlemail.com",
            first_name="Lee",
            last_name="Ann",
            phone="+393331234567",
        )
        await service.record_order(
            tenant, twin, {"order_id": "T-1", "total": "10", "currency": "EUR"}
        )
        await _customer(service, tenant, email="bob@example.com", first_name="Bob", last_name="Ray")
        page = await service.find_duplicates(tenant)
        assert page.total == 1
        (pair,) = page.items
        assert (pair.customer_id, pair.other_id) == (ann, twin)
        assert pair.match_probability > 0.9
        # The names are written the other way round: compared crosswise, they agree.
        assert pair.agreeing == (
            "email: same mailbox",
            "phone: same number",
            "first_name: same",
            "last_name: same",
        )
        assert pair.disagreeing == ()
        assert pair.merge_request.target_customer_id == twin
        assert pair.merge_request.source_customer_id == ann
        assert pair.keep_reason == "more orders"
        # The suggestion merges as it is.
        await service.merge_customers(tenant, pair.merge_request)
        assert (await service.find_duplicates(tenant)).total == 0

    async def test_the_older_customer_is_kept_when_orders_tie(
        self, service: CustomerService, tenant: str, clock: FixedClock
    ) -> None:
        first = await _customer(service, tenant, email="x@example.com", phone="+14155550100")
        clock.advance(timedelta(days=1))
        await _customer(service, tenant, email="X+1@example.com", phone="+14155550100")
        (pair,) = (await service.find_duplicates(tenant)).items
        assert pair.merge_request.target_customer_id == first
        assert pair.keep_reason == "older customer"

    async def test_a_small_tenant_calls_its_twins_as_a_person_would(
        self, service: CustomerService, tenant: str
    ) -> None:
        # A shop of forty customers, some of them namesakes, and three second records:
        # the same mailbox under a +tag; the names and phone with another email; the
        # names only, with another email.
        rng = random.Random(5)
        people = []
        for n in range(40):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            people.append(
                await _customer(
                    service,
                    tenant,
                    email=f"{first}.{last}{n}@example.com".lower(),
                    first_name=first,
                    last_name=last,
                    phone=f"+39347{rng.randrange(10**7):07d}",
                )
            )
        shop, phone, names = [await service.get_customer(tenant, i) for i in people[:3]]
        assert shop.email is not None
        tagged, called, namesake = [
            await _customer(
                service,
                tenant,
                first_name=original.first_name,
                last_name=original.last_name,
                **fields,
            )
            for original, fields in (
                (shop, {"email": shop.email.replace("@", "+shop@")}),
                (phone, {"email": "another@example.net", "phone": phone.phone}),
                (names, {"email": "someone@example.net"}),
            )
        ]
        found = await service.list_duplicates(tenant, min_probability=0.0)
        probability = {(s.customer_id, s.other_id): s.match_probability for s in found}
        assert probability[shop.id, tagged] > 0.95
        assert probability[phone.id, called] > 0.8
        assert probability[names.id, namesake] < 0.2
        likely = {pair for pair, p in probability.items() if p >= 0.5}
        assert likely == {(shop.id, tagged), (phone.id, called)}

    async def test_pairs_come_from_every_blocking_key_and_never_unrelated_ones(
        self, service: CustomerService, tenant: str
    ) -> None:
        a = await _customer(
            service, tenant, email="a@one.com", first_name="Maria", last_name="Rossi"
        )
        b = await _customer(
            service, tenant, email="b@two.com", first_name="Mario", last_name="Rossi"
        )
        await service.add_address(tenant, a, {**ADDRESS, "postal_code": "20121"})
        await service.add_address(tenant, b, {**ADDRESS, "postal_code": "20121"})
        c = await _customer(
            service,
            tenant,
            email="c@three.com",
            first_name="Luca",
            last_name="Bianchi",
            birthday=date(1980, 1, 2),
        )
        d = await _customer(
            service,
            tenant,
            email="d@four.com",
            first_name="Lucia",
            last_name="Bianco",
            birthday=date(1980, 1, 2),
        )
        await _customer(service, tenant, email="e@five.com", first_name="Zed", last_name="Zulu")
        page = await service.find_duplicates(tenant, min_probability=0.0, page_size=100)
        assert {(p.customer_id, p.other_id) for p in page.items} == {(a, b), (c, d)}

    async def test_pages_are_by_probability_and_the_threshold_filters(
        self, service: CustomerService, tenant: str
    ) -> None:
        for n in range(3):
            await _customer(service, tenant, email=f"p{n}@example.com", phone="+14155550100")
        everything = await service.find_duplicates(tenant, min_probability=0.0, page_size=2)
        assert everything.total == 3
        assert len(everything.items) == 2
        second = await service.find_duplicates(tenant, min_probability=0.0, page=2, page_size=2)
        assert len(second.items) == 1
        probabilities = [p.match_probability for p in (*everything.items, *second.items)]
        assert probabilities == sorted(probabilities, reverse=True)
        top = max(probabilities)
        strict = await service.find_duplicates(tenant, min_probability=min(top + 1e-9, 1.0))
        assert strict.total == 0

    async def test_one_customers_duplicates_name_that_customer_first(
        self, service: CustomerService, tenant: str
    ) -> None:
        a = await _customer(service, tenant, email="same@example.com", first_name="A")
        b = await _customer(service, tenant, email="Same+x@example.com", first_name="A")
        await _customer(service, tenant, email="other@example.com")
        (pair,) = await service.find_duplicates_of(tenant, b, min_probability=0.5)
        assert (pair.customer_id, pair.other_id) == (b, a)
        with pytest.raises(CustomerNotFound):
            await service.find_duplicates_of(tenant, 999_999)

    async def test_deleted_and_erased_customers_never_appear(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a = await _customer(service, tenant, email="dup@example.com", phone="+14155550100")
        b = await _customer(service, tenant, email="dup+b@example.com", phone="+14155550100")
        c = await _customer(service, tenant, email="dup+c@example.com", phone="+14155550100")
        await service.delete_customer(tenant, b)
        await gdpr.delete_customer_data(tenant, c)
        assert (await service.find_duplicates(tenant, min_probability=0.0)).total == 0
        assert await service.find_duplicates_of(tenant, a, min_probability=0.0) == []

    async def test_matching_never_crosses_tenants(
        self, service: CustomerService, tenant: str, other_tenant: str
    ) -> None:
        await _customer(service, tenant, email="same@example.com", phone="+14155550100")
        await _customer(service, other_tenant, email="same@example.com", phone="+14155550100")
        assert (await service.find_duplicates(tenant, min_probability=0.0)).total == 0
        assert (await service.find_duplicates(other_tenant, min_probability=0.0)).total == 0

    async def test_customers_the_profiling_policy_excludes_are_still_matched(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a = await _customer(service, tenant, email="opt@example.com", phone="+14155550100")
        await _customer(service, tenant, email="opt+2@example.com", phone="+14155550100")
        await gdpr.update_consent(tenant, a, "analytics", False)
        assert (await service.find_duplicates(tenant)).total == 1

    async def test_progress_counts_the_customers_read(
        self, service: CustomerService, tenant: str
    ) -> None:
        for n in range(3):
            await _customer(service, tenant, email=f"n{n}@example.com")
        seen: list[int] = []
        await service.find_duplicates(tenant, on_progress=seen.append)
        assert seen[-1] == 3

    @pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True])
    async def test_a_bad_threshold_names_the_field(
        self, service: CustomerService, tenant: str, bad: Any
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            await service.find_duplicates(tenant, min_probability=bad)
        assert raised.value.errors[0].field == "min_probability"

    async def test_the_model_is_fitted_once_per_call(
        self, service: CustomerService, tenant: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ids = [
            await _customer(service, tenant, email=f"f{n}@example.com", phone="+14155550100")
            for n in range(3)
        ]
        fits: list[int] = []

        def counting(patterns: Any, **options: Any) -> MatchModel:
            fits.append(sum(patterns.values()))
            return fit_match_model(patterns, **options)

        monkeypatch.setattr(_duplicates, "fit_match_model", counting)
        await service.find_duplicates(tenant, min_probability=0.0)
        await service.list_duplicates(tenant, min_probability=0.0)
        await service.find_duplicates_of(tenant, ids[0], min_probability=0.0)
        assert fits == [3, 3, 3]

    async def test_a_large_tenant_is_fitted_on_a_sample_once_and_scored_whole(
        self, service: CustomerService, tenant: str, fits: list[int]
    ) -> None:
        await _twins(service, tenant)
        service.duplicate_sample_customers = 4  # one pair in three
        seen: list[int] = []
        page = await service.find_duplicates(tenant, min_probability=0.0, on_progress=seen.append)
        again = await service.find_duplicates(tenant, min_probability=0.0)
        listed = await service.list_duplicates(tenant, min_probability=0.0)
        first = page.items[0]
        of_one = await service.find_duplicates_of(tenant, first.customer_id, min_probability=0.0)
        assert page.total == 6
        assert len(fits) == 1  # the later calls score with the stored fit
        assert 0 < fits[0] < 6
        assert page == again
        assert listed == page.items
        assert [s.match_probability for s in of_one if s.other_id == first.other_id] == [
            first.match_probability
        ]
        assert seen == sorted(seen)
        assert seen[-1] == 12

    async def test_the_stored_fit_scores_as_a_new_fit_does(
        self, service: CustomerService, storage: Storage, tenant: str, fits: list[int]
    ) -> None:
        await _twins(service, tenant)
        service.duplicate_sample_customers = 4
        fresh = await service.list_duplicates(tenant, min_probability=0.0)
        stored = await service.list_duplicates(tenant, min_probability=0.0)
        async with storage.unit_of_work(tenant) as uow:
            fit = await duplicate_candidates(uow).load_match_fit()
            assert fit is not None
            # A fit of other comparisons (another version of the library) is refitted.
            parameters = {**fit.parameters, "comparisons": 0.0}
            await duplicate_candidates(uow).save_match_fit(replace(fit, parameters=parameters))
            await uow.commit()
        refitted = await service.list_duplicates(tenant, min_probability=0.0)
        assert len(fits) == 2
        assert fresh == stored == refitted

    async def test_a_change_after_the_fit_or_a_day_makes_the_next_call_refit(
        self, service: CustomerService, tenant: str, clock: FixedClock, fits: list[int]
    ) -> None:
        ids = await _twins(service, tenant)
        service.duplicate_sample_customers = 4
        await service.find_duplicates(tenant)
        clock.advance(hours=23)
        await service.find_duplicates_of(tenant, ids[0])
        assert len(fits) == 1
        await service.update_customer(tenant, ids[0], {"first_name": "Zoe"})  # audited
        await service.find_duplicates(tenant)
        await service.find_duplicates(tenant)
        assert len(fits) == 2
        await service.create_customer(tenant, {"email": "new@example.com"})
        await service.find_duplicates_of(tenant, ids[0])
        assert len(fits) == 3
        clock.advance(hours=25)
        await service.find_duplicates(tenant)
        assert len(fits) == 4

    async def test_the_next_page_of_an_unchanged_tenant_takes_no_second_pass(
        self, service: CustomerService, tenant: str, fits: list[int]
    ) -> None:
        def pairs(page: Page[DuplicateSuggestion]) -> list[tuple[int, int]]:
            return [(s.customer_id, s.other_id) for s in page.items]

        ids = await _twins(service, tenant)  # a small tenant: fitted at each pass
        first = await service.find_duplicates(tenant, min_probability=0.0, page_size=4)
        second = await service.find_duplicates(tenant, min_probability=0.0, page=2, page_size=4)
        assert len(fits) == 1
        assert first.total == second.total == 6
        assert sorted(pairs(first) + pairs(second)) == [
            (ids[n], ids[n + 1]) for n in range(0, 12, 2)
        ]
        # Another tenant's listing is its own, whatever its ids.
        other = f"{tenant}-other"
        await _twins(service, other)
        await service.mark_distinct(other, ids[0], ids[1])
        assert (await service.find_duplicates(other, min_probability=0.0)).total == 5
        assert (await service.find_duplicates(tenant, min_probability=0.0)).total == 6
        assert len(fits) == 2
        # A decision, a new customer: each is seen by the next page at once.
        await service.mark_distinct(tenant, ids[0], ids[1])
        after = await service.find_duplicates(tenant, min_probability=0.0)
        assert after.total == 5
        assert (ids[0], ids[1]) not in pairs(after)
        third = await _customer(service, tenant, email="s0.2@example.com", phone="+14155550100")
        grown = await service.find_duplicates(tenant, min_probability=0.0)
        assert grown.total == 7
        assert {(ids[0], third), (ids[1], third)} <= set(pairs(grown))
        await service.update_customer(tenant, third, {"phone": "+14155550199"})
        assert (await service.find_duplicates(tenant, min_probability=0.0)).total == 5
        assert len(fits) == 5

    async def test_a_fit_the_storage_cannot_keep_costs_the_call_nothing(
        self,
        service: CustomerService,
        storage: Storage,
        tenant: str,
        fits: list[int],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await _twins(service, tenant)
        service.duplicate_sample_customers = 4
        expected = await service.list_duplicates(tenant, min_probability=0.0)
        async with storage.unit_of_work(tenant) as uow:
            await duplicate_candidates(uow).save_match_fit(
                ModelFit(tenant, "duplicates", {}, fitted_at=datetime.now(UTC), sample_size=0)
            )  # unusable: the next call fits again and tries to store it
            await uow.commit()

        def refusing(uow: Any) -> Any:
            candidates = duplicate_candidates(uow)

            async def save_match_fit(fit: ModelFit) -> None:
                raise StorageRejected("permission denied for table model_fits")

            monkeypatch.setattr(candidates, "save_match_fit", save_match_fit, raising=False)
            return candidates

        monkeypatch.setattr(_duplicates, "duplicate_candidates", refusing)
        with caplog.at_level(logging.WARNING, logger=_duplicates.__name__):
            page = await service.find_duplicates(tenant, min_probability=0.0, page_size=100)
        assert page.items == expected
        assert len(fits) == 2
        assert "was not stored: permission denied" in caplog.text

    async def test_a_tenant_fitted_on_all_its_pairs_stores_no_fit(
        self, service: CustomerService, storage: Storage, tenant: str
    ) -> None:
        await _twins(service, tenant)
        await service.find_duplicates(tenant)
        async with storage.unit_of_work(tenant) as uow:
            assert await duplicate_candidates(uow).load_match_fit() is None

    async def test_a_generated_tenant_is_matched_at_the_benchmarks_quality(
        self, service: CustomerService, tenant: str
    ) -> None:
        truth: set[tuple[int, int]] = set()
        for person in _people(120, seed=16):
            ids = []
            for record in person:
                address = record.pop("address")
                ids.append(await _customer(service, tenant, **record))
                await service.add_address(tenant, ids[-1], address)
            if len(ids) == 2:
                truth.add((ids[0], ids[1]))
        found = await service.list_duplicates(tenant, min_probability=0.5)
        pairs = {(s.customer_id, s.other_id) for s in found}
        hits = len(pairs & truth)
        precision, recall = hits / len(pairs), hits / len(truth)
        assert precision >= 0.95
        assert recall >= 0.9
        # One customer's duplicates are the tenant's, scored by the same model.
        probabilities = {(s.customer_id, s.other_id): s.match_probability for s in found}
        for a, b in sorted(truth)[:5]:
            of_b = await service.find_duplicates_of(tenant, b, min_probability=0.5)
            assert {(s.other_id, s.match_probability) for s in of_b if s.other_id == a} == (
                {(a, probabilities[a, b])} if (a, b) in probabilities else set()
            )


_FIRST = ["Mario", "Anna", "Luca", "Giulia", "Marco", "Sara", "John", "Emma", "Noah", "Olivia"]
_LAST = ["Rossi", "Bianchi", "Smith", "Jones", "Muller", "Garcia", "Brown", "Ferrari", "Russo"]
_CITIES = ["Milano", "Roma", "Torino", "Napoli"]


def _people(count: int, *, seed: int) -> list[list[dict[str, Any]]]:
    """People, a third of them twice, the second record changed as such records are: a
    typo or swapped names, the email tagged or at another provider (never the same:
    an email is unique in a tenant), the phone or birthday dropped, a move."""
    rng = random.Random(seed)
    people = []
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        record: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}{n}@example.com".lower(),
            "phone": f"+39347{rng.randrange(10**7):07d}",
            "birthday": date(1950, 1, 1) + timedelta(days=rng.randrange(18_000)),
            "address": {
                **ADDRESS,
                "address_line1": f"Via {rng.choice(_LAST)} {rng.randrange(1, 200)}",
                "city": rng.choice(_CITIES),
                "postal_code": f"{rng.randrange(10_000, 99_999)}",
            },
        }
        person = [record]
        if rng.random() < 1 / 3:
            twin = {**record, "address": dict(record["address"])}
            if rng.random() < 0.3:
                i = rng.randrange(1, len(first))
                twin["first_name"] = first[:i] + "e" + first[i + 1 :]
            if rng.random() < 0.2:
                twin["first_name"], twin["last_name"] = last, first
            mailbox = record["email"].partition("@")[0]
            twin["email"] = rng.choice(
                [
                    f"{mailbox}+shop@example.com",
                    f"{mailbox}@mail.example.net",
                    f"p{n}@other.example",
                ]
            )
            if rng.random() < 0.3:
                twin["phone"] = None
            if rng.random() < 0.3:
                twin["birthday"] = None
            if rng.random() < 0.3:
                twin["address"]["postal_code"] = f"{rng.randrange(10_000, 99_999)}"
                twin["address"]["address_line1"] = f"Via Nuova {rng.randrange(1, 200)}"
            person.append(twin)
        people.append(person)
    return people


async def _triplets(service: CustomerService, tenant: str) -> tuple[int, int, int]:
    """Three customers that are pairwise likely duplicates (one phone, one mailbox)."""
    return (
        await _customer(service, tenant, email="tri@example.com", phone="+14155550100"),
        await _customer(service, tenant, email="tri+b@example.com", phone="+14155550100"),
        await _customer(service, tenant, email="tri+c@example.com", phone="+14155550100"),
    )


async def _pairs(service: CustomerService, tenant: str) -> set[tuple[int, int]]:
    page = await service.find_duplicates(tenant, min_probability=0.0, page_size=100)
    listed = await service.list_duplicates(tenant, min_probability=0.0)
    pairs = {(p.customer_id, p.other_id) for p in page.items}
    assert pairs == {(p.customer_id, p.other_id) for p in listed}
    assert page.total == len(pairs)
    return pairs


async def _others(service: CustomerService, tenant: str, customer_id: int) -> set[int]:
    found = await service.find_duplicates_of(tenant, customer_id, min_probability=0.0)
    return {s.other_id for s in found}


async def _trail(gdpr: GDPRService, tenant: str, customer_id: int) -> list[tuple[str, Any]]:
    events = (await gdpr.list_audit_events(tenant, customer_id=customer_id)).items
    return [(e.action, e.details) for e in events if e.action.startswith("pair.")]


class TestDuplicateDecisions:
    async def test_a_pair_marked_as_two_people_is_never_suggested_again(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        assert await _pairs(service, tenant) == {(a, b), (a, c), (b, c)}
        decision = await service.mark_distinct(tenant, b, a, actor="ops@shop")
        assert decision == DuplicateDecision(
            tenant_id=tenant,
            customer_id=a,
            other_id=b,
            decided_by="ops@shop",
            decided_at=clock.now(),
        )
        assert await _pairs(service, tenant) == {(a, c), (b, c)}
        assert await _others(service, tenant, a) == {c}
        assert await _others(service, tenant, b) == {c}
        assert await _others(service, tenant, c) == {a, b}
        # Marking it again keeps the first decision and records nothing.
        clock.advance(timedelta(hours=1))
        assert await service.mark_distinct(tenant, a, b, actor="someone@shop") == decision
        assert await service.list_duplicate_decisions(tenant, a) == [decision]
        assert await service.list_duplicate_decisions(tenant, b) == [decision]
        assert await service.list_duplicate_decisions(tenant, c) == []
        assert await _trail(gdpr, tenant, a) == [
            (AuditAction.PAIR_MARKED_DISTINCT, {"other_customer_id": b})
        ]
        assert await _trail(gdpr, tenant, b) == [
            (AuditAction.PAIR_MARKED_DISTINCT, {"other_customer_id": a})
        ]
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_undoing_the_mark_suggests_the_pair_again(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        await service.mark_distinct(tenant, a, b)
        await service.mark_distinct(tenant, a, c)
        assert await _pairs(service, tenant) == {(b, c)}
        await service.undo_distinct(tenant, b, a, actor="ops@shop")
        assert await _pairs(service, tenant) == {(a, b), (b, c)}
        assert [d.other_id for d in await service.list_duplicate_decisions(tenant, a)] == [c]
        with pytest.raises(DuplicateDecisionNotFound) as never:
            await service.undo_distinct(tenant, a, b)
        assert never.value.field == "other_id"
        assert await _trail(gdpr, tenant, b) == [
            (AuditAction.PAIR_MARKED_DISTINCT, {"other_customer_id": a}),
            (AuditAction.PAIR_UNMARKED_DISTINCT, {"other_customer_id": a}),
        ]
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_a_pair_that_cannot_be_decided_is_refused_naming_the_field(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        gone = await _customer(service, tenant, email="gone@example.com")
        erased = await _customer(service, tenant, email="erased@example.com")
        await service.merge_customers(tenant, {"source_customer_id": b, "target_customer_id": a})
        await service.delete_customer(tenant, gone)
        await gdpr.delete_customer_data(tenant, erased)
        cases: list[tuple[int, int, type[Exception], str]] = [
            (a, a, InvalidDuplicateDecision, "other_id"),
            (a, 999_999, CustomerNotFound, "other_id"),
            (999_999, a, CustomerNotFound, "customer_id"),
            (0, a, CustomerNotFound, "customer_id"),
            (c, b, InvalidDuplicateDecision, "other_id"),  # merged into a
            (b, c, InvalidDuplicateDecision, "customer_id"),
            (a, gone, CustomerNotFound, "other_id"),
            (erased, a, InvalidDuplicateDecision, "customer_id"),
        ]
        for customer_id, other_id, error, field in cases:
            for decide in (service.mark_distinct, service.undo_distinct):
                with pytest.raises(error) as refused:
                    await decide(tenant, customer_id, other_id)
                assert refused.value.field == field, (customer_id, other_id)
        with pytest.raises(InvalidDuplicateDecision, match=f"merged into customer {a}"):
            await service.mark_distinct(tenant, c, b)
        assert await service.list_duplicate_decisions(tenant, a) == []

    async def test_a_merge_carries_the_decisions_to_the_customer_kept(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        marked = await service.mark_distinct(tenant, a, c, actor="ops@shop")
        clock.advance(timedelta(minutes=5))
        await service.merge_customers(tenant, {"source_customer_id": a, "target_customer_id": b})
        # The merged pair drops out; whoever a was not, b is not either.
        assert await _pairs(service, tenant) == set()
        carried = DuplicateDecision(
            tenant_id=tenant,
            customer_id=b,
            other_id=c,
            decided_by="ops@shop",
            decided_at=marked.decided_at,
        )
        assert await service.list_duplicate_decisions(tenant, b) == [carried]
        assert await service.list_duplicate_decisions(tenant, a) == [carried]  # a resolves to b
        await service.undo_distinct(tenant, b, c)
        assert await _pairs(service, tenant) == {(b, c)}
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_merging_a_pair_marked_as_two_people_undoes_the_mark(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        await service.mark_distinct(tenant, a, b)
        await service.mark_distinct(tenant, b, c)
        await service.mark_distinct(tenant, a, c)
        await service.merge_customers(tenant, {"source_customer_id": a, "target_customer_id": b})
        assert await service.list_duplicate_decisions(tenant, b) == [
            d for d in await service.list_duplicate_decisions(tenant, c) if d.customer_id == b
        ]
        assert [
            (d.customer_id, d.other_id) for d in await service.list_duplicate_decisions(tenant, c)
        ] == [(b, c)]
        undone = (AuditAction.PAIR_UNMARKED_DISTINCT, {"other_customer_id": b, "reason": "merge"})
        assert (await _trail(gdpr, tenant, a))[-1] == undone
        assert (await _trail(gdpr, tenant, b))[-1] == (
            AuditAction.PAIR_UNMARKED_DISTINCT,
            {"other_customer_id": a, "reason": "merge"},
        )
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_the_export_holds_the_decisions_and_erasure_removes_them(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        await service.mark_distinct(tenant, a, b, actor="ops@shop")
        await service.mark_distinct(tenant, c, a)
        export = CustomerDataExport.of(await gdpr.export_customer_data(tenant, a))
        document = export.model_dump(mode="json")
        assert [
            (d["customer_id"], d["other_id"], d["decided_by"])
            for d in document["duplicate_decisions"]
        ] == [(a, b, "ops@shop"), (a, c, None)]
        streamed = b"".join([chunk async for chunk in gdpr.stream_customer_data(tenant, a)])
        assert json.loads(streamed)["duplicate_decisions"] == document["duplicate_decisions"]
        archive = zipfile.ZipFile(io.BytesIO(await gdpr.export_customer_data_csv(tenant, b)))
        rows = archive.read("duplicate_decisions.csv").decode().splitlines()
        assert rows[0] == "customer_id,other_id,decided_by,decided_at"
        assert rows[1].startswith(f"{a},{b},ops@shop,")
        # Erasure removes the erased customer's decisions; the others keep theirs.
        await service.mark_distinct(tenant, b, c)
        await gdpr.delete_customer_data(tenant, a)
        assert [
            (d.customer_id, d.other_id) for d in await service.list_duplicate_decisions(tenant, c)
        ] == [(b, c)]
        await gdpr.delete_customer_data(tenant, c, anonymize=False)
        assert await service.list_duplicate_decisions(tenant, b) == []
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_a_retention_purge_removes_the_decisions_of_who_it_anonymizes(
        self, service: CustomerService, gdpr: GDPRService, tenant: str, clock: FixedClock
    ) -> None:
        a, b, _ = await _triplets(service, tenant)
        await service.mark_distinct(tenant, a, b)
        clock.advance(timedelta(days=400))
        recent = await _customer(service, tenant, email="recent@example.com")
        await service.mark_distinct(tenant, a, recent)
        purged = await gdpr.purge_inactive(tenant, timedelta(days=365), dry_run=False)
        assert recent not in purged.customer_ids
        assert await service.list_duplicate_decisions(tenant, recent) == []
        assert (await gdpr.verify_audit_trail(tenant)).broken is None

    async def test_a_hard_deleted_customer_takes_its_decisions_along(
        self, service: CustomerService, tenant: str
    ) -> None:
        a, b, c = await _triplets(service, tenant)
        await service.mark_distinct(tenant, a, b)
        await service.mark_distinct(tenant, b, c)
        await service.delete_customer(tenant, b, soft_delete=False)
        assert await service.list_duplicate_decisions(tenant, a) == []
        assert await _pairs(service, tenant) == {(a, c)}

    async def test_decisions_stay_in_their_tenant(
        self, service: CustomerService, tenant: str, other_tenant: str
    ) -> None:
        # Ids are counted per tenant: both tenants' pairs have the same ids.
        mine = await _triplets(service, tenant)
        theirs = await _triplets(service, other_tenant)
        assert mine == theirs
        a, b, _ = mine
        await service.mark_distinct(other_tenant, a, b)
        assert (a, b) in await _pairs(service, tenant)
        assert (a, b) not in await _pairs(service, other_tenant)
        assert await service.list_duplicate_decisions(tenant, a) == []
        with pytest.raises(DuplicateDecisionNotFound):
            await service.undo_distinct(tenant, a, b)
        assert len(await service.list_duplicate_decisions(other_tenant, a)) == 1

    async def test_customers_the_profiling_policy_excludes_can_be_decided_about(
        self, service: CustomerService, gdpr: GDPRService, tenant: str
    ) -> None:
        a, b, _ = await _triplets(service, tenant)
        await gdpr.update_consent(tenant, a, "analytics", False)
        await service.mark_distinct(tenant, a, b)
        assert (a, b) not in await _pairs(service, tenant)
