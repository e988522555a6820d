"""The stack as a user starts it (`python -m deploy.stack`, what `make dev` runs), driven
over HTTP and the `temporal` CLI: submit, resubmit, isolation between agencies, and data
surviving a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from mset_contract.referral import referral_example
from tests.support.net import free_port

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]


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


def start_stack(env: dict[str, str], log: Path) -> RunningStack:
    out = log.open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.stack"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text.split("stopped.")[-1]:
            return RunningStack(proc, out)
        if proc.poll() is not None:
            out.close()
            pytest.fail(f"stack exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    out.close()
    pytest.fail(f"stack not ready in 120 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = {
        name: str(free_port())
        for name in (
            "TEMPORAL_PORT",
            "TEMPORAL_UI_PORT",
            "BROKER_PORT",
            "REFERRAL_PORT",
            "TRIAGE_PORT",
            "MEETING_PORT",
            "NOTIFICATIONS_PORT",
        )
    }
    env = {**os.environ, "MSET_DATA_DIR": str(tmp_path / "data")}
    env.update({f"MSET_{k}": v for k, v in ports.items()})
    yield env


def temporal(env: dict[str, str], *args: str) -> str:
    cli = Path(sys.executable).parent / "temporal"
    out = subprocess.run(
        [str(cli), *args, "--address", f"127.0.0.1:{env['MSET_TEMPORAL_PORT']}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout


def wait_listed(env: dict[str, str], query: str, workflow_id: str) -> str:
    listing = ""
    for _ in range(40):
        listing = temporal(env, "workflow", "list", "--query", query)
        if workflow_id in listing:
            break
        time.sleep(0.25)
    return listing


def test_a_new_user_submits_a_referral_and_it_survives_a_restart(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "stack.log"
    stack = start_stack(stack_env, log)
    try:
        banner = log.read_text()
        creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
        assert creds["api_key"] in banner and creds["coordinator_token"] in banner
        base = f"http://127.0.0.1:{stack_env['MSET_REFERRAL_PORT']}"
        for port in ("REFERRAL_PORT", "TRIAGE_PORT", "MEETING_PORT", "NOTIFICATIONS_PORT"):
            health = httpx.get(f"http://127.0.0.1:{stack_env[f'MSET_{port}']}/healthz")
            assert health.status_code == 200

        # The example from the API docs, as a new user would copy it.
        spec = httpx.get(f"{base}/openapi.json").json()
        examples = spec["paths"]["/v1/referrals"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]
        example = next(iter(examples.values()))["value"]
        assert example == referral_example()
        key = {"X-API-Key": creds["api_key"]}
        first = httpx.post(f"{base}/v1/referrals", json=example, headers=key)
        assert first.status_code == 202, first.text
        rid, wid = first.json()["referral_id"], first.json()["workflow_id"]

        # Triaged by the rules service, it waits for the next Pre-MSET panel.
        listing = wait_listed(stack_env, "MsetStage='awaiting_pre_mset'", wid)
        assert wid in listing and "Running" in listing

        again = httpx.post(f"{base}/v1/referrals", json=example, headers=key)
        assert again.status_code == 202 and again.json()["referral_id"] == rid
        assert temporal(stack_env, "workflow", "list").count("ReferralWorkflow") == 1

        referral_db = f"sqlite:///{tmp_path / 'data' / 'referral.db'}"
        other = subprocess.run(
            [str(Path(sys.executable).parent / "mset"), "agency", "create",
             "--name", "Northshire Police", "--type", "police", "--json"],
            env={**stack_env, "MSET_REFERRAL_DATABASE_URL": referral_db},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        other_key = json.loads(other.stdout)["api_key"]
        assert (
            httpx.get(f"{base}/v1/referrals/{rid}", headers={"X-API-Key": other_key}).status_code
            == 404
        )
        assert httpx.get(f"{base}/v1/referrals/{rid}").status_code == 401
    finally:
        assert stack.stop() == 0

    stack = start_stack(stack_env, log)
    try:
        got = httpx.get(f"{base}/v1/referrals/{rid}", headers=key)
        assert got.status_code == 200 and got.json()["stage"] == "awaiting_pre_mset"
        assert got.json()["live"] is True
        desc = json.loads(temporal(stack_env, "workflow", "describe", "-w", wid, "-o", "json"))
        assert desc["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
        # The same demo credentials are shown again, not new ones.
        assert creds["api_key"] in log.read_text().split("stopped.")[-1]
    finally:
        assert stack.stop() == 0
