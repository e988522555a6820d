"""Small helpers for tests that start real servers on loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_range(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive loopback ports that are free now (for a server that
    takes a block of ports from a base, as the stack's workers' metrics do)."""
    for _ in range(attempts):
        base = free_port()
        if base + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


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
