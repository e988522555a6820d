"""The notifications worker process: the Temporal worker (publish activity, re-escalation
workflow and activity), the timer outbox (a task on its event loop that starts an urgent
item's re-escalation workflow) and, on threads beside them, the three Kafka consumers (inbox,
webhooks, e-mail), the two outbox dispatchers (webhook deliveries, e-mail) and the event
outbox relay (outbox.py). One process, so ``deploy/stack.py`` starts it as it starts every
service's worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Worker

from mset_contract.notifications import ReescalationInput
from mset_contract.temporal import (
    NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
    inbox_reescalation_workflow_id,
)
from mset_platform.graceful import WORKER_GRACEFUL_SHUTDOWN
from mset_platform.temporal import connect, worker_main
from mset_platform.tracing import continued
from services.notifications.activities import NotificationActivities
from services.notifications.broker import Broker
from services.notifications.consumers import (
    ConsumerLoop,
    EmailHandler,
    Handler,
    InboxHandler,
    WebhookHandler,
    drain,
    wait_assigned,
)
from services.notifications.disclosures import DisclosureRelay
from services.notifications.mailer import Mailer
from services.notifications.migrate import MIGRATIONS
from services.notifications.outbox import OutboxRelay
from services.notifications.retention import NotificationsRetentionActivities
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store
from services.notifications.webhooks import WebhookDispatcher
from workflows.inbox_reescalation import InboxReescalationWorkflow

log = logging.getLogger("mset.notifications.worker")


class TimerOutbox:
    """Gives each urgent, unacknowledged inbox item its re-escalation workflow.

    The inbox consumer only writes the item (its ``timer_started_at`` is empty: the row is
    the outbox); this task, on the worker's event loop, starts the workflow and marks the
    item. A crash between the two is harmless: the workflow id comes from the item id, so a
    second start joins the first.
    """

    def __init__(
        self, client: Client, store: Store, settings: NotificationsSettings, stop: threading.Event
    ) -> None:
        self.client = client
        self.store = store
        self.s = settings
        self.stop = stop
        self.urgencies = sorted(u.value for u in settings.reescalate_urgencies)

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                started = await self.tick()
            except Exception:
                log.exception("re-escalation timers: tick failed; retrying")
                started = 0
            if not started:
                await asyncio.sleep(self.s.dispatch_poll_seconds)

    async def tick(self) -> int:
        due = await asyncio.to_thread(self._due)
        for item_id, traceparent in due:
            # In the trace the item was written in: the interceptor's StartWorkflow span (and
            # so the workflow, and a re-escalation it publishes) is a child of the consumer's.
            with continued(traceparent):
                await self._start(item_id)
            await asyncio.to_thread(self._mark, item_id)
        return len(due)

    def _due(self) -> list[tuple[uuid.UUID, str | None]]:
        with self.store.session() as s:
            return self.store.items_awaiting_timer(s, self.urgencies, 50)

    def _mark(self, item_id: uuid.UUID) -> None:
        with self.store.session() as s:
            self.store.mark_timer_started(s, item_id)

    async def _start(self, item_id: uuid.UUID) -> None:
        try:
            await self.client.start_workflow(
                NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
                ReescalationInput(item_id=item_id, after_seconds=self.s.reescalate_after_seconds),
                id=inbox_reescalation_workflow_id(item_id),
                task_queue=self.s.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # it ran and finished: this item's timer is done


class NotificationsWorker:
    """Everything the worker process runs, as one async context manager (tests use it too)."""

    def __init__(
        self,
        settings: NotificationsSettings,
        store: Store,
        client: Client,
        consumers: tuple[str, ...] = ("inbox", "webhooks", "email"),
        host_activities: bool = True,
    ) -> None:
        """``consumers``: which Kafka consumers to run (each with its outbox dispatcher);
        ``host_activities``: whether to host the Temporal worker (publish activity,
        re-escalation timers) too. The worker process runs everything; tests, or a split
        deployment, may run a part."""
        self.s = settings
        self.store = store
        self.client = client
        self.stop = threading.Event()
        self.broker = Broker(settings)
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="activity")
        self.activities = NotificationActivities(self.broker, store, settings)
        self.worker: Worker | None = None
        if host_activities:
            self.worker = Worker(
                client,
                task_queue=settings.task_queue,
                workflows=[InboxReescalationWorkflow],
                activities=[
                    self.activities.publish,
                    self.activities.reescalate,
                    NotificationsRetentionActivities(store, client).erase,
                ],
                activity_executor=self.executor,
                graceful_shutdown_timeout=WORKER_GRACEFUL_SHUTDOWN,
            )
        self.wanted = consumers
        self.loops: list[ConsumerLoop] = []
        self.timer_task: asyncio.Task[None] | None = None
        self.dispatchers: list[WebhookDispatcher | Mailer | OutboxRelay | DisclosureRelay] = []
        if host_activities:
            # Beside the publish activity that fills the outbox.
            self.relay: OutboxRelay | None = OutboxRelay(self.broker, store, settings, self.stop)
            self.dispatchers.append(self.relay)
        else:
            self.relay = None
        # This service's disclosures, relayed to the information-sharing ledger.
        self.dispatchers.append(DisclosureRelay(store, settings, self.stop))
        if "webhooks" in consumers:
            self.dispatchers.append(WebhookDispatcher(store, settings, self.stop))
        if "email" in consumers:
            self.dispatchers.append(Mailer(store, settings, self.stop))

    def _handlers(self) -> list[Handler]:
        available: dict[str, Handler] = {
            "inbox": InboxHandler(self.store),
            "webhooks": WebhookHandler(self.store),
            "email": EmailHandler(self.store, self.s),
        }
        return [available[name] for name in self.wanted]

    async def __aenter__(self) -> NotificationsWorker:
        self.loops = [
            ConsumerLoop(h, self.broker, self.s, self.stop, self.store) for h in self._handlers()
        ]
        for c in self.loops:
            c.start()
        for d in self.dispatchers:
            d.start()
        if "inbox" in self.wanted:
            timers = TimerOutbox(self.client, self.store, self.s, self.stop)
            self.timer_task = asyncio.create_task(timers.run(), name="reescalation-timers")
        if self.worker is not None:
            await self.worker.__aenter__()
        return self

    async def wait_ready(self, within_seconds: float = 30.0) -> bool:
        """Until every consumer has joined its group and holds partitions."""
        return await asyncio.to_thread(wait_assigned, self.loops, within_seconds)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shutdown order: stop producing (the Temporal worker finishes the publish activities
        # it holds, up to its graceful timeout), then let the consumers drain what is on the
        # topic and commit it, then stop them. The broker keeps events in memory: what is
        # published and not consumed when the stack stops would otherwise be lost with it.
        if self.timer_task is not None:
            self.timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.timer_task
        try:
            if self.worker is not None:
                await self.worker.__aexit__(exc_type, exc, tb)
            if exc_type is None:
                await asyncio.to_thread(drain, self.loops, self.s.shutdown_drain_seconds)
        finally:
            self.stop.set()

            def join() -> None:
                for t in [c.thread for c in self.loops] + [d.thread for d in self.dispatchers]:
                    if t.is_alive():
                        t.join(timeout=15)

            await asyncio.to_thread(join)
            self.broker.close()
            self.executor.shutdown(wait=False, cancel_futures=True)


async def run(settings: NotificationsSettings) -> None:
    engine = MIGRATIONS.open(settings.database_url, settings.auto_migrate)
    client = await connect(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        async with NotificationsWorker(settings, Store(engine), client):
            log.info(
                "notifications worker: task queue %s, topic %s on %s",
                settings.task_queue,
                settings.events_topic,
                settings.broker,
            )
            await stopping.wait()
            log.info("stopping")
    finally:
        engine.dispose()


def main() -> None:
    worker_main("notifications worker", NotificationsSettings, run)


if __name__ == "__main__":
    main()
