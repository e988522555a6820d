"""The Kafka plumbing of the notifications worker: topics, the one long-lived producer, and
consumer construction. kafka-python 3.x is synchronous and thread-safe: these are called
from sync activities (the worker's thread pool) and consumer threads, never the event loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from kafka.producer.future import FutureRecordMetadata, RecordMetadata
from temporalio import activity

from mset_contract.events import KafkaRecord
from services.notifications.kafka_clients import (
    build,
    close_consumer,
    close_failed_connects,
    close_producer,
)
from services.notifications.settings import NotificationsSettings

log = logging.getLogger("mset.notifications.broker")

# Process-wide, before any client of ours connects: kafka-python 3.0.12 leaves the socket of a
# refused connection open (kafka_clients.py, defect 3), one per reconnection attempt while
# the broker is down.
close_failed_connects()


def require_reachable(bootstrap: str, timeout: float) -> None:
    """Raise KafkaConnectionError unless a bootstrap server accepts a TCP connection.

    Checked before a client is built, so that a worker started, or a producer rebuilt, while
    the broker is down fails at once instead of waiting out the client's bootstrap time-out
    (with its I/O thread started for nothing).
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            if _accepts(host or "127.0.0.1", int(port), timeout):
                return
        except (OSError, ValueError):
            continue
    raise KafkaConnectionError(f"no broker accepts connections at {bootstrap}")


def _accepts(host: str, port: int, timeout: float) -> bool:
    # Not socket.create_connection: it closes its socket on OSError only, and the SDK cancels a
    # thread-pool activity (at a worker's shutdown, say) by raising CancelledError in its
    # thread, mid-connect as likely as anywhere; that socket was left to the garbage collector.
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except OSError:
                continue
            return True
    return False


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """In a thread-pool activity, hold the SDK's cancellation (an exception raised in the
    thread between any two bytecodes) until the block ends: a Kafka client half built or half
    closed would keep its sockets and threads for ever. Only the building and the closing are
    held (the reachability check before a build, and the requests, stay cancellable), so a
    cancellation waits one client's bootstrap time-out at most. Elsewhere (consumers, the
    outbox relay) nothing raises into the thread, and this does nothing."""
    if activity.in_activity():
        with activity.shield_thread_cancel_exception():
            yield
    else:
        yield


class Broker:
    def __init__(self, settings: NotificationsSettings, client_id: str = "mset-notifications"):
        self.s = settings
        self.client_id = client_id
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._admin_lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._topics_ready = False
        self._events_topic_id = ""

    # Topics -------------------------------------------------------------------------------

    def ensure_topics(self, force: bool = False) -> str:
        """Make sure the events and dead-letter topics exist with their partition counts, and
        return the events topic's id (it changes when the topic is created again).

        Checked again after any failure (``send_all`` and the consumers force it), and by the
        outbox relay every second: the broker keeps everything in memory, so after a restart
        both topics are gone. Tansu creates a missing topic on the first produce to it, with
        its default of 4 partitions, and has no CreatePartitions: an events topic with fewer
        partitions than configured was made that way, and is deleted and created again. What
        it held is not lost: the outbox relay re-sends every event not yet handled by every
        consumer group when the topic's id changes.
        """
        with self._admin_lock:
            if self._topics_ready and not force and self._events_topic_id:
                return self._events_topic_id
            try:
                admin = self._admin_client()
                wanted = {self.s.events_topic: self.s.topic_partitions, self.s.dead_letter_topic: 1}
                described = {t["name"]: t for t in admin.describe_topics(list(wanted))}
                for name, count in wanted.items():
                    found = described.get(name)
                    if found is not None and found["error_code"] == 0:
                        have = len(found["partitions"])
                        if have >= count:
                            continue
                        log.warning(
                            "topic %s has %d partitions, not %d: the broker created it on a "
                            "produce after losing its state; creating it again",
                            name,
                            have,
                            count,
                        )
                        try:
                            admin.delete_topics([name])
                        except UnknownTopicOrPartitionError:
                            pass  # another worker deleted it first
                    try:
                        admin.create_topics(
                            [NewTopic(name, count, self.s.topic_replication_factor)]
                        )
                        log.info("created topic %s (%d partitions)", name, count)
                    except TopicAlreadyExistsError:
                        pass  # another worker created it first
                (events,) = admin.describe_topics([self.s.events_topic])
                if events["error_code"] != 0 or not events["topic_id"]:
                    raise KafkaError(f"topic {self.s.events_topic} is not available yet")
            except BaseException:
                # Any failure, a cancellation raised into an activity's thread included: the
                # admin client may be left mid-request, so the next check starts a new one.
                with _uninterrupted():
                    self._close_admin()
                self._topics_ready = False
                raise
            self._events_topic_id = str(events["topic_id"])
            self._topics_ready = True
            return self._events_topic_id

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
            with _uninterrupted():
                self._admin = self._built_admin()
        return self._admin

    def _built_admin(self) -> KafkaAdminClient:
        return build(
            KafkaAdminClient,
            bootstrap_servers=self.s.broker,
            client_id=f"{self.client_id}-admin",
            **self.s.kafka_client_args(),
            request_timeout_ms=self.s.producer_request_timeout_ms,
            bootstrap_timeout_ms=self.s.producer_max_block_ms,
        )

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # it is being discarded because it failed
                log.debug("closing a failed admin client", exc_info=True)

    # Producer -----------------------------------------------------------------------------

    def producer(self) -> KafkaProducer:
        """The process's producer, created on first use (so the worker starts while the
        broker is still down) and replaced after a failure."""
        with self._lock:
            if self._producer is None:
                require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
                with _uninterrupted():
                    self._producer = self._built_producer()
            return self._producer

    def _built_producer(self) -> KafkaProducer:
        return build(
            KafkaProducer,
            bootstrap_servers=self.s.broker,
            client_id=self.client_id,
            **self.s.kafka_client_args(),
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

    def reset_producer(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            # Held as a whole (a producer half closed keeps its sender thread), and outside the
            # ``except``: a cancellation raised at the end must reach the activity.
            with _uninterrupted():
                try:
                    close_producer(producer, timeout=1)
                except Exception:  # it is being discarded because it failed
                    log.warning("closing a failed producer", exc_info=True)

    def send_all(self, topic: str, records: Sequence[KafkaRecord]) -> list[RecordMetadata]:
        """Send in order and wait until the broker acknowledged every record; raise if not."""
        try:
            # Checked before every batch (one metadata request): after a broker restart the
            # first produce would otherwise create the topic with the broker's default count.
            self.ensure_topics(force=True)
            producer = self.producer()
            futures: list[FutureRecordMetadata] = [
                producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
            ]
            producer.flush(timeout=self.s.producer_delivery_timeout_ms / 1000)
            timeout = self.s.producer_delivery_timeout_ms / 1000
            return [f.get(timeout=timeout) for f in futures]
        except KafkaError:
            # A producer that failed mid-send may hold a stale producer id or sequence: start
            # the next attempt with a fresh one (the consumers drop any duplicate by event id),
            # after checking the topics again (the broker may have restarted without them).
            self._topics_ready = False
            self.reset_producer()
            raise

    # Consumers ----------------------------------------------------------------------------

    def consumer(self, group: str) -> KafkaConsumer:
        require_reachable(self.s.broker, self.s.producer_max_block_ms / 1000)
        consumer = build(
            KafkaConsumer,
            bootstrap_servers=self.s.broker,
            client_id=f"{self.client_id}-{group}",
            **self.s.kafka_client_args(),
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
        try:
            consumer.subscribe([self.s.events_topic])
        except BaseException:
            close_consumer(consumer)
            raise
        return consumer

    def close(self) -> None:
        self.reset_producer()
        with self._admin_lock:
            self._close_admin()
