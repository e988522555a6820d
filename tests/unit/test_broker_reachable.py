"""The broker check before a Kafka client is built (``require_reachable``) closes its socket
however the connection attempt ends: a worker shutting down cancels a thread-pool activity by
raising in its thread, and one such cancellation, landing mid-connect, left a socket open
(the suite turns that ResourceWarning into an error)."""

from __future__ import annotations

import gc
import socket
import warnings
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError

from services.notifications.broker import require_reachable


class Cancelled(BaseException):
    """Stands for the SDK's CancelledError raised in an activity's thread: not an OSError."""


def unclosed_sockets(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


def test_a_check_cancelled_mid_connect_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect = socket.socket.connect

    def cancelled(self: socket.socket, address: Any) -> None:
        if address == ("127.0.0.1", 9):  # the check's; any other thread's connects as ever
            raise Cancelled
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", cancelled)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(Cancelled):
            require_reachable("127.0.0.1:9", 1.0)
        gc.collect()
    assert unclosed_sockets(seen) == []


def test_the_check_passes_a_listening_broker_and_refuses_a_closed_port() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            # The first bootstrap server refuses (nothing listens on the port it names).
            with socket.socket() as closed:
                closed.bind(("127.0.0.1", 0))
                refusing = closed.getsockname()[1]
            require_reachable(f"127.0.0.1:{refusing},127.0.0.1:{port}", 5.0)
        with pytest.raises(KafkaConnectionError, match=f"127.0.0.1:{port}"):
            require_reachable(f"127.0.0.1:{port}", 5.0)
        gc.collect()
    assert unclosed_sockets(seen) == []
