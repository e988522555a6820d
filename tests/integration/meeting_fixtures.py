"""The meeting service as its users meet it, for integration tests: its API served over HTTP
with real staff tokens (resolved by the real referral API), its worker and the authority's
schedules on the real Temporal dev server. The cases on the agendas are referrals submitted
to the real referral API, run by the real ReferralWorkflow and every real worker it calls
(the ``intake`` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from mset_contract.meeting import SCHEDULED_KINDS
from mset_contract.referral import referral_example
from mset_contract.referral_workflow import ReferralState
from mset_contract.temporal import meeting_schedule_id
from mset_contract.vocab import AgencyType, MeetingKind, Role, Stage
from mset_platform.cases import visibility_query
from mset_platform.db import make_engine
from mset_platform.paging import every_item
from services.meeting.api import create_app
from services.meeting.migrate import upgrade
from services.meeting.schedules import ensure_schedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store
from services.meeting.worker import build_meetings, build_worker
from services.referral.api import create_app as referral_app
from tests.integration.conftest import Intake, fresh_authority, referral_settings
from tests.support.servers import serve
from tests.support.wait import poll
from workflows.referral import ReferralWorkflow

# The documented example triages to 'medium' (its score, 6, is in the medium band);
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
    # The referral API that passes decisions with a meeting_id to this meeting API.
    referral_url: str = ""
    # Each case's submitted tool, by referral id (the "who" the agenda should show).
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)

    def http(self, who: str | None) -> httpx.AsyncClient:
        credential = self.partner_key if who == "partner" else self.tokens.get(who or "")
        headers: dict[str, str] = {}
        if credential and credential.startswith("msetk_"):
            headers["X-API-Key"] = credential
        elif credential:
            headers["Authorization"] = f"Bearer {credential}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def referral_http(self, who: str) -> httpx.AsyncClient:
        """The referral API, as ``who`` (a staff member) calls it."""
        return httpx.AsyncClient(
            base_url=self.referral_url,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=60,
        )

    async def case(
        self, extra_indicators: Any = MEDIUM, local_authority: str | None = None, **parts: Any
    ) -> WorkflowHandle[Any, Any]:
        """A referral for a new child in this authority (or ``local_authority``), submitted
        by a partner system over the referral API, once triaged and awaiting Pre-MSET;
        ``parts`` are more of the tool (its persons of concern, say)."""
        tool = {**referral_example(), **parts}
        tool["partner_reference"] = f"REF-{uuid.uuid4().hex[:10]}"
        tool["child"]["agency_child_ref"] = f"CHILD-{uuid.uuid4().hex[:10]}"
        tool["child"]["local_authority"] = local_authority or self.local_authority
        tool["indicators"] = [*tool["indicators"], *extra_indicators]
        async with self.intake.http(self.partner_key) as http:
            resp = await http.post("/v1/referrals", json=tool)
        assert resp.status_code == 202, resp.text
        self.tools[resp.json()["referral_id"]] = tool
        handle = self.client.get_workflow_handle(resp.json()["workflow_id"])
        await until(handle, lambda s: s.stage == Stage.awaiting_pre_mset)
        return handle

    async def visible(self, stages: tuple[Stage, ...], count: int) -> None:
        """Wait for Temporal visibility (eventually consistent) to list ``count`` cases."""
        query = visibility_query(self.local_authority, stages)

        async def listed() -> list[str]:
            return [w.id async for w in self.client.list_workflows(query)]

        await poll(listed, lambda ids: len(ids) >= count, what=f"{count} cases at {stages}")

    async def call(self, kind: MeetingKind) -> dict[str, Any]:
        """The coordinator triggers the authority's schedule; the new meeting, once its
        worker has called it."""
        async with self.http("coordinator") as http:
            before = await self._meetings(http, kind)
            resp = await http.post(f"/v1/schedules/{self.local_authority}/{kind.value}/trigger")
            assert resp.status_code == 202, resp.text
            now = await poll(
                lambda: self._meetings(http, kind),
                lambda now: len(now) > len(before),
                what="the triggered schedule calls a meeting",
            )
        meeting: dict[str, Any] = now[0]
        return meeting

    async def _meetings(self, http: httpx.AsyncClient, kind: MeetingKind) -> list[Any]:
        params = [("local_authority", self.local_authority), ("kind", kind.value)]
        return await every_item(http, "/v1/meetings", params)

    async def agenda(self, meeting_id: str, who: str = "chair") -> dict[str, Any]:
        """The whole agenda as ``who`` sees it: every page's items under the first's header."""
        pages: list[dict[str, Any]] = []
        async with self.http(who) as http:
            while not pages or pages[-1]["next_cursor"]:
                params = {"cursor": pages[-1]["next_cursor"]} if pages else {}
                resp = await http.get(f"/v1/meetings/{meeting_id}/agenda", params=params)
                assert resp.status_code == 200, resp.text
                pages.append(resp.json())
        return {**pages[0], "items": [i for p in pages for i in p["items"]]}


async def until(handle: WorkflowHandle[Any, Any], check: Any) -> ReferralState:
    state = await poll(
        lambda: handle.query(ReferralWorkflow.state),
        lambda s: s is not None and check(s),
        what="case state",
    )
    assert state is not None
    return state


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


@asynccontextmanager
async def open_panel(
    intake: Intake, database_url: str, client: Client, task_queue: str, **settings: Any
) -> AsyncIterator[Panel]:
    """The meeting service for a fresh authority, with its staff, its worker, its schedules
    and its API served over HTTP; ``settings`` override the meeting settings."""
    la = fresh_authority()
    intake.identity.create_agency(PARTNERSHIP, AgencyType.local_authority)
    police = intake.identity.create_agency(POLICE, AgencyType.police)
    # The authority's coordinator, chairs and panel member serve it (identity records whom each
    # serves: they see its meetings and cases); the coordinator of another partnership
    # authority serves only that one.
    ours = (la,)
    tokens = {
        "coordinator": intake.new_user("Casey Coordinator", Role.coordinator, PARTNERSHIP, ours),
        "chair": intake.new_user("DI Sam Okafor", Role.chair, POLICE, ours),
        "chair2": intake.new_user("DI Robin Hale", Role.chair, POLICE, ours),
        "coordinator_elsewhere": intake.new_user(
            "Eve Elsewhere", Role.coordinator, PARTNERSHIP, (f"{la}-other",)
        ),
        "member": intake.new_user("Pat Member", Role.panel_member, PARTNERSHIP, ours),
        "provider": intake.new_user("Pip Provider", Role.provider, PARTNERSHIP),
        "analyst": intake.new_user("Ana Lyst", Role.analyst, PARTNERSHIP),
    }
    partner_key = intake.new_agency("Northshire CSC")
    config = meeting_settings(database_url, intake, la, **settings)
    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    meetings = build_meetings(client, store, config)
    await ensure_schedules(client, config, task_queue=task_queue)
    try:
        async with build_worker(client, meetings, task_queue=task_queue):
            with (
                serve(create_app(config, temporal_client=client)) as url,
                # A referral API that knows this meeting API (the intake's was served first).
                serve(
                    referral_app(
                        referral_settings(
                            database_url,
                            intake.settings.temporal_address,
                            meeting_url=url,
                            # A loaded CI machine's Temporal can take more than the default
                            # 5 s to start a case; these tests are about the panel (and the
                            # fuzz tier about the schema), not the bounded start's 503.
                            start_timeout_seconds=30,
                        )
                    )
                ) as referral_url,
            ):
                yield Panel(
                    url,
                    intake,
                    client,
                    store,
                    la,
                    tokens,
                    partner_key,
                    {POLICE: police.id},
                    referral_url,
                )
    finally:
        for kind in SCHEDULED_KINDS:
            await client.get_schedule_handle(meeting_schedule_id(la, kind)).delete()
        engine.dispose()


@pytest.fixture(name="panel")
async def panel_fixture(
    intake: Intake, database_url: str, temporal_dev: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Panel]:
    async with open_panel(intake, database_url, temporal_dev.client, task_queue) as panel:
        yield panel


def action(owner: uuid.UUID, days: float, description: str, **kw: str) -> dict[str, Any]:
    return {
        "owner_agency_id": str(owner),
        "due_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "aim": kw.get("aim", "reduce"),
        "target": kw.get("target", "victim"),
        "description": description,
    }
