"""The real linkbay-ai package (0.2.2) against the local chat server: what fails, and why."""

from __future__ import annotations

import asyncio
import logging
import time
import types

import linkbay_ai.providers
import pytest
from linkbay_ai import AIOrchestrator, AllProvidersFailedException, DeepSeekProvider, ProviderConfig

from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers_linkbay_ai import LinkBayAIIntelligence
from tests._chat_server import ChatServer, Failure, Reply, good_answer
from tests.integration.test_openai_chat_client import NOW, customer, profile, watching_the_loop

LOGGER = "linkbay_customers_linkbay_ai"


def orchestrator(chat_server: ChatServer, *, counters: bool = False) -> AIOrchestrator:
    """The package's orchestrator with its DeepSeekProvider, as its README wires them;
    ``counters`` sets the two attributes the provider's retry helper needs."""
    provider = DeepSeekProvider(
        ProviderConfig(
            api_key="local-key", base_url=chat_server.base_url, default_model="local-model"
        )
    )
    if counters:
        provider.request_count = 0
        provider.error_count = 0
    ai = AIOrchestrator(enable_cache=False, enable_tools=False)
    ai.register_provider(provider)
    return ai


def test_the_package_is_the_release_these_tests_describe() -> None:
    from importlib.metadata import version

    assert version("linkbay-ai") == "0.2.2"


async def test_every_call_fails_inside_the_package_before_a_request_is_sent(
    chat_server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="linkbay_ai"),
        pytest.raises(AllProvidersFailedException),
    ):
        await orchestrator(chat_server).chat("Hello.", use_conversation=False, use_cache=False)
    assert chat_server.seen == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no attribute 'request_count'" in m for m in messages) == 3
    assert sum("no attribute 'error_count'" in m for m in messages) == 3


async def test_through_the_adapter_every_customer_falls_back_and_the_warning_says_why(
    chat_server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    intelligence = LinkBayAIIntelligence(orchestrator(chat_server), batch_size=2)
    profiles = [profile(i) for i in range(1, 7)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        scores = await intelligence.score_many(profiles, now=NOW, months=12)
    assert scores == await HeuristicIntelligence().score_many(profiles, now=NOW, months=12)
    assert {s.source for s in scores} == {"heuristic"}
    assert chat_server.seen == []
    [warning] = [r for r in caplog.records if r.name.startswith(LOGGER)]
    assert "the client raised AllProvidersFailedException" in warning.getMessage()


async def test_with_its_counters_set_the_provider_answers(chat_server: ChatServer) -> None:
    intelligence = LinkBayAIIntelligence(orchestrator(chat_server, counters=True))
    assessment = await intelligence.assess(customer(), months=12, now=NOW)
    assert assessment.source == "linkbay_ai"
    [seen] = chat_server.seen
    assert seen.body["model"] == "deepseek-chat"  # the orchestrator's routing, not the config's


async def test_its_synchronous_client_blocks_the_loop_and_the_timeout_cannot_fire(
    chat_server: ChatServer,
) -> None:
    chat_server.play(Reply(good_answer, delay=0.6))
    intelligence = LinkBayAIIntelligence(orchestrator(chat_server, counters=True), timeout=0.2)
    async with watching_the_loop() as watch:
        started = time.monotonic()
        assessment = await intelligence.assess(customer(), months=12, now=NOW)
        elapsed = time.monotonic() - started
    assert assessment.source == "linkbay_ai"  # used, although it came after the timeout
    assert elapsed >= 0.6
    assert watch.max_gap >= 0.5  # nothing else ran meanwhile


async def test_its_synchronous_client_runs_concurrent_calls_one_after_the_other(
    chat_server: ChatServer,
) -> None:
    chat_server.play(Reply(good_answer, delay=0.3))
    intelligence = LinkBayAIIntelligence(
        orchestrator(chat_server, counters=True), max_concurrency=4
    )
    started = time.monotonic()
    await asyncio.gather(*(intelligence.assess(customer(i), months=12, now=NOW) for i in range(4)))
    elapsed = time.monotonic() - started
    assert chat_server.max_in_flight == 1
    assert elapsed >= 4 * 0.3


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The provider's retry waits, recorded instead of slept."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    fake = types.SimpleNamespace(sleep=sleep, iscoroutinefunction=asyncio.iscoroutinefunction)
    monkeypatch.setattr(linkbay_ai.providers, "asyncio", fake)
    return sleeps


async def test_its_retries_multiply_ignore_retry_after_and_repeat_a_400(
    chat_server: ChatServer, recorded_sleeps: list[float]
) -> None:
    ai = orchestrator(chat_server, counters=True)
    chat_server.play(Failure(429, retry_after="0.01"))  # openai's own retries wait that long
    with pytest.raises(AllProvidersFailedException):
        await ai.chat("Hello.", use_conversation=False, use_cache=False)
    # Three tries of the orchestrator, three of the provider's helper, three of openai's.
    assert len(chat_server.seen) == 27
    assert recorded_sleeps == [1.5, 3.0, 6.0] * 3
    chat_server.play(Failure(400))
    with pytest.raises(AllProvidersFailedException):
        await ai.chat("Hello.", use_conversation=False, use_cache=False)
    assert len(chat_server.seen) == 3
