"""Starts the meeting service's worker: the schedules' workflow and the meeting activity,
on the meeting task queue. Creates (or updates) the monthly schedules first."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from mset_contract.temporal import MEETING_TASK_QUEUE
from services.meeting.activities import MeetingActivities
from services.meeting.cases import TemporalCases
from services.meeting.cycle import MeetingCycleWorkflow
from services.meeting.meetings import Meetings
from services.meeting.migrate import upgrade
from services.meeting.schedules import ensure_schedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store, make_engine

log = logging.getLogger("mset.meeting.worker")


def build_meetings(client: Client, store: Store, settings: MeetingSettings) -> Meetings:
    cases = TemporalCases(
        client,
        concurrency=settings.agenda_concurrency,
        update_timeout=settings.decision_timeout_seconds,
    )
    return Meetings(store, cases, claim_ttl=timedelta(seconds=settings.claim_ttl_seconds))


def build_worker(
    client: Client, meetings: Meetings, task_queue: str = MEETING_TASK_QUEUE
) -> Worker:
    acts = MeetingActivities(meetings)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[MeetingCycleWorkflow],
        activities=[acts.open_meeting],
    )


async def run(settings: MeetingSettings) -> None:
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        upgrade(engine)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    if settings.manage_schedules:
        ids = await ensure_schedules(client, settings)
        log.info("meeting schedules in place: %s", ", ".join(ids))
    await build_worker(client, build_meetings(client, Store(engine), settings)).run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(run(MeetingSettings()))


if __name__ == "__main__":
    main()
