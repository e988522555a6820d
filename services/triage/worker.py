"""Starts the triage service's activity worker (``python -m services.triage.worker``)."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from mset_contract.temporal import TRIAGE_TASK_QUEUE
from services.triage.activities import TriageActivities
from services.triage.domain import Triage
from services.triage.ruleset_config import RulesetConfigError
from services.triage.settings import TriageSettings


def build_worker(client: Client, triage: Triage) -> Worker:
    acts = TriageActivities(triage)
    return Worker(client, task_queue=TRIAGE_TASK_QUEUE, activities=[acts.evaluate])


async def run(settings: TriageSettings, triage: Triage) -> None:
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    await build_worker(client, triage).run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        settings = TriageSettings()
        # The rules are loaded and checked before connecting: a bad file stops the worker.
        triage = Triage.from_directory(settings.rules_directory(), settings.default_ruleset_version)
    except (RulesetConfigError, ValidationError) as exc:
        sys.exit(f"triage worker: cannot start: {exc}")
    asyncio.run(run(settings, triage))


if __name__ == "__main__":
    main()
