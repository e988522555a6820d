"""The Kafka plumbing of the notifications worker: topics, the one long-lived producer, and
consumer construction. kafka-python 3.x is synchronous and thread-safe: these are called
from sync activities (the worker's thread pool) and consumer threads, never the event loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from kafka.producer.future import FutureRecordMetadata, RecordMetadata

from mset_contract.events import KafkaRecord
from services.notifications.settings import NotificationsSettings

log = logging.getLogger("mset.notifications.broker")


def require_reachable(bootstrap: str, timeout: float) -> None:
    """Raise KafkaConnectionError unless a bootstrap server accepts a TCP connection.

    Checked before a client is built: kafka-python 3.0.12 leaks the socket of a refused
    connection (closed only by the garbage collector), so a worker started, or a producer
    rebuilt, while the broker is down should not let it try.
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return
        except (OSError, ValueError):
            continue
    raise KafkaConnectionError(f"no broker accepts connections at {bootstrap}")


class Broker:
    def __init__(self, settings: NotificationsSettings, client_id: str = "mset-notifications"):
        self.s = settings
        self.client_id = client_id
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._topics_ready = False

    # Topics -------------------------------------------------------------------------------

    def ensure_topics(self) -> None:
        """Create the events and dead-letter topics if absent. Tansu has no CreatePartitions,
        so the partition count is fixed here, at creation."""
        if self._topics_ready:
            return
        require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
        admin = KafkaAdminClient(
            bootstrap_servers=self.s.broker,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self.s.producer_request_timeout_ms,
            bootstrap_timeout_ms=self.s.producer_max_block_ms,
        )
        try:
            existing = set(admin.list_topics())
            wanted = [
                NewTopic(self.s.events_topic, self.s.topic_partitions, 1),
                NewTopic(self.s.dead_letter_topic, 1, 1),
            ]
            for topic in wanted:
                if topic.name in existing:
                    continue
                try:
                    admin.create_topics([topic])
                    log.info("created topic %s (%d partitions)", topic.name, topic.num_partitions)
                except TopicAlreadyExistsError:
                    pass  # another worker created it first
        finally:
            admin.close()
        self._topics_ready = True

    # Producer -----------------------------------------------------------------------------

    def producer(self) -> KafkaProducer:
        """The process's producer, created on first use (so the worker starts while the
        broker is still down) and replaced after a failure."""
        with self._lock:
            if self._producer is None:
                require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
                self._producer = KafkaProducer(
                    bootstrap_servers=self.s.broker,
                    client_id=self.client_id,
                    # Every in-sync replica has it before we say "published"; the idempotent
                    # producer's own retries never write a record twice.
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=0,
                    # Bounded: the activity fails inside its timeout and Temporal retries it.
                    delivery_timeout_ms=self.s.producer_delivery_timeout_ms,
                    request_timeout_ms=self.s.producer_request_timeout_ms,
                    max_block_ms=self.s.producer_max_block_ms,
                    bootstrap_timeout_ms=self.s.producer_max_block_ms,
                )
            return self._producer

    def reset_producer(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception:  # it is being discarded because it failed
                log.debug("closing a failed producer", exc_info=True)

    def send_all(self, topic: str, records: Sequence[KafkaRecord]) -> list[RecordMetadata]:
        """Send in order and wait until the broker acknowledged every record; raise if not."""
        try:
            self.ensure_topics()
            producer = self.producer()
            futures: list[FutureRecordMetadata] = [
                producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
            ]
            producer.flush(timeout=self.s.producer_delivery_timeout_ms / 1000)
            timeout = self.s.producer_delivery_timeout_ms / 1000
            return [f.get(timeout=timeout) for f in futures]
        except KafkaError:
            # A producer that failed mid-send may hold a stale producer id or sequence: start
            # the next attempt with a fresh one (the consumers drop any duplicate by event id).
            self.reset_producer()
            raise

    # Consumers ----------------------------------------------------------------------------

    def consumer(self, group: str) -> KafkaConsumer:
        require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
        consumer = KafkaConsumer(
            bootstrap_servers=self.s.broker,
            client_id=f"{self.client_id}-{group}",
            group_id=f"{self.s.consumer_group_prefix}.{group}",
            # Offsets are committed by hand, after the work is in the database.
            enable_auto_commit=False,
            # A new group reads from the beginning: nothing published before it joined is lost.
            auto_offset_reset="earliest",
            session_timeout_ms=self.s.session_timeout_ms,
            heartbeat_interval_ms=self.s.heartbeat_interval_ms,
            max_poll_interval_ms=self.s.max_poll_interval_ms,
            max_poll_records=self.s.max_poll_records,
            fetch_max_wait_ms=self.s.fetch_max_wait_ms,
            request_timeout_ms=max(30_000, self.s.session_timeout_ms + 5_000),
            bootstrap_timeout_ms=self.s.producer_max_block_ms,
        )
        consumer.subscribe([self.s.events_topic])
        return consumer

    def close(self) -> None:
        self.reset_producer()
