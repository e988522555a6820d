"""A case that refuses a decision, a case that has ended, and a case that does not answer,
through both APIs that send decisions to cases (the referral API's case routes and the
meeting API's decision route): each answers with the same status and the same error body.

Real Temporal dev server and every real worker. The case that does not answer is a real
case workflow whose worker has been stopped, so its update is never processed, with a short
decision timeout in both services' settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.vocab import MeetingKind, Stage
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
from tests.integration.conftest import Intake, referral_settings, terminate_running
from tests.integration.meeting_fixtures import Panel, open_panel, state_of
from tests.support.case_world import triage_engine
from tests.support.servers import serve
from workflows.worker import build_worker

# Seconds a decision waits for its case before the API answers 503 (both services).
DECISION_TIMEOUT = 2.0
# The example referral triages to a suggested 'low': a panel may not take it to MSET at low.
# Below the case's suggested level (medium) with no rationale: a rule of the case's own state,
# so the case refuses it (a rule the schema states is refused at the edge, before the case).
REFUSED = {"outcome": "more_information", "level": "low"}
MEETS = {"outcome": "meets_criteria", "level": "medium"}


class CaseWorkflows:
    """The case workflows' worker, which a test may stop: its cases then answer nothing."""

    def __init__(self, client: Client) -> None:
        self.worker: Worker = build_worker(client)
        self.running = asyncio.create_task(self.worker.run())

    async def stop(self) -> None:
        if not self.running.done():
            await self.worker.shutdown()
        await self.running


@pytest.fixture
async def case_workflows(
    temporal_dev: WorkflowEnvironment, referral_store: Store, broker: str, database_url: str
) -> AsyncIterator[CaseWorkflows]:
    """Every worker a case needs, as ``case_workers`` (conftest), with the workflow worker
    the test's to stop."""
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
            workflows = CaseWorkflows(client)
            try:
                yield workflows
            finally:
                # End this test's cases (one may wait for a worker that is gone), so the next
                # test's workers are not fed them.
                await terminate_running(client)
                await workflows.stop()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        n_engine.dispose()


@pytest.fixture
def intake(
    database_url: str,
    temporal_dev: WorkflowEnvironment,
    referral_store: Store,
    case_workflows: CaseWorkflows,
) -> Iterator[Intake]:
    """The referral API (overriding conftest's), with a short decision timeout."""
    address = temporal_dev.client.service_client.config.target_host
    settings = referral_settings(database_url, address, decision_timeout_seconds=DECISION_TIMEOUT)
    with serve(create_app(settings)) as url:
        yield Intake(url, referral_store, Identity(referral_store), temporal_dev.client, settings)


@pytest.fixture
async def panel(
    intake: Intake, database_url: str, temporal_dev: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Panel]:
    """The meeting API, with the same short decision timeout."""
    async with open_panel(
        intake,
        database_url,
        temporal_dev.client,
        task_queue,
        decision_timeout_seconds=DECISION_TIMEOUT,
    ) as p:
        yield p


@dataclass
class Listed:
    """A referral awaiting Pre-MSET, on a Pre-MSET meeting's agenda."""

    case: WorkflowHandle[Any, Any]
    referral_id: str
    meeting_id: str
    item_url: str  # the meeting API's decision route for it

    async def decision_recorded_by_the_meeting(self, panel: Panel) -> bool:
        return (await panel.agenda(self.meeting_id))["items"][0]["decision"] is not None


async def a_case_on_an_agenda(panel: Panel) -> Listed:
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    meeting_id = (await panel.call(MeetingKind.pre_mset))["meeting_id"]
    [item] = (await panel.agenda(meeting_id))["items"]
    url = f"/v1/meetings/{meeting_id}/items/{item['item_id']}/decision"
    return Listed(case, item["referral_id"], meeting_id, url)


async def decide_through_both_apis(
    panel: Panel, listed: Listed, decision: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """The chair sends the same Pre-MSET decision through the referral API, then through the
    meeting API."""
    chair = panel.tokens["chair"]
    async with panel.intake.http(chair) as referral_api, panel.http("chair") as meeting_api:
        via_referral = await referral_api.post(
            f"/v1/referrals/{listed.referral_id}/pre-mset-decision", json=decision
        )
        via_meeting = await meeting_api.post(listed.item_url, json={"kind": "pre_mset", **decision})
    return via_referral, via_meeting


async def test_a_decision_the_case_refuses_is_422_with_its_reason_from_both_apis(
    panel: Panel,
) -> None:
    listed = await a_case_on_an_agenda(panel)

    via_referral, via_meeting = await decide_through_both_apis(panel, listed, REFUSED)

    assert (via_referral.status_code, via_meeting.status_code) == (422, 422), (
        via_referral.text,
        via_meeting.text,
    )
    assert via_meeting.json() == via_referral.json()
    body = via_referral.json()
    reason = body["errors"][0]["reason"]
    assert body["errors"] == [{"field": "body", "reason": reason}]
    assert (
        reason.startswith("the level 'low' is below the suggested 'medium'")
        and reason in body["detail"]
    )
    state = await state_of(listed.case)
    assert state.stage == Stage.awaiting_pre_mset and state.pre_mset is None
    assert not await listed.decision_recorded_by_the_meeting(panel)


async def test_a_decision_for_a_case_that_has_ended_is_409_from_both_apis(panel: Panel) -> None:
    listed = await a_case_on_an_agenda(panel)
    # The child leaves MSET after the agenda was drawn up: the case's workflow finishes.
    async with panel.intake.http(panel.tokens["chair"]) as http:
        exited = await http.post(
            f"/v1/referrals/{listed.referral_id}/exit", json={"reason": "sufficiently_safe"}
        )
    assert exited.status_code == 200, exited.text
    await listed.case.result()

    via_referral, via_meeting = await decide_through_both_apis(panel, listed, MEETS)

    assert (via_referral.status_code, via_meeting.status_code) == (409, 409), (
        via_referral.text,
        via_meeting.text,
    )
    assert via_meeting.json() == via_referral.json()
    assert via_referral.json()["errors"] == []
    assert "ended" in via_referral.json()["detail"]
    assert not await listed.decision_recorded_by_the_meeting(panel)


async def test_a_case_that_does_not_answer_in_time_is_503_with_retry_after_from_both_apis(
    panel: Panel, case_workflows: CaseWorkflows
) -> None:
    listed = await a_case_on_an_agenda(panel)
    # The case's worker stops: its workflow is running, but no update to it is processed.
    await case_workflows.stop()

    via_referral, via_meeting = await decide_through_both_apis(panel, listed, MEETS)

    assert (via_referral.status_code, via_meeting.status_code) == (503, 503), (
        via_referral.text,
        via_meeting.text,
    )
    assert via_referral.headers["Retry-After"] == via_meeting.headers["Retry-After"] == "5"
    assert via_meeting.json() == via_referral.json()
    assert via_referral.json()["errors"] == []
    assert "did not answer in time" in via_referral.json()["detail"]
    # The case is open, only unanswered; the meeting recorded nothing and the item is free
    # for the chair's retry.
    assert (await listed.case.describe()).status == WorkflowExecutionStatus.RUNNING
    assert not await listed.decision_recorded_by_the_meeting(panel)
