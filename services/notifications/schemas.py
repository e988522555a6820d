"""HTTP models of the notifications API (the schema ladder: create, public, page)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, Strict

from mset_contract.events import EVENT_TYPES
from mset_contract.paging import Page
from mset_contract.types import FreeText, whole_number
from mset_contract.vocab import AgencyType, RiskLevel, Role

InboxState = Literal["open", "unacknowledged", "actioned", "all"]


class InboxItemPublic(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID = Field(description="The referral id: open the case in the referral API.")
    kind: str
    urgency: str
    level: RiskLevel | None
    local_authority: str
    rule: str
    ruleset_version: str
    fired_rules: list[str]
    about: str | None = Field(description="The missing episode or action ref, where one.")
    due_at: datetime | None
    deadline: datetime | None = Field(description="By when to act.")
    designation: str = Field(
        description="Whom the escalation named, by their part in the case (e.g. "
        "local_authority: the authority's partnership; rhi_provider: its RHI provider)."
    )
    target_role: Role | None
    target_agency_id: uuid.UUID | None = Field(description="The agency, for agency-level items.")
    target_authority: str | None = Field(
        description="The local authority, for authority-level items: those who serve it see it."
    )
    target_agency_type: AgencyType | None = Field(
        description="Only on items made before routing by authority (no longer written)."
    )
    reescalation_of: uuid.UUID | None = Field(
        description="The item left unacknowledged that this one re-escalates."
    )
    line_step: int
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    actioned_at: datetime | None
    actioned_by: uuid.UUID | None
    action_note: str | None
    reescalated_at: datetime | None = Field(
        description="When it went up the line for want of an acknowledgement."
    )


class InboxPage(Page[InboxItemPublic]):
    """Inbox items, newest first."""


class ActionedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: FreeText = Field(description="What was done. Stays in the notifications service.")


def _webhook_example() -> dict[str, Any]:
    return {
        "url": "https://partner.example.org/mset/webhooks",
        "event_types": ["mset.referral.escalated", "mset.referral.stage_changed"],
    }


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_webhook_example()]})

    url: AnyHttpUrl = Field(description="Where deliveries are POSTed (https in production).")
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="Event types to receive: see GET /v1/event-types.",
        # The closed vocabulary, as the subscription refuses any other type.
        json_schema_extra={
            "items": {"type": "string", "enum": list[JsonValue](sorted(EVENT_TYPES))}
        },
    )


WebhookOutcome = Literal["delivered", "failed"]
WebhookDeliveryStatus = Literal["pending", "delivered", "failed", "parked"]


class WebhookAttemptPublic(BaseModel):
    """One attempt, as the subscriber sees it: whether it was delivered, nothing of what the
    URL answered (its status code, error and timing stay with the operator)."""

    attempt: int
    at: datetime = Field(description="When the attempt started.")
    outcome: WebhookOutcome = Field(
        description="delivered: the URL answered 2xx; failed: anything else (no answer, "
        "a refused address, a redirect, a non-2xx status)."
    )


class WebhookDeliveryPublic(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    case_id: uuid.UUID
    status: WebhookDeliveryStatus = Field(
        description="pending: being tried; delivered; failed: given up after the last "
        "attempt; parked: held while the subscription is parked (sent once resumed)."
    )
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[WebhookAttemptPublic] = []


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    status: Literal["active", "parked"]
    consecutive_failures: int
    parked_at: datetime | None
    created_at: datetime
    secret_rotated_at: datetime | None = Field(
        default=None, description="When the signing secret was last rotated."
    )
    recent_deliveries: list[WebhookDeliveryPublic] = Field(
        default=[],
        description="The latest deliveries, newest first (at most 20); all of them, page by "
        "page: GET /v1/webhooks/{id}/deliveries.",
    )


SIGNATURE_SCHEME = (
    "MSET-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.' + raw body)>"
    " (a second v1=, signed with the previous secret, while a rotation's overlap lasts)"
)


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Signs every delivery (MSET-Signature header). Shown once: keep it."
    )
    signature_scheme: str = SIGNATURE_SCHEME


class WebhookSecretRotate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"keep_previous_seconds": 86400}]}
    )

    # A Count (mset_contract.types) with its bounds inside: beside the union, pydantic would
    # write them into the OpenAPI as "ge"/"le", which JSON Schema does not know.
    keep_previous_seconds: (
        Annotated[int, Strict(), Field(ge=0, le=7 * 24 * 3600), BeforeValidator(whole_number)]
        | None
    ) = Field(
        default=None,
        description="How long deliveries are still signed with the previous secret too, "
        "while your receiver changes over (default: the service's setting, 24 hours). 0 "
        "retires it at once: do that when it leaked.",
    )


class WebhookSecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="The new signing secret. Shown once: keep it.")
    previous_secret_valid_until: datetime | None = Field(
        description="Until when deliveries carry a second signature with the previous "
        "secret; null: the previous secret signs nothing from now."
    )
    signature_scheme: str = SIGNATURE_SCHEME


class WebhookPage(Page[WebhookPublic]):
    """The agency's subscriptions, oldest first."""


class WebhookDeliveryPage(Page[WebhookDeliveryPublic]):
    """A subscription's deliveries, newest first, each with its attempts."""


class EventTypes(BaseModel):
    event_types: list[str]
