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

Each record is processed in a consumer span that continues the trace the event was
published in (its ``traceparent``, mset_platform.tracing), so the inbox item or delivery a
request led to is in that request's trace. The item and the delivery keep that span's
``traceparent``: the re-escalation workflow started for the item and each POST of the
delivery, done later on other loops, are in the same trace.

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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from opentelemetry.trace import SpanKind
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
    trace_context,
)
from mset_contract.vocab import Role
from mset_platform.tracing import context_from, current_span, current_traceparent, tracer
from services.notifications.broker import Broker
from services.notifications.domain import (
    UnresolvableTarget,
    compose_email,
    delivery_id,
    email_id,
    inbox_item_id,
    resolve_targets,
    webhook_agencies,
)
from services.notifications.kafka_clients import close_consumer
from services.notifications.metrics import DEAD_LETTERED
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
        store: Store | None = None,
    ) -> None:
        """With a ``store``, every event the consumer is done with (acted on, skipped or
        dead-lettered) is recorded as handled before its offset is committed: the outbox
        relay's measure of what every group has seen."""
        self.handler = handler
        self.broker = broker
        self.s = settings
        self.stop = stop
        self.store = store
        # The events topic's id when this consumer last checked: a new id means the topic was
        # created again (the broker lost its records) and every position in it is stale.
        self.topic_id: uuid.UUID | None = None
        self.polling_since: float | None = None  # read by the watchdog
        self.assignment: set[TopicPartition] = set()
        self.stuck = False
        self.stats = ConsumerStats()
        self.assigned = threading.Event()  # set once the group gave this consumer partitions
        # Shutdown: ``draining`` asks the loop to say when it has caught up (``drained``).
        self.draining = threading.Event()
        self.drained = threading.Event()
        self.thread = threading.Thread(
            target=self.run, name=f"consumer-{handler.name}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        pause = 0.5
        while not self.stop.is_set():
            try:
                self.broker.ensure_topics(force=True)
                consumer = self.broker.consumer(self.handler.name)
            except KafkaError as exc:
                log.warning("%s: broker unavailable (%s); retrying", self.handler.name, exc)
                self.stop.wait(pause)
                pause = min(pause * 2, 10.0)
                continue
            done = threading.Event()
            self.stuck = False
            watchdog = threading.Thread(
                target=self._watch, args=(consumer, done), name=f"watch-{self.handler.name}"
            )
            watchdog.start()
            try:
                self._consume(consumer)
            except Exception as exc:
                if not (isinstance(exc, KafkaError) or self.stuck):
                    raise
                log.warning("%s: consumer failed (%s); reconnecting", self.handler.name, exc)
                self.stop.wait(1.0)
            finally:
                done.set()
                watchdog.join()
                close_consumer(consumer)  # after a failure too: nothing more to save

    def _watch(self, consumer: KafkaConsumer, done: threading.Event) -> None:
        """Close a consumer whose poll stopped returning. After a broker restart kafka-python
        (3.0.12) can wait for ever on a fetch the new broker never answers; closing it fails
        that wait, and ``run`` connects again."""
        while not done.wait(1.0):
            since = self.polling_since
            if since is not None and time.monotonic() - since > self.s.poll_stuck_seconds:
                self.stuck = True
                log.warning(
                    "%s: poll has not returned for %.0f s; reconnecting",
                    self.handler.name,
                    time.monotonic() - since,
                )
                close_consumer(consumer)
                return

    def _consume(self, consumer: KafkaConsumer) -> None:
        pause = 0.5
        next_check = 0.0
        while not self.stop.is_set():
            if time.monotonic() >= next_check:
                self._check_positions(consumer)
                next_check = time.monotonic() + self.s.position_check_seconds
            self.polling_since = time.monotonic()
            try:
                batch = consumer.poll(
                    timeout_ms=self.s.poll_timeout_ms, max_records=self.s.max_poll_records
                )
            finally:
                self.polling_since = None
            assignment = set(consumer.assignment())
            if assignment:
                self.assigned.set()
            if assignment != self.assignment:
                self.assignment = assignment
                for tp in self._stale_commits(consumer, assignment):
                    batch.pop(tp, None)  # read from a stale offset: fetched again from 0
            first = {tp: records[0].offset for tp, records in batch.items() if records}
            next_offset = dict(first)
            failed = False
            seen: list[tuple[uuid.UUID, str]] = []
            for tp, records in batch.items():
                for rec in records:
                    try:
                        event = self._process(rec)
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
                    if event is not None:
                        seen.append((event.id, event.type))
                    next_offset[tp] = rec.offset + 1
                if failed:
                    break
            if seen and self.store is not None:
                try:
                    self.store.mark_seen(self.handler.name, seen)
                except Exception:
                    log.exception(
                        "%s: could not record the events seen; will retry", self.handler.name
                    )
                    next_offset, failed = dict(first), True
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
            elif self.draining.is_set() and _caught_up(consumer):
                self.drained.set()

    def _stale_commits(
        self, consumer: KafkaConsumer, assignment: set[TopicPartition]
    ) -> list[TopicPartition]:
        """Newly assigned partitions whose committed offset was made in an earlier copy of
        the topic (commits name the topic id they were made in): the group resumed from an
        offset that means nothing in this one. Each is rewound to its beginning, and said so.
        """
        topic_id = self._current_topic_id(consumer)
        if topic_id is None:
            return []
        stale: list[TopicPartition] = []
        timeout = self.s.producer_request_timeout_ms
        for tp in sorted(assignment):
            committed = consumer.committed(tp, metadata=True, timeout_ms=timeout)
            if committed is None or not committed.metadata:
                continue
            if committed.metadata != str(topic_id):
                start = consumer.beginning_offsets([tp], timeout_ms=timeout)[tp]
                log.warning(
                    "%s: %s partition %d: offset committed in an earlier copy of the topic; "
                    "position %d reset to %d",
                    self.handler.name,
                    tp.topic,
                    tp.partition,
                    committed.offset,
                    start,
                )
                consumer.seek(tp, start)
                stale.append(tp)
        return stale

    def _current_topic_id(self, consumer: KafkaConsumer) -> uuid.UUID | None:
        # kafka-python keeps topic ids from its metadata; there is no public accessor.
        topic_id: uuid.UUID | None = consumer._client.cluster.topic_id(self.s.events_topic)
        return topic_id

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        # The commit names the topic this consumer was reading (as of its last check, not the
        # newest metadata: the records may have been fetched before a restart), so a group
        # resuming in a topic created again can tell that the offset belongs to the old one.
        meta = str(self.topic_id) if self.topic_id else ""
        try:
            consumer.commit({tp: OffsetAndMetadata(o, meta, -1) for tp, o in offsets.items()})
        except (CommitFailedError, RebalanceInProgressError):
            # The group rebalanced: another member may read the record again; the handled-
            # events table makes that harmless.
            log.info("%s: offset commit lost to a rebalance", self.handler.name)

    def _check_positions(self, consumer: KafkaConsumer) -> None:
        """Rewind deliberately, and say so, when positions no longer mean anything.

        The broker keeps records (and committed offsets) only in memory. After a restart the
        topic is a new one (a new id) whose partitions start again at 0: a position carried
        over would skip every record below it, and one beyond the partition's end would wait
        for records that are never written there (Tansu answers such a fetch with nothing, not
        OffsetOutOfRange). Either way the partition is read again from its beginning; the
        handled-events table turns what was read before into no-ops.
        """
        # kafka-python keeps topic ids from its metadata; ask for fresh metadata for the next
        # check (this consumer's own poll fetches it).
        cluster = consumer._client.cluster  # no public accessor for topic ids
        cluster.request_update()
        topic_id = self._current_topic_id(consumer)
        if self.topic_id is None:
            self.topic_id = topic_id
        tps = list(consumer.assignment())
        if not tps:
            return
        if {tp.partition for tp in tps} - (
            cluster.partitions_for_topic(self.s.events_topic) or set()
        ):
            return  # the topic changed under the assignment: the group rebalances first
        recreated = topic_id is not None and self.topic_id is not None and topic_id != self.topic_id
        if topic_id is not None and recreated:
            self.topic_id = topic_id
        timeout = self.s.producer_request_timeout_ms
        stale: dict[TopicPartition, tuple[int, int | None]] = {}
        for tp in sorted(tps):
            position = consumer.position(tp, timeout_ms=timeout)
            # The end is the high watermark of the last fetch response: Tansu's ListOffsets
            # (end_offsets) answers the base offset of the last batch, not the next offset.
            end = consumer.highwater(tp)
            if position is not None and (recreated or (end is not None and position > end)):
                stale[tp] = (position, end)
        if not stale:
            return
        begins = consumer.beginning_offsets(list(stale), timeout_ms=timeout)
        for tp, (position, end) in stale.items():
            log.warning(
                "%s: %s partition %d: %s; position %d reset to %d (end %s)",
                self.handler.name,
                tp.topic,
                tp.partition,
                "the topic was created again" if recreated else "offset beyond the end",
                position,
                begins[tp],
                end,
            )
            consumer.seek(tp, begins[tp])

    def _process(self, rec: ConsumerRecord) -> MsetEvent | None:
        """Do the record's work, in a span of the trace the event was published in; return
        its event (None for what was not a valid event)."""
        # Ids, names and positions only (mset_platform.tracing): never the event's data.
        with tracer().start_as_current_span(
            f"process {rec.topic}",
            context=context_from(trace_context(rec.headers)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": rec.topic,
                "messaging.destination.partition.id": str(rec.partition),
                "messaging.kafka.offset": rec.offset,
                "messaging.consumer.group.name": self.handler.name,
            },
        ) as span:
            event = self._process_in_span(rec)
            if event is not None:
                span.set_attribute("messaging.message.id", str(event.id))
                span.set_attribute("cloudevents.event_type", event.type)
            return event

    def _process_in_span(self, rec: ConsumerRecord) -> MsetEvent | None:
        try:
            event = from_kafka(rec.headers, rec.key, rec.value)
        except EventRejected as exc:
            self._dead_letter(rec, exc.reason)
            return None
        if not self.handler.wants(event):
            self.stats.skipped += 1
            return event
        try:
            self.handler.handle(event)
        except Rejected as exc:
            self._dead_letter(rec, str(exc))
            return event
        self.stats.handled += 1
        return event

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
        if self.store is not None:
            # Counted for the ops dashboard. The message is on the dead-letter topic already:
            # a database error here must not hold the group back, so it is only logged.
            ce_type = dict(kept).get("ce_type")
            try:
                self.store.record_dead_letter(
                    self.handler.name, ce_type.decode("utf-8", "replace")[:120] if ce_type else None
                )
            except Exception:
                log.exception("%s: could not count a dead letter", self.handler.name)
        DEAD_LETTERED.labels(self.handler.name).inc()
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
        traceparent = current_traceparent()  # the re-escalation timer starts in this trace

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
                        target_authority=t.authority,
                        reescalation_of=event.reescalation_of,
                        line_step=event.line_step,
                        created_at=now,
                        traceparent=traceparent,
                    )
                )

        if once(self.store, self.name, event, work):
            # Which items this span wrote: how a trace leads to an item (opaque ids).
            current_span().set_attribute(
                "mset.inbox.item_ids",
                [str(inbox_item_id(event.id, i)) for i in range(len(targets))],
            )


class WebhookHandler:
    name = "webhooks"

    def __init__(self, store: Store) -> None:
        self.store = store

    def wants(self, event: MsetEvent) -> bool:
        return True

    def handle(self, event: MsetEvent) -> None:
        # A partner hears only of its own referrals (the agency that submitted the case) and
        # of the actions it owns.
        agencies = webhook_agencies(event)
        with self.store.session() as s:
            wanted = {
                sub.id
                for agency_id in agencies
                for sub in self.store.subscriptions_of(s, agency_id)
                if event.type in sub.event_types
            }
        if not wanted:
            return  # nothing to do, so nothing to record (most events, for most agencies)
        now = now_utc()
        body = to_structured_json(event).decode("utf-8")
        traceparent = current_traceparent()  # each POST is a span of this trace

        def work(s: Session) -> None:
            subs = [sub for a in agencies for sub in self.store.subscriptions_of(s, a)]
            for sub in subs:
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
                        traceparent=traceparent,
                    )
                )

        if once(self.store, self.name, event, work):
            current_span().set_attribute(
                "mset.webhook.delivery_ids",
                [str(delivery_id(event.id, s)) for s in sorted(wanted, key=str)],
            )


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


def _caught_up(consumer: KafkaConsumer) -> bool:
    # Tansu reports a partition's end offset up to one short (docs/architecture.md §5), so
    # caught up is position >= end.
    parts = list(consumer.assignment())
    if not parts:
        return False
    end = consumer.end_offsets(parts)
    return all(consumer.position(tp) >= end[tp] for tp in parts)


def drain(loops: list[ConsumerLoop], timeout: float) -> bool:
    """Until every consumer has read and committed everything on its partitions, or
    ``timeout`` s (a consumer that cannot reach the broker cannot drain). True if all did."""
    for loop in loops:
        loop.draining.set()
    deadline = time.monotonic() + timeout
    return all(
        loop.drained.wait(max(0.0, deadline - time.monotonic()))
        for loop in loops
        if loop.thread.is_alive() and loop.assigned.is_set()
    )


def wait_assigned(loops: list[ConsumerLoop], timeout: float) -> bool:
    """Until every consumer has its partitions (tests and the bench use it)."""
    deadline = time.monotonic() + timeout
    for loop in loops:
        if not loop.assigned.wait(max(0.0, deadline - time.monotonic())):
            return False
    return True
