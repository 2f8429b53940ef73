"""LinkBayAIIntelligence over OpenAIChatClient, over real HTTP to a local chat server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from email.utils import formatdate
from pathlib import Path
from typing import Any

import openai
import pytest

from linkbay_customers import bootstrap
from linkbay_customers.domain import Customer
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.testing import T0, FixedClock
from linkbay_customers_linkbay_ai import (
    EmptyReply,
    LinkBayAIIntelligence,
    OpenAIChatClient,
    OpenAIReply,
)
from tests._chat_server import ChatServer, Failure, Reply, good_answer, running_chat_server
from tests._databases import new_sqlite_database
from tests.unit.test_linkbay_ai import customer, profile

NOW = T0
LOGGER = "linkbay_customers_linkbay_ai"
MODEL = "local-model"


@pytest.fixture
async def client(chat_server: ChatServer) -> AsyncIterator[OpenAIChatClient]:
    async with OpenAIChatClient(
        base_url=chat_server.base_url, api_key="local-key", model=MODEL, max_retry_wait=1.0
    ) as chat_client:
        yield chat_client


async def heuristic_assessment(c: Customer) -> tuple[str, float, Decimal]:
    h = HeuristicIntelligence()
    return (
        await h.segment(c, now=NOW),
        await h.churn_risk(c, now=NOW),
        await h.predict_clv(c, months=12, now=NOW),
    )


@dataclass
class LoopWatch:
    """Ticks every 10 ms on the test's event loop; a blocked loop shows as a long gap."""

    last: float
    ticks: int = 0
    max_gap: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def tick(self, now: float) -> None:
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now


@asynccontextmanager
async def watching_the_loop() -> AsyncIterator[LoopWatch]:
    loop = asyncio.get_running_loop()
    watch = LoopWatch(last=loop.time())

    async def tick() -> None:
        while not watch._stop.is_set():
            await asyncio.sleep(0.01)
            watch.ticks += 1
            watch.tick(loop.time())

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker is waiting on its first sleep
    try:
        yield watch
    finally:
        watch.tick(loop.time())
        watch._stop.set()
        await ticker


# ---------------------------------------------------------------- valid replies


async def test_a_valid_reply_is_used_and_its_source_names_the_model(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    intelligence = LinkBayAIIntelligence(client, name=MODEL)
    assessment = await intelligence.assess(customer(), months=12, now=NOW)
    assert (assessment.segment, assessment.churn_risk, assessment.lifetime_value) == (
        "at_risk",
        0.42,
        Decimal("77.5000"),
    )
    assert assessment.source == MODEL
    segment = await intelligence.segment_with_source(customer(), now=NOW)
    assert segment == ("at_risk", MODEL)
    [first, second] = chat_server.seen
    assert first.body["model"] == MODEL
    assert first.body["temperature"] == 0.0
    assert first.authorization == "Bearer local-key"
    assert len(first.body["messages"]) == 1
    assert "predicted_clv" in first.prompt
    assert "predicted_clv" not in second.prompt
    assert "c1@example.com" not in first.prompt


async def test_a_batch_is_one_request_and_every_customer_keeps_the_models_scores(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    intelligence = LinkBayAIIntelligence(client, batch_size=3)
    scores = await intelligence.score_many([profile(i) for i in (1, 2, 3)], now=NOW, months=12)
    assert [(s.customer_id, s.source, s.lifetime_value) for s in scores] == [
        (1, "linkbay_ai", Decimal("77.5000")),
        (2, "linkbay_ai", Decimal("78.5000")),
        (3, "linkbay_ai", Decimal("79.5000")),
    ]
    assert len(chat_server.seen) == 1


async def test_the_reply_reports_the_model_the_server_names(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Reply("hello"))
    assert await client.chat("Say hello.") == OpenAIReply(content="hello", model=MODEL)


# ---------------------------------------------------------------- bad replies


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("{not json", "Invalid JSON"),
        (json.dumps({"segment": "at_risk", "churn_risk": 1.7}), "churn_risk"),
        (json.dumps({"segment": "vip", "churn_risk": 0.2}), "segment"),
        (json.dumps({"segment": "at_risk", "churn_risk": 0.2, "note": "x"}), "note"),
    ],
    ids=["malformed", "out of range", "unknown segment", "extra key"],
)
async def test_an_unusable_reply_falls_back_with_a_warning_naming_why(
    chat_server: ChatServer,
    client: OpenAIChatClient,
    reply: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat_server.play(Reply(reply))
    intelligence = LinkBayAIIntelligence(client)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        risk = await intelligence.churn_risk_with_source(customer(9), now=NOW)
    assert risk == (await HeuristicIntelligence().churn_risk(customer(9), now=NOW), "heuristic")
    [record] = caplog.records
    assert "fell back to heuristic for tenant shop-1, customer ids [9]" in record.getMessage()
    assert reason in record.getMessage()


async def test_bad_batch_entries_fall_back_for_their_customers_only(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    def spoiled(prompt: str) -> str:
        entries = json.loads(good_answer(prompt))
        entries[1]["churn_risk"] = -0.5  # out of range
        entries[2]["segment"] = "Active"  # not a segment
        return json.dumps(entries)

    chat_server.play(Reply(spoiled))
    profiles = [profile(i) for i in (1, 2, 3, 4)]
    scores = await LinkBayAIIntelligence(client).score_many(profiles, now=NOW, months=12)
    assert [s.source for s in scores] == ["linkbay_ai", "heuristic", "heuristic", "linkbay_ai"]
    fallen = await HeuristicIntelligence().score_many(profiles[1:3], now=NOW, months=12)
    assert scores[1:3] == fallen


async def test_without_a_url_and_a_key_the_environment_names_them(
    chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "key-from-the-environment")
    chat_server.play(Reply("hello"))
    async with OpenAIChatClient(model=MODEL) as c:
        assert (await c.chat("Hello.")).content == "hello"
    assert chat_server.seen[0].authorization == "Bearer key-from-the-environment"


async def test_a_reply_without_text_is_an_empty_reply(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Reply(""))
    with pytest.raises(EmptyReply, match=MODEL):
        await client.chat("Say nothing.")


# ---------------------------------------------------------------- slow replies


async def test_a_reply_slower_than_the_timeout_falls_back_on_time_and_the_loop_runs_on(
    chat_server: ChatServer, client: OpenAIChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.play(Reply(good_answer, delay=5.0))
    intelligence = LinkBayAIIntelligence(client, timeout=0.3)
    async with watching_the_loop() as watch:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assessment = await intelligence.assess(customer(), months=12, now=NOW)
        elapsed = time.monotonic() - started
    assert assessment.source == "heuristic"
    assert (
        assessment.segment,
        assessment.churn_risk,
        assessment.lifetime_value,
    ) == await heuristic_assessment(customer())
    assert 0.3 <= elapsed < 0.8
    assert watch.ticks >= 10
    assert watch.max_gap < 0.15
    assert "no reply within 0.3 s" in caplog.records[0].getMessage()


async def test_the_clients_own_timeout_bounds_a_call(chat_server: ChatServer) -> None:
    chat_server.play(Reply("late", delay=5.0))
    async with OpenAIChatClient(
        base_url=chat_server.base_url, api_key="k", model=MODEL, timeout=0.3
    ) as c:
        started = time.monotonic()
        with pytest.raises((TimeoutError, openai.APITimeoutError)):
            await c.chat("Take your time.")
    assert time.monotonic() - started < 0.8


async def test_other_calls_finish_while_one_reply_is_slow(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Reply(good_answer, delay=1.5), Reply(good_answer))
    intelligence = LinkBayAIIntelligence(client, timeout=1.0, max_concurrency=4)
    started = time.monotonic()
    slow = asyncio.create_task(intelligence.assess(customer(1), months=12, now=NOW))
    await asyncio.sleep(0.05)  # the slow request goes first
    quick = [await intelligence.assess(customer(i), months=12, now=NOW) for i in (2, 3, 4)]
    quick_done = time.monotonic() - started
    assert [a.source for a in quick] == ["linkbay_ai"] * 3
    assert quick_done < 0.9  # before the slow one's timeout
    assert (await slow).source == "heuristic"


# ---------------------------------------------------------------- concurrency


async def test_eight_customers_four_at_a_time_take_two_replies_not_eight(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Reply(good_answer, delay=0.5))
    intelligence = LinkBayAIIntelligence(client, max_concurrency=4, batch_size=1)
    profiles = [profile(i) for i in range(1, 9)]
    started = time.monotonic()
    scores = await intelligence.score_many(profiles, now=NOW, months=12)
    elapsed = time.monotonic() - started
    assert [s.source for s in scores] == ["linkbay_ai"] * 8
    assert len(chat_server.seen) == 8
    assert chat_server.max_in_flight == 4
    assert 0.95 <= elapsed < 2.5  # two rounds of 0.5 s; one at a time would take 4 s


async def test_single_customer_calls_share_the_adapters_concurrency_limit(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Reply(good_answer, delay=0.5))
    intelligence = LinkBayAIIntelligence(client, max_concurrency=4)
    started = time.monotonic()
    assessments = await asyncio.gather(
        *(intelligence.assess(customer(i), months=12, now=NOW) for i in range(1, 9))
    )
    elapsed = time.monotonic() - started
    assert [a.source for a in assessments] == ["linkbay_ai"] * 8
    assert chat_server.max_in_flight == 4
    assert 0.95 <= elapsed < 2.5


# ---------------------------------------------------------------- retries


async def test_a_429_is_retried_after_the_wait_the_server_asks_for(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Failure(429, retry_after="0.4"), Reply(good_answer))
    assessment = await LinkBayAIIntelligence(client).assess(customer(), months=12, now=NOW)
    assert assessment.source == "linkbay_ai"
    [refused, answered] = chat_server.seen
    assert 0.4 <= answered.at - refused.at < 0.9


def _in_two_seconds() -> Failure:
    # An HTTP date has whole seconds: two seconds from now is a wait of one to two,
    # less the time the refusal takes to reach the client (a loaded machine: 0.1 s+).
    return Failure(429, retry_after=formatdate(time.time() + 2.0, usegmt=True))


@pytest.mark.parametrize(
    ("refusal", "max_retry_wait", "waited"),
    [
        (_in_two_seconds, 5.0, (0.6, 2.6)),
        (lambda: Failure(429, retry_after="30", retry_after_ms="300"), 5.0, (0.3, 0.8)),
        (lambda: Failure(429, retry_after="120"), 0.3, (0.3, 0.8)),
    ],
    ids=["an http date", "retry-after-ms first", "capped"],
)
async def test_the_wait_before_a_retry_is_the_one_the_server_asks_for(
    chat_server: ChatServer,
    refusal: Callable[[], Failure],
    max_retry_wait: float,
    waited: tuple[float, float],
) -> None:
    chat_server.play(refusal(), Reply("ok"))
    async with OpenAIChatClient(
        base_url=chat_server.base_url, api_key="k", model=MODEL, max_retry_wait=max_retry_wait
    ) as c:
        assert (await c.chat("Hello.")).content == "ok"
    [refused, answered] = chat_server.seen
    assert waited[0] <= answered.at - refused.at < waited[1]


async def test_a_retry_after_past_the_timeout_is_not_waited(chat_server: ChatServer) -> None:
    chat_server.play(Failure(429, retry_after="5"), Reply("ok"))
    async with OpenAIChatClient(
        base_url=chat_server.base_url, api_key="k", model=MODEL, timeout=1.0, max_retry_wait=5.0
    ) as c:
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            await c.chat("Hello.")
    assert time.monotonic() - started < 0.5
    assert len(chat_server.seen) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_a_bounded_number_of_times_then_fall_back(
    chat_server: ChatServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.play(Failure(status))
    async with OpenAIChatClient(
        base_url=chat_server.base_url, api_key="k", model=MODEL, max_retries=2
    ) as c:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            risk = await LinkBayAIIntelligence(c).churn_risk_with_source(customer(), now=NOW)
    assert risk.source == "heuristic"
    assert len(chat_server.seen) == 3
    [record] = caplog.records
    assert "the client raised" in record.getMessage()


async def test_a_500_then_a_reply_is_used(
    chat_server: ChatServer, client: OpenAIChatClient
) -> None:
    chat_server.play(Failure(500), Reply(good_answer))
    risk = await LinkBayAIIntelligence(client).churn_risk_with_source(customer(), now=NOW)
    assert risk == (0.42, "linkbay_ai")
    assert len(chat_server.seen) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (408, openai.APIStatusError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
    ],
)
async def test_other_client_errors_are_not_retried(
    chat_server: ChatServer, client: OpenAIChatClient, status: int, error: type[Exception]
) -> None:
    chat_server.play(Failure(status, retry_after="0"), Reply("ok"))
    with pytest.raises(error):
        await client.chat("Hello.")
    assert len(chat_server.seen) == 1


async def test_a_refused_connection_is_retried_then_raised() -> None:
    with running_chat_server() as gone:
        base_url = gone.base_url
    async with OpenAIChatClient(base_url=base_url, api_key="k", model=MODEL, max_retries=1) as c:
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError):
            await c.chat("Hello.")
    assert time.monotonic() - started >= 0.25 * 0.75  # the first backoff, jitter included


# ---------------------------------------------------------------- options


async def test_a_conversation_or_a_cache_is_refused(client: OpenAIChatClient) -> None:
    await client.chat("Hello.", use_conversation=False, use_cache=False)
    with pytest.raises(TypeError, match="use_conversation"):
        await client.chat("Hello.", use_conversation=True)
    with pytest.raises(TypeError, match="unknown options"):
        await client.chat("Hello.", stream=True)
    with pytest.raises(TypeError, match="positional"):
        await client.chat("Hello.", "more")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="model"):
        OpenAIChatClient(base_url="http://localhost/v1", api_key="k", model="")
    with pytest.raises(ValueError, match="timeout"):
        OpenAIChatClient(base_url="http://localhost/v1", api_key="k", model="m", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        OpenAIChatClient(base_url="http://localhost/v1", api_key="k", model="m", max_retries=-1)


# ---------------------------------------------------------------- a tenant on SQLite


async def _tenant(url: str, intelligence: LinkBayAIIntelligence, customers: int) -> Any:
    """A tenant of ``customers`` with an order each (recorded under the heuristics), and
    a container over it scoring with ``intelligence``."""
    recording = bootstrap(url, clock=FixedClock(NOW))
    service = recording.customer_service()
    try:
        for n in range(customers):
            created = await service.create_customer("shop", {"email": f"c{n}@example.com"})
            order = {"order_id": f"o{n}", "total": 50 + n, "created_at": NOW - timedelta(days=30)}
            await service.record_order("shop", created.id, order)
    finally:
        await recording.storage().close()
    return bootstrap(url, intelligence=intelligence, clock=FixedClock(NOW))


async def test_score_tenant_through_the_model_on_sqlite(
    chat_server: ChatServer, client: OpenAIChatClient, tmp_path: Path
) -> None:
    url = await new_sqlite_database(tmp_path)
    container = await _tenant(url, LinkBayAIIntelligence(client, batch_size=4), 10)
    try:
        summary = await container.ai_service().score_tenant("shop", months=12)
        assert summary.customers == 10
        assert summary.sources == {"linkbay_ai": 10}
        assert summary.per_segment == {"at_risk": 10}
        assert len(chat_server.seen) == 3  # 4 + 4 + 2
        risk = await container.ai_service().calculate_churn_risk("shop", 1)
        assert risk.source == "linkbay_ai"
    finally:
        await container.storage().close()


async def test_a_tenant_whose_replies_all_fall_back_is_counted_as_heuristic_and_warned_once(
    chat_server: ChatServer,
    client: OpenAIChatClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat_server.play(Failure(500))
    url = await new_sqlite_database(tmp_path)
    intelligence = LinkBayAIIntelligence(client, batch_size=2)
    container = await _tenant(url, intelligence, 9)
    try:
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            summary = await container.ai_service().score_tenant("shop", months=12)
    finally:
        await container.storage().close()
    assert summary.sources == {"heuristic": 9}
    assert len(chat_server.seen) == 5 * 3  # 5 chunks, each tried 3 times
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    [warning] = warnings
    assert "fell back to heuristic for tenant shop" in warning.getMessage()
    assert "the client raised InternalServerError" in warning.getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 4


async def test_each_run_warns_again(
    chat_server: ChatServer, client: OpenAIChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.play(Reply("{not json"))
    intelligence = LinkBayAIIntelligence(client)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(2):  # two runs, each its own task
            await asyncio.create_task(intelligence.score_many([profile(1)], now=NOW, months=12))
        await intelligence.score_many([profile(2)], now=NOW, months=12)
        await intelligence.score_many([profile(3)], now=NOW, months=12)  # same run as profile 2
    assert len(caplog.records) == 3
