"""Runs the workflow worker: every MSET workflow on the workflows task queue."""

from __future__ import annotations

import asyncio
import logging

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from mset_contract.temporal import WORKFLOWS_TASK_QUEUE
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow

ALL_WORKFLOWS = [ReferralWorkflow, MissingEpisodeWorkflow]


class WorkflowWorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_WORKFLOWS_", extra="ignore")

    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("MSET_TEMPORAL_ADDRESS", "temporal_address"),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("MSET_TEMPORAL_NAMESPACE", "temporal_namespace"),
    )


def build_worker(client: Client, task_queue: str = WORKFLOWS_TASK_QUEUE) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS)


async def run(settings: WorkflowWorkerSettings) -> None:
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    await build_worker(client).run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(run(WorkflowWorkerSettings()))


if __name__ == "__main__":
    main()
