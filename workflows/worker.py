"""Runs the workflow worker: the case workflows (``ReferralWorkflow``,
``MissingEpisodeWorkflow``) and the retention sweep (``RetentionSweepWorkflow``) on the
workflows task queue.

The two other workflows in this package stay with the worker of the service whose queue they
run on, because their activities run on that same queue and running ones (and the meeting
schedules' actions) already name it: ``MeetingCycleWorkflow`` on the meeting worker
(``MEETING_TASK_QUEUE``), ``InboxReescalationWorkflow`` on the notifications worker
(``NOTIFICATIONS_TASK_QUEUE``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from temporalio.client import Client
from temporalio.worker import Worker

from mset_contract.temporal import WORKFLOWS_TASK_QUEUE
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN, run_until_signalled
from mset_platform.settings import ServiceSettings
from mset_platform.temporal import connect, worker_main
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow
from workflows.retention import RetentionSweepWorkflow

ALL_WORKFLOWS = [ReferralWorkflow, MissingEpisodeWorkflow, RetentionSweepWorkflow]


class WorkflowWorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_WORKFLOWS_")


def build_worker(client: Client, task_queue: str = WORKFLOWS_TASK_QUEUE) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        graceful_shutdown_timeout=WORKER_GRACEFUL_SHUTDOWN,
    )


async def run(settings: WorkflowWorkerSettings) -> None:
    await run_until_signalled(build_worker(await connect(settings)))


def main() -> None:
    worker_main("workflows worker", WorkflowWorkerSettings, run)


if __name__ == "__main__":
    main()
