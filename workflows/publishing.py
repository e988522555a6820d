"""The case workflow's outbox: facts about the case, published to the broker in order.

Events are the catalogue's models (``mset_contract.events``), published by the notifications
service's activity (by name, on its task queue) one batch at a time in a background
coroutine, so a broker outage delays events without stalling the case: Temporal retries the
activity until the broker acknowledges. Each event's id is derived from the case and a
sequence number kept in the workflow's state (it survives continue-as-new), so a retried
activity re-sends the same ids and consumers drop the repeats.

Events carry ids, codes, levels and dates: never the child's details or anyone's free text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from mset_contract import events as ev
    from mset_contract.referral_workflow import (
        BIRTHDAY_KINDS,
        CaseAction,
        ExitRecord,
        MissingEpisodeState,
        MsetReviewRecord,
        PreMsetDecisionRecord,
        ReferralState,
    )
    from mset_contract.temporal import (
        NOTIFICATIONS_PUBLISH_ACTIVITY,
        NOTIFICATIONS_TASK_QUEUE,
        referral_workflow_id,
    )
    from mset_contract.triage import Escalation, EscalationKind, TriageResult
    from mset_contract.vocab import AgencyType, MeetingKind, Stage

PUBLISH_RETRY = RetryPolicy(maximum_interval=ev.PUBLISH_RETRY_MAX_INTERVAL)  # no max attempts
# Caller-chosen decision ids may be any short string; events carry them as UUIDs.
_DECISION_NS = uuid.UUID("3b0f6f55-64a4-4f3e-9a51-b1c6d0e43f7a")


def as_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(_DECISION_NS, value)


class EventOutbox:
    """``envelope()`` numbers the next event (a counter kept in the workflow's state, so it
    survives continue-as-new) and returns its id step and the fields every event shares."""

    def __init__(self, envelope: Callable[[], tuple[str, str, dict[str, Any]]]) -> None:
        self._envelope = envelope
        self._queue: list[ev.MsetEvent] = []
        self._pump: asyncio.Task[None] | None = None

    # --- the facts a case publishes ----------------------------------------------------------

    def referral_submitted(self, s: ReferralState, agency_type: AgencyType, catalogue: str) -> None:
        self._add(
            s,
            ev.ReferralSubmitted,
            referrer_level=s.referrer_level,
            agency_type=agency_type,
            catalogue_version=catalogue,
        )

    def referral_triaged(self, s: ReferralState, r: TriageResult) -> None:
        self._add(
            s,
            ev.ReferralTriaged,
            ruleset_version=r.ruleset_version,
            score=r.score,
            band_level=r.band_level,
            suggested_level=r.suggested_level,
            level=r.level,
            recommendation=r.recommendation,
            coordinator_review=r.judgement.coordinator_review,
            fired_rules=sorted({f.rule for f in r.fired}),
            escalations=sorted({e.kind for e in r.escalations}),
        )

    def escalated(self, s: ReferralState, e: Escalation, r: TriageResult) -> None:
        self._add(s, ev.ReferralEscalated, level=r.level, **_escalation_fields(e, r))
        if e.kind in (EscalationKind.action_due_soon, EscalationKind.action_overdue):
            action = next((a for a in s.actions if a.action_id == e.subject), None)
            if action is not None:
                model = (
                    ev.ActionDueSoon
                    if e.kind == EscalationKind.action_due_soon
                    else ev.ActionOverdue
                )
                self._add(s, model, **_action_fields(action))

    def stage_changed(self, s: ReferralState, previous: Stage | None) -> None:
        self._add(s, ev.ReferralStageChanged, stage=s.stage, previous_stage=previous)

    def pre_mset_decided(self, s: ReferralState, d: PreMsetDecisionRecord) -> None:
        self._add(
            s,
            ev.DecisionRecorded,
            decision_id=as_uuid(d.decision_id),
            meeting_id=d.meeting_id,
            meeting_kind=MeetingKind.pre_mset,
            pre_mset_outcome=d.outcome,
            agreed_level=d.level,
        )

    def mset_reviewed(self, s: ReferralState, r: MsetReviewRecord) -> None:
        self._add(
            s,
            ev.DecisionRecorded,
            decision_id=as_uuid(r.review_id),
            meeting_id=r.meeting_id,
            meeting_kind=MeetingKind.mset,
            agreed_level=r.level,
        )

    def action_assigned(self, s: ReferralState, a: CaseAction) -> None:
        self._add(s, ev.ActionAssigned, aim=a.aim, target=a.target, **_action_fields(a))

    def action_completed(self, s: ReferralState, a: CaseAction) -> None:
        assert a.completed_at is not None
        self._add(s, ev.ActionCompleted, completed_at=a.completed_at, **_action_fields(a))

    def case_exited(self, s: ReferralState, e: ExitRecord) -> None:
        self._add(s, ev.CaseExited, exit_reason=e.reason, exited_at=e.exited_at)

    # --- missing episodes ----------------------------------------------------------------------

    def episode_reported(self, e: MissingEpisodeState) -> None:
        self._add(e, ev.MissingEpisodeReported, episode_id=e.episode_id, reported_at=e.reported_at)

    def episode_returned(self, e: MissingEpisodeState) -> None:
        assert e.returned_at is not None and e.rhi_due_at is not None
        self._add(
            e,
            ev.MissingEpisodeReturned,
            episode_id=e.episode_id,
            returned_at=e.returned_at,
            rhi_due_at=e.rhi_due_at,
            located_in_authority=e.located_in_authority,
        )

    def rhi_deadline_breached(self, e: MissingEpisodeState) -> None:
        assert e.returned_at is not None and e.rhi_due_at is not None
        self._add(
            e,
            ev.RhiDeadlineBreached,
            episode_id=e.episode_id,
            returned_at=e.returned_at,
            rhi_due_at=e.rhi_due_at,
        )

    def rhi_recorded(self, e: MissingEpisodeState) -> None:
        assert e.rhi_outcome is not None
        self._add(
            e,
            ev.ReturnHomeInterviewRecorded,
            episode_id=e.episode_id,
            outcome=e.rhi_outcome,
            offered_at=e.rhi_offered_at,
        )

    def episode_escalated(self, e: MissingEpisodeState, esc: Escalation, r: TriageResult) -> None:
        self._add(e, ev.ReferralEscalated, **_escalation_fields(esc, r))

    # --- delivery ----------------------------------------------------------------------------

    def _add(self, _s: object, model: type[ev.MsetEvent], **fields: Any) -> None:
        workflow_id, step, common = self._envelope()
        self._queue.append(
            model(id=ev.event_id(workflow_id, step), time=workflow.now(), **common, **fields)
        )
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._publish_all())

    async def _publish_all(self) -> None:
        # One batch at a time keeps a case's events in order on its partition.
        while self._queue:
            batch, self._queue = self._queue[:100], self._queue[100:]
            await workflow.execute_activity(
                NOTIFICATIONS_PUBLISH_ACTIVITY,
                ev.PublishEvents(events=batch),
                task_queue=NOTIFICATIONS_TASK_QUEUE,
                result_type=ev.Published,
                start_to_close_timeout=ev.PUBLISH_START_TO_CLOSE,
                heartbeat_timeout=ev.PUBLISH_HEARTBEAT_TIMEOUT,
                retry_policy=PUBLISH_RETRY,
            )

    async def drain(self) -> None:
        """Wait until every event so far has been acknowledged by the broker."""
        await workflow.wait_condition(
            lambda: not self._queue and (self._pump is None or self._pump.done())
        )


def _escalation_fields(e: Escalation, r: TriageResult) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "urgency": e.urgency,
        "notify": [
            ev.EscalationTargetRef(role=t.role, agency=t.agency, agency_ref=t.agency_ref)
            for t in e.notify
        ],
        "rule": e.rule,
        "ruleset_version": r.ruleset_version,
        "fired_rules": sorted({f.rule for f in r.fired}),
        "about": e.subject,
        # The 18th birthday would give away the child's date of birth: never published.
        "due_at": None if e.kind in BIRTHDAY_KINDS else e.due_at,
        "deadline": e.deadline,
    }


def _action_fields(a: CaseAction) -> dict[str, Any]:
    return {
        "action_id": uuid.UUID(a.action_id),
        "owner_agency_id": a.owner_agency_id,
        "due_at": a.due_at,
    }


def referral_envelope(
    state: Callable[[], ReferralState | None],
) -> Callable[[], tuple[str, str, dict[str, Any]]]:
    def envelope() -> tuple[str, str, dict[str, Any]]:
        s = state()
        assert s is not None
        s.events_emitted += 1
        return (
            referral_workflow_id(s.referral_id),
            str(s.events_emitted),
            {
                "source": ev.SOURCE_REFERRAL_WORKFLOW,
                "subject": s.referral_id,
                "referrer_agency_id": s.agency_id,
                "local_authority": s.local_authority,
            },
        )

    return envelope
