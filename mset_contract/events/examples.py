"""One valid instance of every event in the catalogue, and the escalation a high-risk triage
produces: for documentation, tests and the bench."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.events.catalogue import (
    SOURCE_REFERRAL_WORKFLOW,
    ActionAssigned,
    ActionCompleted,
    ActionDueSoon,
    ActionOverdue,
    CaseExited,
    DecisionRecorded,
    EscalationTargetRef,
    MissingEpisodeReported,
    MissingEpisodeReturned,
    MsetEvent,
    ReferralEscalated,
    ReferralStageChanged,
    ReferralSubmitted,
    ReferralTriaged,
    ReturnHomeInterviewRecorded,
    RhiDeadlineBreached,
    event_id,
)
from mset_contract.temporal import referral_workflow_id
from mset_contract.triage import AgencyDesignation, EscalationKind, PreMsetRecommendation, Urgency
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


def example_events(
    case_id: uuid.UUID | None = None,
    agency_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> list[MsetEvent]:
    """One valid instance of every event type (documentation, tests, the bench)."""
    case = case_id or uuid.uuid4()
    agency = agency_id or uuid.uuid4()
    now = at or datetime.now(UTC)
    wf = referral_workflow_id(case)
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
        id=event_id(referral_workflow_id(case_id), "escalated/high_risk/1"),
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
