"""The stack as a user starts it (`python -m deploy.stack`, what `make dev` runs), driven
over HTTP and the `temporal` CLI: submit, resubmit, isolation between agencies, and data
surviving a restart."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mset_contract.referral import referral_example
from mset_contract.temporal import REFERRAL_WORKFLOW
from mset_platform.settings import DEV_SERVICE_TOKEN
from tests.support.exported_metrics import sdk_metric_names
from tests.support.metrics import sample_names_as_served, samples, value
from tests.support.stack import stack_env as support_stack_env
from tests.support.stack import start_stack
from tests.support.wait import DEFAULT_TIMEOUT

# The stack starts twice (Temporal, the broker, four APIs, five workers): minutes on a
# loaded 2-core machine.
pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield support_stack_env(tmp_path / "data")


def base64_of(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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
    # Visibility is eventually consistent; a loaded machine can take many seconds.
    listing = ""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while time.monotonic() < deadline:
        listing = temporal(env, "workflow", "list", "--query", query)
        if workflow_id in listing:
            break
        time.sleep(0.25)
    return listing


def metrics_urls(banner: str) -> dict[str, list[str]]:
    """Each process's metrics addresses, as the stack's banner lists them."""
    section = banner.split("Metrics (Prometheus text format", 1)[1]
    out: dict[str, list[str]] = {}
    for line in section.splitlines()[1:]:
        found = re.fullmatch(r"\s+(\S+)\s+(http://\S+/metrics(?:\s+http://\S+/metrics)*)", line)
        if not found:
            break
        out[found.group(1)] = found.group(2).split()
    return out


def check_every_process_metrics(banner: str, env: dict[str, str], authority: str) -> None:
    """After a submission: request metrics on every API, the Temporal SDK's on every worker
    (the workflow worker's for the case's workflow tasks), process metrics on every process,
    and the domain's (the open case on the referral API, consumer lag on the notifications
    API, the notifications worker's counters)."""
    urls = metrics_urls(banner)
    apis = {n for n in urls if n.endswith("-api")}
    workers = {n for n in urls if n.endswith("-worker")}
    assert apis == {"referral-api", "triage-api", "meeting-api", "notifications-api"}
    assert workers == {
        "referral-worker", "triage-worker", "meeting-worker", "notifications-worker",
        "workflows-worker",
    }  # fmt: skip

    def scrape(url: str) -> str:
        resp = httpx.get(url, timeout=10)
        assert resp.status_code == 200, (url, resp.status_code)
        return resp.text

    texts: dict[str, str] = {}
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        texts = {url: scrape(url) for n in sorted(urls) for url in urls[n]}
        referral = texts[urls["referral-api"][0]]
        (_, workflows_sdk) = urls["workflows-worker"]
        ready = value(
            referral, "mset_open_cases", stage="awaiting_pre_mset", local_authority=authority
        ) == 1 and any(
            s.name.startswith("temporal_workflow_task_execution_latency")
            and s.labels.get("workflow_type") == REFERRAL_WORKFLOW
            for s in samples(texts[workflows_sdk])
        )
        if ready or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ready, "the open case and the workflow's task metrics never showed"
    for name in apis:
        (url,) = urls[name]
        names = {s.name for s in samples(texts[url])}
        assert "mset_http_requests_total" in names, name
        assert "mset_http_request_duration_seconds_bucket" in names, name
        assert "process_cpu_seconds_total" in names, name
    assert value(
        referral,
        "mset_http_requests_total",
        method="POST",
        route="/v1/referrals",
        status_class="2xx",
    )
    notifications = texts[urls["notifications-api"][0]]
    assert value(notifications, "mset_consumer_lag_events", consumer_group="inbox") is not None
    for name in workers:
        own, sdk = urls[name]
        assert "process_cpu_seconds_total" in {s.name for s in samples(texts[own])}, name
        served = {n for n in sample_names_as_served(texts[sdk]) if n.startswith("temporal_")}
        assert "temporal_request" in served, name
        assert served <= sdk_metric_names(), (name, sorted(served - sdk_metric_names()))
    # The notifications worker's counters are on its own port, declared even before this
    # referral's triage has escalated anything (their values are tests/integration's).
    own = texts[urls["notifications-worker"][0]]
    assert "# TYPE mset_escalations_published_total counter" in own
    assert "# TYPE mset_dead_lettered_total counter" in own


def test_a_new_user_submits_a_referral_and_it_survives_a_restart(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "stack.log"
    stack = start_stack(stack_env, log)
    try:
        banner = log.read_text()
        creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
        # The banner says where the demo credentials are; the secrets stay out of the log.
        assert "demo-credentials.json" in banner
        assert creds["api_key"] not in banner and creds["coordinator_token"] not in banner
        # The data files hold safeguarding records and secrets: readable by their owner only.
        data_files = [
            p for p in (tmp_path / "data").iterdir() if p.is_file() and p.suffix in (".db", ".json")
        ]
        assert {"temporal.db", "referral.db", "demo-credentials.json"} <= {
            p.name for p in data_files
        }
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in data_files} == {
            p.name: "0o600" for p in data_files
        }
        base = f"http://127.0.0.1:{stack_env['MSET_REFERRAL_PORT']}"
        for port in ("REFERRAL_PORT", "TRIAGE_PORT", "MEETING_PORT", "NOTIFICATIONS_PORT"):
            health = httpx.get(f"http://127.0.0.1:{stack_env[f'MSET_{port}']}/healthz")
            assert health.status_code == 200

        # The stack runs on a service token of its own: the public development token is
        # refused on the running stack, and introspection answers the MSET services only.
        triage = f"http://127.0.0.1:{stack_env['MSET_TRIAGE_PORT']}"
        public = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
        assert httpx.get(f"{triage}/v1/rulesets", headers=public).status_code == 401
        service_token = (tmp_path / "data" / "service-token").read_text().strip()
        assert service_token not in banner
        own = {"Authorization": f"Bearer {service_token}"}
        assert httpx.get(f"{triage}/v1/rulesets", headers=own).status_code == 200
        ask = {"credential": creds["coordinator_token"]}
        assert httpx.post(f"{base}/v1/auth/introspect", json=ask).status_code == 401
        staff = {"Authorization": f"Bearer {creds['coordinator_token']}"}
        refused = httpx.post(f"{base}/v1/auth/introspect", json=ask, headers=staff)
        assert refused.status_code == 403 and "Demo" not in refused.text
        told = httpx.post(f"{base}/v1/auth/introspect", json=ask, headers=own)
        assert told.status_code == 200 and told.json()["principal"]["role"] == "coordinator"

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

        # `curl :<port>/metrics` on every process the banner lists (issue 12, "must show").
        check_every_process_metrics(banner, stack_env, example["child"]["local_authority"])

        # Its history is ciphertext at rest; the codec server the stack started decodes it
        # for the ops token the stack made (every part holds the stack's own key).
        encrypted, plain = base64_of("binary/encrypted"), base64_of("json/plain")
        at_rest = temporal(stack_env, "workflow", "show", "-w", wid, "-o", "json")
        assert encrypted in at_rest
        ops_token = (tmp_path / "data" / "codec-ops-token").read_text().strip()
        assert ops_token not in banner
        codec = f"http://127.0.0.1:{stack_env['MSET_CODEC_PORT']}"
        decoded = temporal(
            stack_env, "workflow", "show", "-w", wid, "-o", "json",
            "--codec-endpoint", codec, "--codec-auth", f"Bearer {ops_token}",
        )  # fmt: skip
        assert plain in decoded and encrypted not in decoded

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
        assert got.json()["sequence"] > 0  # recorded by the case, kept across the restart
        desc = json.loads(temporal(stack_env, "workflow", "describe", "-w", wid, "-o", "json"))
        assert desc["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
        # The same demo credentials are kept, not new ones: the first key still works.
        assert json.loads((tmp_path / "data" / "demo-credentials.json").read_text()) == creds
        assert creds["api_key"] not in log.read_text()
    finally:
        assert stack.stop() == 0
