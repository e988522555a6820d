"""Meetings: the meeting service's HTTP models, and the input and result of the workflow its
Temporal Schedules start.

Schema ladder (CONVENTIONS.md): ``MeetingCreate`` / ``AttendanceUpdate`` / ``DecisionCreate``
in; ``MeetingSummary``, ``MeetingPublic``, ``AgendaPublic``, ``ItemDecisionPublic`` out.

An agenda item describes a case by its referral id, codes, levels and dates, taken from the
case's workflow state: never the child's name, date of birth or address (the workflow does not
hold them). The panels' own words (rationales, action descriptions, progress notes, an LMAPS
referral's reason) are free text: the meeting service keeps them in its own database and
shows them only to the roles that may see them (``services/meeting/domain.py``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from mset_contract.referral_workflow import MissingEpisodeSummary
from mset_contract.types import FreeText, LocalAuthorityCode, ShortText
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    MeetingKind,
    PreMsetOutcome,
    RiskLevel,
    Stage,
)

MEETING_CYCLE_WORKFLOW = "MeetingCycleWorkflow"
MEETING_OPEN_ACTIVITY = "meeting.open_meeting"

# Kinds that meet monthly on a Temporal Schedule; LMAPS meetings are called when needed.
SCHEDULED_KINDS = (MeetingKind.pre_mset, MeetingKind.mset)


def meeting_schedule_id(local_authority: str, kind: MeetingKind) -> str:
    return f"meeting-schedule-{local_authority}-{kind.value}"


def meeting_cycle_workflow_id(local_authority: str, kind: MeetingKind) -> str:
    # The schedule appends the scheduled time, so each firing has its own workflow id.
    return f"meeting-cycle-{local_authority}-{kind.value}"


class MeetingStatus(StrEnum):
    scheduled = "scheduled"  # called: agenda drawn up, may be refreshed, attendance taken
    in_progress = "in_progress"  # the first decision was recorded: the agenda is fixed
    closed = "closed"  # minutes final; nothing more is recorded


class AgendaReason(StrEnum):
    new_referral = "new_referral"  # awaiting Pre-MSET
    new_to_mset = "new_to_mset"  # met the criteria at Pre-MSET, awaiting its first MSET
    re_review_due = "re_review_due"  # an active plan whose monthly review falls due
    breach = "breach"  # an overdue action, or an escalation since the panel last met
    lmaps_referral = "lmaps_referral"  # raised by an MSET review for an extraordinary LMAPS


class Capacity(StrEnum):
    """In what capacity a person attends a meeting."""

    chair = "chair"
    member = "member"
    presenter = "presenter"  # e.g. the social worker presenting a case
    observer = "observer"
    minute_taker = "minute_taker"


class DecisionKind(StrEnum):
    pre_mset = "pre_mset"
    mset_review = "mset_review"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- the schedule's workflow and activity --------------------------------------------------


class MeetingCycleInput(_In):
    """Input of ``MeetingCycleWorkflow``, the action of a meeting schedule."""

    local_authority: LocalAuthorityCode
    kind: MeetingKind
    notice_days: int = Field(
        default=7, ge=0, le=60, description="Days between calling the meeting and holding it."
    )


class MeetingCycleResult(_Out):
    meeting_id: UUID
    items: int
    created: bool


class OpenMeetingInput(_In):
    """Activity ``meeting.open_meeting``: create the meeting and snapshot its agenda."""

    local_authority: LocalAuthorityCode
    kind: MeetingKind
    called_at: AwareDatetime
    held_at: AwareDatetime
    origin: str = Field(
        max_length=200, description="What called it (the schedule's workflow id): one meeting each."
    )


class OpenMeetingResult(_Out):
    meeting_id: UUID
    items: int
    created: bool


# --- what an agenda item says about a case -----------------------------------------------


class TriageView(_Out):
    suggested_level: RiskLevel
    referrer_level: RiskLevel = Field(description="The referrer's own judgement.")
    level: RiskLevel
    score: int
    ruleset_version: str
    recommendation: str
    coordinator_review: bool = Field(
        description="The referrer judged lower than the rules without a rationale."
    )
    fired_rules: list[str]


class ActionView(_Out):
    action_id: str
    owner_agency_id: UUID
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    description: str | None
    overdue: bool
    progress_count: int
    last_progress_at: datetime | None = None
    last_progress_note: str | None = None


class LastDecision(_Out):
    kind: DecisionKind
    decided_at: datetime
    level: RiskLevel
    outcome: PreMsetOutcome | None = None
    rationale: str | None = None
    meeting_id: UUID | None = None


class CaseSummary(_Out):
    """What a panel needs to know about one case, from its workflow's state."""

    referral_id: UUID
    referring_agency_id: UUID
    local_authority: str
    stage: Stage
    submitted_at: datetime
    previous_referral_id: UUID | None = None
    agreed_level: RiskLevel | None = Field(description="The level a panel last agreed.")
    triage: TriageView | None
    missing_episodes: list[MissingEpisodeSummary]
    open_actions: list[ActionView]
    breaches: list[str] = Field(
        description="Overdue actions and escalations since the panel last decided, as "
        "'<kind>:<subject>' codes."
    )
    last_decision: LastDecision | None
    next_review_due: datetime | None
    reviews_total: int


class AgreedAction(_Out):
    action_id: str
    owner_agency_id: UUID
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    description: str | None


class ItemDecisionPublic(_Out):
    item_id: UUID
    kind: DecisionKind
    decided_at: datetime
    decided_by: UUID
    decided_by_name: str | None
    outcome: PreMsetOutcome | None = None
    level: RiskLevel
    rationale: str | None = None
    stage_after: Stage
    actions: list[AgreedAction] = Field(default_factory=list)
    next_review_due: datetime | None = None
    lmaps_referral_id: UUID | None = None
    lmaps_reason: str | None = None


class AgendaItemPublic(_Out):
    item_id: UUID
    position: int
    referral_id: UUID
    reasons: list[AgendaReason]
    risk_level: RiskLevel = Field(description="The level the agenda is ordered by.")
    waiting_since: datetime
    case: CaseSummary
    lmaps_reason: str | None = Field(
        default=None, description="For an LMAPS meeting: why the MSET group referred the case."
    )
    decision: ItemDecisionPublic | None = None
    withheld: list[str] = Field(
        default_factory=list,
        description="Fields left empty because your role may not see them.",
    )


class AgendaPublic(_Out):
    meeting_id: UUID
    kind: MeetingKind
    local_authority: str
    status: MeetingStatus
    held_at: datetime
    built_at: datetime
    items: list[AgendaItemPublic]


# --- meetings and attendance ---------------------------------------------------------------


def meeting_create_example() -> dict[str, Any]:
    return {"kind": "lmaps", "local_authority": "northshire", "held_at": "2026-11-20T14:00:00Z"}


class MeetingCreate(_In):
    """Call an extraordinary LMAPS meeting (Pre-MSET and MSET meetings come from their
    schedules: trigger the schedule to call one now)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [meeting_create_example()]}
    )

    kind: MeetingKind
    local_authority: LocalAuthorityCode
    held_at: AwareDatetime

    @field_validator("kind")
    @classmethod
    def _only_extraordinary(cls, v: MeetingKind) -> MeetingKind:
        if v is not MeetingKind.lmaps:
            raise ValueError(
                "only an extraordinary 'lmaps' meeting is called this way; Pre-MSET and MSET "
                "meetings come from their schedule (POST /v1/schedules/{la}/{kind}/trigger)"
            )
        return v


def attendance_example() -> dict[str, Any]:
    return {
        "attendees": [
            {
                "person_name": "DI Sam Okafor",
                "agency_name": "Northshire Police",
                "capacity": "chair",
            },
            {
                "person_name": "Alex Reid",
                "agency_name": "Northshire Children's Social Care",
                "capacity": "presenter",
            },
            {
                "person_name": "Jo Patel",
                "agency_name": "Northshire Health",
                "present": False,
            },
        ]
    }


class Attendee(_In):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [attendance_example()["attendees"][0]]},
    )

    person_name: ShortText = Field(description="The professional attending (staff, not a child).")
    agency_name: ShortText
    agency_id: UUID | None = Field(
        default=None, description="When given, the minutes name this agency's actions."
    )
    capacity: Capacity = Capacity.member
    present: bool = Field(default=True, description="False records apologies.")


class AttendanceUpdate(_In):
    """Who attended (or sent apologies), by agency and person; replaces the list."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [attendance_example()]},
    )

    attendees: list[Attendee] = Field(max_length=200)

    @model_validator(mode="after")
    def _one_chair_present(self) -> AttendanceUpdate:
        chairs = [a for a in self.attendees if a.capacity is Capacity.chair]
        if len(chairs) > 1:
            raise ValueError("a meeting has one chair: mark the others as members")
        if chairs and not chairs[0].present:
            raise ValueError("the chair must be present (record a present chair)")
        return self


class AttendancePublic(_Out):
    meeting_id: UUID
    chair_name: str | None
    attendees: list[Attendee]
    agencies_present: list[str]
    agencies_sent_apologies: list[str]


class MeetingSummary(_Out):
    meeting_id: UUID
    kind: MeetingKind
    local_authority: str
    status: MeetingStatus
    called_at: datetime
    held_at: datetime
    called_by_schedule: bool
    chair_name: str | None
    items: int
    decided: int


class MeetingPublic(MeetingSummary):
    attendance: AttendancePublic


class MeetingPage(_Out):
    meetings: list[MeetingSummary]


# --- decisions -----------------------------------------------------------------------------


def pre_mset_decision_example() -> dict[str, Any]:
    return {
        "kind": "pre_mset",
        "outcome": "meets_criteria",
        "level": "high",
        "rationale": "Repeat missing episodes with an older adult; agreed high.",
    }


def mset_review_example() -> dict[str, Any]:
    return {
        "kind": "mset_review",
        "level": "high",
        "rationale": "Plan agreed after police intelligence update.",
        "actions": [
            {
                "owner_agency_id": "5b0c7a4e-2f1d-4c3b-9a8e-0d6f1e2a3b4c",
                "due_at": "2026-12-01T17:00:00Z",
                "aim": "reduce",
                "target": "victim",
                "description": "Weekly direct work sessions by the allocated social worker.",
            },
            {
                "owner_agency_id": "7c1d8b5f-3a2e-4d4c-8b9f-1e7a2b3c4d5e",
                "due_at": "2026-11-27T17:00:00Z",
                "aim": "remove",
                "target": "location",
                "description": "Closure notice application for the identified address.",
            },
        ],
        "raise_lmaps": {"reason": "Offender disruption needed for two linked adults."},
    }


class ActionCreate(_In):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [mset_review_example()["actions"][0]]},
    )

    owner_agency_id: UUID
    due_at: AwareDatetime
    aim: ActionAim = Field(description="Remove, avoid or reduce the risk.")
    target: ActionTarget = Field(description="Aimed at the victim, perpetrators or locations.")
    description: FreeText


class LmapsReferralCreate(_In):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [mset_review_example()["raise_lmaps"]]},
    )

    reason: FreeText = Field(description="Why an extraordinary LMAPS meeting should consider it.")


class PreMsetDecisionCreate(_In):
    """The Pre-MSET panel's decision on one agenda item."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [pre_mset_decision_example()]},
    )

    kind: Literal["pre_mset"]
    outcome: PreMsetOutcome
    level: RiskLevel
    rationale: FreeText | None = Field(
        default=None,
        description="Required for 'not_met' and for a level below the suggested level.",
    )
    information_due_days: int = Field(
        default=14, ge=1, le=90, description="For 'more_information': days the referrer has."
    )


class MsetReviewCreate(_In):
    """The MSET (or LMAPS) group's review of one agenda item: the level and the plan."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [mset_review_example()]},
    )

    kind: Literal["mset_review"]
    level: RiskLevel
    rationale: FreeText | None = Field(
        default=None, description="Required when the level differs from the current level."
    )
    actions: list[ActionCreate] = Field(default_factory=list, max_length=50)
    raise_lmaps: LmapsReferralCreate | None = Field(
        default=None, description="Refer the case to an extraordinary LMAPS meeting."
    )


DecisionCreate = Annotated[PreMsetDecisionCreate | MsetReviewCreate, Field(discriminator="kind")]


# --- schedules and reports -----------------------------------------------------------------


class ScheduleTriggered(_Out):
    schedule_id: str
    local_authority: str
    kind: MeetingKind
    triggered_at: datetime


class ScheduleInfo(_Out):
    schedule_id: str
    local_authority: str
    kind: MeetingKind
    paused: bool
    next_runs: list[datetime]


class SchedulePage(_Out):
    schedules: list[ScheduleInfo]


class AgencyAttendance(_Out):
    agency_name: str
    attended: int
    sent_apologies: int
    meetings: int = Field(description="Meetings held in the period (the denominator).")
    attendance_rate: float


class AttendanceReport(_Out):
    local_authority: str
    since: datetime
    until: datetime
    meetings: int
    agencies: list[AgencyAttendance]
