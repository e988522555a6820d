"""HTTP models of the notifications API (the schema ladder: create, public, page)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from mset_contract.events import EVENT_TYPES
from mset_contract.types import FreeText
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
    target_role: Role | None
    target_agency_id: uuid.UUID | None
    target_agency_type: AgencyType | None
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


class InboxPage(BaseModel):
    items: list[InboxItemPublic]


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
    )


class WebhookAttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryPublic(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    case_id: uuid.UUID
    status: Literal["pending", "held", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
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
    last_error: str | None
    created_at: datetime
    recent_deliveries: list[WebhookDeliveryPublic] = []


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Signs every delivery (MSET-Signature header). Shown once: keep it."
    )
    signature_scheme: str = (
        "MSET-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.' + raw body)>"
    )


class WebhookList(BaseModel):
    subscriptions: list[WebhookPublic]


class EventTypes(BaseModel):
    event_types: list[str]
