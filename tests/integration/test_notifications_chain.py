"""The whole chain, every part real: a partner submits a high-risk referral to the referral
API; ReferralWorkflow asks the triage rules, which escalate; the workflow publishes through
the notifications activity onto the broker; the inbox consumer makes the manager's item,
which the manager reads over HTTP with a token the referral service introspects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from mset_contract.referral import referral_example
from mset_contract.vocab import AgencyType, Role
from services.notifications.api import create_app
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store, make_engine
from services.notifications.worker import NotificationsWorker
from tests.integration.conftest import Intake
from tests.integration.notifications_fixtures import eventually
from tests.support.servers import serve


@pytest.fixture
async def inbox_url(
    intake: Intake, broker: str, temporal_dev: WorkflowEnvironment, database_url: str
) -> AsyncIterator[str]:
    """The notifications API and an inbox consumer on the events topic the case workers
    publish to (the real one), in a consumer group of its own."""
    settings = NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "broker": broker,
            "referral_url": intake.url,
            "temporal_address": temporal_dev.client.service_client.config.target_host,
            "consumer_group_prefix": f"test-chain-{uuid.uuid4().hex[:8]}",
        }
    )
    engine = make_engine(database_url)  # migrated by the case workers' fixture
    # The case workers already host the notifications activities on the real task queue
    # (one worker per queue and process): this one only consumes.
    async with NotificationsWorker(
        settings, Store(engine), temporal_dev.client, consumers=("inbox",), host_activities=False
    ) as worker:
        assert await worker.wait_ready(30)
        with serve(create_app(settings)) as url:
            yield url
    engine.dispose()


async def test_a_high_risk_referral_submitted_through_the_api_reaches_the_managers_inbox(
    intake: Intake, inbox_url: str
) -> None:
    agency = f"CSC {uuid.uuid4().hex[:8]}"
    key = intake.new_agency(agency)
    manager = intake.new_user("Duty manager", Role.manager, agency)
    partnership = f"MSET {uuid.uuid4().hex[:8]}"
    intake.new_agency(partnership, AgencyType.local_authority)
    chair = intake.new_user("MSET chair", Role.chair, partnership)

    tool = referral_example()
    tool["partner_reference"] = f"CSC-{uuid.uuid4().hex[:10]}"
    tool["child"]["agency_child_ref"] = f"NS-CHILD-{uuid.uuid4().hex[:10]}"
    tool["referrer_judgement"]["level"] = "high"
    async with intake.http(key) as http:
        resp = await http.post("/v1/referrals", json=tool)
    assert resp.status_code == 202, resp.text
    case_id = resp.json()["case_id"]  # events are about the case (the child's MSET case)

    async def items_for(token: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=inbox_url, headers=headers, timeout=30) as http:
            got = await http.get("/v1/inbox")
        assert got.status_code == 200, got.text
        return [i for i in got.json()["items"] if i["case_id"] == case_id]

    (item,) = await eventually(lambda: items_for(manager), within=30)
    assert item["kind"] == "high_risk" and item["urgency"] == "immediate"
    assert item["target_role"] == "manager" and item["level"] == "high"
    assert [i["target_role"] for i in await eventually(lambda: items_for(chair))] == ["chair"]
