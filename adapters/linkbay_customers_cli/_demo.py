"""Synthetic demo data: a coffee-and-tea shop's customers, with history to analyse.

``demo_customers`` builds the data, deterministically from a seed and a reference
time; ``fill_demo_tenant`` writes it through ``CustomerService`` only. Customers
follow a few life stories (never bought, just started, regular, big spender,
lapsing, dormant, gone), so every segment of the default rules shows up; they
buy from a small catalogue with a taste of their own (espresso, filter, tea,
gifts) and rebuy their staples, so similarity and recommendations have patterns
to find; basket sizes are heavy-tailed, so spend and lifetime value vary widely.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from linkbay_customers import AIService, CustomerService, ProfilingNotAllowed
from linkbay_customers.domain import AddressType, Segment
from linkbay_customers.schemas import (
    AddressCreate,
    CustomerCreate,
    CustomerNoteCreate,
    OrderCreate,
)

__all__ = (
    "CATALOGUE",
    "DEFAULT_DEMO_CUSTOMERS",
    "DEFAULT_DEMO_SEED",
    "DEFAULT_DEMO_TENANT",
    "DemoCustomer",
    "DemoSummary",
    "Product",
    "demo_customers",
    "demo_customer",
    "fill_demo_tenant",
    "segment_counts",
    "tenant_is_empty",
)

DEFAULT_DEMO_TENANT = "demo"
DEFAULT_DEMO_CUSTOMERS = 200
DEFAULT_DEMO_SEED = 2024
_CURRENCY = "EUR"
_ACTOR = "demo"
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue entry; ``staple`` products are bought again and again."""

    product_id: str
    name: str
    unit_price: Decimal
    staple: bool


CATALOGUE: tuple[Product, ...] = tuple(
    Product(pid, name, Decimal(price), staple)
    for pid, name, price, staple in (
        ("ESP-1KG", "Espresso beans, 1 kg", "24.90", True),
        ("FLT-500", "Filter roast, 500 g", "13.50", True),
        ("DEC-500", "Decaf beans, 500 g", "14.50", True),
        ("CAP-50", "Espresso capsules, 50", "17.00", True),
        ("TEA-GRN", "Sencha green tea, 100 g", "9.50", True),
        ("TEA-CHAI", "Masala chai blend, 200 g", "11.00", True),
        ("TEA-EARL", "Earl Grey, 250 g", "12.50", True),
        ("BISC-BOX", "Almond biscotti, box", "8.90", True),
        ("CHOC-70", "Dark chocolate 70%", "4.50", True),
        ("DESC", "Descaler for machines", "9.90", True),
        ("GIFT-50", "Gift card, 50 EUR", "50.00", True),
        ("MOKA-6", "Moka pot, 6 cups", "39.00", False),
        ("POUR-KIT", "Pour-over kit", "45.00", False),
        ("FROTH", "Milk frother", "59.00", False),
        ("TEA-POT", "Glass teapot", "34.00", False),
        ("MUG-TRVL", "Travel mug", "22.00", False),
        ("GRD-BURR", "Burr grinder", "189.00", False),
        ("MCH-ESP", "Espresso machine", "649.00", False),
    )
)
_PRODUCTS = {product.product_id: product for product in CATALOGUE}

# What each taste buys: its staples first, then the things it buys once.
_TASTES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "espresso": (
        ("ESP-1KG", "CAP-50", "DEC-500", "DESC", "BISC-BOX"),
        ("MOKA-6", "FROTH", "MCH-ESP", "GRD-BURR"),
    ),
    "filter": (("FLT-500", "CHOC-70", "DEC-500"), ("POUR-KIT", "GRD-BURR", "MUG-TRVL")),
    "tea": (("TEA-GRN", "TEA-CHAI", "TEA-EARL", "BISC-BOX"), ("TEA-POT", "MUG-TRVL")),
    "gifts": (("GIFT-50", "BISC-BOX", "CHOC-70", "TEA-CHAI", "ESP-1KG"), ("MUG-TRVL", "MOKA-6")),
}
_TASTE_WEIGHTS = {"espresso": 0.4, "filter": 0.2, "tea": 0.25, "gifts": 0.15}


@dataclass(frozen=True, slots=True)
class _Story:
    """A kind of customer: when they last ordered (days ago), over how many days before
    that they had ordered, how many orders, and how big their baskets run."""

    name: str
    weight: float
    last_days: tuple[int, int]
    span_days: tuple[int, int]
    orders: tuple[int, int]
    basket: float = 1.0


# Each story lands in one segment of the default rules: browser and newcomer in new,
# regular in active (high_value once it has spent over 1000), big_spender in
# high_value, lapsing in at_risk, dormant in dormant, gone in churned.
_STORIES = (
    _Story("browser", 0.10, (0, 0), (0, 0), (0, 0)),
    _Story("newcomer", 0.10, (1, 20), (0, 6), (1, 2)),
    _Story("regular", 0.28, (1, 80), (60, 600), (3, 14)),
    _Story("big_spender", 0.10, (1, 60), (120, 700), (8, 26), basket=2.2),
    _Story("lapsing", 0.15, (95, 175), (30, 400), (2, 9)),
    _Story("dormant", 0.13, (190, 355), (20, 300), (1, 6)),
    _Story("gone", 0.14, (370, 1500), (0, 300), (1, 5)),
)


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    weight: float
    language: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[tuple[str, str | None, str], ...]  # city, state, postal code pattern
    streets: tuple[str, ...]
    number_first: bool
    phone: str  # pattern: "#" is a digit; within a range phonenumbers holds valid


# fmt: off
_COUNTRIES = (
    _Country(
        "IT", 0.45, "it",
        ("Mario", "Giulia", "Luca", "Francesca", "Marco", "Chiara", "Alessandro", "Sofia",
         "Matteo", "Elena", "Davide", "Martina", "Simone", "Sara", "Federico", "Anna"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Fontana"),
        (("Milano", "MI", "201##"), ("Roma", "RM", "001##"), ("Torino", "TO", "101##"),
         ("Bologna", "BO", "401##"), ("Napoli", "NA", "801##"), ("Firenze", "FI", "501##")),
        ("Via Roma", "Via Garibaldi", "Corso Buenos Aires", "Via Dante", "Viale Monza",
         "Via Mazzini", "Corso Vittorio Emanuele"),
        False, "+39 34# #######",
    ),
    _Country(
        "DE", 0.15, "de",
        ("Lukas", "Anna", "Felix", "Lea", "Jonas", "Marie", "Paul", "Hannah"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker"),
        (("Berlin", None, "10###"), ("München", "BY", "80###"), ("Hamburg", None, "20###"),
         ("Köln", "NW", "50###")),
        ("Hauptstraße", "Schillerstraße", "Gartenweg", "Bahnhofstraße", "Lindenallee"),
        False, "+49 151 ########",
    ),
    _Country(
        "FR", 0.15, "fr",
        ("Louis", "Camille", "Hugo", "Chloé", "Léa", "Jules", "Manon", "Gabriel"),
        ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard"),
        (("Paris", None, "750##"), ("Lyon", None, "6900#"), ("Marseille", None, "130##"),
         ("Bordeaux", None, "330##")),
        ("rue de la République", "avenue Victor Hugo", "rue Pasteur", "boulevard Voltaire"),
        True, "+33 6 1# ## ## ##",
    ),
    _Country(
        "ES", 0.13, "es",
        ("Javier", "Lucía", "Pablo", "Carmen", "Diego", "Marta", "Álvaro", "Paula"),
        ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez"),
        (("Madrid", "M", "280##"), ("Barcelona", "B", "080##"), ("Valencia", "V", "460##"),
         ("Sevilla", "SE", "410##")),
        ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Paseo de Gracia"),
        False, "+34 6## ### ###",
    ),
    _Country(
        "GB", 0.12, "en",
        ("Oliver", "Amelia", "Harry", "Isla", "Jack", "Emily", "George", "Olivia"),
        ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker"),
        (("London", None, "N# #AB"), ("Manchester", None, "M# #CD"),
         ("Edinburgh", None, "EH# #EF"), ("Bristol", None, "BS# #GH")),
        ("High Street", "Station Road", "Church Lane", "Victoria Road"),
        True, "+44 78## ######",
    ),
)
# fmt: on

_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_NOTES = (
    "Asked whether the espresso machine can be delivered to the office.",
    "Prefers delivery after 6 pm; leave parcels with the concierge.",
    "Reported a damaged parcel; we sent a replacement and a box of biscotti.",
    "Interested in a bulk order for a team of twenty.",
    "Likes the decaf; tell them when the new single origin arrives.",
    "Called to update the billing address.",
    "Buys gifts every December; offer the gift card bundle.",
    "Complained about a late delivery; 10% off the next order promised.",
    "Wants to join the barista course waiting list.",
)
_GENDERS = ("female", "male", "female", "male", "non_binary")


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """One demo customer: the profile to import, then addresses, notes and orders."""

    profile: CustomerCreate
    addresses: tuple[AddressCreate, ...]
    notes: tuple[CustomerNoteCreate, ...]
    orders: tuple[OrderCreate, ...]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What ``fill_demo_tenant`` wrote."""

    tenant_id: str
    customers: int
    addresses: int
    notes: int
    orders: int
    order_lines: int


def _digits(rnd: random.Random, pattern: str) -> str:
    return "".join(str(rnd.randrange(10)) if ch == "#" else ch for ch in pattern)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _DemoBuilder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rnd = random.Random(seed)
        self.seed = seed
        self.now = now
        self.emails: set[str] = set()

    def customer(self, index: int) -> DemoCustomer:
        rnd = self.rnd
        country = rnd.choices(_COUNTRIES, [c.weight for c in _COUNTRIES])[0]
        story = rnd.choices(_STORIES, [s.weight for s in _STORIES])[0]
        taste = rnd.choices(list(_TASTE_WEIGHTS), list(_TASTE_WEIGHTS.values()))[0]
        first, last = rnd.choice(country.first_names), rnd.choice(country.last_names)
        addresses = self.addresses(country, ordered=story.orders[1] > 0)
        orders = self.orders(index, story, taste, first, last, addresses, country)
        spent = sum((order.total for order in orders), Decimal(0))
        profile = CustomerCreate(
            created_at=self.signed_up(orders),
            email=self.email(first, last),
            first_name=first,
            last_name=last,
            phone=_digits(rnd, country.phone) if rnd.random() < 0.75 else None,
            birthday=self.birthday() if rnd.random() < 0.7 else None,
            gender=rnd.choice(_GENDERS) if rnd.random() < 0.6 else None,
            preferences={
                "language": country.language,
                "newsletter_subscribed": rnd.random() < 0.45,
                "preferred_contact": rnd.choice(("email", "email", "sms", "phone")),
                "taste": taste,
            },
            tags=self.tags(story, taste, spent),
        )
        notes = tuple(
            CustomerNoteCreate(note=text)
            for text in rnd.sample(_NOTES, rnd.choices((0, 1, 2), (0.65, 0.28, 0.07))[0])
        )
        return DemoCustomer(profile, addresses, notes, orders)

    def email(self, first: str, last: str) -> str:
        rnd = self.rnd
        local = rnd.choice(
            (f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}{_ascii(last)}", _ascii(first))
        )
        domain = rnd.choice(_EMAIL_DOMAINS)
        email, n = f"{local}@{domain}", 1
        while email in self.emails:
            n += 1
            email = f"{local}{n}@{domain}"
        self.emails.add(email)
        return email

    def signed_up(self, orders: Sequence[OrderCreate]) -> datetime:
        """Before the first order (by up to four months), or, for who never ordered,
        any time in the last three years."""
        rnd = self.rnd
        if orders and orders[0].created_at is not None:
            return orders[0].created_at - timedelta(days=rnd.uniform(0, 120))
        return self.now - timedelta(days=rnd.uniform(0, 3 * 365))

    def birthday(self) -> date:
        return date(1950, 1, 1) + timedelta(days=self.rnd.randrange(365 * 55))

    def tags(self, story: _Story, taste: str, spent: Decimal) -> list[str]:
        rnd = self.rnd
        tags = [taste]
        if spent > 1500 or story.name == "big_spender":
            tags.append("vip")
        if rnd.random() < 0.4:
            tags.append("newsletter")
        if rnd.random() < 0.06:
            tags.append("b2b")
        if rnd.random() < 0.1:
            tags.append("early_adopter")
        return tags

    def addresses(self, country: _Country, *, ordered: bool) -> tuple[AddressCreate, ...]:
        rnd = self.rnd
        if not ordered and rnd.random() < 0.7:
            return ()
        home = self.address(country, AddressType.SHIPPING, is_default=True)
        found = [home]
        if rnd.random() < 0.3:
            found.append(AddressCreate.model_validate({**home.model_dump(), "type": "billing"}))
        if rnd.random() < 0.12:
            found.append(self.address(country, AddressType.SHIPPING, is_default=False))
        return tuple(found)

    def address(self, country: _Country, kind: AddressType, *, is_default: bool) -> AddressCreate:
        rnd = self.rnd
        city, state, postal = rnd.choice(country.cities)
        street, number = rnd.choice(country.streets), rnd.randrange(1, 180)
        line1 = f"{number} {street}" if country.number_first else f"{street} {number}"
        return AddressCreate(
            type=kind,
            address_line1=line1,
            address_line2=rnd.choice((None, None, None, f"Apt {rnd.randrange(1, 40)}")),
            city=city,
            state=state,
            postal_code=_digits(rnd, postal),
            country=country.code,
            is_default=is_default,
        )

    def order_dates(self, story: _Story) -> list[datetime]:
        rnd = self.rnd
        count = rnd.randint(*story.orders)
        if count == 0:
            return []
        last = rnd.randint(*story.last_days)
        first = last + (rnd.randint(*story.span_days) if count > 1 else 0)
        days = sorted([first, last] + [rnd.randint(last, first) for _ in range(count - 2)])[:count]
        # Whole days back, at a daytime hour: never later than now.
        return sorted(
            self.now
            - timedelta(days=max(day, 1), hours=rnd.randrange(0, 12), minutes=rnd.randrange(60))
            for day in days
        )

    def orders(
        self,
        index: int,
        story: _Story,
        taste: str,
        first: str,
        last: str,
        addresses: Sequence[AddressCreate],
        country: _Country,
    ) -> tuple[OrderCreate, ...]:
        rnd = self.rnd
        staples, once = _TASTES[taste]
        favourites = rnd.sample(staples, k=min(len(staples), rnd.randint(1, 3)))
        # Heavy-tailed basket sizes: most customers buy one or two of a thing, a few buy crates.
        appetite = story.basket * rnd.lognormvariate(0.0, 0.6)
        bought_once: set[str] = set()
        shipping = next(
            (a for a in addresses if a.type is AddressType.SHIPPING and a.is_default), None
        )
        orders = []
        for number, created_at in enumerate(self.order_dates(story), start=1):
            lines: dict[str, int] = {}
            for product_id in favourites:
                if rnd.random() < 0.75 or not lines:
                    lines[product_id] = max(1, round(rnd.expovariate(1.0) * appetite + 0.5))
            if rnd.random() < 0.3:
                extra = rnd.choice(staples if rnd.random() < 0.8 else tuple(_PRODUCTS))
                lines.setdefault(extra, 1)
            wanted = [p for p in once if p not in bought_once]
            if wanted and rnd.random() < 0.2 * min(appetite, 2.5):
                item = rnd.choice(wanted)
                bought_once.add(item)
                lines[item] = 1
            items = [
                {
                    "product_id": pid,
                    "product_name": _PRODUCTS[pid].name,
                    "quantity": quantity,
                    "unit_price": _PRODUCTS[pid].unit_price,
                }
                for pid, quantity in lines.items()
            ]
            total = sum(
                (_PRODUCTS[pid].unit_price * quantity for pid, quantity in lines.items()),
                Decimal(0),
            ).quantize(_CENT)
            order: dict[str, Any] = {
                "order_id": f"demo-{self.seed}-{index:05d}-{number:02d}",
                "total": total,
                "currency": _CURRENCY,
                "created_at": created_at,
                "items": items,
            }
            if shipping is not None:
                order["shipping"] = {
                    "recipient_name": f"{first} {last}",
                    "address_line1": shipping.address_line1,
                    "address_line2": shipping.address_line2,
                    "city": shipping.city,
                    "state": shipping.state,
                    "postal_code": shipping.postal_code,
                    "country": country.code,
                }
            orders.append(OrderCreate.model_validate(order))
        return tuple(orders)


def demo_customers(count: int, *, seed: int, now: datetime) -> list[DemoCustomer]:
    """Build ``count`` demo customers; the same seed and ``now`` give the same data.

    Args:
        count: How many customers.
        seed: Seeds the random choices.
        now: The reference time (timezone-aware); every order is dated before it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    builder = _DemoBuilder(seed, now)
    return [builder.customer(index) for index in range(1, count + 1)]


async def tenant_is_empty(service: CustomerService, tenant_id: str) -> bool:
    """Whether a tenant has no customers at all, deleted ones included."""
    page = await service.list_customers(tenant_id, {"include_deleted": True}, page_size=1)
    return page.total == 0


async def segment_counts(service: CustomerService, tenant_id: str) -> dict[str, int]:
    """How many of a tenant's customers are in each segment of the default rules."""
    return {
        segment.value: (
            await service.list_customers(tenant_id, {"segment": segment.value}, page_size=1)
        ).total
        for segment in Segment
    }


async def fill_demo_tenant(
    service: CustomerService,
    tenant_id: str = DEFAULT_DEMO_TENANT,
    *,
    now: datetime,
    customers: int = DEFAULT_DEMO_CUSTOMERS,
    seed: int = DEFAULT_DEMO_SEED,
    on_progress: Callable[[int, int], object] | None = None,
) -> DemoSummary:
    """Fill a tenant with demo customers, addresses, notes and dated orders.

    Customers arrive in one bulk import; their addresses, notes and orders then go
    through the service one customer at a time, orders oldest first, so the
    analytics and segments come out as the service computes them. Meant for an
    empty tenant (see ``tenant_is_empty``): customers whose email already exists
    are updated, and their orders then conflict.

    Args:
        service: The customer service to write through.
        tenant_id: The tenant to fill.
        now: The reference time the order dates count back from: the service's
            clock's current time.
        customers: How many customers.
        seed: Seeds the random choices; the same seed gives the same data.
        on_progress: Called with (customers done, customers in all) as it goes.

    Returns:
        How much was written.
    """
    people = demo_customers(customers, seed=seed, now=now)
    # import_customers takes mappings, not schema instances.
    rows = (person.profile.model_dump(exclude_unset=True) for person in people)
    await service.import_customers(tenant_id, rows, actor=_ACTOR)
    ids = await _ids_by_email(service, tenant_id)
    addresses = notes = orders = lines = 0
    for done, person in enumerate(people, start=1):
        customer_id = ids[person.profile.email]
        for address in person.addresses:
            await service.add_address(tenant_id, customer_id, address, actor=_ACTOR)
        for note in person.notes:
            await service.add_note(tenant_id, customer_id, note, actor="support")
        for order in person.orders:
            await service.record_order(tenant_id, customer_id, order, actor=_ACTOR)
            lines += len(order.items)
        addresses += len(person.addresses)
        notes += len(person.notes)
        orders += len(person.orders)
        if on_progress is not None:
            on_progress(done, len(people))
    return DemoSummary(
        tenant_id=tenant_id,
        customers=len(people),
        addresses=addresses,
        notes=notes,
        orders=orders,
        order_lines=lines,
    )


async def _ids_by_email(service: CustomerService, tenant_id: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    page_number = 1
    while True:
        page = await service.list_customers(
            tenant_id, {"sort": "created_at"}, page=page_number, page_size=100
        )
        ids.update({c.email: c.id for c in page.items if c.email is not None})
        if page_number >= page.total_pages:
            return ids
        page_number += 1


async def demo_customer(
    service: CustomerService,
    ai_service: AIService,
    tenant_id: str,
) -> int | None:
    """A customer of a demo tenant to show similar customers and recommendations with.

    No scoring is needed first: every order stored its customer's embedding.

    Returns:
        The first of the tenant's high-value customers (or of any) whose similar
        customers and recommendations are not empty; None when no customer has both.
    """
    for criteria in (
        {"segment": Segment.HIGH_VALUE.value, "sort": "created_at"},
        {"sort": "created_at"},
    ):
        page = await service.list_customers(tenant_id, criteria, page_size=20)
        for customer in page.items:
            try:
                similar = await ai_service.find_similar_customers(tenant_id, customer.id, limit=1)
                recommended = await ai_service.generate_recommendations(
                    tenant_id, customer.id, limit=1
                )
            except ProfilingNotAllowed:
                continue
            if similar and recommended:
                return customer.id
    return None
