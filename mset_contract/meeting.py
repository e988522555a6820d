"""Meetings: the meeting service's HTTP models, and the input and result of the workflow its
Temporal Schedules start.

Schema ladder (docs/architecture.md §3): ``MeetingCreate`` / ``AttendanceUpdate`` /
``DecisionCreate`` (the case's own decision request models, ``mset_contract.cases``) in;
``MeetingSummary``, ``MeetingPublic``, ``AgendaPublic``, ``ItemDecisionPublic`` out.

An agenda item describes a case by its referral id, codes, levels and dates, taken from the
case's workflow state: never the child's name, date of birth or address (the workflow does not
hold them). The panels' own words (rationales, action descriptions, progress notes, an LMAPS
referral's reason) are free text: the meeting service keeps them in its own database and
shows them only to the roles that may see them (``services/meeting/domain.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.paging import Page
from mset_contract.papers import PapersWho
from mset_contract.referral_workflow import MissingEpisodeSummary
from mset_contract.types import (
    MAX_AHEAD,
    Count,
    Flag,
    Instant,
    LocalAuthorityCode,
    SchemaRules,
    ShortText,
)
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    MeetingKind,
    PreMsetOutcome,
    RiskLevel,
    Stage,
)

# The activity heartbeats every second while it draws the agenda; silence this long means the
# worker died and the draw is retried elsewhere.
OPEN_MEETING_HEARTBEAT_TIMEOUT = timedelta(seconds=5)

# Kinds that meet monthly on a Temporal Schedule; LMAPS meetings are called when needed.
SCHEDULED_KINDS = (MeetingKind.pre_mset, MeetingKind.mset)


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
    carried_over = "carried_over"  # undecided when the last meeting of its kind closed


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


class RecordedVia(StrEnum):
    """Which API the chair recorded a meeting's decision through (both reach the meeting's
    record: the referral API's decisions with a ``meeting_id`` are passed to the meeting)."""

    meeting_api = "meeting_api"
    referral_api = "referral_api"


# The furthest ahead a meeting may be held: a meeting is called for the weeks ahead, and a
# date years away is a typing error (2199 for 2026), refused naming ``held_at``.
MAX_NOTICE = MAX_AHEAD


def check_not_far_ahead(v: datetime, now: datetime | None = None) -> datetime:
    """A meeting is held within a year of being called."""
    if v > (now or datetime.now(UTC)) + MAX_NOTICE:
        raise ValueError(
            f"a meeting is held within {MAX_NOTICE.days} days of being called: check the year"
        )
    return v


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- the schedule's workflow and activity --------------------------------------------------


class MeetingCycleInput(_In):
    """Input of ``MeetingCycleWorkflow``, the action of a meeting schedule."""

    local_authority: LocalAuthorityCode
    kind: MeetingKind
    notice_days: Count = Field(
        default=7, ge=0, le=60, description="Days between calling the meeting and holding it."
    )
    held_at: Instant | None = Field(
        default=None,
        description="When the meeting is held, for one the coordinator calls now (the "
        "schedule's trigger); none for a schedule's own firing: ``notice_days`` after it.",
    )


class MeetingCycleResult(_Out):
    meeting_id: UUID
    items: int
    created: bool


class OpenMeetingInput(_In):
    """Activity ``meeting.open_meeting``: create the meeting and snapshot its agenda."""

    local_authority: LocalAuthorityCode
    kind: MeetingKind
    called_at: Instant
    held_at: Instant
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
    decision_id: str | None = Field(
        default=None,
        description="The id the case holds the decision under (the agenda item's id, or the "
        "id the chair gave through the referral API).",
    )
    recorded_via: RecordedVia = RecordedVia.meeting_api


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
    who: PapersWho | None = Field(
        default=None,
        description="Who the case is about (the partner's child reference, age, gender, "
        "legal status, area, the referring agency), as the case's panel papers say: read from "
        "the referral service each time the agenda is shown, never stored with the meeting. "
        "None only for a case the referral service does not hold.",
    )
    carried_over_at: datetime | None = Field(
        default=None, description="Undecided when the meeting closed: carried over then."
    )
    carried_to_meeting_id: UUID | None = Field(
        default=None,
        description="The meeting it was carried to; none while the next meeting of this kind "
        "and authority is not yet called (that meeting takes it when it is).",
    )
    withheld: list[str] = Field(
        default_factory=list,
        description="Fields left empty because your role may not see them.",
    )


class AgendaPublic(_Out, Page[AgendaItemPublic]):
    """The meeting and its agenda's items in agenda order, a page at a time."""

    meeting_id: UUID
    kind: MeetingKind
    local_authority: str
    status: MeetingStatus
    held_at: datetime
    built_at: datetime


# --- meetings and attendance ---------------------------------------------------------------


def meeting_create_example() -> dict[str, Any]:
    return {"kind": "lmaps", "local_authority": "northshire", "held_at": "2026-11-20T14:00:00Z"}


class MeetingCreate(_In):
    """Call an extraordinary LMAPS meeting (Pre-MSET and MSET meetings come from their
    schedules: trigger the schedule to call one now)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [meeting_create_example()]}
    )

    kind: MeetingKind = Field(
        # The one kind called this way (the validator below says why the others are not).
        json_schema_extra={"const": MeetingKind.lmaps.value}
    )
    local_authority: LocalAuthorityCode = Field(
        description="One of the partnership's authorities (configuration)."
    )
    held_at: Instant = Field(description="Within a year from now.")

    @field_validator("held_at")
    @classmethod
    def _held_soon(cls, v: datetime) -> datetime:
        return check_not_far_ahead(v)

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
        json_schema_extra={
            "examples": [attendance_example()["attendees"][0]],
            # The chair is present (``AttendanceUpdate._one_chair_present``).
            "if": {"properties": {"capacity": {"const": "chair"}}, "required": ["capacity"]},
            "then": {"properties": {"present": {"const": True}}},
        },
    )

    person_name: ShortText = Field(description="The professional attending (staff, not a child).")
    agency_name: ShortText
    agency_id: UUID | None = Field(
        default=None, description="When given, the minutes name this agency's actions."
    )
    capacity: Capacity = Capacity.member
    present: Flag = Field(default=True, description="False records apologies.")


class AttendanceUpdate(_In):
    """Who attended (or sent apologies), by agency and person; replaces the list."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [attendance_example()]},
    )

    attendees: list[Attendee] = Field(
        max_length=200,
        # One chair at most (``_one_chair_present``), as JSON Schema says it.
        json_schema_extra={
            "contains": {"properties": {"capacity": {"const": "chair"}}, "required": ["capacity"]},
            "minContains": 0,
            "maxContains": 1,
        },
    )

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
    carried_over: int = Field(
        default=0, description="Items undecided at closing, carried to the next meeting."
    )


class MeetingPublic(MeetingSummary):
    attendance: AttendancePublic


class MeetingPage(_Out, Page[MeetingSummary]):
    """Meetings, latest held first."""


class MeetingClose(_In):
    """Close the meeting (its own authority's coordinator or chair)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"carry_over": True}]}
    )

    carry_over: Flag = Field(
        default=False,
        description="Carry the undecided items over to the next meeting of this kind and "
        "authority (it takes them when it is called, or at once if it is called already). "
        "Required when any item is undecided: closing without it is refused (409).",
    )


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


# A panel's decision on an agenda item: the case's own request models, told apart by "kind",
# which the meeting API therefore needs (the referral API's routes name the decision).
DecisionCreate = Annotated[
    PreMsetDecisionRequest | MsetReviewRequest,
    Field(discriminator="kind"),
    SchemaRules(required=["kind"]),
]
# The same on the item's own route, where the meeting names the decision itself (its id and
# the agenda item's as the decision's): those fields are refused there unless null.
ItemDecisionCreate = Annotated[
    PreMsetDecisionRequest | MsetReviewRequest,
    Field(discriminator="kind"),
    SchemaRules(
        required=["kind"],
        properties={name: {"type": "null"} for name in ("meeting_id", "decision_id", "review_id")},
    ),
]


# --- schedules and reports -----------------------------------------------------------------


def schedule_trigger_example() -> dict[str, Any]:
    """Held tomorrow afternoon (an example must stay valid: a time long past is refused)."""
    today = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0)
    return {"held_at": (today + timedelta(days=1)).isoformat()}


class ScheduleTrigger(_In):
    """Call the schedule's meeting now, to be held when the coordinator says."""

    # Made when the schema is asked for, so a long-running API's example stays valid.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=lambda schema: schema.update(examples=[schedule_trigger_example()]),
    )

    held_at: Instant | None = Field(
        default=None,
        description="When the meeting is held; default: now (it meets today). From "
        "yesterday to a year ahead.",
    )

    @field_validator("held_at")
    @classmethod
    def _held_soon(cls, v: datetime | None) -> datetime | None:
        if v is not None and v < datetime.now(UTC) - timedelta(days=1):
            raise ValueError("a meeting called now cannot have been held before yesterday")
        return None if v is None else check_not_far_ahead(v)


class ScheduleTriggered(_Out):
    schedule_id: str
    local_authority: str
    kind: MeetingKind
    triggered_at: datetime
    held_at: datetime | None = Field(default=None, description="When the meeting it calls is held.")
    workflow_id: str | None = Field(
        default=None, description="The meeting cycle workflow that calls it (Temporal UI)."
    )


class ScheduleInfo(_Out):
    schedule_id: str
    local_authority: str
    kind: MeetingKind
    paused: bool
    next_runs: list[datetime]


class ScheduleList(_Out):
    """Every schedule: two per authority the partnership names (Pre-MSET and MSET), a list
    bounded by configuration, so answered whole rather than paged."""

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
