"""The meeting service as its users meet it, for integration tests: its API served over HTTP
with real staff tokens (resolved by the real referral API), its worker and the authority's
schedules on the real Temporal dev server. The cases on the agendas are referrals submitted
to the real referral API, run by the real ReferralWorkflow and every real worker it calls
(the ``intake`` fixture)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from mset_contract.meeting import SCHEDULED_KINDS, meeting_schedule_id
from mset_contract.referral import referral_example
from mset_contract.referral_workflow import ReferralState
from mset_contract.vocab import AgencyType, MeetingKind, Role, Stage
from services.meeting.api import create_app
from services.meeting.cases import visibility_query
from services.meeting.migrate import upgrade
from services.meeting.schedules import ensure_schedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store, make_engine
from services.meeting.worker import build_meetings, build_worker
from tests.integration.conftest import Intake
from tests.support.servers import serve
from workflows.referral import ReferralWorkflow

# The documented example triages to 'medium' (the referrer's judgement over a 'low' score);
# a current disclosure of sexual abuse makes it 'high'.
MEDIUM: list[dict[str, str]] = []
HIGH = [{"code": "SXH-03", "recency": "current"}]
PARTNERSHIP = "Northshire MSET Partnership"
POLICE = "Northshire Police"


@dataclass
class Panel:
    url: str
    intake: Intake
    client: Client
    store: Store
    local_authority: str
    tokens: dict[str, str]
    partner_key: str
    agency_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def http(self, who: str | None) -> httpx.AsyncClient:
        credential = self.partner_key if who == "partner" else self.tokens.get(who or "")
        headers: dict[str, str] = {}
        if credential and credential.startswith("msetk_"):
            headers["X-API-Key"] = credential
        elif credential:
            headers["Authorization"] = f"Bearer {credential}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def case(self, extra_indicators: Any = MEDIUM) -> WorkflowHandle[Any, Any]:
        """A referral for a new child in this authority, submitted by a partner system over
        the referral API, once triaged and awaiting Pre-MSET."""
        tool = referral_example()
        tool["partner_reference"] = f"REF-{uuid.uuid4().hex[:10]}"
        tool["child"]["agency_child_ref"] = f"CHILD-{uuid.uuid4().hex[:10]}"
        tool["child"]["local_authority"] = self.local_authority
        tool["indicators"] = [*tool["indicators"], *extra_indicators]
        async with self.intake.http(self.partner_key) as http:
            resp = await http.post("/v1/referrals", json=tool)
        assert resp.status_code == 202, resp.text
        handle = self.client.get_workflow_handle(resp.json()["workflow_id"])
        await until(handle, lambda s: s.stage == Stage.awaiting_pre_mset)
        return handle

    async def visible(self, stages: tuple[Stage, ...], count: int) -> None:
        """Wait for Temporal visibility (eventually consistent) to list ``count`` cases."""
        query = visibility_query(self.local_authority, stages)
        for _ in range(150):
            ids = [w.id async for w in self.client.list_workflows(query)]
            if len(ids) >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"visibility shows {len(ids)} of {count} cases at {stages}")

    async def call(self, kind: MeetingKind) -> dict[str, Any]:
        """The coordinator triggers the authority's schedule; the new meeting, once its
        worker has called it."""
        async with self.http("coordinator") as http:
            before = await self._meetings(http, kind)
            resp = await http.post(f"/v1/schedules/{self.local_authority}/{kind.value}/trigger")
            assert resp.status_code == 202, resp.text
            for _ in range(150):
                now = await self._meetings(http, kind)
                if len(now) > len(before):
                    meeting: dict[str, Any] = now[0]
                    return meeting
                await asyncio.sleep(0.1)
        raise AssertionError("the triggered schedule did not call a meeting")

    async def _meetings(self, http: httpx.AsyncClient, kind: MeetingKind) -> list[Any]:
        resp = await http.get(
            "/v1/meetings", params={"local_authority": self.local_authority, "kind": kind.value}
        )
        assert resp.status_code == 200, resp.text
        found: list[Any] = resp.json()["meetings"]
        return found

    async def agenda(self, meeting_id: str, who: str = "chair") -> dict[str, Any]:
        async with self.http(who) as http:
            resp = await http.get(f"/v1/meetings/{meeting_id}/agenda")
        assert resp.status_code == 200, resp.text
        agenda: dict[str, Any] = resp.json()
        return agenda


async def until(handle: WorkflowHandle[Any, Any], check: Any, seconds: float = 15) -> ReferralState:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        state = await handle.query(ReferralWorkflow.state)
        if state is not None and check(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met; state: {state}")
        await asyncio.sleep(0.05)


async def state_of(handle: WorkflowHandle[Any, Any]) -> ReferralState:
    state = await handle.query(ReferralWorkflow.state)
    assert state is not None
    return state


def meeting_settings(database_url: str, intake: Intake, la: str, **kw: Any) -> MeetingSettings:
    return MeetingSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "temporal_address": intake.settings.temporal_address,
            "referral_url": intake.url,
            "authorities": [la],
            "notice_days": 7,
            **kw,
        }
    )


@pytest.fixture(name="panel")
async def panel_fixture(
    intake: Intake, database_url: str, temporal_dev: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Panel]:
    client = temporal_dev.client
    la = f"la-{uuid.uuid4().hex[:8]}"
    intake.identity.create_agency(PARTNERSHIP, AgencyType.local_authority)
    police = intake.identity.create_agency(POLICE, AgencyType.police)
    tokens = {
        "coordinator": intake.new_user("Casey Coordinator", Role.coordinator, PARTNERSHIP),
        "chair": intake.new_user("DI Sam Okafor", Role.chair, POLICE),
        "chair2": intake.new_user("DI Robin Hale", Role.chair, POLICE),
        "member": intake.new_user("Pat Member", Role.panel_member, PARTNERSHIP),
        "provider": intake.new_user("Pip Provider", Role.provider, PARTNERSHIP),
        "analyst": intake.new_user("Ana Lyst", Role.analyst, PARTNERSHIP),
    }
    partner_key = intake.new_agency("Northshire CSC")
    settings = meeting_settings(database_url, intake, la)
    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    meetings = build_meetings(client, store, settings)
    await ensure_schedules(client, settings, task_queue=task_queue)
    try:
        async with build_worker(client, meetings, task_queue=task_queue):
            with serve(create_app(settings, temporal_client=client)) as url:
                yield Panel(
                    url, intake, client, store, la, tokens, partner_key, {POLICE: police.id}
                )
    finally:
        for kind in SCHEDULED_KINDS:
            await client.get_schedule_handle(meeting_schedule_id(la, kind)).delete()
        engine.dispose()


def action(owner: uuid.UUID, days: float, description: str, **kw: str) -> dict[str, Any]:
    return {
        "owner_agency_id": str(owner),
        "due_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "aim": kw.get("aim", "reduce"),
        "target": kw.get("target", "victim"),
        "description": description,
    }
