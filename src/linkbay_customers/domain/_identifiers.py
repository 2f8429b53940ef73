"""Who a request acts for and who acts: the boundary checks of tenant and actor ids.

Every service applies them to what it is given, and an adapter that reads a tenant or an
actor from outside (a header, a token claim, a command line) applies the same checks, so a
bad identifier fails the same way wherever it comes from.
"""

from __future__ import annotations

from linkbay_customers.domain._errors import InvalidInput

__all__ = ("MAX_ACTOR_LENGTH", "MAX_TENANT_LENGTH", "check_actor", "check_tenant")

MAX_TENANT_LENGTH = 64
"""The longest tenant id, in characters."""

MAX_ACTOR_LENGTH = 255
"""The longest actor (acting user) id, in characters."""


def _is_clean_text(value: str) -> bool:
    return value.isprintable() and not any(ch.isspace() for ch in value)


def check_tenant(tenant_id: object) -> str:
    """Check a tenant id: 1 to 64 printable characters without spaces.

    Args:
        tenant_id: The value to check, as received.

    Returns:
        The tenant id, unchanged.

    Raises:
        InvalidInput: on field ``tenant_id``, when the value is not such a string.
    """
    if (
        not isinstance(tenant_id, str)
        or not 0 < len(tenant_id) <= MAX_TENANT_LENGTH
        or not _is_clean_text(tenant_id)
    ):
        raise InvalidInput.single(
            "tenant_id", f"must be 1 to {MAX_TENANT_LENGTH} printable characters without spaces"
        )
    return tenant_id


def check_actor(actor: object, field: str = "actor") -> str | None:
    """Check an acting user: None (nobody named) or 1 to 255 printable characters.

    Args:
        actor: The value to check, as received.
        field: The name the error gives the value (a header or claim name, say).

    Returns:
        The actor, unchanged.

    Raises:
        InvalidInput: on ``field``, when the value is neither None nor such a string.
    """
    if actor is None:
        return None
    if (
        not isinstance(actor, str)
        or not 0 < len(actor) <= MAX_ACTOR_LENGTH
        or not actor.isprintable()
    ):
        raise InvalidInput.single(field, f"must be 1 to {MAX_ACTOR_LENGTH} printable characters")
    return actor
