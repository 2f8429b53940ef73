"""Request models of the GDPR routes that the core's schemas do not have.

The core's services take plain arguments (``consented``, ``metadata``); these models
give them the shape of HTTP bodies and query parameters. Response models live in
``linkbay_customers.schemas``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from linkbay_customers.schemas import ConsentMetadata

__all__ = ("ConsentRequest", "ExportFormat")


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
