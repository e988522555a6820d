"""Temporal Schedules that a worker keeps in place at start (the meeting schedules, the
retention schedule)."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


async def upsert_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Create the schedule, or bring an existing one to this definition (idempotent: every
    worker start runs it; a paused schedule stays paused)."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return
    except ScheduleAlreadyRunningError:
        pass

    def updater(inp: ScheduleUpdateInput) -> ScheduleUpdate:
        current = inp.description.schedule
        schedule.state = current.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(updater)
