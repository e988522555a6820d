"""MeetingCycleWorkflow (a meeting schedule's action) on the time-skipping server, with the
meeting activity replaced by a stand-in under its real name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.meeting import (
    MeetingCycleInput,
    MeetingCycleResult,
    OpenMeetingInput,
    OpenMeetingResult,
)
from mset_contract.temporal import MEETING_OPEN_MEETING_ACTIVITY
from mset_contract.vocab import MeetingKind
from tests.support.wait import outcome
from workflows.meeting_cycle import MeetingCycleWorkflow


async def test_a_firing_calls_one_meeting_held_after_the_notice_period(
    time_skipping: WorkflowEnvironment, task_queue: str
) -> None:
    calls: list[OpenMeetingInput] = []
    meeting_id = uuid.uuid4()

    @activity.defn(name=MEETING_OPEN_MEETING_ACTIVITY)
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
        handle = await time_skipping.client.start_workflow(
            MeetingCycleWorkflow.run,
            MeetingCycleInput(local_authority="northshire", kind=MeetingKind.mset, notice_days=5),
            id=f"meeting-cycle-northshire-mset-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )
        result = await outcome(time_skipping, handle)

    assert result == MeetingCycleResult(meeting_id=meeting_id, items=3, created=True)
    first, retry = calls
    # The retry asks for the same meeting (same origin), so at most one is ever created.
    assert first == retry
    assert first.origin.startswith("meeting-cycle-northshire-mset-")
    assert first.kind is MeetingKind.mset and first.local_authority == "northshire"
    assert first.held_at - first.called_at == timedelta(days=5)


async def test_a_meeting_the_coordinator_calls_now_is_held_when_they_say(
    time_skipping: WorkflowEnvironment, task_queue: str
) -> None:
    calls: list[OpenMeetingInput] = []

    @activity.defn(name=MEETING_OPEN_MEETING_ACTIVITY)
    async def open_meeting(inp: OpenMeetingInput) -> OpenMeetingResult:
        calls.append(inp)
        return OpenMeetingResult(meeting_id=uuid.uuid4(), items=0, created=True)

    held = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[MeetingCycleWorkflow],
        activities=[open_meeting],
    ):
        handle = await time_skipping.client.start_workflow(
            MeetingCycleWorkflow.run,
            MeetingCycleInput(
                local_authority="northshire", kind=MeetingKind.pre_mset, notice_days=7, held_at=held
            ),
            id=f"meeting-cycle-northshire-pre_mset-called-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )
        await outcome(time_skipping, handle)

    [call] = calls
    assert call.held_at == held  # not a week's notice after it was called
