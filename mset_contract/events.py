"""The event catalogue: every fact MSET Flow publishes to Kafka, as versioned pydantic models,
and how each one travels as a CloudEvent (DESIGN.md §2, "Kafka carries facts, not files").

An event says *that* something happened to a case, with ids, codes, levels and times. It never
carries a child's name, date of birth, address or any free text: those stay in the owning
service's database, behind its API. ``tests/unit/test_events.py`` walks every model here and
fails on a field that could hold them, so a new event with a free-text field cannot land.

Wire format (CloudEvents 1.0, Kafka protocol binding, *binary* content mode):

=================  =========================================================================
Kafka              CloudEvents
=================  =========================================================================
key                ``partitionkey`` extension = the case (referral) id: one case, one
                   partition, so a case's events are read in the order they were written
``ce_id``          ``id``: deterministic per workflow step (:func:`event_id`), so a retried
                   activity re-sends the *same* event and consumers drop the copy
``ce_type``        ``type``, past tense: ``mset.referral.escalated``
``ce_source``      ``source``: who says so, e.g. ``/mset/workflows/referral``
``ce_subject``     ``subject``: the case id
``ce_time``        ``time``: when it happened (RFC 3339, UTC)
``ce_dataschema``  ``urn:mset:events:<type>:v<version>``: the model (and version) of ``data``
``content-type``   ``application/json``
value              ``data``: the event's own fields as JSON (everything but the envelope)
=================  =========================================================================

Webhook deliveries carry the same event in CloudEvents *structured* mode
(``application/cloudevents+json``): one JSON document with the attributes and ``data``.

Topics: every event goes to :data:`EVENTS_TOPIC` (one topic, keyed by case, so per-case
order holds across event types); consumers read it in their own groups and skip the types
they do not handle. What a consumer cannot validate goes to :data:`DEAD_LETTER_TOPIC`
with the reason in the ``mset_dlq_reason`` header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
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

EVENTS_TOPIC = "mset.events"
DEAD_LETTER_TOPIC = "mset.events.dlq"

# Activity hosted by the notifications worker on NOTIFICATIONS_TASK_QUEUE.
NOTIFICATIONS_PUBLISH_ACTIVITY = "notifications.publish"
# Suggested activity options for callers: the activity fails fast when the broker does not
# acknowledge (bounded producer timeouts) and Temporal retries it until it does, so an
# outage delays events and never loses them. No maximum attempts: the event must get out.
PUBLISH_START_TO_CLOSE = timedelta(seconds=60)
PUBLISH_RETRY_MAX_INTERVAL = timedelta(seconds=30)

SOURCE_REFERRAL_WORKFLOW = "/mset/workflows/referral"
SOURCE_MISSING_WORKFLOW = "/mset/workflows/missing-episode"
SOURCE_MEETING = "/mset/services/meeting"
SOURCE_NOTIFICATIONS = "/mset/services/notifications"

# Kafka header names on dead-lettered messages (the original headers are kept beside them).
DLQ_REASON_HEADER = "mset_dlq_reason"
DLQ_CONSUMER_HEADER = "mset_dlq_consumer"
DLQ_ORIGIN_HEADER = "mset_dlq_origin"  # "<topic>/<partition>/<offset>"

CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
_DATASCHEMA = "urn:mset:events:{type}:v{version}"
_DATASCHEMA_RE = re.compile(r"^urn:mset:events:(?P<type>[a-z0-9_.]+):v(?P<version>[0-9]{1,3})$")

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
        return _DATASCHEMA.format(type=self.type, version=self.version)

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


# --- CloudEvents mapping -----------------------------------------------------------------


class EventRejected(Exception):
    """A message that is not a valid MSET event. ``reason`` names what is wrong without
    repeating the offending values (they could be anything, personal data included)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_cloudevent(event: MsetEvent) -> CloudEvent:
    return CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": str(event.id),
            "type": event.type,
            "source": event.source,
            "subject": str(event.subject),
            "time": event.time,
            "datacontenttype": CONTENT_TYPE,
            "dataschema": event.dataschema,
            ce_kafka.PARTITIONKEY_ATTR: str(event.subject),
        },
        data=event.data(),
    )


@dataclass(frozen=True)
class KafkaRecord:
    """What a producer sends: kafka-python takes headers as a list of (name, bytes)."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


def to_kafka(event: MsetEvent) -> KafkaRecord:
    """The event as a Kafka record in CloudEvents binary mode; key = the case id."""
    msg = ce_kafka.to_binary(to_cloudevent(event), JSONFormat())
    return KafkaRecord(
        key=str(event.subject).encode("utf-8"), value=msg.value, headers=list(msg.headers.items())
    )


def to_structured_json(event: MsetEvent) -> bytes:
    """The event as one CloudEvents JSON document (webhook bodies)."""
    return JSONFormat().write(to_cloudevent(event))


def _validation_reason(exc: ValidationError) -> str:
    # Locations and error types only: pydantic's messages quote the input value.
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['type']}"
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    more = f" (+{len(parts) - 5} more)" if len(parts) > 5 else ""
    return "data does not match the schema: " + "; ".join(parts[:5]) + more


def _event_from_attributes(attrs: Mapping[str, Any], data: Any) -> MsetEvent:
    schema = attrs.get("dataschema")
    match = _DATASCHEMA_RE.match(schema) if isinstance(schema, str) else None
    if match is None:
        raise EventRejected("missing or unrecognised dataschema (want urn:mset:events:<type>:vN)")
    type_, version = match["type"], int(match["version"])
    if attrs.get("type") != type_:
        raise EventRejected("type and dataschema disagree")
    model = EVENTS_BY_KEY.get((type_, version))
    if model is None:
        known = "known" if type_ in EVENT_TYPES else "unknown"
        raise EventRejected(f"no model for event type {type_} v{version} ({known} type)")
    if not isinstance(data, dict):
        raise EventRejected("data is not a JSON object")
    envelope = {k: attrs.get(k) for k in ("id", "source", "time", "subject")}
    clash = ENVELOPE_FIELDS & data.keys()
    if clash:
        raise EventRejected(f"data repeats envelope attributes: {', '.join(sorted(clash))}")
    try:
        return model.model_validate({**data, **envelope, "type": type_, "version": version})
    except ValidationError as exc:
        raise EventRejected(_validation_reason(exc)) from None


def from_kafka(
    headers: Iterable[tuple[str, bytes | None]] | None, key: bytes | None, value: bytes | None
) -> MsetEvent:
    """Validate a Kafka record into its event model, or raise :class:`EventRejected`."""
    hdrs: dict[str, bytes] = {}
    for name, raw in headers or ():
        if not isinstance(name, str) or not isinstance(raw, bytes):
            raise EventRejected("a header without a value")
        if name.lower() in hdrs:
            raise EventRejected(f"header {name.lower()} appears more than once")
        hdrs[name.lower()] = raw
    if not any(h.startswith(ce_kafka.CE_PREFIX) for h in hdrs):
        raise EventRejected("not a CloudEvent: no ce_ headers (binary content mode expected)")
    if key is None:
        raise EventRejected("no message key (the case id)")
    try:
        ce = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=hdrs, key=key, value=value or b""),
            JSONFormat(),
            CloudEvent,
        )
    except Exception as exc:  # bad UTF-8, a bad time, the SDK's own validation errors
        raise EventRejected(f"invalid CloudEvents attributes ({type(exc).__name__})") from None
    attrs = ce.get_attributes()
    if attrs.get("specversion") != "1.0":
        raise EventRejected("specversion must be 1.0")
    if attrs.get("datacontenttype") != CONTENT_TYPE:
        raise EventRejected(f"content-type must be {CONTENT_TYPE}")
    event = _event_from_attributes(attrs, ce.get_data())
    if attrs.get(ce_kafka.PARTITIONKEY_ATTR) != str(event.subject):
        raise EventRejected("the message key is not the event's subject (case id)")
    return event


def from_structured_json(body: bytes) -> MsetEvent:
    """Validate a CloudEvents JSON document (a webhook body) into its event model."""
    try:
        ce = JSONFormat().read(CloudEvent, body)
    except Exception as exc:  # malformed JSON or attributes
        raise EventRejected(f"not a CloudEvents JSON document ({type(exc).__name__})") from None
    attrs = ce.get_attributes()
    attrs.pop(ce_kafka.PARTITIONKEY_ATTR, None)
    return _event_from_attributes(attrs, ce.get_data())


def example_events(
    case_id: uuid.UUID | None = None,
    agency_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> list[MsetEvent]:
    """One valid instance of every event type (documentation, tests, the bench)."""
    from datetime import UTC

    case = case_id or uuid.uuid4()
    agency = agency_id or uuid.uuid4()
    now = at or datetime.now(UTC)
    wf = f"referral-{case}"
    common: dict[str, Any] = {
        "source": SOURCE_REFERRAL_WORKFLOW,
        "time": now,
        "subject": case,
        "referrer_agency_id": agency,
        "local_authority": "northshire",
    }
    action, episode, owner = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    due = now + timedelta(days=14)
    returned = now - timedelta(hours=80)
    return [
        ReferralSubmitted(
            id=event_id(wf, "submitted"),
            referrer_level=RiskLevel.high,
            agency_type=AgencyType.childrens_social_care,
            catalogue_version="1",
            **common,
        ),
        ReferralTriaged(
            id=event_id(wf, "triaged/1"),
            ruleset_version="1",
            score=17,
            band_level=RiskLevel.high,
            suggested_level=RiskLevel.high,
            level=RiskLevel.high,
            recommendation=PreMsetRecommendation.consider_at_pre_mset,
            coordinator_review=False,
            fired_rules=["score.significant.current", "band.high", "escalation.high_risk"],
            escalations=[EscalationKind.high_risk],
            **common,
        ),
        high_risk_escalation(case, agency, "northshire", now, ruleset_version="1"),
        ReferralStageChanged(
            id=event_id(wf, "stage/awaiting_pre_mset"),
            stage=Stage.awaiting_pre_mset,
            previous_stage=Stage.triaged,
            **common,
        ),
        DecisionRecorded(
            id=event_id(wf, "decision/1"),
            decision_id=uuid.uuid4(),
            meeting_id=uuid.uuid4(),
            meeting_kind=MeetingKind.pre_mset,
            pre_mset_outcome=PreMsetOutcome.meets_criteria,
            agreed_level=RiskLevel.high,
            **common,
        ),
        ActionAssigned(
            id=event_id(wf, f"action/{action}/assigned"),
            action_id=action,
            owner_agency_id=owner,
            due_at=due,
            aim=ActionAim.reduce,
            target=ActionTarget.perpetrator,
            **common,
        ),
        ActionDueSoon(
            id=event_id(wf, f"action/{action}/due_soon"),
            action_id=action,
            owner_agency_id=owner,
            due_at=due,
            **common,
        ),
        ActionOverdue(
            id=event_id(wf, f"action/{action}/overdue"),
            action_id=action,
            owner_agency_id=owner,
            due_at=due,
            **common,
        ),
        ActionCompleted(
            id=event_id(wf, f"action/{action}/completed"),
            action_id=action,
            owner_agency_id=owner,
            due_at=due,
            completed_at=now,
            **common,
        ),
        MissingEpisodeReported(
            id=event_id(wf, f"missing/{episode}/reported"),
            episode_id=episode,
            reported_at=returned - timedelta(hours=20),
            **common,
        ),
        MissingEpisodeReturned(
            id=event_id(wf, f"missing/{episode}/returned"),
            episode_id=episode,
            returned_at=returned,
            rhi_due_at=returned + timedelta(hours=72),
            located_in_authority="eastmoor",
            **common,
        ),
        RhiDeadlineBreached(
            id=event_id(wf, f"missing/{episode}/rhi_breached"),
            episode_id=episode,
            returned_at=returned,
            rhi_due_at=returned + timedelta(hours=72),
            **common,
        ),
        ReturnHomeInterviewRecorded(
            id=event_id(wf, f"missing/{episode}/rhi_recorded"),
            episode_id=episode,
            outcome=RhiOutcome.refused_by_young_person,
            offered_at=returned + timedelta(hours=30),
            **common,
        ),
        CaseExited(
            id=event_id(wf, "exited"),
            exit_reason=ExitReason.sufficiently_safe,
            exited_at=now,
            **common,
        ),
    ]


def high_risk_escalation(
    case_id: uuid.UUID,
    referrer_agency_id: uuid.UUID,
    local_authority: str,
    at: datetime,
    ruleset_version: str = "1",
    respond_within: timedelta = timedelta(hours=4),
) -> ReferralEscalated:
    """The escalation a high-risk triage produces with the shipped ruleset (v1): the
    referring agency's manager and the authority's MSET chair, at once."""
    return ReferralEscalated(
        id=event_id(f"referral-{case_id}", "escalated/high_risk/1"),
        source=SOURCE_REFERRAL_WORKFLOW,
        time=at,
        subject=case_id,
        referrer_agency_id=referrer_agency_id,
        local_authority=local_authority,
        kind=EscalationKind.high_risk,
        urgency=Urgency.immediate,
        notify=[
            EscalationTargetRef(role=Role.manager, agency=AgencyDesignation.referring_agency),
            EscalationTargetRef(role=Role.chair, agency=AgencyDesignation.local_authority),
        ],
        rule="escalation.high_risk",
        ruleset_version=ruleset_version,
        fired_rules=["band.high", "suggest.high", "escalation.high_risk"],
        level=RiskLevel.high,
        deadline=at + respond_within,
    )
