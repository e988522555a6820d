"""Ctrl-C on the stack mid-flow loses nothing: ``python -m deploy.stack`` (what `make dev`
runs) is sent SIGINT while high-risk referrals are going in, exits cleanly, and is started
again; every referral that was accepted is at its stage, and every escalation reached the
inbox, the partner's webhook and the mailbox exactly once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from tests.support.faults import (
    FaultStack,
    Submissions,
    new_tenant,
    outcome,
    receivers,
    stack_env,
    stack_settings,
    start_deploy_stack,
    submit,
)

# The stack starts twice and stops twice (in stages, each waited for).
pytestmark = pytest.mark.timeout(600)


def test_ctrl_c_on_the_stack_mid_flow_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "stack.log"
    log.touch()
    with receivers() as (hooks, hook_url, mailbox, smtp_port):
        settings = stack_settings(tmp_path / "data")
        env = stack_env(settings, smtp_port)
        stack = FaultStack(settings, hooks, hook_url, mailbox)
        proc = start_deploy_stack(env, log)
        try:
            tenant = new_tenant(stack, "ctrl-c")
            halfway = threading.Event()
            result: dict[str, Submissions] = {}
            sender = threading.Thread(
                target=lambda: result.setdefault("s", submit(stack, tenant, 10, 5.0, halfway)),
                daemon=True,
            )
            sender.start()
            assert halfway.wait(timeout=120)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=180) == 0, log.read_text()[-3000:]
            assert "stopped." in log.read_text()

            # The partner's retries of what was refused meanwhile go to the new stack.
            proc = start_deploy_stack(env, log)
            sender.join(timeout=240)
            subs = result["s"]
            assert subs.refused == 0 and len(subs.accepted) == 10, subs
            got = outcome(stack, tenant, subs, within=240)
            assert not got.lost, got.summary()
            assert not got.duplicated, got.summary()
            assert not got.uncounted, got.summary()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=180)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
