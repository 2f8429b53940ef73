"""Pure privacy rules: what anonymization removes, and when profiling is allowed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from linkbay_customers.domain._entities import ConsentState, Customer

__all__ = (
    "DEFAULT_CONSENT_TYPES",
    "PERSONAL_FIELDS",
    "PROFILE_FIELDS",
    "DEFAULT_PROFILING_POLICY",
    "ExtraErasure",
    "ProfilingPolicies",
    "ProfilingPolicy",
    "anonymize",
    "policies_from",
    "profiling_allowed",
)

DEFAULT_CONSENT_TYPES = ("marketing", "analytics", "cookies")
"""The consent types a service accepts unless configured otherwise (the seed's)."""

PROFILE_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "birthday",
    "gender",
    "preferences",
    "tags",
)
"""The fields of a customer's profile, as given on create and update."""

PERSONAL_FIELDS = (*PROFILE_FIELDS, "embedding", "embedding_version")
"""The customer fields anonymization clears; a host's personal ``extra`` fields are cleared too."""


@dataclass(frozen=True, slots=True)
class ExtraErasure:
    """What anonymization does to a host's ``extra`` fields.

    Every extra field is personal unless ``kept`` names it. Anonymization writes
    each personal field's value in ``values``, None where it names none, and
    leaves the fields in ``kept`` as they are. The storage adapter, which knows
    the host's columns, says which fields these are (``CustomerRepository.extra_erasure``).

    Attributes:
        kept: The extra fields that are not personal.
        values: The value anonymization writes to a personal field that cannot
            be empty (a NOT NULL column), by field name.
    """

    kept: frozenset[str] = frozenset()
    values: Mapping[str, Any] = field(default_factory=dict)

    def erase(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The extra fields as anonymization leaves them."""
        return {
            name: value if name in self.kept else self.values.get(name)
            for name, value in extra.items()
        }


def anonymize(
    customer: Customer, now: datetime, extra_erasure: ExtraErasure | None = None
) -> list[str]:
    """Strip a customer of personal data, keeping the non-identifying analytics.

    Clears the profile (``PERSONAL_FIELDS``) and the personal ``extra`` fields
    (every one, unless ``extra_erasure`` keeps some or gives the values to write),
    removes the source, IP address and user agent from the consent state (the
    decisions and dates stay), marks the customer anonymized and deleted. Order
    counts, totals, dates, segment and scores stay: they describe no one once the
    profile is gone.

    Returns:
        The names of the fields that changed; empty when already anonymized.
    """
    if customer.is_anonymized:
        return []
    erased_extra = (extra_erasure or ExtraErasure()).erase(customer.extra)
    changed = [name for name in PERSONAL_FIELDS if getattr(customer, name) not in (None, [], {})]
    customer.email = customer.first_name = customer.last_name = None
    customer.phone = customer.gender = customer.embedding_version = None
    customer.birthday = None
    customer.embedding = None
    customer.preferences = {}
    customer.tags = []
    changed.extend(name for name, value in customer.extra.items() if erased_extra[name] != value)
    customer.extra = erased_extra
    # The source is free text a host fills (a campaign, a form, a shop assistant's
    # name): it goes with the rest of where the decision was taken.
    if any(s.source or s.ip_address or s.user_agent for s in customer.consent_data.values()):
        changed.append("consent_data")
    customer.consent_data = {
        kind: replace(state, source=None, ip_address=None, user_agent=None)
        for kind, state in customer.consent_data.items()
    }
    customer.is_anonymized = True
    changed.append("is_anonymized")
    if customer.deleted_at is None:
        customer.deleted_at = now
        changed.append("deleted_at")
    customer.updated_at = now
    return changed


@dataclass(frozen=True, slots=True)
class ProfilingPolicy:
    """A tenant's rule for automated profiling (segments, scores, similarity,
    recommendations).

    Attributes:
        consent_type: The consent that governs profiling.
        enforce: False turns the gate off (profiling everyone).
        require_opt_in: True profiles only customers who gave the consent; False
            (the default) profiles everyone but those who withdrew or refused it.
    """

    consent_type: str = "analytics"
    enforce: bool = True
    require_opt_in: bool = False


def profiling_allowed(customer: Customer, policy: ProfilingPolicy) -> bool:
    """Whether the policy lets a customer be profiled."""
    if not policy.enforce:
        return True
    state: ConsentState | None = customer.consent_data.get(policy.consent_type)
    if state is None:
        return not policy.require_opt_in
    return state.consented


DEFAULT_PROFILING_POLICY = ProfilingPolicy()
"""Profile everyone but those who withdrew or refused ``analytics`` consent."""

ProfilingPolicies = Callable[[str], ProfilingPolicy]
"""The profiling policy of each tenant, by tenant id."""


def policies_from(policy: ProfilingPolicy | ProfilingPolicies) -> ProfilingPolicies:
    """One policy for every tenant, or the function that gives each tenant's."""
    if isinstance(policy, ProfilingPolicy):
        fixed = policy
        return lambda tenant_id: fixed
    return policy
