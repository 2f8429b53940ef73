"""The client the adapter talks to: anything shaped like LinkBay-AI's orchestrator."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

__all__ = ("DEFAULT_CHAT_OPTIONS", "ChatClient", "ChatReply")

DEFAULT_CHAT_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"use_conversation": False, "use_cache": False}
)
"""Keyword arguments passed to every ``chat`` call unless the adapter is given others.

LinkBay-AI's ``AIOrchestrator.chat`` keeps a conversation and a semantic cache by
default. Both are wrong for scoring: the conversation would carry one customer's
facts into the next prompt, and a cache keyed on prompt similarity would hand one
customer's scores to another whose facts differ by a few numbers.
"""


class ChatReply(Protocol):
    """A chat completion; the adapter reads only its text."""

    @property
    def content(self) -> str:
        """The model's reply."""
        ...


@runtime_checkable
class ChatClient(Protocol):
    """An async chat client: ``await client.chat(prompt, **options)`` returns a reply.

    ``OpenAIChatClient`` has this shape, so does LinkBay-AI's ``AIOrchestrator``, and
    so does a thin wrapper over any chat-completion API.
    """

    async def chat(self, prompt: str, /, *args: Any, **options: Any) -> ChatReply:
        """Complete ``prompt``."""
        ...
