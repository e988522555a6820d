"""The whole chain, every part real: a partner submits a high-risk referral to the referral
API; ReferralWorkflow asks the triage rules, which escalate; the workflow publishes through
the notifications activity onto the broker; the inbox consumer makes the manager's item,
which the manager reads over HTTP with a token the referral service introspects. And the
trace that follows it all, from the partner's request to the manager's item."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from mset_contract.events import EVENTS_TOPIC, trace_context
from mset_contract.referral import referral_example
from mset_contract.temporal import missing_episode_workflow_id
from mset_contract.types import today_uk
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from mset_platform.paging import every_item
from services.notifications.api import create_app
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store
from services.notifications.worker import NotificationsWorker
from tests.integration.conftest import Intake
from tests.integration.notifications_fixtures import read_topic
from tests.support.servers import serve
from tests.support.tracing import ancestry, recorded_spans, strings
from tests.support.wait import eventually, poll


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
    chair = intake.new_user("MSET chair", Role.chair, partnership, ("northshire",))

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
            got = await every_item(http, "/v1/inbox")
        return [i for i in got if i["case_id"] == case_id]

    (item,) = await eventually(lambda: items_for(manager))
    assert item["kind"] == "high_risk" and item["urgency"] == "immediate"
    assert item["target_role"] == "manager" and item["level"] == "high"
    assert [i["target_role"] for i in await eventually(lambda: items_for(chair))] == ["chair"]


async def test_one_trace_follows_a_submission_to_the_managers_inbox_item(
    intake: Intake, inbox_url: str, broker: str
) -> None:
    """Issue 12, item 3: the partner's ``POST /v1/referrals``, the workflow it starts, the
    publishing activity, the event on the topic and the inbox consumer are one trace, and
    the span in which the manager's item was written leads back to the request."""
    spans = recorded_spans()
    spans.clear()
    agency = f"CSC {uuid.uuid4().hex[:8]}"
    key = intake.new_agency(agency)
    manager = intake.new_user("Duty manager", Role.manager, agency)
    tool = referral_example()
    tool["partner_reference"] = f"CSC-{uuid.uuid4().hex[:10]}"
    tool["child"]["agency_child_ref"] = f"NS-CHILD-{uuid.uuid4().hex[:10]}"
    tool["referrer_judgement"]["level"] = "high"
    async with intake.http(key) as http:
        resp = await http.post("/v1/referrals", json=tool)
    assert resp.status_code == 202, resp.text
    case_id = resp.json()["case_id"]

    async def managers_item() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {manager}"}
        async with httpx.AsyncClient(base_url=inbox_url, headers=headers, timeout=30) as http:
            return [i for i in await every_item(http, "/v1/inbox") if i["case_id"] == case_id]

    (item,) = await eventually(managers_item, what="the manager's item")

    def trace_to_request() -> list[ReadableSpan] | None:
        # The spans that lead to the request end after the item is written (the publishing
        # activity's ends once the broker acknowledged): wait for the whole line.
        finished = list(spans.get_finished_spans())
        written = [s for s in finished if str(item["id"]) in strings(s, "mset.inbox.item_ids")]
        if len(written) != 1:
            return None
        line = ancestry(written[0], finished)
        return line if line[-1].kind == SpanKind.SERVER else None

    line = await eventually(trace_to_request, what="a line of spans from the item to a request")
    request, item_span = line[-1], line[0]
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/referrals"
    assert request.attributes["http.method"] == "POST"
    # Who called is not recorded: a staff member's address and browser are personal data.
    assert not {"net.peer.ip", "client.address", "http.user_agent"} & request.attributes.keys()
    assert {s.context.trace_id for s in line if s.context} == {request.context.trace_id}
    # The request starts the workflow, which runs the publishing activity, whose event the
    # inbox consumer processes: each a span of the one line. (The interceptor's workflow
    # spans are zero-length and replay-safe: the workflow's outbound calls hang from the
    # start's context, and its run is a sibling in the same trace.)
    assert [s.name for s in reversed(line)] == [
        "POST /v1/referrals",
        "StartWorkflow:ReferralWorkflow",
        "StartActivity:notifications.publish",
        "RunActivity:notifications.publish",
        f"process {EVENTS_TOPIC}",
    ]
    in_trace = [
        s.name
        for s in spans.get_finished_spans()
        if s.context is not None and s.context.trace_id == request.context.trace_id
    ]
    assert "RunWorkflow:ReferralWorkflow" in in_trace, in_trace
    assert item_span.kind == SpanKind.CONSUMER
    assert item_span.attributes is not None
    assert item_span.attributes["messaging.consumer.group.name"] == "inbox"

    # The escalation on the topic carries the publishing span's context as ``traceparent``.
    publish = next(s for s in line if s.name == "RunActivity:notifications.publish")
    records = await asyncio.to_thread(read_topic, broker, EVENTS_TOPIC)
    escalations = [
        r
        for r in records
        if r.key == case_id.encode()
        and dict(r.headers).get("ce_type") == b"mset.referral.escalated"
    ]
    assert escalations
    for r in escalations:
        version, trace_id, parent_id, _flags = trace_context(r.headers)["traceparent"].split("-")
        assert (version, trace_id) == ("00", f"{request.context.trace_id:032x}")
        assert parent_id == f"{publish.context.span_id:016x}"
    # Ops data, no personal data: nothing the partner wrote about the child is in a span.
    child = tool["child"]
    for s in line:
        text = str(dict(s.attributes or {})) + s.name
        assert child["agency_child_ref"] not in text
        assert tool["referrer_judgement"]["rationale"] not in text


async def test_a_missed_rhi_deadline_reaches_the_rhi_providers_manager(
    intake: Intake, inbox_url: str
) -> None:
    """Issue 10, defect 4: an episode's RHI deadline passes (its real durable timer, real
    rules); the escalation to "the RHI provider's manager" reaches the managers of the agency
    Northshire commissions for RHIs (here the council's own team, not a voluntary provider),
    and no one else's provider."""
    tag = uuid.uuid4().hex[:8]
    police = intake.new_agency(f"Shire Police {tag}", AgencyType.police)
    rhi_team = f"Northshire RHI Team {tag}"
    intake.identity.create_agency(
        rhi_team, AgencyType.childrens_social_care, rhi_provider_for=["northshire"]
    )
    provider_manager = intake.new_user("RHI manager", Role.manager, rhi_team)
    elsewhere = f"Eastmoor Young People {tag}"
    intake.identity.create_agency(elsewhere, AgencyType.voluntary_provider, authority="eastmoor")
    other_manager = intake.new_user("Other provider's manager", Role.manager, elsewhere)

    # Returned just under 72 hours ago: the deadline falls due seconds after the return is
    # recorded, on the episode's own durable timer.
    now = datetime.now(UTC)
    returned = now - timedelta(hours=72) + timedelta(seconds=10)
    today = today_uk()
    report = {
        "partner_reference": f"MFH-{tag}",
        "child": {
            "agency_child_ref": f"NP-{tag}",
            "date_of_birth": today.replace(year=today.year - 14, day=1).isoformat(),
            "local_authority": "northshire",
        },
        "reported_at": (returned - timedelta(hours=6)).isoformat(),
        "circumstances": "Left the children's home after an argument.",
    }
    async with intake.http(police) as http:
        resp = await http.post("/v1/missing-episodes", json=report)
        assert resp.status_code == 202, resp.text
        episode_id = resp.json()["episode_id"]
        back = await http.post(
            f"/v1/missing-episodes/{episode_id}/return",
            json={"returned_at": returned.isoformat()},
        )
        assert back.status_code == 200, back.text

    handle = intake.client.get_workflow_handle(missing_episode_workflow_id(episode_id))
    await poll(
        lambda: handle.query("state"),
        lambda st: bool(st["rhi_deadline_breached"]),
        what="the RHI deadline breached",
    )

    async def items_for(token: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=inbox_url, headers=headers, timeout=30) as http:
            got = await every_item(http, "/v1/inbox", [("state", "all")])
        return [i for i in got if i["about"] == episode_id]

    (item,) = await eventually(lambda: items_for(provider_manager), what="the manager's item")
    assert item["kind"] == "rhi_not_offered" and item["urgency"] == "same_day"
    assert item["designation"] == "rhi_provider" and item["target_authority"] == "northshire"
    assert item["target_role"] == "manager"
    assert "argument" not in str(item)  # what the police wrote stays in the referral service
    assert await items_for(other_manager) == []
