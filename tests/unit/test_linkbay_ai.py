from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from linkbay_customers.domain import Customer, Segment
from linkbay_customers.heuristics import (
    HeuristicIntelligence,
    behaviour_embedding,
    heuristic_churn_risk,
    heuristic_clv,
    heuristic_segment,
)
from linkbay_customers.ports import CustomerIntelligence, CustomerProfile, CustomerScores
from linkbay_customers.testing import T0
from linkbay_customers_linkbay_ai import (
    DEFAULT_CHAT_OPTIONS,
    Assessment,
    ChatClient,
    LinkBayAIIntelligence,
    Sourced,
)

NOW = T0
LOGGER = "linkbay_customers_linkbay_ai"


@dataclass(frozen=True)
class Reply:
    content: Any


class Hang:
    """A script step that never answers."""


Step = str | BaseException | Hang | Callable[[str], Awaitable[str]]


class ScriptedClient:
    """Answers each chat call with the next step of its script; the last step repeats."""

    def __init__(self, *script: Step) -> None:
        self.script = list(script)
        self.prompts: list[str] = []
        self.options: list[dict[str, Any]] = []
        self.cancelled = 0

    async def chat(self, prompt: str, **options: Any) -> Reply:
        self.prompts.append(prompt)
        self.options.append(options)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Hang):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if callable(step):
            return Reply(await step(prompt))
        return Reply(step)


def customer(customer_id: int = 1, **changes: Any) -> Customer:
    base = Customer(
        id=customer_id,
        tenant_id="shop-1",
        email=f"c{customer_id}@example.com",
        currency="EUR",
        total_orders=4,
        total_spent=Decimal("480.00"),
        average_order_value=Decimal("120.00"),
        first_order_at=NOW - timedelta(days=400),
        last_order_at=NOW - timedelta(days=200),
        created_at=NOW - timedelta(days=410),
        updated_at=NOW,
    )
    return replace(base, **changes)


def profile(customer_id: int = 1, **changes: Any) -> CustomerProfile:
    return CustomerProfile(customer(customer_id, **changes), {"sku-1": 2})


def answer(segment: str = "dormant", churn_risk: float = 0.7, clv: float | None = 35.5) -> str:
    reply: dict[str, Any] = {"segment": segment, "churn_risk": churn_risk}
    if clv is not None:
        reply["predicted_clv"] = clv
    return json.dumps(reply)


def indices(prompt: str) -> list[int]:
    return [int(i) for i in re.findall(r'"index": (\d+)', prompt)]


async def batch_answer(prompt: str) -> str:
    """A good batch reply: every customer at_risk, churn 0.5, value 10 times its index."""
    return json.dumps(
        [
            {"index": i, "segment": "at_risk", "churn_risk": 0.5, "predicted_clv": 10.0 * i}
            for i in indices(prompt)
        ]
    )


def heuristic_scores(p: CustomerProfile, months: int = 12) -> CustomerScores:
    c = p.customer
    return CustomerScores(
        customer_id=c.id,
        segment=heuristic_segment(c, NOW).value,
        churn_risk=heuristic_churn_risk(c, NOW),
        lifetime_value=heuristic_clv(c, months, NOW),
        embedding=behaviour_embedding(c, p.products),
        source="heuristic",
    )


def adapter(client: ChatClient, **options: Any) -> LinkBayAIIntelligence:
    return LinkBayAIIntelligence(client, **options)


# The port


def test_the_adapter_is_a_customer_intelligence() -> None:
    intelligence = adapter(ScriptedClient(answer()))
    assert isinstance(intelligence, CustomerIntelligence)
    assert intelligence.name == "linkbay_ai"
    assert isinstance(intelligence.fallback, HeuristicIntelligence)
    assert isinstance(ScriptedClient(), ChatClient)


def test_the_name_recorded_as_source_is_configurable() -> None:
    assert adapter(ScriptedClient(answer()), name="gpt-scores").name == "gpt-scores"


@pytest.mark.parametrize(
    "options",
    [{"timeout": 0}, {"timeout": -1.0}, {"batch_size": 0}, {"max_concurrency": 0}],
)
def test_nonsense_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        adapter(ScriptedClient(answer()), **options)


# Good replies


async def test_the_models_segment_is_used_and_its_source_recorded() -> None:
    intelligence = adapter(ScriptedClient(answer(segment="high_value", clv=None)))
    assert await intelligence.segment_with_source(customer(), now=NOW) == Sourced(
        "high_value", "linkbay_ai"
    )
    assert await intelligence.segment(customer(), now=NOW) == "high_value"


async def test_the_models_churn_risk_is_used_and_its_source_recorded() -> None:
    intelligence = adapter(ScriptedClient(answer(churn_risk=0.25, clv=None)))
    value, source = await intelligence.churn_risk_with_source(customer(), now=NOW)
    assert (value, source) == (0.25, "linkbay_ai")
    assert await intelligence.churn_risk(customer(), now=NOW) == 0.25


async def test_the_models_lifetime_value_is_money_at_the_stored_precision() -> None:
    intelligence = adapter(ScriptedClient(answer(clv=123.456789)))
    assert await intelligence.predict_clv_with_source(customer(), months=6, now=NOW) == Sourced(
        Decimal("123.4568"), "linkbay_ai"
    )
    assert await intelligence.predict_clv(customer(), months=6, now=NOW) == Decimal("123.4568")


async def test_integers_are_numbers_too() -> None:
    intelligence = adapter(ScriptedClient(answer(churn_risk=1, clv=0)))
    assessment = await intelligence.assess(customer(), months=12, now=NOW)
    assert (assessment.churn_risk, assessment.lifetime_value) == (1.0, Decimal("0.0000"))


async def test_assess_takes_all_three_values_from_one_reply() -> None:
    client = ScriptedClient(answer(segment="at_risk", churn_risk=0.4, clv=80))
    assessment = await adapter(client).assess(customer(), months=12, now=NOW)
    assert assessment == Assessment("at_risk", 0.4, Decimal("80.0000"), "linkbay_ai")
    assert len(client.prompts) == 1


async def test_a_reply_in_a_json_code_fence_is_accepted() -> None:
    fenced = f"```json\n{answer(segment='churned', clv=None)}\n```\n"
    intelligence = adapter(ScriptedClient(fenced))
    assert await intelligence.segment_with_source(customer(), now=NOW) == Sourced(
        "churned", "linkbay_ai"
    )


# Bad replies fall back to the heuristics


BAD_REPLIES = {
    "malformed JSON": '{"segment": "dormant", "churn_risk": 0.7,',
    "empty": "",
    "prose around the JSON": f"Here you go: {answer()}",
    "prose around a fence": f"Sure!\n```json\n{answer()}\n```",
    "not an object": json.dumps([json.loads(answer())]),
    "missing field": json.dumps({"segment": "dormant", "predicted_clv": 3}),
    "extra field": json.dumps({**json.loads(answer()), "confidence": 0.9}),
    "churn above 1": answer(churn_risk=1.2),
    "churn below 0": answer(churn_risk=-0.1),
    "negative value": answer(clv=-5),
    "infinite value": answer(clv=float("inf")),
    "not a number": answer(churn_risk=float("nan")),
    "number as text": json.dumps({"segment": "dormant", "churn_risk": "0.7", "predicted_clv": 3}),
    "value as text": json.dumps({"segment": "dormant", "churn_risk": 0.7, "predicted_clv": "3"}),
    "boolean": json.dumps({"segment": "dormant", "churn_risk": True, "predicted_clv": 3}),
    "unknown segment": answer(segment="loyal"),
    "segment in other case": answer(segment="Dormant"),
}


@pytest.mark.parametrize("reply", BAD_REPLIES.values(), ids=BAD_REPLIES.keys())
async def test_an_unusable_reply_falls_back_to_the_heuristics(
    reply: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = customer(77)
    intelligence = adapter(ScriptedClient(reply))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assessment = await intelligence.assess(c, months=12, now=NOW)
    assert assessment == Assessment(
        segment=heuristic_segment(c, NOW).value,
        churn_risk=heuristic_churn_risk(c, NOW),
        lifetime_value=heuristic_clv(c, 12, NOW),
        source="heuristic",
    )
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "fell back to heuristic" in record.getMessage()
    assert "[77]" in record.getMessage()


async def test_the_single_value_methods_fall_back_one_by_one() -> None:
    c = customer()
    intelligence = adapter(ScriptedClient("not json"))
    assert await intelligence.segment_with_source(c, now=NOW) == Sourced(
        heuristic_segment(c, NOW).value, "heuristic"
    )
    assert await intelligence.churn_risk_with_source(c, now=NOW) == Sourced(
        heuristic_churn_risk(c, NOW), "heuristic"
    )
    assert await intelligence.predict_clv_with_source(c, months=3, now=NOW) == Sourced(
        heuristic_clv(c, 3, NOW), "heuristic"
    )


async def test_segment_and_churn_calls_ask_for_exactly_two_keys() -> None:
    client = ScriptedClient(answer(clv=35.5))
    sourced = await adapter(client).segment_with_source(customer(), now=NOW)
    assert sourced.source == "heuristic"  # predicted_clv was not asked for
    assert "predicted_clv" not in client.prompts[0]


async def test_the_warning_names_the_broken_rule_without_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        reply = answer(churn_risk=1.987654321, clv=None)
        await adapter(ScriptedClient(reply)).segment(customer(), now=NOW)
    message = caplog.records[0].getMessage()
    assert "churn_risk" in message
    assert "987654321" not in message


async def test_a_reply_without_text_falls_back() -> None:
    class NoText:
        async def chat(self, prompt: str, **options: Any) -> Reply:
            return Reply(None)

    sourced = await adapter(NoText()).segment_with_source(customer(), now=NOW)
    assert sourced.source == "heuristic"


async def test_a_slow_reply_falls_back_when_the_timeout_expires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedClient(Hang())
    intelligence = adapter(client, timeout=0.05)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sourced = await intelligence.churn_risk_with_source(customer(), now=NOW)
    assert sourced == Sourced(heuristic_churn_risk(customer(), NOW), "heuristic")
    assert client.cancelled == 1
    assert "no reply within 0.05 s" in caplog.records[0].getMessage()


async def test_a_client_exception_falls_back_without_logging_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedClient(RuntimeError("provider down; prompt was: total_spent 480"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sourced = await adapter(client).segment_with_source(customer(), now=NOW)
    assert sourced.source == "heuristic"
    message = caplog.records[0].getMessage()
    assert "the client raised RuntimeError" in message
    assert "480" not in message


async def test_a_timeout_raised_by_the_client_is_reported_as_its_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sourced = await adapter(ScriptedClient(TimeoutError())).segment_with_source(
            customer(), now=NOW
        )
    assert sourced.source == "heuristic"
    assert "the client raised TimeoutError" in caplog.records[0].getMessage()


async def test_cancellation_is_not_swallowed() -> None:
    task = asyncio.create_task(adapter(ScriptedClient(Hang())).segment(customer(), now=NOW))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_injected_fallback_answers_and_names_the_source() -> None:
    class Fixed(HeuristicIntelligence):
        name = "house-rules"

        async def segment(self, customer: Customer, *, now: Any) -> str:
            return "active"

    intelligence = adapter(ScriptedClient("nope"), fallback=Fixed())
    assert await intelligence.segment_with_source(customer(), now=NOW) == Sourced(
        "active", "house-rules"
    )
    [scores] = await intelligence.score_many([profile()], now=NOW, months=12)
    assert scores.source == "house-rules"


async def test_concurrent_calls_each_get_their_own_source() -> None:
    async def by_customer(prompt: str) -> str:
        await asyncio.sleep(0.01)  # let the calls interleave
        return answer(clv=None) if '"orders": 4' in prompt else "garbage"

    intelligence = adapter(ScriptedClient(by_customer))
    good, bad = customer(1), customer(2, total_orders=9)
    results = await asyncio.gather(
        *(intelligence.segment_with_source(c, now=NOW) for c in [good, bad, good, bad])
    )
    assert [r.source for r in results] == ["linkbay_ai", "heuristic", "linkbay_ai", "heuristic"]
    assert results[1].value == heuristic_segment(bad, NOW).value


# Embeddings


async def test_embed_is_the_fallbacks_behavioural_embedding_and_asks_no_model() -> None:
    client = ScriptedClient(answer())
    p = profile()
    assert await adapter(client).embed(p, now=NOW) == behaviour_embedding(p.customer, p.products)
    assert client.prompts == []


# Batches


async def test_a_batch_uses_the_models_scores_and_the_behavioural_embeddings() -> None:
    client = ScriptedClient(batch_answer)
    profiles = [profile(i) for i in (11, 12, 13)]
    scores = await adapter(client).score_many(profiles, now=NOW, months=12)
    assert len(client.prompts) == 1
    assert [s.customer_id for s in scores] == [11, 12, 13]
    assert [s.source for s in scores] == ["linkbay_ai"] * 3
    assert [s.segment for s in scores] == ["at_risk"] * 3
    assert [s.churn_risk for s in scores] == [0.5] * 3
    assert [s.lifetime_value for s in scores] == [
        Decimal("0.0000"),
        Decimal("10.0000"),
        Decimal("20.0000"),
    ]
    assert [s.embedding for s in scores] == [
        behaviour_embedding(p.customer, p.products) for p in profiles
    ]


async def test_batch_entries_are_matched_by_index_not_by_position() -> None:
    async def reversed_answer(prompt: str) -> str:
        return json.dumps(list(reversed(json.loads(await batch_answer(prompt)))))

    scores = await adapter(ScriptedClient(reversed_answer)).score_many(
        [profile(i) for i in (1, 2, 3)], now=NOW, months=12
    )
    assert [s.lifetime_value for s in scores] == [Decimal(0), Decimal(10), Decimal(20)]


async def test_a_fenced_batch_reply_is_accepted() -> None:
    async def fenced(prompt: str) -> str:
        return f"```json\n{await batch_answer(prompt)}\n```"

    scores = await adapter(ScriptedClient(fenced)).score_many([profile()], now=NOW, months=12)
    assert scores[0].source == "linkbay_ai"


def _spoil(position: int, changes: dict[str, Any]) -> Callable[[str], Awaitable[str]]:
    async def reply(prompt: str) -> str:
        entries = json.loads(await batch_answer(prompt))
        entries[position].update(changes)
        return json.dumps([e for e in entries if e.get("drop") is not True])

    return reply


@pytest.mark.parametrize(
    ("spoiled", "fallen"),
    [
        (_spoil(1, {"churn_risk": 3.0}), [22]),
        (_spoil(1, {"predicted_clv": -1}), [22]),
        (_spoil(1, {"segment": "vip"}), [22]),
        (_spoil(1, {"churn_risk": "0.5"}), [22]),
        (_spoil(1, {"extra": "field"}), [22]),
        (_spoil(1, {"drop": True}), [22]),
        (_spoil(2, {"index": 1}), [22, 23]),  # two entries for 22, none for 23
    ],
    ids=["out of range", "negative value", "unknown segment", "text", "extra", "missing", "twice"],
)
async def test_a_bad_batch_entry_falls_back_for_that_customer_only(
    spoiled: Callable[[str], Awaitable[str]], fallen: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    profiles = [profile(i) for i in (21, 22, 23)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        scores = await adapter(ScriptedClient(spoiled)).score_many(profiles, now=NOW, months=12)
    assert scores[0].source == "linkbay_ai"
    for p, s in zip(profiles, scores, strict=True):
        if p.customer.id in fallen:
            assert s == heuristic_scores(p)
        else:
            assert s.source == "linkbay_ai"
    warned = [r.getMessage() for r in caplog.records]
    assert [any(f"[{i}]" in m for m in warned) for i in (21, 22, 23)] == [
        i in fallen for i in (21, 22, 23)
    ]


async def test_entries_naming_no_customer_of_the_request_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def with_strays(prompt: str) -> str:
        entries = json.loads(await batch_answer(prompt))
        strays = [{**entries[0], "index": 7}, {**entries[0], "index": True}, "junk", None]
        return json.dumps(entries + strays)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        scores = await adapter(ScriptedClient(with_strays)).score_many(
            [profile(1), profile(2)], now=NOW, months=12
        )
    assert [s.source for s in scores] == ["linkbay_ai", "linkbay_ai"]
    assert "ignored 4 reply entries" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    "reply",
    ["[{", answer(), "Results:\n[]", RuntimeError("boom")],
    ids=["malformed JSON", "an object", "prose", "client error"],
)
async def test_an_unusable_batch_reply_falls_back_for_the_whole_chunk(
    reply: Step, caplog: pytest.LogCaptureFixture
) -> None:
    profiles = [profile(i) for i in (31, 32)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        scores = await adapter(ScriptedClient(reply)).score_many(profiles, now=NOW, months=12)
    assert scores == [heuristic_scores(p) for p in profiles]
    [record] = caplog.records
    assert "[31, 32]" in record.getMessage()


async def test_a_slow_batch_falls_back_when_the_timeout_expires() -> None:
    client = ScriptedClient(Hang())
    scores = await adapter(client, timeout=0.05).score_many([profile()], now=NOW, months=12)
    assert scores == [heuristic_scores(profile())]
    assert client.cancelled == 1


async def test_one_chunk_failing_leaves_the_other_chunks_to_the_model() -> None:
    client = ScriptedClient(batch_answer, "garbage", batch_answer)
    profiles = [profile(i) for i in range(1, 6)]
    scores = await adapter(client, batch_size=2, max_concurrency=1).score_many(
        profiles, now=NOW, months=12
    )
    assert [s.customer_id for s in scores] == [1, 2, 3, 4, 5]
    assert [s.source for s in scores] == [
        "linkbay_ai",
        "linkbay_ai",
        "heuristic",
        "heuristic",
        "linkbay_ai",
    ]
    assert [indices(p) for p in client.prompts] == [[0, 1], [0, 1], [0]]


async def test_no_more_calls_than_the_concurrency_limit_are_in_flight() -> None:
    in_flight = peak = 0

    async def counted(prompt: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return await batch_answer(prompt)

    intelligence = adapter(ScriptedClient(counted), batch_size=1, max_concurrency=2)
    scores = await intelligence.score_many([profile(i) for i in range(6)], now=NOW, months=12)
    assert [s.source for s in scores] == ["linkbay_ai"] * 6
    assert peak == 2


async def test_a_failing_fallback_raises_its_own_error() -> None:
    class Broken(HeuristicIntelligence):
        async def score_many(self, profiles: Any, *, now: Any, months: int) -> Any:
            raise LookupError("fallback down")

    intelligence = adapter(ScriptedClient("garbage"), fallback=Broken(), batch_size=1)
    with pytest.raises(LookupError, match="fallback down"):
        await intelligence.score_many([profile(1), profile(2)], now=NOW, months=12)


async def test_an_empty_batch_asks_nothing() -> None:
    client = ScriptedClient(batch_answer)
    assert await adapter(client).score_many([], now=NOW, months=12) == []
    assert client.prompts == []


# Prompts


def private_customer() -> Customer:
    return customer(
        918273,
        tenant_id="tenant-77x",
        email="zebulon.quaxworth@example.org",
        first_name="Zebulon",
        last_name="Quaxworth",
        phone="+393339876543",
        birthday=date(1971, 3, 14),
        gender="nonbinary-zq",
        preferences={"newsletter": "weekly-zq"},
        tags=["vip-zebulon"],
        extra={"loyalty_card": "LC-55501"},
    )


PERSONAL_VALUES = [
    "zebulon",
    "quaxworth",
    "example.org",
    "3339876543",
    "1971",
    "nonbinary",
    "weekly-zq",
    "vip-zebulon",
    "LC-55501",
]


async def test_prompts_carry_no_personal_value_of_the_customer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = private_customer()
    p = CustomerProfile(c, {"sku-zebulon": 1})
    for reply in [answer(), "garbage"]:
        client = ScriptedClient(reply)
        intelligence = adapter(client)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            await intelligence.segment(c, now=NOW)
            await intelligence.churn_risk(c, now=NOW)
            await intelligence.predict_clv(c, months=12, now=NOW)
            await intelligence.assess(c, months=12, now=NOW)
            other = profile(2, tenant_id=c.tenant_id)
            await intelligence.score_many([p, other], now=NOW, months=12)
        assert len(client.prompts) == 5
        for prompt in client.prompts:
            for value in [*PERSONAL_VALUES, "918273", "tenant-77x"]:
                assert value.lower() not in prompt.lower()
    assert caplog.records
    for record in caplog.records:
        message = record.getMessage().lower()
        assert "918273" in message  # warnings name customer and tenant ids, nothing else
        assert "tenant-77x" in message
        assert all(value.lower() not in message for value in PERSONAL_VALUES)


async def test_the_prompt_states_the_facts_the_rules_and_the_shape() -> None:
    client = ScriptedClient(answer())
    c = customer(total_spent=Decimal("4321.98"), average_order_value=Decimal("1080.495"))
    await adapter(client).predict_clv(c, months=9, now=NOW)
    [prompt] = client.prompts
    facts = json.loads(prompt.split("Customer facts:\n")[1].splitlines()[0])
    assert facts == {
        "orders": 4,
        "total_spent": 4321.98,
        "average_order_value": 1080.5,
        "currency": "EUR",
        "days_since_first_order": 400,
        "days_since_last_order": 200,
        "tenure_days": 410,
    }
    assert all(f'"{segment.value}"' in prompt for segment in Segment)
    assert "over the next 9 months" in prompt
    assert '"predicted_clv": <number, at least 0>' in prompt


async def test_a_customer_without_orders_has_null_order_days() -> None:
    client = ScriptedClient(answer(clv=None))
    c = customer(total_orders=0, first_order_at=None, last_order_at=None)
    await adapter(client).segment(c, now=NOW)
    facts = json.loads(client.prompts[0].split("Customer facts:\n")[1].splitlines()[0])
    assert facts["days_since_first_order"] is None
    assert facts["days_since_last_order"] is None


async def test_a_batch_prompt_knows_customers_by_index_only() -> None:
    client = ScriptedClient(batch_answer)
    await adapter(client).score_many([profile(4242), profile(5353)], now=NOW, months=12)
    [prompt] = client.prompts
    assert indices(prompt) == [0, 1]
    assert "4242" not in prompt
    assert "5353" not in prompt


# The chat call


async def test_chat_calls_turn_off_the_orchestrators_conversation_and_cache() -> None:
    client = ScriptedClient(answer(clv=None))
    await adapter(client).segment(customer(), now=NOW)
    assert client.options == [dict(DEFAULT_CHAT_OPTIONS)]
    assert DEFAULT_CHAT_OPTIONS == {"use_conversation": False, "use_cache": False}


async def test_a_client_taking_only_a_prompt_works_with_empty_chat_options() -> None:
    class Plain:
        async def chat(self, prompt: str) -> Reply:
            return Reply(answer(clv=None))

    intelligence = adapter(Plain(), chat_options={})
    assert (await intelligence.segment_with_source(customer(), now=NOW)).source == "linkbay_ai"
    default = adapter(Plain())
    assert (await default.segment_with_source(customer(), now=NOW)).source == "heuristic"


async def test_a_run_warns_once_per_reason_and_logs_the_rest_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    profiles = [profile(i) for i in range(1, 7)]
    client = ScriptedClient(*[RuntimeError("down")] * 6, "garbage")
    intelligence = adapter(client, batch_size=2)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        scores = await intelligence.score_many(profiles, now=NOW, months=12)
        await intelligence.score_many(profiles, now=NOW, months=12)  # the same run
        await intelligence.churn_risk(customer(7), now=NOW)  # another reason
    assert [s.source for s in scores] == ["heuristic"] * 6
    levels = Counter(r.levelno for r in caplog.records)
    assert levels == {logging.WARNING: 2, logging.DEBUG: 5}
    first, second = (r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "the client raised RuntimeError" in first
    assert "later fallbacks for this reason in this run are logged at debug level" in first
    assert "customer ids [7]" in second


async def test_each_tenant_is_warned_about_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    intelligence = adapter(ScriptedClient("garbage"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await intelligence.segment(customer(1), now=NOW)
        await intelligence.segment(customer(2), now=NOW)
        await intelligence.segment(customer(3, tenant_id="shop-2"), now=NOW)
    assert ["shop-2" in r.getMessage() for r in caplog.records] == [False, True]
