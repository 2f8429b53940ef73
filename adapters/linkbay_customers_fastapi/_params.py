"""Path, query and body parameters shared by the route groups, with their OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Path, Query

from linkbay_customers.domain import (
    DEFAULT_CONSENT_TYPES,
    MAX_ID,
    MAX_PAGE_SIZE,
    MAX_SEARCH_LIMIT,
)
from linkbay_customers.schemas import (
    AddressCreate,
    AddressUpdate,
    CustomerMergeRequest,
    CustomerNoteCreate,
    OrderCreate,
    UtcDateTime,
)
from linkbay_customers.services import MAX_PREDICTION_MONTHS
from linkbay_customers_fastapi._schemas import ConsentRequest

__all__ = (
    "AUDIT_PAGE_SIZE",
    "CUSTOMER_CREATE_EXAMPLES",
    "CUSTOMER_UPDATE_EXAMPLES",
    "AddressBody",
    "AddressId",
    "AddressUpdateBody",
    "AuditCustomerId",
    "AuditPageSize",
    "AuditSince",
    "AuditUntil",
    "ConsentBody",
    "ConsentType",
    "CustomerId",
    "MergeBody",
    "NoteBody",
    "OrderBody",
    "PageNumber",
    "PageSize",
    "PredictionMonths",
    "RecommendationLimit",
    "SimilarLimit",
)

CustomerId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_ID,
        description="The customer's id. An id merged into another customer resolves to that "
        "customer.",
    ),
]
AddressId = Annotated[int, Path(ge=1, le=MAX_ID, description="The address's id.")]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]

PredictionMonths = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PREDICTION_MONTHS,
        description=f"The period to predict, in months (1 to {MAX_PREDICTION_MONTHS}).",
    ),
]
SimilarLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_SEARCH_LIMIT,
        description=f"Most similar customers to return (1 to {MAX_SEARCH_LIMIT}).",
    ),
]
RecommendationLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_SEARCH_LIMIT,
        description=f"Most products to recommend (1 to {MAX_SEARCH_LIMIT}).",
    ),
]

AUDIT_PAGE_SIZE = 1000
"""The largest page of audit events: compliance reviews read long trails."""

AuditPageSize = Annotated[
    int, Query(ge=1, le=AUDIT_PAGE_SIZE, description="Events per page (at most 1000).")
]
AuditSince = Annotated[
    UtcDateTime | None,
    Query(description="Only events at or after this time (with a UTC offset)."),
]
AuditUntil = Annotated[
    UtcDateTime | None,
    Query(description="Only events before this time (with a UTC offset); later than `since`."),
]
AuditCustomerId = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_ID,
        description="Only events about this customer id, an erased customer's included.",
    ),
]
ConsentType = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The consent type: one the service is configured for, by default "
        f"{', '.join(f'`{t}`' for t in DEFAULT_CONSENT_TYPES)}. Another is refused with "
        "422 `consent_type_unknown`.",
        examples=list(DEFAULT_CONSENT_TYPES),
    ),
]


def _example(key: str, summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {key: {"summary": summary, "value": value}}


CUSTOMER_CREATE_EXAMPLES = _example(
    "mario",
    "Mario, with preferences and tags",
    {
        "email": "mario.rossi@example.com",
        "first_name": "Mario",
        "last_name": "Rossi",
        "phone": "+393331234567",
        "birthday": "1990-05-15",
        "gender": "male",
        "preferences": {"language": "it", "newsletter_subscribed": True},
        "tags": ["vip", "early_adopter"],
    },
)
CUSTOMER_UPDATE_EXAMPLES = _example(
    "phone",
    "Phone and language",
    {"phone": "+393339876543", "preferences": {"language": "en"}},
)

AddressBody = Annotated[
    AddressCreate,
    Body(
        openapi_examples=_example(
            "shipping",
            "Shipping address, the default one",
            {
                "type": "shipping",
                "address_line1": "Via Roma 123",
                "city": "Milano",
                "postal_code": "20100",
                "country": "IT",
                "is_default": True,
            },
        )
    ),
]
AddressUpdateBody = Annotated[
    AddressUpdate,
    Body(
        openapi_examples=_example(
            "moved", "Moved within the city", {"address_line1": "Via Dante 7"}
        )
    ),
]
NoteBody = Annotated[
    CustomerNoteCreate,
    Body(
        openapi_examples=_example(
            "expedite", "Shipping request", {"note": "Customer requested expedited shipping"}
        )
    ),
]
OrderBody = Annotated[
    OrderCreate,
    Body(
        openapi_examples=_example(
            "mugs",
            "Two mugs",
            {
                "order_id": "ORD-1001",
                "total": "59.98",
                "currency": "EUR",
                "created_at": "2025-01-15T10:30:00Z",
                "items": [
                    {
                        "product_id": "123",
                        "product_name": "Mug",
                        "quantity": 2,
                        "unit_price": "29.99",
                    }
                ],
            },
        )
    ),
]
MergeBody = Annotated[
    CustomerMergeRequest,
    Body(
        openapi_examples=_example(
            "everything",
            "Everything from 123 into 456",
            {
                "source_customer_id": 123,
                "target_customer_id": 456,
                "merge_addresses": True,
                "merge_notes": True,
                "merge_tags": True,
                "merge_preferences": True,
            },
        )
    ),
]
ConsentBody = Annotated[
    ConsentRequest,
    Body(
        openapi_examples={
            **_example(
                "given",
                "Given on the signup form",
                {
                    "consented": True,
                    "metadata": {
                        "source": "signup_form",
                        "ip_address": "192.168.1.1",
                        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                    },
                },
            ),
            **_example("withdrawn", "Withdrawn, no metadata", {"consented": False}),
        }
    ),
]
