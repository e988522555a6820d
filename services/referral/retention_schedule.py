"""The retention schedule: a Temporal Schedule that starts ``RetentionSweepWorkflow`` every
day (docs/retention.md). The referral worker creates it at start (or brings it to the
settings' hour), as the meeting worker does its meeting schedules."""

from __future__ import annotations

from datetime import timedelta

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

from mset_contract.retention import RetentionSweepInput
from mset_contract.temporal import (
    RETENTION_SCHEDULE_ID,
    RETENTION_SWEEP_WORKFLOW,
    WORKFLOWS_TASK_QUEUE,
)
from mset_platform.schedules import upsert_schedule
from mset_platform.settings import RetentionSettings


def retention_schedule(
    settings: RetentionSettings,
    *,
    task_queue: str = WORKFLOWS_TASK_QUEUE,
    sweep: RetentionSweepInput | None = None,
    workflow_id: str = RETENTION_SCHEDULE_ID,
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RETENTION_SWEEP_WORKFLOW,
            sweep or RetentionSweepInput(),
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=timedelta(hours=12),
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(settings.retention_sweep_hour)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                    comment=f"daily at {settings.retention_sweep_hour:02d}:00",
                )
            ],
            time_zone_name=settings.retention_timezone,
        ),
        policy=SchedulePolicy(
            # One sweep at a time: two would race to erase the same children (harmless, as
            # every step is idempotent, but pointless). A day missed (server down) is
            # caught up.
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(days=1),
        ),
        state=ScheduleState(note=f"retention sweep: {settings.retention_policy}"),
    )


async def ensure_retention_schedule(
    client: Client,
    settings: RetentionSettings,
    *,
    schedule_id: str = RETENTION_SCHEDULE_ID,
    task_queue: str = WORKFLOWS_TASK_QUEUE,
    sweep: RetentionSweepInput | None = None,
) -> str:
    """Create the schedule, or bring it to the settings (a paused one stays paused)."""
    schedule = retention_schedule(
        settings, task_queue=task_queue, sweep=sweep, workflow_id=schedule_id
    )
    await upsert_schedule(client, schedule_id, schedule)
    return schedule_id
