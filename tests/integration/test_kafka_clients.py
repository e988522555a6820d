"""The notifications worker's Kafka clients leave nothing open when the broker fails them.

kafka-python 3.0.12 leaves sockets and threads behind on three paths (see
services/notifications/kafka_clients.py): a client whose bootstrap times out, a producer
closed while records are pending, a connection refused. A worker meets all three whenever
the broker is slow, down or restarting; each leak is one more socket, or one more thread
reconnecting for ever, until the process ends.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from kafka.errors import KafkaError

from mset_contract.events import high_risk_escalation, to_kafka
from services.notifications.broker import Broker
from services.notifications.settings import NotificationsSettings
from tests.support.broker import TansuBroker


@contextmanager
def nothing_left_open() -> Iterator[None]:
    """Fails if what runs inside leaves a thread running or a socket to the garbage
    collector (which is when an unclosed socket says so)."""
    before = set(threading.enumerate())
    # kafka-python's log records carry its errors, whose tracebacks reach the sockets they
    # failed on: records captured by pytest would keep them from being garbage here.
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        kafka_log.setLevel(level)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    running = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not unclosed, f"sockets left to the garbage collector: {unclosed}"
    assert not running, f"threads left running: {running}"


def settings(broker: str, **kw: object) -> NotificationsSettings:
    tag = uuid4().hex[:8]
    return NotificationsSettings.model_validate(
        {
            "environment": "test",
            "broker": broker,
            "events_topic": f"mset.events.test-{tag}",
            "dead_letter_topic": f"mset.events.test-{tag}.dlq",
            "topic_partitions": 1,
            "consumer_group_prefix": f"test-{tag}",
            **kw,
        }
    )


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a broker too busy to bootstrap a client."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        for conn in accepted:
            conn.close()


def test_clients_whose_bootstrap_times_out_leave_nothing_open(silent_server: str) -> None:
    s = settings(silent_server, producer_max_block_ms=300, producer_request_timeout_ms=300)
    failed: list[str] = []

    def worker() -> None:
        # In a frame of its own, caught without keeping the errors (whose tracebacks would
        # keep the clients reachable): what is left when it returns is garbage.
        broker = Broker(s)
        for name, use in (
            ("producer", broker.producer),
            ("admin", broker.ensure_topics),
            ("consumer", lambda: broker.consumer("inbox")),
        ):
            try:
                use()
            except KafkaError:
                failed.append(name)
        broker.close()

    with nothing_left_open():
        worker()
    assert failed == ["producer", "admin", "consumer"]


@pytest.fixture
def restartable_broker() -> Iterator[TansuBroker]:
    b = TansuBroker()
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_a_producer_whose_broker_died_is_closed_with_its_connections(
    restartable_broker: TansuBroker,
) -> None:
    s = settings(
        restartable_broker.address,
        # Short, so that the send after the kill fails soon; long enough that the first one,
        # to a broker just started on a busy machine, does not.
        producer_max_block_ms=5000,
        producer_request_timeout_ms=5000,
        # Longer than the test: the pending record is still pending when the producer is closed.
        producer_delivery_timeout_ms=30_000,
    )
    event = high_risk_escalation(uuid4(), uuid4(), "northshire", datetime.now(UTC))
    failed = threading.Event()

    def worker() -> None:
        broker = Broker(s)
        broker.send_all(s.events_topic, [to_kafka(event)])
        restartable_broker.kill()
        # Records pending in a producer that reconnects to a port nobody listens on: the
        # next send fails, and the producer is discarded.
        broker.producer().send(s.events_topic, value=b"pending")
        try:
            broker.send_all(s.events_topic, [to_kafka(event)])
        except KafkaError:
            failed.set()
        # A discarded producer left running would go on reconnecting (one refused socket
        # each time): give it the time to.
        time.sleep(1.0)
        broker.close()

    with nothing_left_open():
        worker()
    assert failed.is_set()
