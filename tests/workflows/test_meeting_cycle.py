"""MeetingCycleWorkflow (a meeting schedule's action) on the time-skipping server, with the
meeting activity replaced by a stand-in under its real name."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.meeting import (
    MEETING_OPEN_ACTIVITY,
    MeetingCycleInput,
    MeetingCycleResult,
    OpenMeetingInput,
    OpenMeetingResult,
)
from mset_contract.vocab import MeetingKind
from services.meeting.cycle import MeetingCycleWorkflow


async def test_a_firing_calls_one_meeting_held_after_the_notice_period(
    time_skipping: WorkflowEnvironment, task_queue: str
) -> None:
    calls: list[OpenMeetingInput] = []
    meeting_id = uuid.uuid4()

    @activity.defn(name=MEETING_OPEN_ACTIVITY)
    async def open_meeting(inp: OpenMeetingInput) -> OpenMeetingResult:
        calls.append(inp)
        if len(calls) == 1:
            raise RuntimeError("database briefly unavailable")  # Temporal retries
        return OpenMeetingResult(meeting_id=meeting_id, items=3, created=True)

    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[MeetingCycleWorkflow],
        activities=[open_meeting],
    ):
        result = await time_skipping.client.execute_workflow(
            MeetingCycleWorkflow.run,
            MeetingCycleInput(local_authority="northshire", kind=MeetingKind.mset, notice_days=5),
            id=f"meeting-cycle-northshire-mset-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )

    assert result == MeetingCycleResult(meeting_id=meeting_id, items=3, created=True)
    first, retry = calls
    # The retry asks for the same meeting (same origin), so at most one is ever created.
    assert first == retry
    assert first.origin.startswith("meeting-cycle-northshire-mset-")
    assert first.kind is MeetingKind.mset and first.local_authority == "northshire"
    assert first.held_at - first.called_at == timedelta(days=5)
