"""Building and closing kafka-python clients without leaking their sockets or threads.

kafka-python 3.0.12 (pinned in pyproject.toml) leaves a client's resources to the garbage
collector on three paths, each of which our broker code takes. Found with
``PYTHONTRACEMALLOC=20 pytest -W error::ResourceWarning``; the test that catches each is
tests/integration/test_kafka_clients.py. Delete a workaround when an upgrade fixes its defect
(that test still passes without it).

1. A constructor that fails (the bootstrap timed out: a broker slow to answer on a loaded
   machine, or one that accepts connections and then says nothing) raises with its network
   client still running: an I/O thread, a wake-up socket pair and the connection. The caller
   has no object to close. ``build`` hands the constructor a network client it can close.
2. ``KafkaProducer.close`` flushes first and raises KafkaTimeoutError while records are
   still pending (the broker is down: the very case in which a failed producer is replaced),
   before it stops anything: the sender thread lives on, reconnecting for ever, one leaked
   socket per attempt. ``close_producer`` forces the sender to stop when that happens.
3. ``KafkaNetSocket.connect`` does not close the socket of a connection that failed
   (refused while the broker is down, or abandoned when a client is closed mid-connect).
   ``close_failed_connects`` replaces it with a copy that does; broker.py applies it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import kafka
from kafka.errors import KafkaTimeoutError
from kafka.net.compat import KafkaNetClient
from kafka.net.inet import KafkaNetSocket

log = logging.getLogger("mset.notifications.broker")

T = TypeVar("T")

PATCHED_VERSION = "3.0.12"


def build(cls: Callable[..., T], **configs: Any) -> T:
    """``cls(**configs)`` (KafkaProducer, KafkaConsumer or KafkaAdminClient); if it raises,
    its network client is closed before the error goes on."""
    made: list[Any] = []

    def network_client(**kw: Any) -> Any:
        # ``kafka_client`` is the clients' documented hook for making their network client.
        made.append(KafkaNetClient(**kw))
        return made[-1]

    try:
        return cls(kafka_client=network_client, **configs)
    except BaseException:
        for client in made:
            with contextlib.suppress(Exception):
                client.close()  # its connections, I/O thread and selector
        raise


def close_producer(producer: Any, timeout: float) -> None:
    """Close a producer within about ``timeout`` seconds, dropping what it could not send
    (an activity's retry, or the outbox relay, sends it again)."""
    try:
        producer.close(timeout=timeout)
        return
    except KafkaTimeoutError:
        pass  # records still pending: the sender is still running (defect 2 above)
    sender = producer._sender  # no public way to abandon pending records
    sender.force_close()  # fails the pending records; the thread closes its network client
    sender.join(max(timeout, 1.0))
    try:
        producer.close(timeout=0)
    except KafkaTimeoutError:
        log.warning("a Kafka producer's sender did not stop within %.0f s", max(timeout, 1.0))


def close_consumer(consumer: Any) -> None:
    """Close a consumer without committing; its network client is closed even when leaving
    the group fails (``KafkaConsumer.close`` stops at the first error)."""
    try:
        consumer.close(autocommit=False)
    except Exception:  # closing after a failure, or from the watchdog: nothing to save
        log.debug("closing a consumer", exc_info=True)
    finally:
        with contextlib.suppress(Exception):
            consumer._client.close()  # idempotent: nothing happens if close() got this far


def close_failed_connects() -> None:
    """Make ``KafkaNetSocket.connect`` close the socket of a connection that failed (defect 3
    above). Only on the version whose ``connect`` this copies; idempotent."""
    original = KafkaNetSocket.connect
    if getattr(original, "closes_failed_sockets", False):
        return
    expected = ["self", "net", "addrinfo", "socket_options", "timeout_at"]
    if (
        kafka.__version__ != PATCHED_VERSION
        or list(inspect.signature(original).parameters) != expected
    ):
        log.warning(
            "kafka-python %s: KafkaNetSocket.connect left as it is (the workaround is for %s)",
            kafka.__version__,
            PATCHED_VERSION,
        )
        return

    # The body of kafka-python 3.0.12's KafkaNetSocket.connect, with the socket closed when
    # connecting fails or is abandoned (GeneratorExit when the client closes mid-connect).
    async def connect(
        self: KafkaNetSocket,
        net: Any,
        addrinfo: tuple[Any, ...],
        socket_options: tuple[Any, ...] = (),
        timeout_at: float | None = None,
    ) -> Any:
        family, sock_type, proto, _canonname, sockaddr = addrinfo
        sock = self.socket(family, sock_type, proto)
        try:
            sock.setblocking(False)
            for option in socket_options:
                sock.setsockopt(*option)
            return await self.sock_connect(net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    connect.closes_failed_sockets = True  # type: ignore[attr-defined]
    KafkaNetSocket.connect = connect
