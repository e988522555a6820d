"""Kafka consumers: each reads the events topic in its own consumer group, on its own thread.

The loop (``ConsumerLoop``) is the same for all of them:

1. validate the record into its event model; what does not validate goes to the dead-letter
   topic with the reason (and the consumer's name) in headers, then its offset is committed;
2. skip event types the consumer does not handle;
3. do the work in one database transaction that also records (consumer, event id) under a
   unique constraint, so a redelivered event changes nothing;
4. commit the record's offset only after that transaction committed. If the work fails
   (database down), the partition is rewound to the record and tried again after a pause:
   nothing is skipped, nothing is committed that was not done.

The handlers:

- ``InboxHandler``: an escalation becomes one inbox item per target. An urgent item is then
  given a durable re-escalation timer (a Temporal workflow, see reescalation.py) by the
  worker's timer outbox, off the consumer's path: the item row is the outbox.
- ``WebhookHandler``: an event of a partner's own referral, of a type it subscribed to,
  becomes a delivery in the ledger; webhooks.py posts it.
- ``EmailHandler``: an urgent escalation becomes e-mails to the targets' role mailboxes;
  mailer.py sends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mset_contract.events import (
    DLQ_CONSUMER_HEADER,
    DLQ_ORIGIN_HEADER,
    DLQ_REASON_HEADER,
    EventRejected,
    KafkaRecord,
    MsetEvent,
    ReferralEscalated,
    from_kafka,
    to_structured_json,
)
from mset_contract.vocab import Role
from services.notifications.broker import Broker
from services.notifications.domain import (
    UnresolvableTarget,
    compose_email,
    delivery_id,
    email_id,
    inbox_item_id,
    resolve_targets,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    EmailMessage,
    InboxItem,
    Store,
    WebhookDelivery,
    now_utc,
)

log = logging.getLogger("mset.notifications.consumers")


class Rejected(Exception):
    """The event validated but this consumer cannot act on it: dead-letter it."""


class Handler(Protocol):
    name: str

    def wants(self, event: MsetEvent) -> bool: ...

    def handle(self, event: MsetEvent) -> None: ...


def once(store: Store, consumer: str, event: MsetEvent, work: Callable[[Session], None]) -> bool:
    """Run ``work`` and record the event as handled, in one transaction. False when the
    event was handled before (now, or by a concurrent copy: the unique constraint decides)."""
    try:
        with store.session() as s:
            if store.handled(s, consumer, event.id):
                return False
            store.mark_handled(s, consumer, event.id, event.type)
            work(s)
    except IntegrityError:
        with store.session() as s:
            if store.handled(s, consumer, event.id):
                return False
        raise
    return True


# --- the loop ----------------------------------------------------------------------------


@dataclass
class ConsumerStats:
    handled: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    retries: int = 0


class ConsumerLoop:
    def __init__(
        self,
        handler: Handler,
        broker: Broker,
        settings: NotificationsSettings,
        stop: threading.Event,
    ) -> None:
        self.handler = handler
        self.broker = broker
        self.s = settings
        self.stop = stop
        self.stats = ConsumerStats()
        self.assigned = threading.Event()  # set once the group gave this consumer partitions
        self.thread = threading.Thread(
            target=self.run, name=f"consumer-{handler.name}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        pause = 0.5
        while not self.stop.is_set():
            try:
                self.broker.ensure_topics()
                consumer = self.broker.consumer(self.handler.name)
            except KafkaError as exc:
                log.warning("%s: broker unavailable (%s); retrying", self.handler.name, exc)
                self.stop.wait(pause)
                pause = min(pause * 2, 10.0)
                continue
            try:
                self._consume(consumer)
            except KafkaError as exc:
                log.warning("%s: consumer failed (%s); reconnecting", self.handler.name, exc)
                self.stop.wait(1.0)
            finally:
                try:
                    consumer.close(autocommit=False)
                except Exception:  # closing after a failure: nothing more to save
                    log.debug("closing consumer", exc_info=True)

    def _consume(self, consumer: KafkaConsumer) -> None:
        pause = 0.5
        while not self.stop.is_set():
            batch = consumer.poll(
                timeout_ms=self.s.poll_timeout_ms, max_records=self.s.max_poll_records
            )
            if consumer.assignment():
                self.assigned.set()
            first = {tp: records[0].offset for tp, records in batch.items() if records}
            next_offset = dict(first)
            failed = False
            for tp, records in batch.items():
                for rec in records:
                    try:
                        self._process(rec)
                    except Exception:
                        log.exception(
                            "%s: could not process %s/%d/%d; will retry",
                            self.handler.name,
                            rec.topic,
                            rec.partition,
                            rec.offset,
                        )
                        failed = True
                        break
                    next_offset[tp] = rec.offset + 1
                if failed:
                    break
            # One commit per batch, covering only records whose work is in the database: a
            # crash before it redelivers at most one batch, which the handled-events table
            # turns into no-ops. (A commit per record costs a broker round trip each, which
            # under load made the consumer fall behind.)
            done = {tp: o for tp, o in next_offset.items() if o > first[tp]}
            if done:
                self._commit(consumer, done)
            if failed:
                # Rewind every partition of the batch to its first record not yet done, so
                # nothing fetched and left undone is skipped.
                for tp, offset in next_offset.items():
                    consumer.seek(tp, offset)
                self.stats.retries += 1
                self.stop.wait(pause)
                pause = min(pause * 2, 30.0)
            elif batch:
                pause = 0.5

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except CommitFailedError:
            # The group rebalanced: another member may read the record again; the handled-
            # events table makes that harmless.
            log.info("%s: offset commit lost to a rebalance", self.handler.name)

    def _process(self, rec: ConsumerRecord) -> None:
        try:
            event = from_kafka(rec.headers, rec.key, rec.value)
        except EventRejected as exc:
            self._dead_letter(rec, exc.reason)
            return
        if not self.handler.wants(event):
            self.stats.skipped += 1
            return
        try:
            self.handler.handle(event)
        except Rejected as exc:
            self._dead_letter(rec, str(exc))
            return
        self.stats.handled += 1

    def _dead_letter(self, rec: ConsumerRecord, reason: str) -> None:
        origin = f"{rec.topic}/{rec.partition}/{rec.offset}"
        kept = [
            (k, v)
            for k, v in (rec.headers or [])
            if isinstance(k, str) and isinstance(v, bytes) and not k.startswith("mset_dlq_")
        ]
        record = KafkaRecord(
            key=rec.key or b"",
            value=rec.value or b"",
            headers=[
                *kept,
                (DLQ_REASON_HEADER, reason.encode("utf-8")),
                (DLQ_CONSUMER_HEADER, self.handler.name.encode("utf-8")),
                (DLQ_ORIGIN_HEADER, origin.encode("utf-8")),
            ],
        )
        # Wait for the broker's acknowledgement before the offset moves past the original.
        self.broker.send_all(self.s.dead_letter_topic, [record])
        self.stats.dead_lettered += 1
        log.warning("%s: dead-lettered %s: %s", self.handler.name, origin, reason)


# --- handlers ----------------------------------------------------------------------------


class InboxHandler:
    name = "inbox"

    def __init__(self, store: Store) -> None:
        self.store = store

    def wants(self, event: MsetEvent) -> bool:
        return isinstance(event, ReferralEscalated)

    def handle(self, event: MsetEvent) -> None:
        assert isinstance(event, ReferralEscalated)
        try:
            targets = resolve_targets(event)
        except UnresolvableTarget as exc:
            raise Rejected(str(exc)) from None
        now = now_utc()

        def work(s: Session) -> None:
            for i, t in enumerate(targets):
                s.add(
                    InboxItem(
                        id=inbox_item_id(event.id, i),
                        event_id=event.id,
                        case_id=event.subject,
                        referrer_agency_id=event.referrer_agency_id,
                        local_authority=event.local_authority,
                        kind=event.kind.value,
                        urgency=event.urgency.value,
                        level=event.level.value if event.level else None,
                        rule=event.rule,
                        ruleset_version=event.ruleset_version,
                        fired_rules=list(event.fired_rules),
                        about=event.about,
                        due_at=event.due_at,
                        deadline=event.deadline,
                        designation=t.designation.value,
                        agency_ref=t.agency_ref,
                        target_role=t.role.value if t.role else None,
                        target_agency_id=t.agency_id,
                        target_agency_type=t.agency_type.value if t.agency_type else None,
                        target_authority=t.authority,
                        reescalation_of=event.reescalation_of,
                        line_step=event.line_step,
                        created_at=now,
                    )
                )

        once(self.store, self.name, event, work)


class WebhookHandler:
    name = "webhooks"

    def __init__(self, store: Store) -> None:
        self.store = store

    def wants(self, event: MsetEvent) -> bool:
        return True

    def handle(self, event: MsetEvent) -> None:
        # A partner hears only of its own referrals: the agency that submitted the case.
        with self.store.session() as s:
            wanted = {
                sub.id
                for sub in self.store.subscriptions_of(s, event.referrer_agency_id)
                if event.type in sub.event_types
            }
        if not wanted:
            return  # nothing to do, so nothing to record (most events, for most agencies)
        now = now_utc()
        body = to_structured_json(event).decode("utf-8")

        def work(s: Session) -> None:
            for sub in self.store.subscriptions_of(s, event.referrer_agency_id):
                if event.type not in sub.event_types:
                    continue
                s.add(
                    WebhookDelivery(
                        id=delivery_id(event.id, sub.id),
                        subscription_id=sub.id,
                        event_id=event.id,
                        event_type=event.type,
                        case_id=event.subject,
                        body=body,
                        # A parked subscription keeps its deliveries, held until resumed.
                        status="pending" if sub.status == "active" else "held",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )

        once(self.store, self.name, event, work)


class EmailHandler:
    name = "email"

    def __init__(self, store: Store, settings: NotificationsSettings) -> None:
        self.store = store
        self.s = settings

    def wants(self, event: MsetEvent) -> bool:
        return isinstance(event, ReferralEscalated) and event.urgency in self.s.email_urgencies

    def handle(self, event: MsetEvent) -> None:
        assert isinstance(event, ReferralEscalated)
        now = now_utc()

        def work(s: Session) -> None:
            for i, ref in enumerate(event.notify):
                role: Role | None = ref.role
                address = self.s.email_recipients.get(role) if role else None
                if role is None or not address:
                    continue
                item = inbox_item_id(event.id, i)
                subject, body = compose_email(
                    event.kind.value,
                    event.urgency.value,
                    role,
                    event.subject,
                    item,
                    self.s.public_base_url,
                )
                s.add(
                    EmailMessage(
                        id=email_id(event.id, i),
                        event_id=event.id,
                        inbox_item_id=item,
                        recipient=address,
                        subject=subject,
                        body=body,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )

        once(self.store, self.name, event, work)


def wait_assigned(loops: list[ConsumerLoop], timeout: float) -> bool:
    """Until every consumer has its partitions (tests and the bench use it)."""
    deadline = time.monotonic() + timeout
    for loop in loops:
        if not loop.assigned.wait(max(0.0, deadline - time.monotonic())):
            return False
    return True
