"""MeetingCycleWorkflow: what a meeting schedule does when it fires.

It calls the meeting service's activity, by name, to create the meeting and draw up its
agenda. The meeting is "called" at the firing time and held ``notice_days`` later, or, when
the coordinator called it now (``held_at`` given, the schedule's trigger), when they said. The
workflow id (unique per firing) is the meeting's origin, so a retried activity finds the
meeting it already created instead of creating a second one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

# The sandbox re-imports this module on every run; the contract models are pure pydantic
# with no side effects at import, so they are passed through rather than re-imported.
with workflow.unsafe.imports_passed_through():
    from mset_contract.meeting import (
        OPEN_MEETING_HEARTBEAT_TIMEOUT,
        MeetingCycleInput,
        MeetingCycleResult,
        OpenMeetingInput,
        OpenMeetingResult,
    )
    from mset_contract.temporal import MEETING_CYCLE_WORKFLOW, MEETING_OPEN_MEETING_ACTIVITY


@workflow.defn(name=MEETING_CYCLE_WORKFLOW)
class MeetingCycleWorkflow:
    @workflow.run
    async def run(self, inp: MeetingCycleInput) -> MeetingCycleResult:
        called_at = workflow.now()
        # A schedule's firing calls the meeting with notice; one the coordinator calls now
        # (the trigger) is held when they say. Only the activity's input depends on this, and
        # replay does not compare activity inputs: the commands are the same either way, and
        # an input from before this field has none, so it takes the notice path as it did.
        held_at = (
            inp.held_at if inp.held_at is not None else called_at + timedelta(days=inp.notice_days)
        )
        opened: OpenMeetingResult = await workflow.execute_activity(
            MEETING_OPEN_MEETING_ACTIVITY,
            OpenMeetingInput(
                local_authority=inp.local_authority,
                kind=inp.kind,
                called_at=called_at,
                held_at=held_at,
                origin=workflow.info().workflow_id,
            ),
            result_type=OpenMeetingResult,
            # No task_queue: the activity runs on this workflow's own queue, which is the
            # meeting service's (MEETING_TASK_QUEUE in production, a fresh one in tests).
            # Drawing up an agenda queries every waiting case: minutes, not hours. The activity
            # heartbeats while it works, so a worker that dies mid-draw is noticed in seconds.
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=OPEN_MEETING_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )
        return MeetingCycleResult(
            meeting_id=opened.meeting_id, items=opened.items, created=opened.created
        )
