"""A worker that dies holding an activity costs seconds, not the activity's whole time-out.

A dead worker is simulated by an activity that never answers and never heartbeats (the
server cannot tell the two apart): the first attempt of each stand-in hangs, and the retry
must start within seconds on the real Temporal dev server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.events import Published, PublishEvents
from mset_contract.meeting import (
    MeetingCycleInput,
    OpenMeetingInput,
    OpenMeetingResult,
)
from mset_contract.referral_workflow import RecordStageInput, RecordStageResult
from mset_contract.temporal import (
    MEETING_OPEN_MEETING_ACTIVITY,
    NOTIFICATIONS_TASK_QUEUE,
    REFERRAL_TASK_QUEUE,
    TRIAGE_TASK_QUEUE,
)
from mset_contract.vocab import MeetingKind
from tests.support.case_world import CaseActivities, CaseWorld
from tests.support.wait import eventually
from workflows.meeting_cycle import MeetingCycleWorkflow
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow

# Today's sizing gives 10 s (database work) or a 5 s heartbeat timeout, plus the retry's
# first 1 s back-off; the old time-outs were 30 s and 60 s. The margin is for a loaded host.
RETRIED_WITHIN = 20.0


class DyingWorld(CaseWorld):
    """The case's stand-ins, except that the first attempt of record keeping and of
    publishing is taken by a worker that then dies (never answers, never heartbeats)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.attempts: dict[str, list[float]] = {"record": [], "publish": []}
        self.dead = asyncio.Event()  # never set: the dead worker never answers

    async def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        self.attempts["record"].append(time.monotonic())
        if not self.attempts["record"][1:]:
            await self.dead.wait()
        return await super().record_stage(inp)

    async def publish(self, inp: PublishEvents) -> Published:
        self.attempts["publish"].append(time.monotonic())
        if not self.attempts["publish"][1:]:
            await self.dead.wait()
        return await super().publish(inp)


async def test_a_dead_workers_record_keeping_and_publishing_are_retried_within_seconds(
    temporal_dev: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_dev.client
    world = DyingWorld(client, task_queue, temporal_dev)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client, task_queue=task_queue, workflows=[ReferralWorkflow, MissingEpisodeWorkflow]
            )
        )
        host = CaseActivities()
        host.world = world  # the stand-ins answer for this world, whose two activities die
        queues: list[tuple[str, list[Callable[..., Any]]]] = [
            (
                REFERRAL_TASK_QUEUE,
                [host.triage_facts, host.record_stage, host.episode_facts, host.record_episode],
            ),
            (TRIAGE_TASK_QUEUE, [host.evaluate]),
            (NOTIFICATIONS_TASK_QUEUE, [host.publish]),
        ]
        for queue, acts in queues:
            await stack.enter_async_context(Worker(client, task_queue=queue, activities=acts))
        try:
            await world.start_case()
            await eventually(
                lambda: len(world.attempts["record"]) >= 2 and len(world.attempts["publish"]) >= 2,
                what="both activities retried",
            )
        finally:
            await world.end_everything()
    for name, (first, retry, *_) in world.attempts.items():
        assert retry - first < RETRIED_WITHIN, f"{name} retried after {retry - first:.1f} s"
    assert world.recorded_stages(), "the retry did the work"
    assert "mset.referral.submitted" in world.event_types()


async def test_a_meeting_draw_on_a_dead_worker_is_retried_within_seconds(
    temporal_dev: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_dev.client
    starts: list[float] = []
    dead = asyncio.Event()
    meeting_id = uuid.uuid4()

    @activity.defn(name=MEETING_OPEN_MEETING_ACTIVITY)
    async def open_meeting(inp: OpenMeetingInput) -> OpenMeetingResult:
        starts.append(time.monotonic())
        if len(starts) == 1:
            await dead.wait()  # the worker drawing the agenda died: no heartbeat, no answer
        return OpenMeetingResult(meeting_id=meeting_id, items=0, created=True)

    async with Worker(
        client, task_queue=task_queue, workflows=[MeetingCycleWorkflow], activities=[open_meeting]
    ):
        result = await asyncio.wait_for(
            client.execute_workflow(
                MeetingCycleWorkflow.run,
                MeetingCycleInput(local_authority="northshire", kind=MeetingKind.mset),
                id=f"meeting-cycle-test-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            ),
            timeout=60,
        )
    assert result.meeting_id == meeting_id
    first, retry = starts
    assert retry - first < RETRIED_WITHIN, f"retried after {retry - first:.1f} s"
