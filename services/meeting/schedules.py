"""The monthly Pre-MSET and MSET meetings of each authority, as Temporal Schedules.

One schedule per (authority, kind), id ``meeting-schedule-<la>-<kind>``. Each firing starts
``MeetingCycleWorkflow`` on the meeting service's task queue, which calls the activity that
creates the meeting and draws up its agenda. Temporal owns the calendar: no cron, no thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from mset_contract.meeting import (
    SCHEDULED_KINDS,
    MeetingCycleInput,
    ScheduleInfo,
)
from mset_contract.temporal import (
    MEETING_CYCLE_WORKFLOW,
    MEETING_TASK_QUEUE,
    meeting_cycle_workflow_id,
    meeting_schedule_id,
)
from mset_contract.vocab import MeetingKind
from mset_platform.schedules import upsert_schedule
from services.meeting.domain import CasesUnavailable, ScheduleNotFound
from services.meeting.settings import MeetingSettings


def monthly_spec(day: int, hour: int, time_zone: str) -> ScheduleSpec:
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                day_of_month=[ScheduleRange(day)],
                hour=[ScheduleRange(hour)],
                minute=[ScheduleRange(0)],
                second=[ScheduleRange(0)],
                comment=f"monthly on day {day} at {hour:02d}:00",
            )
        ],
        time_zone_name=time_zone,
    )


def meeting_schedule(
    local_authority: str,
    kind: MeetingKind,
    spec: ScheduleSpec,
    *,
    notice_days: int,
    task_queue: str = MEETING_TASK_QUEUE,
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MEETING_CYCLE_WORKFLOW,
            MeetingCycleInput(local_authority=local_authority, kind=kind, notice_days=notice_days),
            id=meeting_cycle_workflow_id(local_authority, kind),
            task_queue=task_queue,
            execution_timeout=timedelta(hours=1),
        ),
        spec=spec,
        policy=SchedulePolicy(
            # A manual trigger while a firing is still drawing up its agenda gets its own
            # meeting; a missed monthly firing (server down) is caught up within a day.
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            catchup_window=timedelta(days=1),
        ),
        state=ScheduleState(note=f"{kind.value} meetings of {local_authority}"),
    )


def configured_schedules(
    settings: MeetingSettings, task_queue: str = MEETING_TASK_QUEUE
) -> dict[str, Schedule]:
    out: dict[str, Schedule] = {}
    for la in settings.authorities:
        for kind in SCHEDULED_KINDS:
            day, hour = settings.schedule_day_hour(kind)
            out[meeting_schedule_id(la, kind)] = meeting_schedule(
                la,
                kind,
                monthly_spec(day, hour, settings.schedule_timezone),
                notice_days=settings.notice_days,
                task_queue=task_queue,
            )
    return out


async def ensure_schedules(
    client: Client, settings: MeetingSettings, task_queue: str = MEETING_TASK_QUEUE
) -> list[str]:
    schedules = configured_schedules(settings, task_queue)
    for schedule_id, schedule in schedules.items():
        await upsert_schedule(client, schedule_id, schedule)
    return list(schedules)


@dataclass(frozen=True)
class Triggered:
    schedule_id: str
    at: datetime
    held_at: datetime
    workflow_id: str


class TemporalSchedules:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def trigger(
        self, local_authority: str, kind: MeetingKind, held_at: datetime | None = None
    ) -> Triggered:
        """Call the schedule's meeting now, held at ``held_at`` (default: now).

        Not the schedule's own trigger, which can only repeat the schedule's action: that
        gives the meeting a month's notice it does not have ("held 4 December" for a
        meeting held on 27 November). The same workflow is started, on the schedule's own
        task queue, with the time it is held."""
        schedule_id = meeting_schedule_id(local_authority, kind)
        try:
            desc = await self.client.get_schedule_handle(schedule_id).describe()
            action = desc.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            now = datetime.now(UTC)
            when = held_at or now
            workflow_id = f"{action.id}-called-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
            await self.client.start_workflow(
                MEETING_CYCLE_WORKFLOW,
                MeetingCycleInput(local_authority=local_authority, kind=kind, held_at=when),
                id=workflow_id,
                task_queue=action.task_queue,
                execution_timeout=action.execution_timeout,
            )
        except RPCError as exc:
            raise _mapped(exc, schedule_id) from exc
        return Triggered(schedule_id, now, when, workflow_id)

    async def describe(self, local_authority: str, kind: MeetingKind) -> ScheduleInfo:
        schedule_id = meeting_schedule_id(local_authority, kind)
        try:
            desc = await self.client.get_schedule_handle(schedule_id).describe()
        except RPCError as exc:
            raise _mapped(exc, schedule_id) from exc
        return ScheduleInfo(
            schedule_id=schedule_id,
            local_authority=local_authority,
            kind=kind,
            paused=desc.schedule.state.paused,
            next_runs=list(desc.info.next_action_times[:3]),
        )


def _mapped(exc: RPCError, schedule_id: str) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return ScheduleNotFound(f"there is no schedule {schedule_id}")
    return CasesUnavailable("Temporal could not be reached")
