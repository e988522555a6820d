"""Inputs, results, updates, signals and queries of ``ReferralWorkflow`` and
``MissingEpisodeWorkflow``, and the record-keeping activities they call.

Workflow payloads carry ids, codes, levels and dates. The child's date of birth and the
tool's free text stay in the referral service's database (the rules get the month the child
turns 18, never a day); what the panels themselves write
(decision rationales, action descriptions, progress notes) does travel in updates, so it is
kept with the decision it explains. Search attributes carry no personal data at all.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from mset_contract.cases import (
    ActionProgressRequest,
    ExitRequest,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.referral import ResolvedIndicator
from mset_contract.triage import (
    ActionFact,
    Escalation,
    EscalationKind,
    MissingEpisodeFact,
    TriageInput,
    TriageResult,
)
from mset_contract.types import ActionId, FreeText, LocalAuthorityCode, month_of, today_uk
from mset_contract.vocab import (
    ActionAim,
    ActionDisposition,
    ActionTarget,
    AgencyType,
    ExitReason,
    ExploitationType,
    PreMsetOutcome,
    RhiOutcome,
    RiskLevel,
    Stage,
)

# The workflows' names, and those of the activities, updates, signals and queries, are in
# mset_contract/temporal.py.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


InputT = TypeVar("InputT", bound=BaseModel)


def update_input(model: type[InputT], request: BaseModel, **added: Any) -> InputT:
    """An update's input from its request model: every field as sent, plus what the service
    adds (who decided; the meeting's own ids). Fields the input leaves out of its payload
    (``exclude``) are not carried over."""
    fields = model.model_fields
    sent = {k: v for k, v in request if k in fields and not fields[k].exclude}
    return model.model_validate({**sent, **added})


# --- ReferralWorkflow --------------------------------------------------------------------


# Escalations whose dates derive from the child's date of birth (the 18th birthday): they carry
# no date outside the triage result, and a case publishes each once.
BIRTHDAY_KINDS = (EscalationKind.transition_to_adult_services,)


class SentEscalation(_Model):
    """An escalation a case has published: what it was about and when it fell due. Other
    services read these (the meeting service counts breaches from them)."""

    kind: EscalationKind
    subject: str | None = Field(default=None, description="Episode or action ref, where one.")
    due_at: datetime | None = Field(
        default=None,
        description="When the missed or coming obligation fell due; none for those dated from "
        "the child's birthday (the date would give away the date of birth).",
    )

    @classmethod
    def of(cls, e: Escalation) -> SentEscalation:
        if e.kind in BIRTHDAY_KINDS:
            return cls(kind=e.kind)
        return cls(kind=e.kind, subject=e.subject or None, due_at=e.due_at)

    @property
    def key(self) -> str:
        """One escalation is published once, however often the rules report it again. The
        key's format is in saved workflow state: it must not change."""
        due = self.due_at.isoformat() if self.due_at else ""
        return f"{self.kind.value}/{self.subject or ''}/{due}"

    @classmethod
    def from_key(cls, key: str) -> SentEscalation:
        """Only for a run carried over from a version that kept keys alone (see
        ``ReferralWorkflow.__init__``); nothing outside the workflow reads keys."""
        kind, _, rest = key.partition("/")
        subject, _, due = rest.rpartition("/")  # a subject may itself contain '/'
        return cls(
            kind=EscalationKind(kind),
            subject=subject or None,
            due_at=datetime.fromisoformat(due) if due else None,
        )


class StartReferralInput(_Model):
    referral_id: UUID
    agency_id: UUID
    local_authority: str
    submitted_at: datetime
    referrer_level: RiskLevel
    agency_type: AgencyType = AgencyType.other
    previous_referral_id: UUID | None = Field(
        default=None, description="A closed case this re-referral continues (its history)."
    )
    history_limit: int | None = Field(
        default=None, ge=100, description="Continue-as-new above this many history events."
    )
    # Set only by continue-as-new: the state the previous run handed over.
    carried: ReferralState | None = None


class StageChange(_Model):
    stage: Stage
    at: datetime
    by: UUID | None = None


class PreMsetDecisionRecord(_Model):
    decision_id: str
    outcome: PreMsetOutcome
    level: RiskLevel
    rationale: str | None
    decided_by: UUID
    meeting_id: UUID | None
    decided_at: datetime
    information_due_at: datetime | None = None
    # SHA-256 of each field of the decision as sent (``mset_platform.idempotency``): the same
    # decision_id sent again with another body is refused, naming the fields that differ.
    # None for a decision recorded before it was kept (such a retry gets the first answer).
    fingerprint: dict[str, str] | None = None


class ActionProgress(_Model):
    at: datetime
    by: UUID
    note: str
    completed: bool


class CaseAction(_Model):
    action_id: str
    owner_agency_id: UUID
    due_at: datetime
    aim: ActionAim
    target: ActionTarget
    description: str
    created_at: datetime
    review_id: str
    # The person or location aimed at (an entity's random id, never who or where it is).
    entity_id: UUID | None = None
    completed_at: datetime | None = None
    progress: list[ActionProgress] = Field(default_factory=list)
    # Set for an action still open when the case exited, as the exit said.
    disposition: ActionDisposition | None = None
    ended_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.completed_at is None and self.disposition is None


class MsetReviewRecord(_Model):
    review_id: str
    level: RiskLevel
    rationale: str | None
    decided_by: UUID
    meeting_id: UUID | None
    decided_at: datetime
    action_ids: list[str]
    # As on ``PreMsetDecisionRecord``: the review as sent, field by field, hashed.
    fingerprint: dict[str, str] | None = None


class ExitRecord(_Model):
    reason: ExitReason
    detail: str | None
    decided_by: UUID
    exited_at: datetime


class MissingEpisodeSummary(_Model):
    episode_id: UUID
    reported_at: datetime
    returned_at: datetime | None = None
    rhi_offered_at: datetime | None = None
    rhi_outcome: RhiOutcome | None = None
    located_in_authority: str | None = None


class TriageSummary(_Model):
    """What the case keeps of a triage result (the full result is in the activity's history
    event; keeping only this bounds the workflow's state)."""

    ruleset_version: str
    as_of: datetime
    score: int
    suggested_level: RiskLevel
    referrer_level: RiskLevel
    level: RiskLevel
    recommendation: str
    coordinator_review: bool
    fired_rules: list[str]

    @classmethod
    def of(cls, r: TriageResult) -> TriageSummary:
        return cls(
            ruleset_version=r.ruleset_version,
            as_of=r.as_of,
            score=r.score,
            suggested_level=r.suggested_level,
            referrer_level=r.referrer_level,
            level=r.level,
            recommendation=r.recommendation.value,
            coordinator_review=r.judgement.coordinator_review,
            fired_rules=[f.rule for f in r.fired],
        )


class ReferralState(_Model):
    referral_id: UUID
    agency_id: UUID
    local_authority: str
    stage: Stage
    submitted_at: datetime
    referrer_level: RiskLevel
    previous_referral_id: UUID | None = None
    assessment_id: UUID | None = Field(
        default=None, description="The referral row holding the latest Risk Assessment Tool."
    )
    last_assessed_at: datetime | None = None
    triage: TriageSummary | None = None
    level: RiskLevel | None = Field(default=None, description="The level agreed by a panel.")
    pre_mset: PreMsetDecisionRecord | None = None
    reviews: list[MsetReviewRecord] = Field(
        default_factory=list, description="The latest MSET reviews (bounded)."
    )
    reviews_total: int = 0
    actions: list[CaseAction] = Field(default_factory=list)
    missing_episodes: list[MissingEpisodeSummary] = Field(default_factory=list)
    escalations_sent: list[str] = Field(
        default_factory=list,
        description="The workflow's own keys of escalations already published (bounded), so "
        "each is published once. Opaque: other services read ``escalations``.",
    )
    escalations: list[SentEscalation] = Field(
        default_factory=list, description="The escalations already published (bounded)."
    )
    stages: list[StageChange] = Field(default_factory=list)
    next_review_due: datetime | None = None
    next_deadline: datetime | None = None
    exit: ExitRecord | None = None
    runs: int = Field(default=1, description="Runs of this workflow (continue-as-new count).")
    events_emitted: int = Field(
        default=0, description="Events published so far; numbers each event's id."
    )
    record_seq: int = Field(
        default=0,
        description="Records of this state written to the referral service's read model so "
        "far (``referral.record_stage``); numbers each record, so a later one wins.",
    )

    def read_model_snapshot(self) -> ReferralState:
        """What the read model keeps of this state: everything a status read shows, without
        the escalation keys (the workflow's own bookkeeping) and with the latest stage change
        only. A deep copy: the record is what the case held when it was made."""
        return self.model_copy(
            update={"escalations": [], "escalations_sent": [], "stages": self.stages[-1:]},
            deep=True,
        )


class PreMsetDecisionInput(PreMsetDecisionRequest):
    """Update ``record_pre_mset_decision``: the decision as requested, and who decided."""

    schema_rules = False  # the case's update validator checks them

    kind: Literal["pre_mset"] = Field(default="pre_mset", exclude=True)
    decided_by: UUID


class PreMsetDecisionResult(_Model):
    """Result of update ``record_pre_mset_decision`` (the event is ``DecisionRecorded``)."""

    decision_id: str
    stage: Stage
    level: RiskLevel


class MsetReviewInput(MsetReviewRequest):
    """Update ``record_mset_review``: the review as requested, and who decided."""

    schema_rules = False  # the case's update validator checks them

    kind: Literal["mset_review"] = Field(default="mset_review", exclude=True)
    # An LMAPS referral is the meeting service's record, with its free-text reason: it never
    # travels to the case.
    raise_lmaps: None = Field(default=None, exclude=True)
    decided_by: UUID


class MsetReviewRecorded(_Model):
    review_id: str
    stage: Stage
    level: RiskLevel
    action_ids: list[str]
    next_review_due: datetime


class ActionProgressInput(ActionProgressRequest):
    """Update ``record_action_progress``: the progress as requested, on which action, by whom."""

    action_id: ActionId
    by: UUID = Field(
        description="The member of staff who reported it; the owning agency's id when its "
        "system reported it with its API key."
    )


class ActionProgressRecorded(_Model):
    action_id: str
    completed: bool
    open_actions: int


class ExitCaseInput(ExitRequest):
    """Update ``exit_case``: the exit as requested, and who decided."""

    schema_rules = False  # the case's update validator checks them

    decided_by: UUID


class ExitResult(_Model):
    """Result of update ``exit_case`` (the event is ``CaseExited``)."""

    stage: Stage
    reason: ExitReason
    exited_at: datetime


class ReassessedSignal(_Model):
    """A new Risk Assessment Tool for the child of this open case."""

    assessment_id: UUID
    assessed_at: datetime
    referrer_level: RiskLevel


class MissingEpisodeSignal(_Model):
    """A missing episode's facts, sent by its MissingEpisodeWorkflow on each change."""

    episode: MissingEpisodeSummary


# --- record keeping activities -------------------------------------------------------------


class TriageFactsInput(_Model):
    assessment_id: UUID
    as_of: datetime


class _Turns18(_Model):
    """The month a child turns 18 and the age that follows from it, instead of the date of
    birth (``mset_contract.types.age_in_month``)."""

    age_years: int
    turns_18_month: date | None = Field(
        default=None, description="The first day of the month the child turns 18."
    )
    days_until_18: int | None = Field(
        default=None,
        exclude=True,  # read from old history, never written
        description="Only in facts recorded before the month replaced it (a count of days "
        "beside the evaluation's moment gave the date of birth away); never written now.",
    )

    @model_validator(mode="after")
    def _one_of_them(self) -> Self:
        if self.turns_18_month is None and self.days_until_18 is None:
            raise ValueError("turns_18_month is required")
        return self

    def turns_18(self, as_of: datetime) -> date:
        """The month the child turns 18, also from facts recorded with a count of days."""
        if self.turns_18_month is not None:
            return self.turns_18_month
        assert self.days_until_18 is not None
        return month_of(today_uk(as_of) + timedelta(days=self.days_until_18))


class TriageFacts(_Turns18):
    """What the tool tells the rules, with no personal data: the month the child turns 18
    instead of the date of birth, indicator codes instead of free text."""

    local_authority: LocalAuthorityCode
    catalogue_version: str
    referrer_level: RiskLevel
    referrer_rationale_given: bool
    indicators: list[ResolvedIndicator]
    exploitation_types: list[ExploitationType]
    assessed_at: datetime


def triage_input(
    facts: TriageFacts,
    state: ReferralState,
    as_of: datetime,
    ruleset_version: str | None = None,
) -> TriageInput:
    """What the rules are given for a case: the tool's facts and the missing episodes and
    actions the case holds. The workflow builds it at each triage; the panel papers build a
    past triage's again, from the case as it was then (``case_as_it_was``), to show why it
    came out as it did."""
    return TriageInput(
        ruleset_version=ruleset_version,
        as_of=as_of,
        catalogue_version=facts.catalogue_version,
        local_authority=facts.local_authority,
        age_years=facts.age_years,
        turns_18_month=facts.turns_18(as_of),
        referrer_level=facts.referrer_level,
        referrer_rationale_given=facts.referrer_rationale_given,
        indicators=facts.indicators,
        exploitation_types=facts.exploitation_types,
        missing_episodes=[
            MissingEpisodeFact(
                episode_ref=str(e.episode_id),
                reported_at=e.reported_at,
                returned_at=e.returned_at,
                rhi_offered_at=e.rhi_offered_at,
                located_in_authority=e.located_in_authority,
            )
            for e in state.missing_episodes
        ],
        actions=[
            ActionFact(
                action_ref=a.action_id,
                owner_agency_id=a.owner_agency_id,
                due_at=a.due_at,
                completed=not a.open,
            )
            for a in state.actions
        ],
        last_assessed_at=facts.assessed_at,
    )


def case_as_it_was(state: ReferralState, at: datetime) -> ReferralState:
    """The case's episodes and actions as they stood at ``at``: those recorded later left
    out, and what happened to the others later (a return, an RHI offer, a completion, an
    exit's disposition) not yet happened."""
    episodes = [
        e.model_copy(
            update={
                "returned_at": e.returned_at if e.returned_at and e.returned_at <= at else None,
                "rhi_offered_at": (
                    e.rhi_offered_at if e.rhi_offered_at and e.rhi_offered_at <= at else None
                ),
            }
        )
        for e in state.missing_episodes
        if e.reported_at <= at
    ]
    actions = [
        a.model_copy(
            update={
                "completed_at": a.completed_at if a.completed_at and a.completed_at <= at else None,
                "disposition": a.disposition if a.ended_at and a.ended_at <= at else None,
            }
        )
        for a in state.actions
        if a.created_at <= at
    ]
    return state.model_copy(update={"missing_episodes": episodes, "actions": actions})


class RecordStageInput(_Model):
    """Activity ``referral.record_stage``: keep the referral service's read model current.

    ``state`` and ``seq`` are sent by workflows since status reads came from the read model
    (docs/decisions/0022); a record without them (an older workflow's retry) updates the
    columns only, by time."""

    referral_id: UUID
    stage: Stage
    level: RiskLevel | None = None
    suggested_level: RiskLevel | None = None
    next_deadline: datetime | None = None
    open_actions: int = 0
    exit_reason: ExitReason | None = None
    at: datetime
    seq: int | None = Field(
        default=None,
        description="The state's ``record_seq``: a record older than the one kept is not written.",
    )
    state: ReferralState | None = Field(
        default=None, description="The case as status reads show it (``read_model_snapshot``)."
    )


class RecordStageResult(_Model):
    updated: bool


class RecordAuthorityToldInput(_Model):
    """Activity ``referral.record_authority_told``: the case has sent an escalation telling
    another authority about it (the child was found there while missing), so the staff who
    serve that authority may see the case from now on (docs/access.md)."""

    case_id: UUID
    local_authority: LocalAuthorityCode
    reason: EscalationKind
    subject: str | None = Field(default=None, description="Episode ref, where one.")
    at: datetime


class RecordAuthorityToldResult(_Model):
    recorded: bool


# --- MissingEpisodeWorkflow ----------------------------------------------------------------


class EpisodeStatus(StrEnum):
    missing = "missing"
    returned = "returned"
    closed = "closed"


class EpisodeFactsInput(_Model):
    episode_id: UUID
    as_of: datetime


class EpisodeFacts(_Turns18):
    """What the rules need about a missing child, without personal data: the month it turns
    18, and its other recent episodes (report times only) for the repeat-missing rule."""

    local_authority: LocalAuthorityCode
    other_episodes: list[MissingEpisodeSummary] = Field(default_factory=list)


class OpenForConsiderationInput(_Model):
    episode_id: UUID
    at: datetime


class OpenedForConsideration(_Model):
    """A referral the referral service opened from missing episodes, and how to start it."""

    start: StartReferralInput
    workflow_id: str


class ReturnRecorded(_Model):
    status: EpisodeStatus
    rhi_due_at: datetime


class RhiRecorded(_Model):
    status: EpisodeStatus
    outcome: RhiOutcome


class StartMissingEpisodeInput(_Model):
    episode_id: UUID
    reporting_agency_id: UUID
    local_authority: LocalAuthorityCode
    reported_at: datetime
    case_referral_id: UUID | None = Field(
        default=None, description="The child's open case, when there is one."
    )


class ReturnInput(_Model):
    returned_at: AwareDatetime
    located_in_authority: LocalAuthorityCode | None = None


class RhiOutcomeInput(_Model):
    outcome: RhiOutcome
    offered_at: AwareDatetime | None = Field(
        default=None, description="When the interview was offered (not for 'not_offered')."
    )
    reason_not_offered: FreeText | None = Field(
        default=None, description="Required when the outcome is 'not_offered'."
    )
    by: UUID


class MissingEpisodeState(_Model):
    episode_id: UUID
    status: EpisodeStatus
    local_authority: str
    reported_at: datetime
    case_referral_id: UUID | None
    returned_at: datetime | None = None
    located_in_authority: str | None = None
    rhi_due_at: datetime | None = None
    rhi_offered_at: datetime | None = None
    rhi_outcome: RhiOutcome | None = None
    rhi_deadline_breached: bool = False
    reporting_agency_id: UUID
    escalations_sent: list[str] = Field(default_factory=list)
    events_emitted: int = 0


class RecordEpisodeInput(_Model):
    """Activity ``referral.record_episode``: what the reports count of a missing episode, as
    its workflow holds it (at the return, and when the interview's outcome ends it). Dates
    and codes only: the reason an interview was not offered (free text) is not sent."""

    episode_id: UUID
    status: EpisodeStatus
    returned_at: datetime | None = None
    located_in_authority: str | None = None
    rhi_due_at: datetime | None = None
    rhi_offered_at: datetime | None = None
    rhi_outcome: RhiOutcome | None = None
    rhi_deadline_breached: bool = False
    at: datetime


class RecordEpisodeResult(_Model):
    updated: bool


def escalation_key(e: Escalation) -> str:
    """One escalation is published once, however often the rules report it again."""
    return SentEscalation.of(e).key


StartReferralInput.model_rebuild()
