"""Missing episodes through the API on the real dev server with real workers: report, return,
Return Home Interview, idempotency, bad input, and the link to the child's open case."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.types import today_uk
from mset_contract.vocab import AgencyType, Role
from tests.integration.conftest import Intake
from tests.integration.test_referral_intake import tool, wait_for_stage


def missing_report(**over: Any) -> dict[str, Any]:
    today = today_uk()
    body: dict[str, Any] = {
        "partner_reference": f"MFH-{uuid.uuid4().hex[:8]}",
        "child": {
            "agency_child_ref": f"NP-{uuid.uuid4().hex[:6]}",
            "date_of_birth": today.replace(year=today.year - 14, day=1).isoformat(),
            "local_authority": "northshire",
        },
        "reported_at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
        "circumstances": "Left the children's home after an argument.",
    }
    body.update(over)
    return body


async def test_report_return_and_interview(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    intake.new_agency("Northshire RHI Service", AgencyType.voluntary_provider)
    provider = intake.new_user("Jo Worker", Role.provider, "Northshire RHI Service")
    body = missing_report()
    async with intake.http(police) as http:
        first = await http.post(
            "/v1/missing-episodes", json=body, headers={"Idempotency-Key": "m1"}
        )
        assert first.status_code == 202, first.text
        again = await http.post(
            "/v1/missing-episodes", json=body, headers={"Idempotency-Key": "m1"}
        )
        assert again.json()["episode_id"] == first.json()["episode_id"]
        assert again.json()["duplicate"] is True
        eid = first.json()["episode_id"]

        back = await http.post(
            f"/v1/missing-episodes/{eid}/return",
            json={"returned_at": datetime.now(UTC).isoformat(), "located_in_authority": "eastmoor"},
        )
        assert back.status_code == 200, back.text
        due = datetime.fromisoformat(back.json()["rhi_due_at"])
        assert timedelta(hours=71) < due - datetime.now(UTC) < timedelta(hours=73)
        # The police cannot record the interview: the provider does.
        assert (
            await http.post(
                f"/v1/missing-episodes/{eid}/rhi",
                json={"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()},
            )
        ).status_code == 404
    async with intake.http(provider) as http:
        bad = await http.post(f"/v1/missing-episodes/{eid}/rhi", json={"outcome": "not_offered"})
        assert bad.status_code == 422
        assert "reason_not_offered" in bad.json()["detail"]
        ok = await http.post(
            f"/v1/missing-episodes/{eid}/rhi",
            json={"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()},
        )
        assert ok.status_code == 200, ok.text
        view = await http.get(f"/v1/missing-episodes/{eid}")
        assert view.status_code == 200
        assert view.json()["status"] == "closed" and view.json()["rhi_outcome"] == "completed"
        assert view.json()["located_in_authority"] == "eastmoor"
        # What the police wrote stays with the referral service: not in the episode's state.
        assert "circumstances" not in view.text and "argument" not in view.text


async def test_bad_reports_name_the_field(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with intake.http(police) as http:
        resp = await http.post("/v1/missing-episodes", json=missing_report(reported_at=future))
        assert resp.status_code == 422
        assert "reported_at" in [e["field"] for e in resp.json()["errors"]]
        resp = await http.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=str(uuid.uuid4()))
        )
        assert resp.status_code == 422
        assert resp.json()["errors"][0]["field"] == "case_referral_id"


async def test_an_episode_reported_for_an_open_case_reaches_it(intake: Intake) -> None:
    csc = intake.new_agency("Northshire CSC")
    police = intake.new_agency("Northshire Police", AgencyType.police)
    async with intake.http(csc) as partner:
        referral = (await partner.post("/v1/referrals", json=tool())).json()
        await wait_for_stage(partner, referral["referral_id"], "awaiting_pre_mset")
    async with intake.http(police) as http:
        resp = await http.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=referral["referral_id"])
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["case_referral_id"] == referral["referral_id"]
    handle = intake.client.get_workflow_handle(referral["workflow_id"])
    for _ in range(100):
        state = await handle.query("state")
        if state["missing_episodes"]:
            break
        await asyncio.sleep(0.1)
    assert [e["episode_id"] for e in state["missing_episodes"]] == [resp.json()["episode_id"]]


async def test_a_third_episode_in_90_days_opens_a_referral_for_consideration(
    intake: Intake,
) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    coordinator = intake.new_user("Sam", Role.coordinator, "MSET Partnership")
    child = missing_report()["child"]
    episode_ids = []
    async with intake.http(police) as http:
        for days_ago in (40, 12, 0):
            at = datetime.now(UTC) - timedelta(days=days_ago, hours=6)
            resp = await http.post(
                "/v1/missing-episodes",
                json=missing_report(child=child, reported_at=at.isoformat()),
            )
            assert resp.status_code == 202, resp.text
            assert resp.json()["case_referral_id"] is None  # no case yet
            episode_ids.append(resp.json()["episode_id"])
            back = await http.post(
                f"/v1/missing-episodes/{episode_ids[-1]}/return",
                json={"returned_at": (at + timedelta(hours=5)).isoformat()},
            )
            assert back.status_code == 200, (days_ago, episode_ids, back.text)
    # The third return makes the rules say "consider": a referral is opened and linked.
    async with intake.http(coordinator) as http:
        case_id = None
        for _ in range(100):
            view = (await http.get(f"/v1/missing-episodes/{episode_ids[-1]}")).json()
            case_id = view["case_referral_id"]
            if case_id:
                break
            await asyncio.sleep(0.1)
        assert case_id, "no referral was opened"
        case = await wait_for_stage(http, case_id, "awaiting_pre_mset")
        assert case["suggested_level"] in {"medium", "high"}
    state = await intake.client.get_workflow_handle(f"referral-{case_id}").query("state")
    assert len(state["missing_episodes"]) == 3
