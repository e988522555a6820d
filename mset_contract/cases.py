"""Staff requests on a case (HTTP), and the case view partners and staff read.

The person deciding comes from their bearer token, never from the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mset_contract.referral_workflow import NewAction
from mset_contract.types import FreeText
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    ExitReason,
    PreMsetOutcome,
    RiskLevel,
    Stage,
)


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _example(value: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [value]})


class PreMsetDecisionRequest(_Req):
    model_config = _example(
        {"outcome": "meets_criteria", "level": "medium", "decision_id": "pre-mset-2026-11-item-4"}
    )

    outcome: PreMsetOutcome
    level: RiskLevel
    rationale: FreeText | None = None
    meeting_id: UUID | None = None
    information_due_days: int = Field(default=14, ge=1, le=90)
    decision_id: str | None = Field(default=None, max_length=64)


class MsetReviewRequest(_Req):
    model_config = _example(
        {
            "level": "high",
            "rationale": "Further missing episode and new contact with the older male.",
            "review_id": "mset-2026-11-item-2",
            "actions": [
                {
                    "owner_agency_id": "3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a10",
                    "due_at": "2026-12-05T17:00:00+00:00",
                    "aim": "reduce",
                    "target": "perpetrator",
                    "description": "Serve a Child Abduction Warning Notice.",
                }
            ],
        }
    )

    level: RiskLevel
    rationale: FreeText | None = None
    actions: list[NewAction] = Field(default_factory=list, max_length=50)
    meeting_id: UUID | None = None
    review_id: str = Field(
        min_length=1,
        max_length=64,
        description="Your id for this review: sending the same review again (a retry after a "
        "timeout) records it once.",
    )


class ActionProgressRequest(_Req):
    model_config = _example({"note": "Notice served on 3 December.", "completed": True})

    note: FreeText
    completed: bool = False


class ExitRequest(_Req):
    model_config = _example({"reason": "sufficiently_safe"})

    reason: ExitReason
    detail: FreeText | None = Field(default=None, description="Required for 'other'.")


class ActionView(BaseModel):
    action_id: str
    owner_agency_id: UUID
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    status: Literal["open", "completed"]


class CaseView(BaseModel):
    """A referral's status: where the case is, its level, open actions and next deadline."""

    referral_id: UUID
    case_id: UUID = Field(
        description="The case this referral belongs to (itself, or the open case it reassessed)."
    )
    partner_reference: str
    stage: Stage
    local_authority: str
    submitted_at: datetime
    updated_at: datetime
    referrer_level: RiskLevel
    suggested_level: RiskLevel | None = None
    level: RiskLevel | None = Field(default=None, description="The level a panel agreed.")
    open_actions: list[ActionView] = Field(default_factory=list)
    next_deadline: datetime | None = None
    previous_referral_id: UUID | None = Field(
        default=None, description="The closed case this re-referral follows."
    )
    exit_reason: ExitReason | None = None
    live: bool = Field(
        description="True when read from the case's workflow; false when the workflow could "
        "not be asked and this is the last recorded state."
    )
