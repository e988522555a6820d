"""The stack as a user starts it (`python -m deploy.stack`, what `make dev` runs), on free
loopback ports in a data folder of the test's own: for the tiers that drive the whole stack
from outside (tests/e2e over HTTP, tests/browser in a browser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.support.net import free_port, free_port_range

ROOT = Path(__file__).resolve().parents[2]
# Every port a stack listens on, as deploy.stack's settings name them (MSET_<name>).
STACK_PORTS = (
    "TEMPORAL_PORT",
    "TEMPORAL_UI_PORT",
    "BROKER_PORT",
    "REFERRAL_PORT",
    "TRIAGE_PORT",
    "MEETING_PORT",
    "NOTIFICATIONS_PORT",
    "PORTAL_PORT",
    "CODEC_PORT",
)


@dataclass
class RunningStack:
    proc: subprocess.Popen[str]
    out: IO[str]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.out.close()


def stack_env(data_dir: Path) -> dict[str, str]:
    """The environment of a stack on free ports with its data in ``data_dir``."""
    env = {
        **os.environ,
        "MSET_DATA_DIR": str(data_dir),
        # Workers' metrics on ports free now, not the fixed 9100 up, which would clash with a
        # stack running beside the tests.
        "MSET_WORKER_METRICS_BASE_PORT": str(free_port_range(10)),
    }
    env.update({f"MSET_{name}": str(free_port()) for name in STACK_PORTS})
    return env


def start_stack(env: dict[str, str], log: Path) -> RunningStack:
    """Start the stack and wait for its banner (240 s at most)."""
    out = log.open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.stack"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text.split("stopped.")[-1]:
            return RunningStack(proc, out)
        if proc.poll() is not None:
            out.close()
            pytest.fail(f"stack exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    out.close()
    pytest.fail(f"stack not ready in 240 s:\n{log.read_text()[-3000:]}")
