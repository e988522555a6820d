"""Activities the notifications service hosts on its own task queue.

``notifications.publish`` is how every workflow puts events on Kafka: synchronous (kafka-
python is), run in the worker's thread pool, one long-lived producer per process with
``acks='all'`` and idempotence. It returns only once the broker acknowledged every event; on
any failure it raises and Temporal retries it, so a broker outage delays events and never
loses them. The event ids come from the workflow (``events.event_id``), so a retry re-sends
the same events, which the consumers drop as duplicates.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kafka.errors import KafkaError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from mset_contract.events import (
    SOURCE_NOTIFICATIONS,
    Published,
    PublishedEvent,
    PublishEvents,
    ReferralEscalated,
    event_id,
    to_kafka,
    to_structured_json,
)
from mset_contract.notifications import ReescalateInput, ReescalateResult
from mset_contract.temporal import NOTIFICATIONS_PUBLISH_ACTIVITY, NOTIFICATIONS_REESCALATE_ACTIVITY
from mset_contract.triage import AgencyDesignation, EscalationKind, Urgency
from mset_contract.vocab import RiskLevel, Role
from mset_platform.tracing import current_trace_context
from services.notifications.broker import Broker
from services.notifications.domain import next_up_the_line, reescalation_ref
from services.notifications.metrics import ESCALATIONS_PUBLISHED
from services.notifications.settings import NotificationsSettings
from services.notifications.store import InboxItem, Store, now_utc

log = logging.getLogger("mset.notifications.activities")

MAX_LINE_STEPS = 10


@contextmanager
def heartbeating(every: float) -> Iterator[None]:
    """Heartbeat from a side thread while a sync activity's thread waits on the broker.

    The heartbeat says "this worker is alive", not "the send progresses" (the producer's own
    time-outs and start-to-close bound that): a worker that dies stops heartbeating, and the
    batch is retried within the heartbeat timeout. The activity's context is a context
    variable, so the side thread runs in a copy of it.
    """
    stop = threading.Event()
    ctx = contextvars.copy_context()

    def beat() -> None:
        while True:
            try:
                ctx.run(activity.heartbeat)
            except Exception:
                # The worker is going away (its event loop no longer answers: the SDK's
                # hand-over times out). Nothing to tell it: with no heartbeat the server
                # retries the batch on another worker, as after a kill, and the outbox makes
                # a resend harmless. Raising here would only be an unhandled thread error.
                log.info("heartbeat not delivered; the worker is stopping", exc_info=True)
                return
            if stop.wait(every):
                return

    thread = threading.Thread(target=beat, name="publish-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class NotificationActivities:
    def __init__(self, broker: Broker, store: Store, settings: NotificationsSettings) -> None:
        self.broker = broker
        self.store = store
        self.s = settings

    @activity.defn(name=NOTIFICATIONS_PUBLISH_ACTIVITY)
    def publish(self, inp: PublishEvents) -> Published:
        # The trace this activity runs in (the workflow's, and so the request's that started
        # it) travels with each event, for the consumers to continue (mset_platform.tracing).
        trace = current_trace_context()
        # The outbox first: once an event is recorded there it survives the broker losing it
        # (the relay sends again what no consumer group had handled, in the same trace). A
        # retried activity finds its events already recorded.
        self.store.record_outbox(
            [(e.id, e.type, to_structured_json(e, trace).decode("utf-8")) for e in inp.events]
        )
        records = [to_kafka(e, trace) for e in inp.events]
        try:
            with heartbeating(every=1.0):
                stored = self.broker.send_all(self.s.events_topic, records)
        except KafkaError as exc:
            # Retryable: Temporal tries again with backoff until the broker is back.
            raise ApplicationError(
                f"the broker did not acknowledge the events ({type(exc).__name__})",
                type="BrokerUnavailable",
            ) from exc
        self.store.mark_published([e.id for e in inp.events])
        for e in inp.events:
            if isinstance(e, ReferralEscalated):
                ESCALATIONS_PUBLISHED.labels(e.kind.value, e.urgency.value).inc()
        return Published(
            events=[
                PublishedEvent(
                    id=e.id, type=e.type, topic=m.topic, partition=m.partition, offset=m.offset
                )
                for e, m in zip(inp.events, stored, strict=True)
            ]
        )

    @activity.defn(name=NOTIFICATIONS_REESCALATE_ACTIVITY)
    def reescalate(self, inp: ReescalateInput) -> ReescalateResult:
        with self.store.session() as s:
            item = s.get(InboxItem, inp.item_id, with_for_update=True)
            if item is None:
                return ReescalateResult(outcome="not_found")
            if item.acknowledged_at is not None or item.actioned_at is not None:
                return ReescalateResult(outcome="acknowledged")
            role = Role(item.target_role) if item.target_role else None
            next_role = next_up_the_line(role, self.s.reescalation_ladder)
            if next_role is None or item.line_step >= MAX_LINE_STEPS:
                return ReescalateResult(outcome="top_of_line")
            if item.reescalated_at is None:
                item.reescalated_at = now_utc()
            event = ReferralEscalated(
                # Same workflow, same id: a retried activity re-sends the same event.
                id=event_id(inp.workflow_id, "reescalate"),
                source=SOURCE_NOTIFICATIONS,
                time=item.reescalated_at,
                subject=item.case_id,
                referrer_agency_id=item.referrer_agency_id,
                local_authority=item.local_authority,
                kind=EscalationKind(item.kind),
                urgency=Urgency(item.urgency),
                notify=[
                    reescalation_ref(
                        AgencyDesignation(item.designation), item.agency_ref, next_role
                    )
                ],
                rule=item.rule,
                ruleset_version=item.ruleset_version,
                fired_rules=item.fired_rules,
                level=RiskLevel(item.level) if item.level else None,
                about=item.about,
                due_at=item.due_at,
                deadline=item.deadline,
                reescalation_of=item.id,
                line_step=item.line_step + 1,
            )
        log.info("inbox item %s unacknowledged: re-escalating to %s", item.id, next_role.value)
        return ReescalateResult(outcome="reescalated", event=event)
