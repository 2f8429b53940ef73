"""Duplicate detection: field comparisons and a Fellegi-Sunter model fitted by EM.

Two customer records are compared field by field; each comparison gives a discrete
agreement level (0 = disagree, higher = closer) or None when a side lacks the
field. A ``MatchModel`` holds, per comparison and level, the probability ``m`` of
that level among pairs that are the same person and ``u`` among pairs that are
not, and the share ``prior`` of candidate pairs that match; it turns a comparison
vector into a match probability. ``fit_match_model`` learns the model from the
comparison vectors of a tenant's candidate pairs without labels (expectation
maximisation, as splink does), over the counts of distinct vectors rather than the
pairs themselves, with Dirichlet pseudo-counts that keep a small tenant's model
near sensible defaults. Pure standard library.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from linkbay_customers.domain._entities import Address, Customer
from linkbay_customers.domain._rules import search_key
from linkbay_customers.domain._string_similarity import jaro_winkler

__all__ = (
    "COMPARISONS",
    "MAX_BLOCK_SIZE",
    "MatchModel",
    "MatchRecord",
    "Comparison",
    "blocking_keys",
    "blocks",
    "compare_records",
    "fit_match_model",
    "jaro_winkler",
    "match_record",
    "normalize_email",
)

# Providers whose mailboxes ignore dots in the local part.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


@functools.lru_cache(maxsize=65_536)
def normalize_email(email: str | None) -> str | None:
    """The mailbox an address reaches: lower case, ``+tag`` dropped, dots dropped for
    providers that ignore them (gmail.com and googlemail.com, the same mailbox)."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        domain = _DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


@functools.lru_cache(maxsize=65_536)
def _fold(text: str | None) -> str:
    """Case, accents and surrounding spaces do not make two names differ."""
    if not text:
        return ""
    return " ".join(search_key(text).split())


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """The fields of a customer that matching compares.

    Attributes:
        customer_id: The customer.
        email: The email as stored.
        phone: The phone in E.164, as stored.
        first_name: The first name.
        last_name: The last name.
        birthday: The birthday.
        postal_codes: The postcodes of the customer's addresses.
        streets: The first address lines of the customer's addresses.
        cities: The cities of the customer's addresses.
    """

    customer_id: int
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    postal_codes: frozenset[str] = frozenset()
    streets: frozenset[str] = frozenset()
    cities: frozenset[str] = frozenset()


def _email_block(email: str | None) -> str | None:
    """The mailbox as blocking sees it: like ``normalize_email``, in the few string
    operations SQL has (so storages compute the same key)."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


MAX_BLOCK_SIZE = 20
"""The most customers a blocking key may hold and still propose pairs: a key that
more share (a switchboard's phone, the commonest names, a postcode of a city
centre) is weak evidence, and proposing every pair of its holders would make the
cost quadratic. Storages drop such keys (see ``DuplicateCandidates``)."""


def blocking_keys(record: MatchRecord) -> set[str]:
    """The blocking keys of a record: two records sharing one are a candidate pair.

    The mailbox of the email and its local part alone (without dots and ``+tag``,
    for the same mailbox at another provider), the last nine characters of the
    phone, the last name with the first initial, the first name with the last
    initial, the two names in either order, the birthday with either initial, each
    postcode with either initial, and the birthday with each postcode (names folded
    by ``search_key``: case and accents ignored, the same on every storage). A
    storage computes the same keys in its own query language, and drops those more
    than ``MAX_BLOCK_SIZE`` customers hold (see ``DuplicateCandidates``).
    """
    first = search_key(record.first_name) if record.first_name else None
    last = search_key(record.last_name) if record.last_name else None
    keys = set()
    if (mailbox := _email_block(record.email)) is not None:
        keys.add(f"e:{mailbox}")
        keys.add(f"l:{mailbox.partition('@')[0].replace('.', '')}")
    if record.phone:
        keys.add(f"p:{record.phone[-9:]}")
    if first and last:
        keys.add(f"n:{last}|{first[:1]}")
        keys.add(f"f:{first}|{last[:1]}")
        keys.add(f"s:{min(first, last)}|{max(first, last)}")
    initials = {name[:1] for name in (first, last) if name}
    if record.birthday is not None:
        keys.update(f"b:{record.birthday.isoformat()}|{initial}" for initial in initials)
    keys.update(f"a:{code}|{initial}" for code in record.postal_codes for initial in initials)
    if record.birthday is not None:
        keys.update(f"d:{record.birthday.isoformat()}|{code}" for code in record.postal_codes)
    return keys


def blocks(records: Iterable[MatchRecord]) -> dict[str, list[int]]:
    """The blocking keys of ``records`` that propose pairs, each with its holders in
    ascending order: keys held by 2 to ``MAX_BLOCK_SIZE`` records."""
    holders: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: r.customer_id):
        for key in blocking_keys(record):
            holders.setdefault(key, []).append(record.customer_id)
    return {key: ids for key, ids in holders.items() if 2 <= len(ids) <= MAX_BLOCK_SIZE}


def match_record(customer: Customer, addresses: Iterable[Address] = ()) -> MatchRecord:
    """The fields of a customer (and of its addresses) that matching compares."""
    own = [a for a in addresses if a.customer_id == customer.id]
    return MatchRecord(
        customer_id=customer.id,
        email=customer.email,
        phone=customer.phone,
        first_name=customer.first_name,
        last_name=customer.last_name,
        birthday=customer.birthday,
        postal_codes=frozenset(a.postal_code for a in own),
        streets=frozenset(a.address_line1 for a in own),
        cities=frozenset(a.city for a in own),
    )


Vector = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison of two records: its name and the labels of its levels, lowest
    (disagree) first."""

    name: str
    levels: tuple[str, ...]


@functools.lru_cache(maxsize=65_536)
def _similarity(x: str, y: str) -> float:
    # Names, streets and cities recur across pairs: each couple is measured once.
    return jaro_winkler(x, y)


_SIMILAR = 0.88
"""The Jaro-Winkler similarity from which two names, streets or cities are similar."""


def _text_level(x: str, y: str) -> int:
    """0 different, 1 similar (Jaro-Winkler at least ``_SIMILAR``), 2 the same."""
    if x == y:
        return 2
    return 1 if _similarity(x, y) >= _SIMILAR else 0


def _aligned_names(a: MatchRecord, b: MatchRecord) -> tuple[str, str, str, str]:
    """Both records' folded first and last names, ``b``'s swapped when its last name
    is ``a``'s first name and its first name ``a``'s last (the two written in the
    other order) more closely than in the same order."""
    af, al, bf, bl = (
        _fold(a.first_name),
        _fold(a.last_name),
        _fold(b.first_name),
        _fold(b.last_name),
    )
    if (af == bf and al == bl) or not (af and al and bf and bl):
        return af, al, bf, bl
    # Only a name shared crosswise is worth the measure (most pairs share none).
    if (af == bl or al == bf) and (
        (af == bl and al == bf)
        or _similarity(af, bl) + _similarity(al, bf) > _similarity(af, bf) + _similarity(al, bl)
    ):
        return af, al, bl, bf
    return af, al, bf, bl


def _birthday_level(x: date | None, y: date | None) -> int | None:
    if x is None or y is None:
        return None
    if x == y:
        return 4
    if x.year == y.year and x.day == y.month and x.month == y.day:
        return 3
    if _typo(x.strftime("%Y%m%d"), y.strftime("%Y%m%d")):
        return 2
    return 1 if x.year == y.year else 0


def _typo(x: str, y: str) -> bool:
    """Two strings of one length that differ in one character, or by two neighbours
    swapped (a digit mistyped in a date, a postcode)."""
    if len(x) != len(y):
        return False
    differ = [i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q]
    if len(differ) == 1:
        return True
    i = differ[0] if len(differ) == 2 else -1
    return differ == [i, i + 1] and x[i] == y[i + 1] and x[i + 1] == y[i]


def _best(levels: Iterable[int]) -> int | None:
    return max(levels, default=None)


def _postcode(text: str) -> str:
    return _fold(text).replace(" ", "")


def _address_level(a: MatchRecord, b: MatchRecord) -> int | None:
    """The postcode (0 different, 1 one character off, 2 the same) plus the street
    (0 different, 1 similar, 2 the same), of the closest addresses: one comparison,
    since a customer who moves changes both."""
    codes_b = [_postcode(p) for p in b.postal_codes]
    streets_b = [_fold(s) for s in b.streets]
    if not (codes_b or streets_b) or not (a.postal_codes or a.streets):
        return None
    code = _best(
        2 if x == y else 1 if _typo(x, y) else 0
        for x in (_postcode(p) for p in a.postal_codes)
        for y in codes_b
    )
    street = _best(_text_level(_fold(s), t) for s in a.streets for t in streets_b)
    return (code or 0) + (street or 0)


def compare_records(a: MatchRecord, b: MatchRecord) -> Vector:
    """The comparison vector of two records: one level (or None) per ``COMPARISONS``."""
    x, y = normalize_email(a.email), normalize_email(b.email)
    email = None
    if x is not None and y is not None:
        email = 2 if x == y else 1 if x.partition("@")[0] == y.partition("@")[0] else 0
    phone = None
    if a.phone and b.phone:
        # The same subscriber number under another country code or trunk prefix: 1.
        phone = 2 if a.phone == b.phone else 1 if a.phone[-9:] == b.phone[-9:] else 0
    af, al, bf, bl = _aligned_names(a, b)
    cities_b = [_fold(c) for c in b.cities]
    return (
        email,
        phone,
        _text_level(af, bf) if af and bf else None,
        _text_level(al, bl) if al and bl else None,
        _birthday_level(a.birthday, b.birthday),
        _address_level(a, b),
        _best(_text_level(_fold(c), t) for c in a.cities for t in cities_b),
    )


_TEXT_LEVELS = ("different", "similar", "same")
COMPARISONS: tuple[Comparison, ...] = (
    Comparison("email", ("different", "same mailbox name", "same mailbox")),
    Comparison("phone", ("different", "same last 9 digits", "same number")),
    Comparison("first_name", _TEXT_LEVELS),
    Comparison("last_name", _TEXT_LEVELS),
    Comparison(
        "birthday",
        ("different", "same year", "one digit off", "day and month swapped", "same date"),
    ),
    Comparison(
        "address",
        (
            "different",
            "postcode one character off or similar street",
            "same postcode or street, or both close",
            "same postcode or street, the other close",
            "same postcode and street",
        ),
    ),
    Comparison("city", _TEXT_LEVELS),
)
"""The comparisons of two records, in the order of a comparison vector."""

# The priors: per comparison and level, m among the pairs of one person and u among
# the other candidate pairs, as a tenant's data show them before any is seen.
# Candidate pairs come from blocks on names, birthdays and postcodes, so among
# those of two people a shared name, postcode or city is common (u high) and a
# shared mailbox or phone rare; duplicates mostly keep their names, birthday and
# address and often come back with another email (one email per customer).
_PRIOR_M: tuple[tuple[float, ...], ...] = (
    (0.45, 0.15, 0.40),
    (0.25, 0.05, 0.70),
    (0.08, 0.07, 0.85),
    (0.08, 0.07, 0.85),
    (0.05, 0.01, 0.03, 0.01, 0.90),
    (0.15, 0.02, 0.15, 0.08, 0.60),
    (0.10, 0.05, 0.85),
)
_PRIOR_U: tuple[tuple[float, ...], ...] = (
    (0.998, 0.0015, 0.0005),
    (0.995, 0.001, 0.004),
    (0.65, 0.05, 0.30),
    (0.45, 0.05, 0.50),
    (0.97, 0.025, 0.002, 0.0005, 0.0025),
    (0.70, 0.04, 0.24, 0.01, 0.01),
    (0.65, 0.03, 0.32),
)
_PRIOR_MATCH = 0.1
# How many pairs' worth of evidence the priors weigh: a tenant with far fewer
# candidate pairs keeps close to them, a large one learns its own.
_PRIOR_STRENGTH = 50.0


@dataclass(frozen=True, slots=True)
class MatchModel:
    """A Fellegi-Sunter model: m and u per comparison level, and the match share.

    Attributes:
        m: Per comparison, the probability of each level among matching pairs.
        u: Per comparison, the probability of each level among non-matching pairs.
        prior: The share of candidate pairs that match.
        iterations: The EM iterations the fit ran.
    """

    m: tuple[tuple[float, ...], ...] = _PRIOR_M
    u: tuple[tuple[float, ...], ...] = _PRIOR_U
    prior: float = _PRIOR_MATCH
    iterations: int = 0

    def weight(self, vector: Vector) -> float:
        """The log2 likelihood ratio (match weight) of a comparison vector."""
        total = math.log2(self.prior / (1 - self.prior))
        for m, u, level in zip(self.m, self.u, vector, strict=True):
            if level is not None:
                total += math.log2(m[level] / u[level])
        return total

    def probability(self, vector: Vector) -> float:
        """The probability that a pair with this comparison vector is one person."""
        weight = self.weight(vector)
        if weight > 60:
            return 1.0
        if weight < -60:
            return 0.0
        odds: float = 2.0**weight
        return odds / (1 + odds)


def _normalised(counts: Sequence[float]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total for c in counts)


def _largest_move(new: Sequence[Sequence[float]], old: Sequence[Sequence[float]]) -> float:
    return max(abs(x - y) for a, b in zip(new, old, strict=True) for x, y in zip(a, b, strict=True))


def _monotone(
    m: Sequence[float], u: Sequence[float], weights: Sequence[float]
) -> tuple[float, ...]:
    """``m`` adjusted so that the match weight ``log(m/u)`` never falls from one level to
    the next (pool-adjacent-violators over the levels, weighted by their pairs): a
    closer agreement is never evidence against a match. Without it EM can settle on
    a split of the candidate pairs by the key that proposed them (all pairs of a name
    block on one side) rather than into matches and non-matches."""
    pools: list[tuple[float, float, int]] = []  # (mean weight, pairs, levels)
    for level_weight, pairs in zip(
        (math.log(a / b) for a, b in zip(m, u, strict=True)), weights, strict=True
    ):
        pools.append((level_weight, pairs, 1))
        while len(pools) > 1 and pools[-2][0] > pools[-1][0]:
            (w2, n2, k2), (w1, n1, k1) = pools.pop(), pools.pop()
            pools.append(((w1 * n1 + w2 * n2) / (n1 + n2), n1 + n2, k1 + k2))
    weight = [w for w, _, levels in pools for _ in range(levels)]
    return _normalised([b * math.exp(w) for b, w in zip(u, weight, strict=True)])


def fit_match_model(
    patterns: Mapping[Vector, int] | Iterable[Vector],
    *,
    max_iterations: int = 200,
    tolerance: float = 1e-7,
) -> MatchModel:
    """Learn m, u and the match share from a tenant's candidate pairs, without labels.

    Expectation maximisation over the counts of distinct comparison vectors, each
    comparison's match weights kept non-decreasing from level to level. The priors
    (the default model's m, u and match share) enter as Dirichlet (Beta, for the
    match share) pseudo-counts worth ``_PRIOR_STRENGTH`` pairs, which makes each
    step a maximum a posteriori one: no level gets probability zero, a tenant with
    a handful of pairs keeps close to the priors, and a large one learns its own.

    Args:
        patterns: The comparison vectors, or a mapping of each distinct vector to how
            many candidate pairs have it.
        max_iterations: The most EM iterations to run.
        tolerance: Stop when no parameter moves by more than this.
    """
    counts = dict(patterns) if isinstance(patterns, Mapping) else dict(Counter(patterns))
    model = MatchModel()
    for iteration in range(1, max_iterations + 1):
        m_counts = [[_PRIOR_STRENGTH * p for p in prior] for prior in _PRIOR_M]
        u_counts = [[_PRIOR_STRENGTH * p for p in prior] for prior in _PRIOR_U]
        matches = _PRIOR_STRENGTH * _PRIOR_MATCH
        pairs = _PRIOR_STRENGTH
        for vector, count in counts.items():
            p = model.probability(vector)
            matches += p * count
            pairs += count
            for k, level in enumerate(vector):
                if level is not None:
                    m_counts[k][level] += p * count
                    u_counts[k][level] += (1 - p) * count
        u = tuple(_normalised(c) for c in u_counts)
        m = tuple(
            _monotone(_normalised(mc), uk, [x + y for x, y in zip(mc, uc, strict=True)])
            for mc, uc, uk in zip(m_counts, u_counts, u, strict=True)
        )
        fitted = MatchModel(
            m=m,
            u=u,
            prior=matches / pairs,
            iterations=iteration,
        )
        moved = max(
            abs(fitted.prior - model.prior),
            _largest_move(fitted.m, model.m),
            _largest_move(fitted.u, model.u),
        )
        model = fitted
        if moved < tolerance:
            break
    return model
