"""Request and response models of the GDPR routes that the core's schemas do not have.

The core's services take plain arguments (``consented``, ``metadata``) and return
JSON-ready dicts; these models give those shapes to HTTP bodies and to OpenAPI.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from linkbay_customers.schemas import (
    ConsentEventResponse,
    ConsentMetadata,
    ConsentStateResponse,
)

__all__ = ("ConsentHistoryResponse", "ConsentRequest", "ExportFormat")


class ExportFormat(StrEnum):
    """The formats ``GET /customers/{customer_id}/export`` serves."""

    JSON = "json"
    CSV = "csv"


class ConsentRequest(BaseModel):
    """The body of ``POST /customers/{customer_id}/consent/{consent_type}``."""

    model_config = ConfigDict(extra="forbid")

    consented: StrictBool = Field(
        description="The decision: `true` to give the consent, `false` to withdraw it."
    )
    metadata: ConsentMetadata | None = Field(
        default=None,
        description="Where the decision was taken. Recorded as sent: the API never fills "
        "`ip_address` or `user_agent` from the request itself.",
    )


class ConsentHistoryResponse(BaseModel):
    """The current decision per consent type, keyed by type (the seed's shape), and
    under ``events`` every decision ever recorded, oldest first."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "marketing": {
                        "consented": True,
                        "date": "2025-01-15T10:30:00Z",
                        "source": "signup_form",
                        "ip_address": "192.168.1.1",
                        "user_agent": "Mozilla/5.0",
                    },
                    "events": [
                        {
                            "id": 1,
                            "consent_type": "marketing",
                            "consented": True,
                            "previous": None,
                            "occurred_at": "2025-01-15T10:30:00Z",
                            "source": "signup_form",
                            "ip_address": "192.168.1.1",
                            "user_agent": "Mozilla/5.0",
                        }
                    ],
                }
            ]
        },
    )
    # Every key but ``events`` is a consent type holding its current state.
    __pydantic_extra__: dict[str, ConsentStateResponse] = Field(init=False)

    events: list[ConsentEventResponse]

    @classmethod
    def of(cls, history: dict[str, Any]) -> ConsentHistoryResponse:
        """Build the response from ``GDPRService.get_consent_history``."""
        return cls.model_validate(history)
