"""The case workflow's outbox: facts about the case, published to the broker in order.

Events are published by the notifications service's activity (by name, on its task queue),
one batch at a time in a background coroutine, so a broker outage delays events without
stalling the case: Temporal retries the activity until the broker acknowledges. Each event's
id is derived from the case and a sequence number kept in the workflow's state, so a retried
activity re-sends the same ids and consumers drop the repeats.

Events carry ids, codes, levels and dates: never the child's details or anyone's free text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from mset_contract.referral_workflow import (
        CaseAction,
        ExitRecord,
        MsetReviewRecord,
        PreMsetDecisionRecord,
        ReferralState,
    )
    from mset_contract.temporal import NOTIFICATIONS_TASK_QUEUE, referral_workflow_id
    from mset_contract.triage import Escalation, TriageResult

# PROVISIONAL until mset_contract/events.py lands (issue 6): the publish activity's name and
# input, kept JSON-compatible with it.
NOTIFICATIONS_PUBLISH_ACTIVITY = "notifications.publish"
_EVENT_NS = uuid.UUID("8c5e3f0e-3f7b-4c59-9d38-6b1f3c1f0a11")


def event_id(workflow_id: str, step: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NS, f"{workflow_id}/{step}")


class EventDraft(BaseModel):
    id: uuid.UUID
    type: str
    case_id: uuid.UUID
    local_authority: str
    referrer_agency_id: uuid.UUID
    time: datetime
    data: dict[str, Any]


class PublishEvents(BaseModel):
    events: list[EventDraft]


class Published(BaseModel):
    ids: list[uuid.UUID] = []


PUBLISH_TIMEOUT = timedelta(seconds=30)
# No maximum attempts: an event is retried until the broker has it, never dropped.
PUBLISH_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


class EventOutbox:
    def __init__(self, state: Callable[[], ReferralState | None]) -> None:
        self._state = state
        self._queue: list[EventDraft] = []
        self._pump: asyncio.Task[None] | None = None

    # --- the facts a case publishes ----------------------------------------------------------

    def referral_submitted(self, s: ReferralState) -> None:
        self._add(s, "referral.submitted", {"referrer_level": s.referrer_level.value})

    def referral_triaged(self, s: ReferralState, r: TriageResult) -> None:
        self._add(
            s,
            "referral.triaged",
            {
                "ruleset_version": r.ruleset_version,
                "score": r.score,
                "suggested_level": r.suggested_level.value,
                "referrer_level": r.referrer_level.value,
                "level": r.level.value,
                "recommendation": r.recommendation.value,
                "coordinator_review": r.judgement.coordinator_review,
                "fired_rules": sorted({f.rule for f in r.fired}),
            },
        )

    def escalated(self, s: ReferralState, e: Escalation, key: str) -> None:
        self._add(
            s,
            "referral.escalated",
            {
                "escalation_key": key,
                "kind": e.kind.value,
                "urgency": e.urgency.value,
                "rule": e.rule,
                "subject_ref": e.subject,
                "due_at": _iso(e.due_at),
                "deadline": _iso(e.deadline),
                "ruleset_version": s.triage.ruleset_version if s.triage else None,
                "notify": [
                    {
                        "role": t.role.value if t.role else None,
                        "agency": t.agency.value,
                        "agency_ref": t.agency_ref,
                    }
                    for t in e.notify
                ],
            },
        )

    def information_overdue(self, s: ReferralState, due: datetime) -> None:
        self._add(s, "referral.information_overdue", {"due_at": _iso(due)})

    def pre_mset_decided(self, s: ReferralState, d: PreMsetDecisionRecord) -> None:
        self._add(
            s,
            "decision.recorded",
            {
                "panel": "pre_mset",
                "decision_id": d.decision_id,
                "outcome": d.outcome.value,
                "level": d.level.value,
                "meeting_id": _str(d.meeting_id),
                "decided_by": str(d.decided_by),
                "information_due_at": _iso(d.information_due_at),
            },
        )

    def mset_reviewed(self, s: ReferralState, r: MsetReviewRecord) -> None:
        self._add(
            s,
            "decision.recorded",
            {
                "panel": "mset",
                "decision_id": r.review_id,
                "outcome": "plan_agreed",
                "level": r.level.value,
                "meeting_id": _str(r.meeting_id),
                "decided_by": str(r.decided_by),
                "action_count": len(r.action_ids),
            },
        )

    def action_assigned(self, s: ReferralState, a: CaseAction) -> None:
        self._add(s, "action.assigned", _action_facts(a))

    def action_completed(self, s: ReferralState, a: CaseAction) -> None:
        self._add(s, "action.completed", {**_action_facts(a), "completed_at": _iso(a.completed_at)})

    def case_exited(self, s: ReferralState, e: ExitRecord) -> None:
        self._add(
            s,
            "case.exited",
            {
                "reason": e.reason.value,
                "decided_by": str(e.decided_by),
                "exited_at": _iso(e.exited_at),
            },
        )

    # --- delivery ----------------------------------------------------------------------------

    def _add(self, s: ReferralState, type_: str, data: dict[str, Any]) -> None:
        s.events_emitted += 1
        wid = referral_workflow_id(s.referral_id)
        self._queue.append(
            EventDraft(
                id=event_id(wid, f"{s.events_emitted}"),
                type=type_,
                case_id=s.referral_id,
                local_authority=s.local_authority,
                referrer_agency_id=s.agency_id,
                time=workflow.now(),
                data=data,
            )
        )
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._publish_all())

    async def _publish_all(self) -> None:
        # One batch at a time keeps a case's events in order on its partition.
        while self._queue:
            batch, self._queue = self._queue, []
            await workflow.execute_activity(
                NOTIFICATIONS_PUBLISH_ACTIVITY,
                PublishEvents(events=batch),
                task_queue=NOTIFICATIONS_TASK_QUEUE,
                result_type=Published,
                start_to_close_timeout=PUBLISH_TIMEOUT,
                retry_policy=PUBLISH_RETRY,
            )

    async def drain(self) -> None:
        """Wait until every event so far has been acknowledged by the broker."""
        await workflow.wait_condition(
            lambda: not self._queue and (self._pump is None or self._pump.done())
        )


def _action_facts(a: CaseAction) -> dict[str, Any]:
    return {
        "action_id": a.action_id,
        "owner_agency_id": str(a.owner_agency_id),
        "due_at": _iso(a.due_at),
        "aim": a.aim.value,
        "target": a.target.value,
    }


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def _str(v: object | None) -> str | None:
    return str(v) if v is not None else None
