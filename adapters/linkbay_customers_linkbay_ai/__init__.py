"""Customer intelligence from a LinkBay-AI style chat client, the heuristics as a fallback.

    from linkbay_ai import AIOrchestrator
    from linkbay_customers import bootstrap
    from linkbay_customers_linkbay_ai import LinkBayAIIntelligence

    intelligence = LinkBayAIIntelligence(orchestrator, timeout=20, max_concurrency=4)
    container = bootstrap(url, intelligence=intelligence)

    segment, source = await intelligence.segment_with_source(customer, now=now)

The model sees order analytics only, never personal data; every reply is validated,
and any failure falls back to ``HeuristicIntelligence`` for that call or customer.
"""

from __future__ import annotations

from linkbay_customers_linkbay_ai._client import DEFAULT_CHAT_OPTIONS, ChatClient, ChatReply
from linkbay_customers_linkbay_ai._intelligence import (
    Assessment,
    LinkBayAIIntelligence,
    Sourced,
)
from linkbay_customers_linkbay_ai._prompts import customer_facts

__all__ = (
    "DEFAULT_CHAT_OPTIONS",
    "Assessment",
    "ChatClient",
    "ChatReply",
    "LinkBayAIIntelligence",
    "Sourced",
    "customer_facts",
)
