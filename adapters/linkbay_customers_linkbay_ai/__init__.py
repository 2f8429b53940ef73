"""Customer intelligence from a chat model, the heuristics as a fallback.

    from linkbay_customers import bootstrap
    from linkbay_customers_linkbay_ai import LinkBayAIIntelligence, OpenAIChatClient

    client = OpenAIChatClient(base_url="http://localhost:11434/v1", api_key="-", model=model)
    intelligence = LinkBayAIIntelligence(client, timeout=20, max_concurrency=4)
    container = bootstrap(url, intelligence=intelligence)

    segment, source = await intelligence.segment_with_source(customer, now=now)

The model sees order analytics only, never personal data; every reply is validated,
and any failure falls back to ``HeuristicIntelligence`` for that call or customer.
``OpenAIChatClient`` (any OpenAI-compatible endpoint) needs the ``ai`` extra; any
other object with an async ``chat(prompt)`` will do, e.g. LinkBay-AI's orchestrator
with a provider that works (docs/linkbay_ai.md: 0.2.2's own providers do not).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linkbay_customers_linkbay_ai._client import DEFAULT_CHAT_OPTIONS, ChatClient, ChatReply
from linkbay_customers_linkbay_ai._intelligence import (
    Assessment,
    LinkBayAIIntelligence,
    Sourced,
)
from linkbay_customers_linkbay_ai._prompts import customer_facts

if TYPE_CHECKING:
    from linkbay_customers_linkbay_ai._openai import EmptyReply, OpenAIChatClient, OpenAIReply

__all__ = (
    "DEFAULT_CHAT_OPTIONS",
    "Assessment",
    "ChatClient",
    "ChatReply",
    "EmptyReply",
    "LinkBayAIIntelligence",
    "OpenAIChatClient",
    "OpenAIReply",
    "Sourced",
    "customer_facts",
)

_NEEDS_OPENAI = frozenset({"EmptyReply", "OpenAIChatClient", "OpenAIReply"})


def __getattr__(name: str) -> Any:
    # The openai package is the ai extra's: imported only when its client is asked for.
    if name in _NEEDS_OPENAI:
        return getattr(importlib.import_module(f"{__name__}._openai"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
