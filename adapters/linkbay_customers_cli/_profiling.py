"""``--profiling``: the profiling policy of the commands that compute derived data."""

from __future__ import annotations

from enum import StrEnum

from linkbay_customers import ProfilingPolicy

__all__ = ("PROFILING_ENV", "ProfilingMode")

PROFILING_ENV = "LINKBAY_PROFILING"


class ProfilingMode(StrEnum):
    """Whom segments, scores and similarity may touch, as ``--profiling`` names it.

    There is no mode that ignores consent: a host that wants one builds its own
    ``ProfilingPolicy(enforce=False)``.
    """

    OPT_OUT = "opt-out"
    """Everyone but the customers whose ``analytics`` consent is a no (the default)."""
    OPT_IN = "opt-in"
    """Only the customers who gave ``analytics`` consent."""

    @property
    def policy(self) -> ProfilingPolicy:
        """The library's policy for this mode."""
        return ProfilingPolicy(require_opt_in=self is ProfilingMode.OPT_IN)

    @property
    def description(self) -> str:
        """One line for the server banner."""
        if self is ProfilingMode.OPT_IN:
            return "opt-in (only customers who gave analytics consent)"
        return "opt-out (everyone but customers who refused analytics consent)"
