"""Staff requests on a case (HTTP), and the case view partners and staff read.

The person deciding comes from their bearer token, never from the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mset_contract.paging import Page
from mset_contract.types import (
    ActionId,
    ClientRef,
    Count,
    Flag,
    FreeText,
    Instant,
    at_the_boundary,
    check_within_a_year,
    required_when,
)
from mset_contract.vocab import (
    ActionAim,
    ActionDisposition,
    ActionTarget,
    ExitReason,
    PreMsetOutcome,
    RiskLevel,
    Stage,
)


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Whether the rules a model's schema states across its fields (``allOf`` of ``if``/
    # ``then``) are checked when it is validated. A request is refused at the edge for them
    # (422 naming the field) before anything else is looked at: an item already decided, a
    # case at another stage. A workflow's update input (``referral_workflow``) leaves them to
    # the case's update validator, which checks them again with the case's own rules.
    schema_rules: ClassVar[bool] = True

    @classmethod
    def _schema_rules_apply(cls, info: ValidationInfo) -> bool:
        return cls.schema_rules and at_the_boundary(info)


def _example(value: dict[str, Any], *rules: dict[str, Any]) -> ConfigDict:
    # ``rules``: what the model (or the case, whatever its state) refuses that its fields'
    # schemas do not say, as JSON Schema (``if``/``then``), so the OpenAPI says it too.
    extra: dict[str, Any] = {"examples": [value]}
    if rules:
        extra["allOf"] = list(rules)
    return ConfigDict(extra="forbid", json_schema_extra=extra)


# One request model per command, whichever API takes it: the referral API's case routes and
# the meeting API's decision route accept these, and the workflow's update inputs extend them
# (``mset_contract.referral_workflow``). ``kind`` names the decision in the meeting API's
# union; the referral API's routes already say which decision it is. Fields a route sets
# itself (the meeting service: ``meeting_id`` and the decision's id, from the agenda item) are
# refused there when sent.

_ACTION_EXAMPLE = {
    "owner_agency_id": "3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a10",
    "due_at": "2026-12-05T17:00:00+00:00",
    "aim": "reduce",
    "target": "perpetrator",
    "description": "Serve a Child Abduction Warning Notice.",
}


class NewAction(_Req):
    """An action a review agrees: who owns it, when it is due, what it aims at."""

    model_config = _example(_ACTION_EXAMPLE)

    owner_agency_id: UUID
    due_at: Instant = Field(
        description="In the future, and within a year (a plan is reviewed "
        "monthly; a date years away is a typing error)."
    )
    aim: ActionAim = Field(description="Remove, avoid or reduce the risk.")
    target: ActionTarget = Field(description="Aimed at the victim, perpetrators or locations.")
    description: FreeText
    entity_id: UUID | None = Field(
        default=None,
        description="The person (target 'perpetrator') or location (target 'location') the "
        "action is aimed at, as an entity (GET /v1/entities/{id}): the action then shows on "
        "the entity.",
    )

    @field_validator("due_at")
    @classmethod
    def _due_within_a_year(cls, v: datetime, info: ValidationInfo) -> datetime:
        # Checked where the action is agreed, against that boundary's clock (``context``
        # ``now``: a test's time-skipped clock); never when a workflow decodes its history,
        # which must replay a year on (at_the_boundary).
        if not at_the_boundary(info):
            return v
        now = info.context.get("now") if info.context else None
        return check_within_a_year(v, "an action is due", now)


class LmapsReferralRequest(_Req):
    """Refer the case to an extraordinary LMAPS meeting (an MSET meeting's review only)."""

    model_config = _example({"reason": "Offender disruption needed for two linked adults."})

    reason: FreeText = Field(description="Why an extraordinary LMAPS meeting should consider it.")


class PreMsetDecisionRequest(_Req):
    """The Pre-MSET panel's decision."""

    model_config = _example(
        {"outcome": "meets_criteria", "level": "medium", "decision_id": "pre-mset-2026-11-item-4"},
        # The case refuses 'not_met' without a rationale (and a level below the suggested
        # one without one: that depends on the case, so no schema can say it), and a low
        # level for a case that meets the criteria (MSET considers medium and high).
        required_when("outcome", PreMsetOutcome.not_met.value, "rationale"),
        {
            "if": {
                "properties": {"outcome": {"const": PreMsetOutcome.meets_criteria.value}},
                "required": ["outcome"],
            },
            "then": {"properties": {"level": {"not": {"const": RiskLevel.low.value}}}},
        },
    )

    kind: Literal["pre_mset"] = "pre_mset"
    outcome: PreMsetOutcome
    level: RiskLevel = Field(description="The level the panel agrees.")
    rationale: FreeText | None = Field(
        default=None,
        description="Required for 'not_met' and for a level below the suggested level.",
        validate_default=True,
    )
    information_due_days: Count = Field(
        default=14, ge=1, le=90, description="For 'more_information': days the referrer has."
    )
    meeting_id: UUID | None = Field(
        default=None, description="The meeting that decided (the meeting API sets it itself)."
    )
    decision_id: ClientRef | None = Field(
        default=None,
        description="Your id for this decision; the same id twice is one decision (the "
        "meeting API uses the agenda item's id).",
    )

    # The rules of ``allOf`` above (``_Req.schema_rules``).
    @field_validator("level")
    @classmethod
    def _medium_or_high_for_mset(cls, v: RiskLevel, info: ValidationInfo) -> RiskLevel:
        if (
            cls._schema_rules_apply(info)
            and info.data.get("outcome") is PreMsetOutcome.meets_criteria
            and v is RiskLevel.low
        ):
            raise ValueError(
                "MSET considers medium and high risk cases: record 'not_met' with advice "
                "to the case holder, or agree a higher level"
            )
        return v

    @field_validator("rationale")
    @classmethod
    def _rationale_for_not_met(cls, v: str | None, info: ValidationInfo) -> str | None:
        if (
            cls._schema_rules_apply(info)
            and v is None
            and info.data.get("outcome") is PreMsetOutcome.not_met
        ):
            raise ValueError("a rationale is required when the criteria are not met")
        return v


_REVIEW_EXAMPLE: dict[str, Any] = {
    "level": "high",
    "rationale": "Further missing episode and new contact with the older male.",
    "review_id": "mset-2026-11-item-2",
    "actions": [_ACTION_EXAMPLE],
}


class MsetReviewRequest(_Req):
    """The MSET group's review: the agreed level and the plan's actions."""

    model_config = _example(_REVIEW_EXAMPLE)

    kind: Literal["mset_review"] = "mset_review"
    level: RiskLevel
    rationale: FreeText | None = Field(
        default=None, description="Required when the level differs from the current level."
    )
    actions: list[NewAction] = Field(default_factory=list, max_length=50)
    raise_lmaps: LmapsReferralRequest | None = Field(
        default=None,
        description="Refer the case to an extraordinary LMAPS meeting (meeting API only: the "
        "meeting service keeps LMAPS referrals).",
    )
    meeting_id: UUID | None = Field(
        default=None, description="The meeting that reviewed (the meeting API sets it itself)."
    )
    review_id: ClientRef | None = Field(
        default=None,
        description="Your id for this review: sending the same review again (a retry after a "
        "timeout) records it once. Required over the referral API; the meeting API uses the "
        "agenda item's id.",
    )


class MsetReviewCreate(MsetReviewRequest):
    """The MSET group's review, over the referral API: named by your ``review_id``, and an
    LMAPS referral only with the meeting that reviewed (which keeps it)."""

    model_config = _example(_REVIEW_EXAMPLE, required_when("raise_lmaps", None, "meeting_id"))

    review_id: ClientRef = Field(
        description="Your id for this review: sending the same review again (a retry after a "
        "timeout) records it once."
    )
    meeting_id: UUID | None = Field(
        default=None,
        description="The meeting that reviewed; required with `raise_lmaps`.",
        validate_default=True,
    )

    @field_validator("meeting_id")
    @classmethod
    def _meeting_for_lmaps(cls, v: UUID | None, info: ValidationInfo) -> UUID | None:
        # The schema's ``required_when`` above (``_Req.schema_rules``).
        if cls._schema_rules_apply(info) and v is None and info.data.get("raise_lmaps") is not None:
            raise ValueError("an LMAPS referral needs the meeting that reviewed: give meeting_id")
        return v


class ActionProgressRequest(_Req):
    """Progress on a plan's action, or its completion."""

    model_config = _example({"note": "Notice served on 3 December.", "completed": True})

    note: FreeText
    completed: Flag = False


class ExitAction(_Req):
    """What becomes of one action still open when the case exits."""

    action_id: ActionId
    disposition: ActionDisposition


class ExitRequest(_Req):
    """The child leaves MSET, with a reason; each open action is closed or carried on."""

    model_config = _example(
        {
            "reason": "sufficiently_safe",
            "actions": [
                {"action_id": "7d1c0a4e-2b3f-4c5d-8e9f-0a1b2c3d4e5f", "disposition": "carried"}
            ],
        },
        required_when("reason", ExitReason.other.value, "detail"),
    )

    reason: ExitReason
    detail: FreeText | None = Field(
        default=None, description="Required for 'other'.", validate_default=True
    )
    actions: list[ExitAction] = Field(
        default_factory=list,
        max_length=100,
        description="What becomes of each action still open: 'closed', or 'carried' on by the "
        "case holder. An exit that leaves an open action unaccounted for is refused.",
    )

    @field_validator("detail")
    @classmethod
    def _detail_for_other(cls, v: str | None, info: ValidationInfo) -> str | None:
        # The schema's ``required_when`` above (``_Req.schema_rules``).
        if (
            cls._schema_rules_apply(info)
            and v is None
            and info.data.get("reason") is ExitReason.other
        ):
            raise ValueError("say why the child leaves MSET when the reason is 'other'")
        return v


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
    as_of: datetime = Field(
        description="How fresh this is: when the case's workflow recorded the state shown. "
        "A status is read from the referral service's read model, which the workflow writes "
        "at each change it makes (a decision is recorded before its request is answered), so "
        "it never waits behind the workflows' backlog. A change still being recorded (the "
        "record keeping behind, or down) shows on a later read, with a later `as_of`."
    )
    sequence: int = Field(
        ge=0,
        description="Counts the records the case has made of its state: a read with a higher "
        "number shows a later state. 0 until the case first records (just submitted).",
    )
    live: bool = Field(
        default=False,
        deprecated=True,
        description="Always false: a status is no longer read from the case's workflow but "
        "from the state it last recorded (see `as_of`).",
    )


class OwnedAction(BaseModel):
    """A plan action, as the agency owning it sees it: what to do, on which case, by when."""

    action_id: str
    case_id: UUID = Field(description="The case (its first referral's id) the plan is for.")
    local_authority: str
    owner_agency_id: UUID
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    description: str
    created_at: datetime
    status: Literal["open", "completed"]
    completed_at: datetime | None = None
    last_progress_at: datetime | None = None


class OwnedActionPage(Page[OwnedAction]):
    """The caller's agency's actions, case by case. A page ends at a case boundary, so it may
    hold fewer than ``limit`` actions (or more, when one case alone has more)."""


class CasePage(Page[CaseView]):
    """Cases at one stage, the one submitted longest ago first (``GET /v1/referrals``)."""
