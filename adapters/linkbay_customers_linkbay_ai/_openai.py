"""A chat client over the async OpenAI client, for any OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

try:
    import openai
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "OpenAIChatClient needs the openai package: pip install 'linkbay-customers[ai]'"
    ) from exc

from linkbay_customers_linkbay_ai._client import ChatClient

__all__ = ("EmptyReply", "OpenAIChatClient", "OpenAIReply")

# Options LinkBay-AI's orchestrator takes; this client keeps neither a conversation nor
# a cache, so it accepts them only to say no.
_STATELESS_OPTIONS = frozenset({"use_conversation", "use_cache"})


class EmptyReply(Exception):
    """The endpoint answered without any text (no choice, or a choice without content)."""


@dataclass(frozen=True, slots=True)
class OpenAIReply:
    """A chat completion's text and the model the endpoint says produced it."""

    content: str
    model: str


def _retry_after(error: openai.APIStatusError) -> float | None:
    """The wait the server asks for, in seconds: ``retry-after-ms``, then ``Retry-After``
    (seconds or an HTTP date); None when absent or unreadable."""
    headers = error.response.headers
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            wait = float(value) / 1000
        except ValueError:
            wait = math.nan
        if math.isfinite(wait):
            return max(wait, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            wait = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(wait, 0.0) if math.isfinite(wait) else None


def _retryable(error: Exception) -> bool:
    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    # A connection that failed or dropped; the deadline bounds the attempts.
    return isinstance(error, openai.APIConnectionError)


class OpenAIChatClient(ChatClient):
    """A ``ChatClient`` for any OpenAI-compatible chat-completions endpoint.

    OpenAI, vLLM, Ollama, LM Studio, a LinkBay-AI gateway: anything serving
    ``POST {base_url}/chat/completions``. Every call is one user message, with no
    conversation and no cache, over ``openai.AsyncOpenAI``, so waiting for a reply
    never blocks the event loop, and cancelling a call (as ``LinkBayAIIntelligence``
    does when its ``timeout`` expires) closes the request at once.

    Failures: a 429 or a 5xx reply, or a connection that fails, is retried up to
    ``max_retries`` times, after the ``Retry-After`` (or ``retry-after-ms``) the
    server asks for, capped at ``max_retry_wait``, or else an exponential backoff
    (0.25 s, 0.5 s, 1 s, ... with jitter, under the same cap). Any other 4xx is
    raised at once. The openai library's own retries are off: they also retry 408
    and 409, obey an ``x-should-retry`` header and wait up to a minute.

    Args:
        base_url: The API root, e.g. ``"http://localhost:11434/v1"``; None reads
            ``OPENAI_BASE_URL`` (then OpenAI's own), as the openai library does.
        api_key: None reads ``OPENAI_API_KEY``; local servers take any string.
        model: The model every call asks for.
        timeout: Seconds for one ``chat`` call, retries and waits included (None:
            no limit). A wait that would end past it is not waited: the last error
            is raised instead.
        max_retries: Retries after the first attempt.
        max_retry_wait: The longest wait before a retry, in seconds.
        temperature: Sent with every call; None sends none (the server's default).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str,
        timeout: float | None = 30.0,
        max_retries: int = 2,
        max_retry_wait: float = 10.0,
        temperature: float | None = 0.0,
    ) -> None:
        if not model:
            raise ValueError("model must name a model")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive or None, got {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {max_retries!r}")
        if not max_retry_wait >= 0:
            raise ValueError(f"max_retry_wait must be at least 0, got {max_retry_wait!r}")
        self.model = model
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._temperature = temperature
        self._openai = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0
        )
        # Resolved here: openai imports its resource modules on first access, which
        # would otherwise hold up the event loop on the first call.
        self._completions = self._openai.chat.completions

    async def chat(self, prompt: str, /, *args: Any, **options: Any) -> OpenAIReply:
        """Complete ``prompt`` as one user message; retries as the class describes.

        Accepts ``use_conversation`` and ``use_cache`` (LinkBay-AI's options, which
        ``LinkBayAIIntelligence`` passes by default) only when false.

        Raises:
            TypeError: a positional option, an unknown option, or one asking for a
                conversation or a cache.
            EmptyReply: the endpoint's reply has no text.
            openai.APIError: the endpoint failed and no retry is left (or allowed).
            TimeoutError: ``timeout`` expired.
        """
        if args:
            raise TypeError("OpenAIChatClient.chat takes the prompt as its only positional")
        unknown = sorted(set(options) - _STATELESS_OPTIONS)
        if unknown:
            raise TypeError(f"OpenAIChatClient.chat got unknown options {unknown}")
        stateful = sorted(name for name, value in options.items() if value)
        if stateful:
            raise TypeError(f"OpenAIChatClient keeps no conversation and no cache: {stateful}")
        async with asyncio.timeout(self._timeout):
            return await self._complete_with_retries(prompt)

    async def _complete_with_retries(self, prompt: str) -> OpenAIReply:
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        attempt = 0
        while True:
            try:
                return await self._complete(prompt)
            except openai.APIError as error:
                if attempt >= self._max_retries or not _retryable(error):
                    raise
                wait = self._wait(error, attempt)
                if deadline is not None and loop.time() + wait >= deadline:
                    raise
            attempt += 1
            await asyncio.sleep(wait)

    def _wait(self, error: openai.APIError, attempt: int) -> float:
        asked = _retry_after(error) if isinstance(error, openai.APIStatusError) else None
        if asked is None:
            asked = 0.25 * 2**attempt * (1 - 0.25 * random.random())
        return min(asked, self._max_retry_wait)

    async def _complete(self, prompt: str) -> OpenAIReply:
        extra: dict[str, Any] = {}
        if self._temperature is not None:
            extra["temperature"] = self._temperature
        completion = await self._completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}], **extra
        )
        content = completion.choices[0].message.content if completion.choices else None
        if not content:
            raise EmptyReply(f"{self.model} replied without text")
        return OpenAIReply(content=content, model=completion.model or self.model)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._openai.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
