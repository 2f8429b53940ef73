"""Customer intelligence from a chat model, with the heuristics as a safety net."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from linkbay_customers.domain import Customer
from linkbay_customers.heuristics import HeuristicIntelligence
from linkbay_customers.ports import CustomerIntelligence, CustomerProfile, CustomerScores
from linkbay_customers_linkbay_ai._client import DEFAULT_CHAT_OPTIONS, ChatClient
from linkbay_customers_linkbay_ai._prompts import batch_prompt, customer_prompt
from linkbay_customers_linkbay_ai._replies import (
    Judgement,
    ReplyError,
    Valuation,
    read_batch,
    read_judgement,
    read_valuation,
)

__all__ = ("Assessment", "LinkBayAIIntelligence", "Sourced")

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Sourced(NamedTuple, Generic[T]):
    """A value and the name of the intelligence that produced it.

    ``source`` is the adapter's ``name`` when the model's reply was used, the
    fallback's ``name`` (e.g. ``"heuristic"``) when it was not.
    """

    value: T
    source: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """A customer's segment, churn risk and lifetime value, all from one source."""

    segment: str
    churn_risk: float
    lifetime_value: Decimal
    source: str


class LinkBayAIIntelligence(CustomerIntelligence):
    """Scores customers by asking a chat model, falling back to another intelligence.

    The model gets a customer's order analytics (never personal data) and must reply
    with strict JSON of an exact shape. A reply that is malformed, incomplete, has
    extra keys or out-of-range values, a client that raises, or no reply within
    ``timeout`` makes that call (or, in a batch, that customer) fall back to
    ``fallback``, with a warning naming the customer ids and the reason. A run (the
    asyncio task calling the adapter: a ``score_tenant``, a request) warns once per
    tenant and reason; later fallbacks for the same reason are logged at debug level.

    Every answer records its source. ``score_many`` sets ``CustomerScores.source``
    per customer. The port's single-value methods return bare values, so each has a
    twin returning ``Sourced(value, source)``: ``segment_with_source``,
    ``churn_risk_with_source`` and ``predict_clv_with_source``; ``assess`` returns
    all three values from one reply. Sources travel with the answers rather than
    living on the instance, so one adapter serves concurrent calls safely.

    Args:
        client: The chat client, e.g. ``OpenAIChatClient`` for any OpenAI-compatible
            endpoint.
        fallback: Answers whenever the model does not; ``HeuristicIntelligence()``
            unless given. Embeddings always come from it.
        name: The source recorded beside the model's scores.
        timeout: Seconds to wait for one reply (``None`` waits forever). Time spent
            waiting for a free slot (``max_concurrency``) does not count.
        batch_size: Customers per prompt in ``score_many``.
        max_concurrency: Chat calls in flight at once, over all calls of this adapter.
        chat_options: Keyword arguments for every ``client.chat`` call;
            ``DEFAULT_CHAT_OPTIONS`` (no conversation, no cache, as LinkBay-AI's
            orchestrator takes them) unless given. Pass ``{}`` to a client whose
            ``chat`` takes only the prompt.
    """

    def __init__(
        self,
        client: ChatClient,
        *,
        fallback: CustomerIntelligence | None = None,
        name: str = "linkbay_ai",
        timeout: float | None = 30.0,
        batch_size: int = 20,
        max_concurrency: int = 4,
        chat_options: Mapping[str, Any] | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive or None, got {timeout!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency!r}")
        self.name = name
        self._client = client
        self._fallback: CustomerIntelligence = (
            fallback if fallback is not None else HeuristicIntelligence()
        )
        self._timeout = timeout
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(max_concurrency)
        self._chat_options = dict(DEFAULT_CHAT_OPTIONS if chat_options is None else chat_options)
        # Per run (the calling task), the (tenant, reason) pairs already warned about.
        self._warned: weakref.WeakKeyDictionary[asyncio.Task[Any], set[tuple[str, str]]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def fallback(self) -> CustomerIntelligence:
        """The intelligence that answers when the model does not."""
        return self._fallback

    async def segment(self, customer: Customer, *, now: datetime) -> str:
        """The customer's segment (see ``segment_with_source``)."""
        return (await self.segment_with_source(customer, now=now)).value

    async def churn_risk(self, customer: Customer, *, now: datetime) -> float:
        """Churn risk in [0, 1] (see ``churn_risk_with_source``)."""
        return (await self.churn_risk_with_source(customer, now=now)).value

    async def predict_clv(self, customer: Customer, *, months: int, now: datetime) -> Decimal:
        """Expected revenue over the next ``months`` (see ``predict_clv_with_source``)."""
        return (await self.predict_clv_with_source(customer, months=months, now=now)).value

    async def segment_with_source(self, customer: Customer, *, now: datetime) -> Sourced[str]:
        """The customer's segment and who decided it: the model, or the fallback.

        One chat call, asking for the segment and the churn risk.
        """
        judgement = await self._ask_judgement(customer, now=now)
        if judgement is None:
            value = await self._fallback.segment(customer, now=now)
            return Sourced(value, self._fallback.name)
        return Sourced(judgement.segment.value, self.name)

    async def churn_risk_with_source(self, customer: Customer, *, now: datetime) -> Sourced[float]:
        """The customer's churn risk in [0, 1] and who estimated it.

        One chat call, asking for the segment and the churn risk.
        """
        judgement = await self._ask_judgement(customer, now=now)
        if judgement is None:
            value = await self._fallback.churn_risk(customer, now=now)
            return Sourced(value, self._fallback.name)
        return Sourced(judgement.churn_risk, self.name)

    async def predict_clv_with_source(
        self, customer: Customer, *, months: int, now: datetime
    ) -> Sourced[Decimal]:
        """Expected revenue over the next ``months`` and who estimated it.

        One chat call, asking for the segment, the churn risk and the lifetime value.
        """
        valuation = await self._ask_valuation(customer, months=months, now=now)
        if valuation is None:
            value = await self._fallback.predict_clv(customer, months=months, now=now)
            return Sourced(value, self._fallback.name)
        return Sourced(valuation.lifetime_value, self.name)

    async def assess(self, customer: Customer, *, months: int, now: datetime) -> Assessment:
        """Segment, churn risk and lifetime value from one chat call, with their source.

        The three values come from the same reply, or all from the fallback.
        """
        valuation = await self._ask_valuation(customer, months=months, now=now)
        if valuation is None:
            fallback = self._fallback
            return Assessment(
                segment=await fallback.segment(customer, now=now),
                churn_risk=await fallback.churn_risk(customer, now=now),
                lifetime_value=await fallback.predict_clv(customer, months=months, now=now),
                source=fallback.name,
            )
        return Assessment(
            segment=valuation.segment.value,
            churn_risk=valuation.churn_risk,
            lifetime_value=valuation.lifetime_value,
            source=self.name,
        )

    async def embed(self, profile: CustomerProfile, *, now: datetime) -> Sequence[float] | None:
        """The fallback's behavioural embedding; the model is not asked.

        A chat reply is not a stable embedding: the same customer would get a
        different vector from call to call, and vectors from separate replies would
        not share a space, so similarity search over them would mean nothing.
        """
        return await self._fallback.embed(profile, now=now)

    async def score_many(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> list[CustomerScores]:
        """Score customers in chunks of ``batch_size``, one chat call per chunk.

        Chunks run concurrently, at most ``max_concurrency`` calls at once. Each
        reply entry is validated on its own: a customer whose entry is bad or
        missing is scored by the fallback (``source`` is then the fallback's name),
        the others keep the model's scores (``source`` is this adapter's name).
        Embeddings always come from the fallback.
        """
        size = self._batch_size
        chunks = [profiles[start : start + size] for start in range(0, len(profiles), size)]
        run = asyncio.current_task()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._score_chunk(chunk, now=now, months=months, run=run))
                    for chunk in chunks
                ]
        except ExceptionGroup as failure:
            # Model failures never get here; a failing fallback does. Callers see its
            # error, as they would calling the fallback themselves.
            raise failure.exceptions[0] from failure
        return [scores for task in tasks for scores in task.result()]

    async def _score_chunk(
        self,
        profiles: Sequence[CustomerProfile],
        *,
        now: datetime,
        months: int,
        run: asyncio.Task[Any] | None,
    ) -> list[CustomerScores]:
        customers = [profile.customer for profile in profiles]
        prompt = batch_prompt(customers, now=now, months=months)
        valuations: list[Valuation | None] = [None] * len(profiles)
        try:
            reading = read_batch(await self._complete(prompt), len(profiles))
        except ReplyError as exc:
            self._warn(customers, str(exc), run)
        else:
            if reading.ignored:
                logger.warning(
                    "%s ignored %d reply entries naming no customer of the request",
                    self.name,
                    reading.ignored,
                )
            for position, entry in enumerate(reading.entries):
                if isinstance(entry, str):
                    self._warn([customers[position]], entry, run)
                else:
                    valuations[position] = entry
        fallen = [p for p, v in zip(profiles, valuations, strict=True) if v is None]
        rescored = iter(await self._rescore(fallen, now=now, months=months))
        scores = []
        for profile, valuation in zip(profiles, valuations, strict=True):
            if valuation is None:
                scores.append(next(rescored))
                continue
            scores.append(
                CustomerScores(
                    customer_id=profile.customer.id,
                    segment=valuation.segment.value,
                    churn_risk=valuation.churn_risk,
                    lifetime_value=valuation.lifetime_value,
                    embedding=await self._fallback.embed(profile, now=now),
                    source=self.name,
                )
            )
        return scores

    async def _rescore(
        self, profiles: Sequence[CustomerProfile], *, now: datetime, months: int
    ) -> Sequence[CustomerScores]:
        if not profiles:
            return ()
        scores = await self._fallback.score_many(profiles, now=now, months=months)
        if len(scores) != len(profiles):
            raise RuntimeError(
                f"{self._fallback.name} scored {len(scores)} of {len(profiles)} customers"
            )
        return scores

    async def _ask_judgement(self, customer: Customer, *, now: datetime) -> Judgement | None:
        prompt = customer_prompt(customer, now=now, months=None)
        return await self._ask(prompt, read_judgement, customer)

    async def _ask_valuation(
        self, customer: Customer, *, months: int, now: datetime
    ) -> Valuation | None:
        prompt = customer_prompt(customer, now=now, months=months)
        return await self._ask(prompt, read_valuation, customer)

    async def _ask(self, prompt: str, read: Callable[[str], R], customer: Customer) -> R | None:
        """The model's reply read by ``read``, or None (with a warning) if there is none."""
        try:
            return read(await self._complete(prompt))
        except ReplyError as exc:
            self._warn([customer], str(exc), asyncio.current_task())
            return None

    async def _complete(self, prompt: str) -> str:
        """The text of the client's reply; ReplyError on an exception or a timeout."""
        async with self._slots:
            deadline = asyncio.timeout(self._timeout)
            try:
                async with deadline:
                    reply = await self._client.chat(prompt, **self._chat_options)
                content = getattr(reply, "content", None)
            except Exception as exc:
                # Only the exception's type: its message may quote the prompt.
                if deadline.expired():
                    raise ReplyError(f"no reply within {self._timeout:g} s") from exc
                raise ReplyError(f"the client raised {type(exc).__name__}") from exc
        if not isinstance(content, str):
            raise ReplyError("the reply has no text content")
        return content

    def _warn(
        self, customers: Sequence[Customer], reason: str, run: asyncio.Task[Any] | None
    ) -> None:
        # Ids and the reason only: never a value from the prompt.
        tenants = ", ".join(sorted({customer.tenant_id for customer in customers}))
        warned = self._warned.setdefault(run, set()) if run is not None else set()
        first = (tenants, reason) not in warned
        warned.add((tenants, reason))
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "%s fell back to %s for tenant %s, customer ids %s: %s%s",
            self.name,
            self._fallback.name,
            tenants,
            [customer.id for customer in customers],
            reason,
            " (later fallbacks for this reason in this run are logged at debug level)"
            if first
            else "",
        )
