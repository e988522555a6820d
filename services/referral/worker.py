"""Starts the referral service's activity worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from mset_contract.temporal import REFERRAL_TASK_QUEUE
from mset_platform.clock import Clock, utcnow
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN, run_until_signalled
from mset_platform.settings import RetentionSettings
from mset_platform.temporal import connect, worker_main
from services.referral.activities import ReferralActivities
from services.referral.episode_records import EpisodeRecords
from services.referral.migrate import MIGRATIONS
from services.referral.retention_activities import RetentionActivities
from services.referral.retention_schedule import ensure_retention_schedule
from services.referral.settings import ReferralSettings
from services.referral.store import Store

log = logging.getLogger("mset.referral.worker")


def build_worker(
    client: Client,
    store: Store,
    executor: ThreadPoolExecutor,
    *,
    retention: RetentionSettings | None = None,
    clock: Clock = utcnow,
    task_queue: str = REFERRAL_TASK_QUEUE,
) -> Worker:
    """``retention``: the policy, to host the retention sweep's activities too (the worker
    process always does; tests that do not sweep leave them out)."""
    acts = ReferralActivities(store)
    activities: list[Callable[..., Any]] = [
        acts.record_stage,
        acts.record_authority_told,
        acts.triage_facts,
        acts.episode_facts,
        acts.open_for_consideration,
        EpisodeRecords(store).record_episode,
    ]
    if retention is not None:
        kept = RetentionActivities(store, client, retention, clock)
        activities += [kept.due, kept.begin, kept.progress, kept.finish]
    return Worker(
        client,
        task_queue=task_queue,
        activities=activities,
        activity_executor=executor,
        graceful_shutdown_timeout=WORKER_GRACEFUL_SHUTDOWN,
    )


async def run(settings: ReferralSettings) -> None:
    engine = MIGRATIONS.open(settings.database_url, settings.auto_migrate)
    client = await connect(settings)
    if settings.retention_schedule:
        schedule_id = await ensure_retention_schedule(client, settings)
        log.info("retention schedule in place: %s (%s)", schedule_id, settings.retention_policy)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(client, Store(engine), executor, retention=settings)
        await run_until_signalled(worker)


def main() -> None:
    worker_main("referral worker", ReferralSettings, run)


if __name__ == "__main__":
    main()
