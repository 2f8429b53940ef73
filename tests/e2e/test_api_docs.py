"""Every HTTP example of docs/api.md, sent as written, answers what the page shows.

Each ```http block is a request: its method and target, its headers and its body
are sent as they stand to ``create_app`` over a new database of each kind, after
the requests that make the state the page speaks of (``CASES``: a customer,
Mario Rossi, created at 10:30 on 2025-11-26, with the addresses, orders, consents
and the small shop the examples name), at the time the page shows. The answer has
the status the text after the block names, and the body the first ```json block
after it shows (or the shape the text refers to). A documented object with a
``"..."`` key shows some of the keys; one without shows them all. A documented list
ending in ``"..."`` shows its first items; one without shows all of them. Every
value shown is the value answered, except ``hash``, which depends on the host's
audit key and is checked to be one.

The error documents shown after an example are checked too: each is the answer to
the request ``CASES`` names for it.

On PostgreSQL the audit table dates each event with the database's own clock
(``now()``, see docs/gdpr.md), not the application's: there an event's
``occurred_at`` is checked to be a UTC time, and the example that selects events by
a window of the page's times is sent on SQLite only.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from linkbay_customers import bootstrap
from linkbay_customers.testing import FixedClock
from linkbay_customers_fastapi import create_app
from tests._databases import create_database, new_postgres_database, new_sqlite_database
from tests.api._support import ADDRESS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "api.md"
TENANT = {"X-Tenant-ID": "tenant_123"}
ACTOR = {**TENANT, "X-Actor-ID": "user_456"}
ELLIPSIS = "..."


def at(clock: str) -> datetime:
    """A time of 2025-11-26 written ``HH:MM``, in UTC."""
    hours, minutes = clock.split(":")
    return datetime(2025, 11, 26, int(hours), int(minutes), tzinfo=UTC)


# --- the page ---------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One ```http block of the page and what the page shows after it."""

    line: int
    method: str
    target: str
    headers: dict[str, str]
    body: str | None
    status: int
    shown: tuple[Any, ...]

    @property
    def name(self) -> str:
        return f"{self.method} {self.target}"


def _blocks(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, language, lines) of each fenced block, and ("", heading) lines."""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            language = line[3:].strip()
            start = index
            index += 1
            body = []
            while not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            yield start + 1, language, body
        elif line.startswith("#"):
            yield index + 1, "heading", [line]
        else:
            yield index + 1, "text", [line]
        index += 1


@functools.cache
def page_blocks() -> tuple[tuple[int, str, list[str]], ...]:
    """The page's blocks and lines (``_blocks``), read once."""
    return tuple(_blocks(PAGE.read_text().splitlines()))


def _request(line: int, block: list[str], after: list[tuple[str, list[str]]]) -> Example:
    method, target = block[0].split(" ", 1)
    headers: dict[str, str] = {}
    rest = block[1:]
    while rest and rest[0].strip():
        name, value = rest[0].split(":", 1)
        headers[name.strip()] = value.strip()
        rest = rest[1:]
    body = "\n".join(rest).strip() or None
    prose = " ".join(" ".join(lines) for kind, lines in after if kind == "text")
    found = re.search(r"`(\d{3}) [A-Z][A-Za-z ]+`", prose)
    assert found, f"docs/api.md:{line}: the text after the example names no status"
    shown = tuple(json.loads("\n".join(lines)) for kind, lines in after if kind == "json")
    return Example(line, method, target, headers, body, int(found.group(1)), shown)


def examples() -> list[Example]:
    """The page's HTTP examples, with the text and JSON up to the next example or heading."""
    blocks = page_blocks()
    found = []
    for number, (line, kind, block) in enumerate(blocks):
        if kind != "http":
            continue
        after = []
        for _, next_kind, next_block in blocks[number + 1 :]:
            if next_kind in ("http", "heading"):
                break
            after.append((next_kind, next_block))
        found.append(_request(line, block, after))
    return found


def shape(section: str) -> Any:
    """The JSON block a section (``## Customers``, say) opens with: its resource's shape."""
    blocks = page_blocks()
    start = next(n for n, (_, kind, b) in enumerate(blocks) if (kind, b[0]) == ("heading", section))
    for _, kind, block in blocks[start + 1 :]:
        assert kind != "heading", f"{section} shows no shape before its first route"
        if kind == "json":
            return json.loads("\n".join(block))
    raise AssertionError(section)


ANY_TIME = object()
"""Shown where any UTC time is the answer: an audit event's, on PostgreSQL."""


def database_dated(shown: Any) -> Any:
    """``shown`` with the time of every audit event in it any UTC time."""
    if isinstance(shown, list):
        return [database_dated(item) for item in shown]
    if not isinstance(shown, dict):
        return shown
    event = "action" in shown and "occurred_at" in shown
    return {
        key: ANY_TIME if event and key == "occurred_at" else database_dated(value)
        for key, value in shown.items()
    }


def differences(shown: Any, answered: Any, path: str = "") -> list[str]:
    """Where an answer differs from what the page shows (empty: it shows the answer)."""
    where = path or "the body"
    if isinstance(shown, dict):
        if not isinstance(answered, dict):
            return [f"{where}: shown an object, answered {answered!r}"]
        keys = [key for key in shown if key != ELLIPSIS]
        found = [f"{where}: {key!r} shown, not answered" for key in keys if key not in answered]
        if ELLIPSIS not in shown:
            extra = [key for key in answered if key not in shown]
            found += [f"{where}: {key!r} answered, not shown" for key in extra]
        for key in keys:
            if key in answered:
                found += differences(shown[key], answered[key], f"{path}.{key}".lstrip("."))
        return found
    if isinstance(shown, list):
        if not isinstance(answered, list):
            return [f"{where}: shown a list, answered {answered!r}"]
        prefix = bool(shown) and shown[-1] == ELLIPSIS
        items = shown[:-1] if prefix else shown
        if len(answered) < len(items) or (not prefix and len(answered) != len(items)):
            return [f"{where}: shown {len(items)} items, answered {len(answered)}: {answered!r}"]
        return [
            line
            for n, item in enumerate(items)
            for line in differences(item, answered[n], f"{path}[{n}]")
        ]
    if shown is ANY_TIME:
        time = isinstance(answered, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", answered)
        return [] if time else [f"{where}: not a UTC time: {answered!r}"]
    if path.rsplit(".", 1)[-1] == "hash":
        ok = isinstance(answered, str) and re.fullmatch(r"[0-9a-f]{64}", answered) is not None
        return [] if ok else [f"{where}: not a SHA-256 hex digest: {answered!r}"]
    if shown != answered or type(shown) is not type(answered):
        return [f"{where}: shown {shown!r}, answered {answered!r}"]
    return []


# --- the state each example starts from ---------------------------------------


Step = Callable[["Story"], Awaitable[None]]


@dataclass
class Story:
    """A client of a new database, its clock, and the requests the case sends."""

    client: httpx.AsyncClient
    clock: FixedClock
    kind: str

    async def send(
        self,
        when: str,
        method: str,
        target: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: int | None = None,
    ) -> httpx.Response:
        self.clock.set(at(when))
        response = await self.client.request(method, target, json=body, headers=headers or ACTOR)
        if expect is not None:
            assert response.status_code == expect, f"{method} {target}: {response.text}"
        return response


MARIO = {
    "email": "Mario.Rossi@example.com",
    "first_name": "Mario",
    "last_name": "Rossi",
    "phone": "+39 333 123 4567",
    "birthday": "1990-05-15",
    "gender": "male",
    "preferences": {"language": "it", "newsletter_subscribed": True, "marketing_consent": True},
    "tags": ["vip", "early_adopter"],
}
MUGS = {"product_id": "123", "product_name": "Mug", "quantity": 2, "unit_price": "29.99"}
ORDER = {
    "order_id": "ORD-1001",
    "total": "59.98",
    "currency": "EUR",
    "created_at": "2025-11-20T09:15:00Z",
    "items": [MUGS],
}
SIGNUP = {"source": "signup_form", "ip_address": "192.168.1.1", "user_agent": "Mozilla/5.0"}


async def mario(story: Story) -> None:
    await story.send("10:30", "POST", "/customers", MARIO, expect=201)


async def address(story: Story) -> None:
    await story.send("10:30", "POST", "/customers/1/addresses", ADDRESS, expect=201)


async def order(story: Story) -> None:
    await story.send("10:30", "POST", "/customers/1/orders", ORDER, expect=201)


async def note(story: Story) -> None:
    body = {"note": "Customer requested expedited shipping"}
    await story.send("10:30", "POST", "/customers/1/notes", body, expect=201)


async def marketing(story: Story) -> None:
    body = {"consented": True, "metadata": SIGNUP}
    await story.send("10:35", "POST", "/customers/1/consent/marketing", body, expect=200)


async def no_analytics(story: Story) -> None:
    body = {"consented": False}
    await story.send("10:40", "POST", "/customers/1/consent/analytics", body, expect=200)


async def export(story: Story) -> None:
    await story.send("10:45", "GET", "/customers/1/export", expect=200)


async def soft_deleted(story: Story) -> None:
    await story.send("10:30", "DELETE", "/customers/1", expect=204)


async def giulia_with_an_order(story: Story) -> None:
    giulia = {"email": "giulia.bianchi@example.com", "first_name": "Giulia", "last_name": "Bianchi"}
    await story.send("10:30", "POST", "/customers", giulia, expect=201)
    await story.send("10:30", "POST", "/customers/2/orders", ORDER, expect=201)


async def mario_again(story: Story) -> None:
    """Mario's second account: his mailbox under +shop, his phone, an order."""
    again = {**MARIO, "email": "mario.rossi+shop@example.com", "tags": []}
    await story.send("10:30", "POST", "/customers", again, expect=201)
    await story.send("10:30", "POST", "/customers/2/orders", ORDER, expect=201)


#: The shop of the intelligence examples: who bought what, when (2025).
SHOP: tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("Giulia", "Bianchi", (("06-02", ("123", "125")), ("09-14", ("200",)), ("11-10", ("125",)))),
    ("Luca", "Verdi", (("05-20", ("123",)), ("08-30", ("125", "200")), ("11-02", ("123",)))),
    ("Anna", "Neri", (("07-11", ("123", "125")), ("10-03", ("125",)), ("11-18", ("123",)))),
    ("Paolo", "Conti", (("01-15", ("200", "201")), ("02-20", ("201",)))),
    ("Sara", "Greco", (("02-03", ("201",)), ("03-09", ("200", "201")))),
    ("Marco", "Ferrari", (("01-28", ("201", "202")), ("03-30", ("202",)))),
    ("Elena", "Russo", ()),
)
PRODUCTS = {
    "123": ("Mug", "14.90"),
    "125": ("Front light", "39.00"),
    "200": ("Green tea", "8.50"),
    "201": ("Espresso beans", "12.00"),
    "202": ("Milk frother", "45.00"),
}


async def shop(story: Story) -> None:
    """Mario and his two orders, and seven more customers of the shop with theirs."""
    await mario(story)
    mario_orders = (("09-01", ("123",)), ("11-20", ("123",)))
    people = (("Mario", "Rossi", mario_orders), *SHOP)
    for customer_id, (first, last, orders) in enumerate(people, start=1):
        if customer_id > 1:
            person = {"email": f"{first}.{last}@example.com".lower(), "first_name": first}
            person["last_name"] = last
            await story.send("10:30", "POST", "/customers", person, expect=201)
        for number, (day, products) in enumerate(orders, start=1):
            items = [
                {
                    "product_id": product,
                    "product_name": PRODUCTS[product][0],
                    "quantity": 1,
                    "unit_price": PRODUCTS[product][1],
                }
                for product in products
            ]
            placed = {
                "order_id": f"ORD-{customer_id}-{number}",
                "total": str(sum(Decimal(PRODUCTS[product][1]) for product in products)),
                "currency": "EUR",
                "created_at": f"2025-{day}T09:00:00Z",
                "items": items,
            }
            target = f"/customers/{customer_id}/orders"
            await story.send("10:30", "POST", target, placed, expect=201)


async def no_analytics_of_2(story: Story) -> None:
    body = {"consented": False}
    await story.send("10:40", "POST", "/customers/2/consent/analytics", body, expect=200)


@dataclass(frozen=True)
class Answer:
    """A request whose answer the page shows as its ``shown``-th JSON block."""

    method: str
    target: str
    shown: int
    body: Any = None


@dataclass(frozen=True)
class Case:
    """What an example starts from, when it is sent, and what shows its answer."""

    given: tuple[Step, ...]
    at: str = "10:30"
    # The answer's body: the index of a JSON block after the example, a section
    # whose shape it is, or None when the page shows none.
    body: int | str | None = 0
    then: tuple[Answer, ...] = ()
    # The page shows its body when a step changes the state.
    after: tuple[tuple[tuple[Step, ...], int], ...] = ()
    # It selects audit events by the application's times (see the module's text).
    by_event_times: bool = False


CASES: dict[str, Case] = {
    "POST /customers": Case(
        given=(),
        body="## Customers",
        then=(Answer("POST", "/customers", 0, MARIO),),
    ),
    "GET /customers?segment=new&tags=vip&min_total_spent=0&page=1&page_size=50": Case(
        given=(mario,)
    ),
    "GET /customers/search?q=mario": Case(given=(mario,)),
    "GET /customers/1": Case(
        given=(mario,), body="## Customers", then=(Answer("GET", "/customers/42", 0),)
    ),
    "PATCH /customers/1": Case(given=(mario,)),
    "DELETE /customers/1?soft_delete=true": Case(given=(mario,), body=None),
    "POST /customers/1/restore": Case(given=(mario, soft_deleted), body="## Customers"),
    "POST /customers/merge": Case(given=(mario, giulia_with_an_order)),
    "GET /customers/duplicates?min_probability=0.8&page=1&page_size=20": Case(
        given=(mario, mario_again)
    ),
    "PUT /customers/2/distinct/1": Case(given=(mario, mario_again)),
    "POST /customers/1/addresses": Case(given=(mario,), body="## Addresses"),
    "GET /customers/1/addresses?page=1&page_size=20": Case(given=(mario, address)),
    "PATCH /customers/1/addresses/1": Case(given=(mario, address), body=None),
    "DELETE /customers/1/addresses/1": Case(given=(mario, address), body=None),
    "POST /customers/1/notes": Case(given=(mario,)),
    "GET /customers/1/notes?page=1&page_size=20": Case(given=(mario, note)),
    "POST /customers/1/orders": Case(
        given=(mario,),
        then=(Answer("POST", "/customers/1/orders", 1, {**ORDER, "total": "59.99"}),),
    ),
    "GET /customers/1/orders?page=1&page_size=20": Case(given=(mario, order)),
    "GET /customers/1/export": Case(
        given=(mario, address, order, marketing, no_analytics), at="10:45"
    ),
    "GET /customers/1/export?format=csv": Case(given=(mario,), body=None),
    "DELETE /customers/1/gdpr?anonymize=true": Case(given=(mario,), at="10:50"),
    "POST /customers/1/consent/marketing": Case(
        given=(mario,),
        at="10:35",
        then=(
            Answer("POST", "/customers/1/consent/telepathy", 1, {"consented": True}),
            Answer(
                "POST",
                "/customers/1/consent/marketing",
                2,
                {"consented": True, "metadata": {"consented": True}},
            ),
        ),
    ),
    "GET /customers/1/consent": Case(given=(mario, marketing, no_analytics), at="10:40"),
    "GET /customers/1/audit?page=1&page_size=2": Case(
        given=(mario, address, order, marketing, no_analytics, export), at="10:45"
    ),
    "GET /customers/audit-events?since=2025-11-26T10:35:00Z&until=2025-11-27T00:00:00Z": Case(
        given=(mario, address, order, marketing, no_analytics, export),
        at="10:45",
        by_event_times=True,
    ),
    "POST /customers/score?months=12": Case(given=(shop,)),
    "POST /customers/1/segment": Case(given=(shop,)),
    "GET /customers/1/churn-risk": Case(given=(shop,)),
    "GET /customers/1/clv?months=12": Case(given=(shop,)),
    "GET /customers/1/similar?limit=3": Case(given=(shop,)),
    "GET /customers/1/recommendations?limit=5": Case(given=(shop,), after=(((no_analytics,), 1),)),
    "GET /health": Case(given=()),
}
#: Error documents shown in prose sections without a request of their own.
PROFILING_REFUSED = Answer("GET", "/customers/2/churn-risk", 0)


# --- the databases ------------------------------------------------------------


@pytest.fixture(scope="module")
def templates(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated database of each kind, copied for every example."""
    directory = tmp_path_factory.mktemp("api-docs")
    return {
        "sqlite": asyncio.run(new_sqlite_database(directory)),
        "postgres": asyncio.run(new_postgres_database(postgres_server)),
    }


async def _copy(templates: dict[str, str], kind: str, admin_url: str, name: str) -> str:
    template = templates[kind]
    if kind == "sqlite":
        source = Path(make_url(template).database or "")
        target = source.with_name(f"{name}.db")
        shutil.copyfile(source, target)
        return f"sqlite+aiosqlite:///{target}"
    return await create_database(admin_url, name, template=make_url(template).database)


_COUNTER = iter(range(10**9))


@pytest.fixture(params=["sqlite", "postgres"])
async def served(
    request: pytest.FixtureRequest, templates: dict[str, str], postgres_server: str
) -> AsyncIterator[Story]:
    url = await _copy(templates, request.param, postgres_server, f"api_docs_{next(_COUNTER)}")
    clock = FixedClock(at("10:30"))
    container = bootstrap(url, clock=clock)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Story(client, clock, request.param)
    finally:
        await container.storage().close()


# --- the tests ----------------------------------------------------------------

EXAMPLES = examples()


def test_every_example_of_the_page_has_a_case() -> None:
    names = [example.name for example in EXAMPLES]
    assert len(names) == len(set(names)), "two examples send the same request"
    assert sorted(names) == sorted(CASES), "docs/api.md and CASES name other examples"


def _body(example: Example, case: Case) -> Any:
    if isinstance(case.body, str):
        return shape(case.body)
    if case.body is None:
        return None
    assert len(example.shown) > case.body, f"docs/api.md:{example.line} shows no answer"
    return example.shown[case.body]


def _same(story: Story, shown: Any, response: httpx.Response, place: str) -> None:
    answered = json.loads(response.content) if response.content else None
    found = differences(database_dated(shown) if story.kind == "postgres" else shown, answered)
    assert not found, "\n".join((place, *found))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
async def test_the_example_answers_what_the_page_shows(served: Story, example: Example) -> None:
    case = CASES[example.name]
    if case.by_event_times and served.kind == "postgres":
        pytest.skip("PostgreSQL dates audit events by its own clock")
    for step in case.given:
        await step(served)
    served.clock.set(at(case.at))
    content = example.body.encode() if example.body is not None else None
    response = await served.client.request(
        example.method, example.target, content=content, headers=example.headers
    )
    place = f"docs/api.md:{example.line}"
    assert response.status_code == example.status, f"{place}: {response.text}"
    shown = _body(example, case)
    if shown is not None:
        _same(served, shown, response, place)
    for answer in case.then:
        answered = await served.send(case.at, answer.method, answer.target, answer.body)
        documented = example.shown[answer.shown]
        assert answered.status_code == documented["status"], f"{place}: {answered.text}"
        _same(served, documented, answered, place)
    for steps, index in case.after:
        for step in steps:
            await step(served)
        served.clock.set(at(case.at))
        again = await served.client.request(
            example.method, example.target, content=content, headers=example.headers
        )
        _same(served, example.shown[index], again, place)


async def test_the_refusal_to_profile_is_the_one_the_page_shows(served: Story) -> None:
    blocks = page_blocks()
    documented = next(
        json.loads("\n".join(block))
        for _, kind, block in blocks
        if kind == "json"
        and '"profiling_not_allowed"' in "".join(block)
        and '"detail"' in "".join(block)
    )
    await shop(served)
    await no_analytics_of_2(served)
    answered = await served.send("10:45", PROFILING_REFUSED.method, PROFILING_REFUSED.target)
    assert answered.status_code == 409, answered.text
    _same(served, documented, answered, "docs/api.md, profiling_not_allowed")
