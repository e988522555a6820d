"""Starts the meeting service's worker: the schedules' workflow and the meeting activity,
on the meeting task queue. Creates (or updates) the monthly schedules first."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from mset_contract.temporal import MEETING_TASK_QUEUE
from mset_platform.cases import CaseClient
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN, run_until_signalled
from mset_platform.temporal import connect, worker_main
from services.meeting.activities import MeetingActivities
from services.meeting.meetings import Meetings
from services.meeting.migrate import MIGRATIONS
from services.meeting.retention import MeetingRetentionActivities
from services.meeting.schedules import ensure_schedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store
from services.meeting.who import CaseRecords
from workflows.meeting_cycle import MeetingCycleWorkflow

log = logging.getLogger("mset.meeting.worker")


def build_meetings(
    client: Client, store: Store, settings: MeetingSettings, records: CaseRecords | None = None
) -> Meetings:
    """``records``: who the cases are about, for the API's agendas and minutes (the worker
    shows none)."""
    timeout = timedelta(seconds=settings.decision_timeout_seconds)
    cases = CaseClient(
        client,
        update_timeout=timeout,
        query_timeout=timeout,
        concurrency=settings.agenda_concurrency,
    )
    return Meetings(
        store,
        cases,
        claim_ttl=timedelta(seconds=settings.claim_ttl_seconds),
        authorities=settings.authorities,
        records=records,
    )


def build_worker(
    client: Client,
    meetings: Meetings,
    task_queue: str = MEETING_TASK_QUEUE,
    *,
    store: Store | None = None,
) -> Worker:
    """``store``: to host the retention sweep's erasure too (the worker process does)."""
    acts = MeetingActivities(meetings)
    activities: list[Callable[..., Any]] = [acts.open_meeting]
    if store is not None:
        activities.append(MeetingRetentionActivities(store).erase)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[MeetingCycleWorkflow],
        activities=activities,
        graceful_shutdown_timeout=WORKER_GRACEFUL_SHUTDOWN,
    )


async def run(settings: MeetingSettings) -> None:
    engine = MIGRATIONS.open(settings.database_url, settings.auto_migrate)
    client = await connect(settings)
    if settings.manage_schedules:
        ids = await ensure_schedules(client, settings)
        log.info("meeting schedules in place: %s", ", ".join(ids))
    store = Store(engine)
    meetings = build_meetings(client, store, settings)
    await run_until_signalled(build_worker(client, meetings, store=store))


def main() -> None:
    worker_main("meeting worker", MeetingSettings, run)


if __name__ == "__main__":
    main()
