"""Small helpers for tests that start real servers on loopback."""

from __future__ import annotations

import collections
import contextlib
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

# Ports are chosen below the kernel's ephemeral range (32768 up, ``ip_local_port_range``):
# a port chosen there by binding port 0 is free only until the server meant for it binds it,
# and meanwhile anything else binding port 0 (the Temporal dev server takes ports of its own
# that way while it starts) or connecting out (source ports) may take it: "Address already
# in use" from a part that was given it. Below 32768 only a server told a port binds one.
QUIET_PORTS = (20000, 32768)
# Ports handed out lately by this process, never handed out again while they may still be
# waiting for their server: two calls in one set-up always give different ports.
_RECENT: collections.deque[int] = collections.deque(maxlen=2000)
_LOCK = threading.Lock()
_RNG = random.Random()  # its own: the global one belongs to whatever else runs (Hypothesis)


def _bindable(ports: Sequence[int]) -> bool:
    socks: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in socks:
            sock.close()


def free_ports_spaced(count: int, step: int, attempts: int = 1000) -> int:
    """A loopback port ``p`` free now with ``p + step``, ... (``count`` in all) free too, none
    handed out lately: for servers that take ports from a base (an API's replicas ``step``
    apart, the workers' metrics block one apart)."""
    lo, hi = QUIET_PORTS
    with _LOCK:
        for _ in range(attempts):
            base = _RNG.randrange(lo, hi - step * (count - 1))
            ports = [base + step * n for n in range(count)]
            if any(p in _RECENT for p in ports) or not _bindable(ports):
                continue
            _RECENT.extend(ports)
            return base
    raise RuntimeError(f"no {count} free ports {step} apart found in {lo}-{hi - 1}")


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive loopback ports free now."""
    return free_ports_spaced(count, 1)


def free_port() -> int:
    """A loopback port free now, none handed out lately (see ``QUIET_PORTS``)."""
    return free_ports_spaced(1, 1)


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout} s")


class HoldingProxy:
    """A TCP proxy on loopback to ``target`` ("host:port") whose traffic can be held, to make
    a server stop answering one client without stopping it for anyone else.

    ``hold()``: nothing is forwarded either way (a server paused, or swamped);
    ``hold(replies_only=True)``: requests go through, replies are held (a server that did the
    work, whose answer is late); ``release()``: what was held is forwarded, and traffic flows.
    Threads, not the test's event loop, so a test blocked on a request keeps it running."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self._up, self._down = threading.Event(), threading.Event()
        self._up.set()
        self._down.set()
        self._closed = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._spawn(self._accept)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def hold(self, replies_only: bool = False) -> None:
        self._down.clear()
        if not replies_only:
            self._up.clear()

    def release(self) -> None:
        self._up.set()
        self._down.set()

    def close(self) -> None:
        self._closed.set()
        self.release()
        with self._lock:
            socks = [self._listener, *self._socks]
        for s in socks:
            # shutdown first: close alone does not wake a thread blocked in accept or recv.
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(timeout=10)

    def __enter__(self) -> HoldingProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                return
            with self._lock:
                self._socks += [client, server]
            self._spawn(self._pump, client, server, self._up)
            self._spawn(self._pump, server, client, self._down)

    def _pump(self, src: socket.socket, dst: socket.socket, gate: threading.Event) -> None:
        try:
            while chunk := src.recv(65536):
                gate.wait()
                if self._closed.is_set():
                    return
                dst.sendall(chunk)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            return
