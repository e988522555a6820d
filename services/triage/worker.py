"""Starts the triage service's activity worker (``python -m services.triage.worker``)."""

from __future__ import annotations

from functools import partial

from temporalio.client import Client
from temporalio.worker import Worker

from mset_contract.temporal import TRIAGE_TASK_QUEUE
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN, run_until_signalled
from mset_platform.process import refusing_to_start
from mset_platform.temporal import connect, run_worker
from services.triage.activities import TriageActivities
from services.triage.domain import Triage
from services.triage.ruleset_config import RulesetConfigError
from services.triage.settings import TriageSettings


def build_worker(client: Client, triage: Triage) -> Worker:
    acts = TriageActivities(triage)
    return Worker(
        client,
        task_queue=TRIAGE_TASK_QUEUE,
        activities=[acts.evaluate],
        graceful_shutdown_timeout=WORKER_GRACEFUL_SHUTDOWN,
    )


async def run(settings: TriageSettings, triage: Triage) -> None:
    await run_until_signalled(build_worker(await connect(settings), triage))


def main() -> None:
    with refusing_to_start("triage worker", RulesetConfigError):
        settings = TriageSettings()
        # The rules are loaded and checked before connecting: a bad file stops the worker.
        triage = Triage.from_directory(settings.rules_directory(), settings.default_ruleset_version)
    run_worker("triage worker", settings, partial(run, triage=triage))


if __name__ == "__main__":
    main()
