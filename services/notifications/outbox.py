"""The event outbox relay: what makes a broker restart lose nothing.

The broker keeps records only in memory: an event it acknowledged but no consumer had read
yet dies with it. The publish activity therefore records every event in the outbox table
(the system of record) before sending it, and each consumer group records every event it is
done with in the handled-events table, before committing its offset. This relay, on its own
thread in the worker that hosts the publish activity:

1. checks the topics (``Broker.ensure_topics``: created again, with their partition counts,
   if the broker lost them) and notes the events topic's id;
2. settles the events every consumer group has recorded (the watermark: nothing settled is
   ever sent again);
3. when the topic's id differs from the one it last saw (the topic was created again, so
   every record in the old one is gone), sends again, oldest first, every event not settled;
   the consumers drop by event id whatever they had handled, so nothing is handled twice;
4. sends events the broker never acknowledged whose own activity stopped retrying (the
   workflow was terminated, say), and prunes settled events after a while.

Re-sent events go to the end of their partitions, after newer ones: the consumers act on
each event alone, so the order between a case's events is not relied on.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from kafka.errors import KafkaError

from mset_contract.events import from_structured_json, structured_trace_context, to_kafka
from services.notifications.broker import Broker
from services.notifications.polling import PollingLoop
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store, now_utc

log = logging.getLogger("mset.notifications.outbox")

BATCH = 100


class OutboxRelay(PollingLoop):
    name = "outbox-relay"

    def __init__(
        self, broker: Broker, store: Store, settings: NotificationsSettings, stop: threading.Event
    ) -> None:
        super().__init__(stop, settings.outbox_relay_seconds)
        self.broker = broker
        self.store = store
        self.s = settings
        self.resent = 0

    def failed(self, exc: Exception) -> None:
        if isinstance(exc, KafkaError):
            log.warning("outbox relay: broker unavailable (%s); retrying", exc)
        else:
            super().failed(exc)

    def tick(self) -> int:
        topic = self.s.events_topic
        topic_id = self.broker.ensure_topics(force=True)
        while self.store.settle_outbox(self.s.outbox_consumer_groups):
            pass
        last = self.store.outbox_topic_id(topic)
        if last is not None and last != topic_id:
            log.warning(
                "outbox relay: topic %s was created again (id %s, was %s): the broker lost "
                "its records; sending again every event not handled by every consumer group",
                topic,
                topic_id,
                last,
            )
            sent = self._resend()
            log.warning("outbox relay: sent %d events again to %s", sent, topic)
        if last != topic_id:
            # Only once everything was sent again: a failure above retries the whole step.
            self.store.set_outbox_topic_id(topic, topic_id)
            return 0
        cutoff = now_utc() - timedelta(seconds=self.s.outbox_unacknowledged_after_seconds)
        sent = self._resend(recorded_before=cutoff)
        if sent:
            log.warning("outbox relay: sent %d events the broker never acknowledged", sent)
        self.store.prune_outbox(now_utc() - timedelta(days=self.s.outbox_keep_settled_days))
        # Always 0: the relay pauses after every pass (the publisher sends new events itself;
        # this pass only finds what the broker lost or never acknowledged).
        return 0

    def _resend(self, recorded_before: datetime | None = None) -> int:
        after, sent = 0, 0
        while not self.stop.is_set():
            rows = self.store.unsettled_outbox(after, BATCH, recorded_before=recorded_before)
            if not rows:
                break
            records = [
                to_kafka(from_structured_json(body), structured_trace_context(body))
                for body in (r.body.encode("utf-8") for r in rows)
            ]
            self.broker.send_all(self.s.events_topic, records)
            self.store.mark_published([r.event_id for r in rows])
            after = rows[-1].seq
            sent += len(rows)
        self.resent += sent
        return sent
