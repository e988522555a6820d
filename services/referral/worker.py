"""Starts the referral service's activity worker."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from mset_contract.temporal import REFERRAL_TASK_QUEUE
from services.referral.activities import ReferralActivities
from services.referral.migrate import upgrade
from services.referral.settings import ReferralSettings
from services.referral.store import Store, make_engine


def build_worker(client: Client, store: Store, executor: ThreadPoolExecutor) -> Worker:
    acts = ReferralActivities(store)
    return Worker(
        client,
        task_queue=REFERRAL_TASK_QUEUE,
        activities=[
            acts.record_stage,
            acts.triage_facts,
            acts.episode_facts,
            acts.open_for_consideration,
        ],
        activity_executor=executor,
    )


async def run(settings: ReferralSettings) -> None:
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        upgrade(engine)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        await build_worker(client, Store(engine), executor).run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(run(ReferralSettings()))


if __name__ == "__main__":
    main()
