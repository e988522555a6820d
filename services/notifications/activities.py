"""Activities the notifications service hosts on its own task queue.

``notifications.publish`` is how every workflow puts events on Kafka: synchronous (kafka-
python is), run in the worker's thread pool, one long-lived producer per process with
``acks='all'`` and idempotence. It returns only once the broker acknowledged every event; on
any failure it raises and Temporal retries it, so a broker outage delays events and never
loses them. The event ids come from the workflow (``events.event_id``), so a retry re-sends
the same events, which the consumers drop as duplicates.
"""

from __future__ import annotations

import logging

from kafka.errors import KafkaError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from mset_contract.events import (
    NOTIFICATIONS_PUBLISH_ACTIVITY,
    SOURCE_NOTIFICATIONS,
    Published,
    PublishedEvent,
    PublishEvents,
    ReferralEscalated,
    event_id,
    to_kafka,
)
from mset_contract.triage import AgencyDesignation, EscalationKind, Urgency
from mset_contract.vocab import RiskLevel, Role
from services.notifications.broker import Broker
from services.notifications.domain import next_up_the_line, reescalation_ref
from services.notifications.reescalation_models import (
    REESCALATE_ACTIVITY,
    ReescalateInput,
    ReescalateResult,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import InboxItem, Store, now_utc

log = logging.getLogger("mset.notifications.activities")

MAX_LINE_STEPS = 10


class NotificationActivities:
    def __init__(self, broker: Broker, store: Store, settings: NotificationsSettings) -> None:
        self.broker = broker
        self.store = store
        self.s = settings

    @activity.defn(name=NOTIFICATIONS_PUBLISH_ACTIVITY)
    def publish(self, inp: PublishEvents) -> Published:
        records = [to_kafka(e) for e in inp.events]
        try:
            stored = self.broker.send_all(self.s.events_topic, records)
        except KafkaError as exc:
            # Retryable: Temporal tries again with backoff until the broker is back.
            raise ApplicationError(
                f"the broker did not acknowledge the events ({type(exc).__name__})",
                type="BrokerUnavailable",
            ) from exc
        return Published(
            events=[
                PublishedEvent(
                    id=e.id, type=e.type, topic=m.topic, partition=m.partition, offset=m.offset
                )
                for e, m in zip(inp.events, stored, strict=True)
            ]
        )

    @activity.defn(name=REESCALATE_ACTIVITY)
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
