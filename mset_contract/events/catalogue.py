"""The event catalogue: every fact MSET Flow publishes to Kafka, as versioned pydantic models
(``docs/architecture.md``, "Kafka carries facts, not files";
``docs/decisions/0002-no-personal-data-in-history-events-or-search-attributes.md``).

An event says *that* something happened to a case, with ids, codes, levels and times. It never
carries a child's name, date of birth, address or any free text: those stay in the owning
service's database, behind its API. ``tests/unit/test_events.py`` walks every model here and
fails on a field that could hold them, so a new event with a free-text field cannot land.

How an event travels (CloudEvents over Kafka, and as a webhook body) is ``codec.py``; one valid
instance of each is ``examples.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
)

from mset_contract.triage import AgencyDesignation, EscalationKind, PreMsetRecommendation, Urgency
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    ExitReason,
    MeetingKind,
    PreMsetOutcome,
    RhiOutcome,
    RiskLevel,
    Role,
    Stage,
)

# --- names -------------------------------------------------------------------------------

# The publish activity (NOTIFICATIONS_PUBLISH_ACTIVITY in mset_contract/temporal.py) runs on
# NOTIFICATIONS_TASK_QUEUE. Suggested activity options for callers: the activity fails fast
# when the broker does not acknowledge (bounded producer timeouts) and Temporal retries it
# until it does, so an outage delays events and never loses them. No maximum attempts: the
# event must get out.
# A worker that dies holding a batch stops heartbeating: the batch is retried within the
# heartbeat timeout, not after the whole start-to-close (the producer's own bounds, 20 s).
PUBLISH_START_TO_CLOSE = timedelta(seconds=30)
PUBLISH_HEARTBEAT_TIMEOUT = timedelta(seconds=5)
PUBLISH_RETRY_MAX_INTERVAL = timedelta(seconds=30)

SOURCE_REFERRAL_WORKFLOW = "/mset/workflows/referral"
SOURCE_MISSING_WORKFLOW = "/mset/workflows/missing-episode"
SOURCE_MEETING = "/mset/services/meeting"
SOURCE_NOTIFICATIONS = "/mset/services/notifications"

# ``ce_dataschema``: the model (and version) of an event's ``data``.
DATASCHEMA = "urn:mset:events:{type}:v{version}"


# A fixed namespace: the same workflow step gives the same event id on every machine.
EVENT_ID_NAMESPACE = uuid.UUID("6d1c3a52-93b4-5c0e-9e0f-6a2f0f4b8c11")


def event_id(workflow_id: str, step: str) -> uuid.UUID:
    """The id of the event a workflow step publishes: ``uuid5`` over ``workflow_id/step``.

    Deterministic, so a retried activity (or a replayed workflow) publishes the same id and
    every consumer drops the second copy. ``step`` must be unique within the workflow, e.g.
    ``"submitted"``, ``"triaged/1"``, ``"escalated/high_risk/1"``.
    """
    if not workflow_id or not step:
        raise ValueError("workflow_id and step must not be empty")
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{workflow_id}/{step}")


# --- constrained types: identifiers and codes, never prose -------------------------------

# A rule id from the triage rulesets, e.g. "score.significant.current", "escalation.high_risk".
RuleId = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")
]
RulesetVersion = Annotated[
    str, StringConstraints(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
# A system reference (a missing-episode or action ref): no spaces, so no sentences.
SystemRef = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
]
# An authority code or a canonical (lower-case) UUID: which agency an escalation means.
AgencyRef = Annotated[
    str,
    StringConstraints(
        min_length=2,
        max_length=40,
        pattern=r"^(?:[a-z][a-z0-9-]{1,39}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    ),
]
EventSource = Annotated[
    str, StringConstraints(min_length=6, max_length=64, pattern=r"^/mset/[a-z0-9][a-z0-9/_-]*$")
]

# The fields every event has, carried as CloudEvents attributes rather than in ``data``.
ENVELOPE_FIELDS = frozenset({"type", "version", "id", "source", "time", "subject"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MsetEvent(_Model):
    """Base of every event. ``subject`` is the case: the referral id the event is about."""

    type: str
    version: int
    id: uuid.UUID = Field(description="Deterministic per workflow step: see event_id().")
    source: EventSource
    time: AwareDatetime = Field(description="When it happened.")
    subject: uuid.UUID = Field(description="The case (referral) id; also the partition key.")
    referrer_agency_id: uuid.UUID = Field(
        description="The agency that submitted the referral: partner webhooks are filtered on it."
    )
    local_authority: LocalAuthorityCode

    @property
    def dataschema(self) -> str:
        return DATASCHEMA.format(type=self.type, version=self.version)

    def data(self) -> dict[str, Any]:
        """The event's own fields (everything but the envelope), as JSON-ready values."""
        return self.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))


# --- the catalogue -----------------------------------------------------------------------


class ReferralSubmitted(MsetEvent):
    """A partner submitted a Risk Assessment Tool and its workflow started."""

    type: Literal["mset.referral.submitted"] = "mset.referral.submitted"
    version: Literal[1] = 1
    referrer_level: RiskLevel
    agency_type: AgencyType
    catalogue_version: RulesetVersion


class ReferralTriaged(MsetEvent):
    """The rules evaluated the referral: the suggested level, and which rules said so."""

    type: Literal["mset.referral.triaged"] = "mset.referral.triaged"
    version: Literal[1] = 1
    ruleset_version: RulesetVersion
    score: int = Field(ge=0, le=100_000)
    band_level: RiskLevel
    suggested_level: RiskLevel
    level: RiskLevel
    recommendation: PreMsetRecommendation
    coordinator_review: bool
    fired_rules: list[RuleId] = Field(default_factory=list, max_length=300)
    escalations: list[EscalationKind] = Field(default_factory=list, max_length=20)


class EscalationTargetRef(_Model):
    """Whom to tell, as triage named them: a role (none: the case holder) at an agency
    designated by its part in the case. The notifications service resolves it to people."""

    role: Role | None = None
    agency: AgencyDesignation
    agency_ref: AgencyRef | None = Field(
        default=None,
        description="Which agency, where the designation needs it: an authority code "
        "(other_authority, rhi_provider) or an agency id (action_owner).",
    )


class ReferralEscalated(MsetEvent):
    """An escalation fired (or an urgent one went unacknowledged and went up the line).

    Carries rule ids, never the readable reason: that text stays with the triage result.
    """

    type: Literal["mset.referral.escalated"] = "mset.referral.escalated"
    version: Literal[1] = 1
    kind: EscalationKind
    urgency: Urgency
    notify: list[EscalationTargetRef] = Field(min_length=1, max_length=10)
    rule: RuleId
    ruleset_version: RulesetVersion
    fired_rules: list[RuleId] = Field(default_factory=list, max_length=300)
    level: RiskLevel | None = None
    about: SystemRef | None = Field(
        default=None, description="The missing episode or action it is about, where one."
    )
    due_at: AwareDatetime | None = Field(
        default=None, description="When the missed or coming obligation is or was due."
    )
    deadline: AwareDatetime | None = Field(
        default=None, description="By when the people told must have acted."
    )
    reescalation_of: uuid.UUID | None = Field(
        default=None, description="The inbox item left unacknowledged that this re-escalates."
    )
    line_step: int = Field(default=0, ge=0, le=10, description="0, then 1 per step up the line.")


class ReferralStageChanged(MsetEvent):
    """The case moved on in the MSET process."""

    type: Literal["mset.referral.stage_changed"] = "mset.referral.stage_changed"
    version: Literal[1] = 1
    stage: Stage
    previous_stage: Stage | None = None


class DecisionRecorded(MsetEvent):
    """A Pre-MSET, MSET or LMAPS meeting recorded a decision on the case."""

    type: Literal["mset.referral.decision_recorded"] = "mset.referral.decision_recorded"
    version: Literal[1] = 1
    decision_id: uuid.UUID
    meeting_id: uuid.UUID | None = None
    meeting_kind: MeetingKind
    pre_mset_outcome: PreMsetOutcome | None = None
    agreed_level: RiskLevel | None = None


class _ActionEvent(MsetEvent):
    action_id: uuid.UUID
    owner_agency_id: uuid.UUID
    due_at: AwareDatetime


class ActionAssigned(_ActionEvent):
    """A plan action was given to an owner agency with a due date."""

    type: Literal["mset.action.assigned"] = "mset.action.assigned"
    version: Literal[1] = 1
    aim: ActionAim
    target: ActionTarget


class ActionDueSoon(_ActionEvent):
    type: Literal["mset.action.due_soon"] = "mset.action.due_soon"
    version: Literal[1] = 1


class ActionOverdue(_ActionEvent):
    type: Literal["mset.action.overdue"] = "mset.action.overdue"
    version: Literal[1] = 1


class ActionCompleted(_ActionEvent):
    type: Literal["mset.action.completed"] = "mset.action.completed"
    version: Literal[1] = 1
    completed_at: AwareDatetime


class _EpisodeEvent(MsetEvent):
    episode_id: uuid.UUID


class MissingEpisodeReported(_EpisodeEvent):
    """Police reported the child missing."""

    type: Literal["mset.missing_episode.reported"] = "mset.missing_episode.reported"
    version: Literal[1] = 1
    reported_at: AwareDatetime


class MissingEpisodeReturned(_EpisodeEvent):
    """The child returned (or was found); the Return Home Interview clock starts."""

    type: Literal["mset.missing_episode.returned"] = "mset.missing_episode.returned"
    version: Literal[1] = 1
    returned_at: AwareDatetime
    rhi_due_at: AwareDatetime
    located_in_authority: LocalAuthorityCode | None = Field(
        default=None, description="The authority where the child was found, if another one."
    )


class RhiDeadlineBreached(_EpisodeEvent):
    """No Return Home Interview was offered within the deadline (72 hours by default)."""

    type: Literal["mset.missing_episode.rhi_deadline_breached"] = (
        "mset.missing_episode.rhi_deadline_breached"
    )
    version: Literal[1] = 1
    returned_at: AwareDatetime
    rhi_due_at: AwareDatetime


class ReturnHomeInterviewRecorded(_EpisodeEvent):
    type: Literal["mset.missing_episode.rhi_recorded"] = "mset.missing_episode.rhi_recorded"
    version: Literal[1] = 1
    outcome: RhiOutcome
    offered_at: AwareDatetime | None = None


class CaseExited(MsetEvent):
    """The child left MSET. The reason is a code; an "other" reason's text stays behind."""

    type: Literal["mset.case.exited"] = "mset.case.exited"
    version: Literal[1] = 1
    exit_reason: ExitReason
    exited_at: AwareDatetime


EVENT_MODELS: tuple[type[MsetEvent], ...] = (
    ReferralSubmitted,
    ReferralTriaged,
    ReferralEscalated,
    ReferralStageChanged,
    DecisionRecorded,
    ActionAssigned,
    ActionDueSoon,
    ActionOverdue,
    ActionCompleted,
    MissingEpisodeReported,
    MissingEpisodeReturned,
    RhiDeadlineBreached,
    ReturnHomeInterviewRecorded,
    CaseExited,
)


def _type_of(model: type[MsetEvent]) -> str:
    return str(model.model_fields["type"].default)


def _version_of(model: type[MsetEvent]) -> int:
    return int(model.model_fields["version"].default)


def _tag(type_: str, version: int) -> str:
    return f"{type_}/v{version}"


# (type, version) → model: how a consumer knows what to validate ``data`` against.
EVENTS_BY_KEY: dict[tuple[str, int], type[MsetEvent]] = {
    (_type_of(m), _version_of(m)): m for m in EVENT_MODELS
}
EVENT_TYPES: frozenset[str] = frozenset(t for t, _ in EVENTS_BY_KEY)


def _discriminate(value: Any) -> str | None:
    if isinstance(value, Mapping):
        t, v = value.get("type"), value.get("version", 1)
    else:
        t, v = getattr(value, "type", None), getattr(value, "version", None)
    return _tag(str(t), int(v)) if t is not None and isinstance(v, int) else None


# Every event of the catalogue, told apart by (type, version): the pydantic data converter
# rebuilds the right class from a Temporal payload, and a v2 can sit beside a v1.
AnyEvent = Annotated[
    Annotated[ReferralSubmitted, Tag(_tag(_type_of(ReferralSubmitted), 1))]
    | Annotated[ReferralTriaged, Tag(_tag(_type_of(ReferralTriaged), 1))]
    | Annotated[ReferralEscalated, Tag(_tag(_type_of(ReferralEscalated), 1))]
    | Annotated[ReferralStageChanged, Tag(_tag(_type_of(ReferralStageChanged), 1))]
    | Annotated[DecisionRecorded, Tag(_tag(_type_of(DecisionRecorded), 1))]
    | Annotated[ActionAssigned, Tag(_tag(_type_of(ActionAssigned), 1))]
    | Annotated[ActionDueSoon, Tag(_tag(_type_of(ActionDueSoon), 1))]
    | Annotated[ActionOverdue, Tag(_tag(_type_of(ActionOverdue), 1))]
    | Annotated[ActionCompleted, Tag(_tag(_type_of(ActionCompleted), 1))]
    | Annotated[MissingEpisodeReported, Tag(_tag(_type_of(MissingEpisodeReported), 1))]
    | Annotated[MissingEpisodeReturned, Tag(_tag(_type_of(MissingEpisodeReturned), 1))]
    | Annotated[RhiDeadlineBreached, Tag(_tag(_type_of(RhiDeadlineBreached), 1))]
    | Annotated[ReturnHomeInterviewRecorded, Tag(_tag(_type_of(ReturnHomeInterviewRecorded), 1))]
    | Annotated[CaseExited, Tag(_tag(_type_of(CaseExited), 1))],
    Discriminator(_discriminate),
]
_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(value: Mapping[str, Any]) -> MsetEvent:
    """Validate a plain dict (all fields, envelope included) into its event model."""
    return _ANY_EVENT.validate_python(value)


# --- the publish activity's input and result ---------------------------------------------


class PublishEvents(_Model):
    """Input of ``notifications.publish``: events to publish, in order (at most 100)."""

    events: list[AnyEvent] = Field(min_length=1, max_length=100)


class PublishedEvent(_Model):
    id: uuid.UUID
    type: str
    topic: str
    partition: int
    offset: int


class Published(_Model):
    """Result of ``notifications.publish``: where the broker (all in-sync replicas) stored
    each event."""

    events: list[PublishedEvent]
