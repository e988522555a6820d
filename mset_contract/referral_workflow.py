"""Inputs, results, updates, signals and queries of ``ReferralWorkflow`` and
``MissingEpisodeWorkflow``, and the record-keeping activities they call.

Workflow payloads carry ids, codes, levels and dates. The child's date of birth and the
tool's free text stay in the referral service's database; what the panels themselves write
(decision rationales, action descriptions, progress notes) does travel in updates, so it is
kept with the decision it explains. Search attributes carry no personal data at all.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from mset_contract.referral import ResolvedIndicator
from mset_contract.triage import Escalation, EscalationKind, TriageResult
from mset_contract.types import FreeText, LocalAuthorityCode
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    ExitReason,
    ExploitationType,
    PreMsetOutcome,
    RhiOutcome,
    RiskLevel,
    Stage,
)

REFERRAL_WORKFLOW = "ReferralWorkflow"
MISSING_EPISODE_WORKFLOW = "MissingEpisodeWorkflow"

# Update, signal and query names (meeting and referral services send these by name).
UPDATE_PRE_MSET_DECISION = "record_pre_mset_decision"
UPDATE_MSET_REVIEW = "record_mset_review"
UPDATE_ACTION_PROGRESS = "record_action_progress"
UPDATE_EXIT = "exit_case"
SIGNAL_REASSESSED = "reassessed"
SIGNAL_MISSING_EPISODE = "missing_episode"
QUERY_STATE = "state"

# Record-keeping activities on the referral service's task queue.
REFERRAL_TRIAGE_FACTS_ACTIVITY = "referral.triage_facts"

ActionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- ReferralWorkflow --------------------------------------------------------------------


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
    completed_at: datetime | None = None
    progress: list[ActionProgress] = Field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.completed_at is None


class MsetReviewRecord(_Model):
    review_id: str
    level: RiskLevel
    rationale: str | None
    decided_by: UUID
    meeting_id: UUID | None
    decided_at: datetime
    action_ids: list[str]


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
        default_factory=list, description="Keys of escalations already published (bounded)."
    )
    stages: list[StageChange] = Field(default_factory=list)
    next_review_due: datetime | None = None
    next_deadline: datetime | None = None
    exit: ExitRecord | None = None
    runs: int = Field(default=1, description="Runs of this workflow (continue-as-new count).")
    events_emitted: int = Field(
        default=0, description="Events published so far; numbers each event's id."
    )


class PreMsetDecisionInput(_Model):
    """The Pre-MSET panel's decision on a referral (update ``record_pre_mset_decision``)."""

    outcome: PreMsetOutcome
    level: RiskLevel = Field(description="The level the panel agrees.")
    rationale: FreeText | None = Field(
        default=None,
        description="Required for 'not_met' and for a level below the suggested level.",
    )
    decided_by: UUID
    meeting_id: UUID | None = None
    information_due_days: int = Field(
        default=14, ge=1, le=90, description="For 'more_information': days the referrer has."
    )
    decision_id: str | None = Field(
        default=None,
        max_length=64,
        description="The caller's id for this decision; the same id twice is one decision.",
    )


class DecisionRecorded(_Model):
    decision_id: str
    stage: Stage
    level: RiskLevel


class NewAction(_Model):
    owner_agency_id: UUID
    due_at: AwareDatetime
    aim: ActionAim
    target: ActionTarget
    description: FreeText


class MsetReviewInput(_Model):
    """The MSET group's review (update ``record_mset_review``): the level and the plan."""

    level: RiskLevel
    rationale: FreeText | None = Field(
        default=None, description="Required when the level differs from the current level."
    )
    actions: list[NewAction] = Field(default_factory=list, max_length=50)
    decided_by: UUID
    meeting_id: UUID | None = None
    review_id: str | None = Field(default=None, max_length=64)


class MsetReviewRecorded(_Model):
    review_id: str
    stage: Stage
    level: RiskLevel
    action_ids: list[str]
    next_review_due: datetime


class ActionProgressInput(_Model):
    action_id: ActionId
    note: FreeText
    completed: bool = False
    by: UUID


class ActionProgressRecorded(_Model):
    action_id: str
    completed: bool
    open_actions: int


class ExitCaseInput(_Model):
    reason: ExitReason
    detail: FreeText | None = Field(default=None, description="Required when reason is 'other'.")
    decided_by: UUID


class CaseExited(_Model):
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


class TriageFacts(_Model):
    """What the tool tells the rules, with no personal data: age instead of date of birth,
    indicator codes instead of free text."""

    local_authority: LocalAuthorityCode
    catalogue_version: str
    age_years: int
    days_until_18: int
    referrer_level: RiskLevel
    referrer_rationale_given: bool
    indicators: list[ResolvedIndicator]
    exploitation_types: list[ExploitationType]
    assessed_at: datetime


class RecordStageInput(_Model):
    """Activity ``referral.record_stage``: keep the referral service's read model current."""

    referral_id: UUID
    stage: Stage
    level: RiskLevel | None = None
    suggested_level: RiskLevel | None = None
    next_deadline: datetime | None = None
    open_actions: int = 0
    at: datetime


class RecordStageResult(_Model):
    updated: bool


# --- MissingEpisodeWorkflow ----------------------------------------------------------------


class EpisodeStatus(StrEnum):
    missing = "missing"
    returned = "returned"
    closed = "closed"


UPDATE_RECORD_RETURN = "record_return"
UPDATE_RECORD_RHI = "record_rhi_outcome"
REFERRAL_EPISODE_FACTS_ACTIVITY = "referral.episode_facts"


def missing_episode_workflow_id(episode_id: object) -> str:
    return f"missing-{episode_id}"


class EpisodeFactsInput(_Model):
    episode_id: UUID
    as_of: datetime


class EpisodeFacts(_Model):
    """What the rules need about a missing child, without personal data: age, and the
    child's other recent episodes (report times only) for the repeat-missing rule."""

    local_authority: LocalAuthorityCode
    age_years: int
    days_until_18: int
    other_episodes: list[MissingEpisodeSummary] = Field(default_factory=list)


REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY = "referral.open_for_consideration"


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


# Escalations whose dates derive from the child's date of birth (the 18th birthday): they carry
# no date outside the triage result, and a case publishes each once.
BIRTHDAY_KINDS = (EscalationKind.transition_to_adult_services,)


def escalation_key(e: Escalation) -> str:
    """One escalation is published once, however often the rules report it again."""
    if e.kind in BIRTHDAY_KINDS:
        return f"{e.kind.value}//"
    due = e.due_at.isoformat() if e.due_at else ""
    return f"{e.kind.value}/{e.subject or ''}/{due}"


StartReferralInput.model_rebuild()
