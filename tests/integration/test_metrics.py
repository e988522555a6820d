"""`/metrics` on the real parts after a submission: the referral API (request and domain
metrics) and the workflow worker as its own process (the Temporal SDK's metrics and its
process metrics), against the real Temporal dev server, broker and databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from mset_contract.temporal import REFERRAL_WORKFLOW
from mset_contract.vocab import AgencyType
from mset_platform.db import make_engine
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store as NotificationsStore
from services.notifications.worker import NotificationsWorker
from services.referral.api import create_app
from services.referral.identity import Identity
from services.referral.store import Store
from services.referral.worker import build_worker as build_referral_worker
from services.triage.worker import build_worker as build_triage_worker
from tests.integration.conftest import referral_settings, terminate_running
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.case_world import triage_engine
from tests.support.exported_metrics import sdk_metric_names
from tests.support.metrics import sample_names_as_served, samples, uuid_like_label_values, value
from tests.support.net import free_port, wait_for_port
from tests.support.servers import serve
from tests.support.wait import poll

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def service_workers(
    temporal_dev: WorkflowEnvironment, referral_store: Store, broker: str, database_url: str
) -> AsyncIterator[None]:
    """The referral, triage and notifications workers in this process; the workflow worker
    runs as its own process (``workflow_worker``)."""
    client = temporal_dev.client
    n_settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "broker": broker}
    )
    n_engine = make_engine(database_url)
    notifications_upgrade(n_engine)
    executor = ThreadPoolExecutor(max_workers=4)
    try:
        async with (
            build_referral_worker(client, referral_store, executor),
            build_triage_worker(client, triage_engine()),
            NotificationsWorker(n_settings, NotificationsStore(n_engine), client, consumers=()),
        ):
            yield
            await terminate_running(client)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        n_engine.dispose()


@pytest.fixture
def workflow_worker(temporal_dev: WorkflowEnvironment) -> Iterator[tuple[int, int]]:
    """``python -m workflows.worker`` as the stack starts it, with both metrics ports set:
    (domain and process metrics port, Temporal SDK metrics port)."""
    ports = free_port(), free_port()
    env = {
        **os.environ,
        "MSET_ENVIRONMENT": "test",
        "MSET_TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host,
        "MSET_WORKFLOWS_METRICS_HOST": "127.0.0.1",
        "MSET_WORKFLOWS_WORKER_METRICS_PORT": str(ports[0]),
        "MSET_WORKFLOWS_WORKER_SDK_METRICS_PORT": str(ports[1]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workflows.worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in ports:
            wait_for_port("127.0.0.1", port, timeout=30, proc=proc)
        yield ports
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(url)
    assert resp.status_code == 200, resp.text
    return resp.text


async def test_metrics_of_the_api_and_a_worker_after_a_submission(
    database_url: str,
    temporal_dev: WorkflowEnvironment,
    referral_store: Store,
    service_workers: None,
    workflow_worker: tuple[int, int],
) -> None:
    domain_port, sdk_port = workflow_worker
    address = temporal_dev.client.service_client.config.target_host
    body = tool()
    la = body["child"]["local_authority"]
    key = (
        Identity(referral_store)
        .create_agency("Northshire CSC", AgencyType.childrens_social_care)
        .secret
    )
    with serve(create_app(referral_settings(database_url, address))) as url:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30) as h:
            accepted = await h.post("/v1/referrals", json=body)
            assert accepted.status_code == 202, accepted.text
            referral_id = accepted.json()["referral_id"]
            await wait_for_stage(h, referral_id, "awaiting_pre_mset")

        # The referral API: the submission under its route's template, and the open case.
        api = await poll(
            lambda: scrape(f"{url}/metrics"),
            lambda text: (
                value(text, "mset_open_cases", stage="awaiting_pre_mset", local_authority=la) == 1
            ),
            what="the open case in the referral API's metrics",
        )
    assert (
        value(
            api,
            "mset_http_requests_total",
            method="POST",
            route="/v1/referrals",
            status_class="2xx",
        )
        == 1
    )
    assert value(
        api,
        "mset_http_request_duration_seconds_count",
        method="GET",
        route="/v1/referrals/{referral_id}",
        status_class="2xx",
    )
    assert referral_id not in api

    # The workflow worker's process: the Temporal SDK's own metrics of the case's workflow
    # tasks, on their port; its process metrics on the other.
    sdk = await poll(
        lambda: scrape(f"http://127.0.0.1:{sdk_port}/metrics"),
        lambda text: any(
            s.name.startswith("temporal_workflow_task_execution_latency")
            and s.labels.get("workflow_type") == REFERRAL_WORKFLOW
            for s in samples(text)
        ),
        what="the referral workflow's task metrics from the SDK",
    )
    assert any(s.name.startswith("temporal_request") for s in samples(sdk))
    # The names the dashboard and alert rules are checked against (derived from the SDK's
    # sources, tests/support/exported_metrics.py) are the names a real worker exports.
    # (From the text as served: prometheus-client's parser would add _total to the SDK's
    # counters, which Prometheus stores without.)
    seen = {n for n in sample_names_as_served(sdk) if n.startswith("temporal_")}
    assert seen and seen - sdk_metric_names() == set()
    domain = await scrape(f"http://127.0.0.1:{domain_port}/metrics")
    assert any(s.name == "process_cpu_seconds_total" for s in samples(domain))

    for text in (api, sdk, domain):
        assert uuid_like_label_values(text) == []
