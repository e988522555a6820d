"""A referral from submission to exit through the APIs, on the real dev server with every
worker real (referral record keeping, triage rules, workflow, publishing to the broker)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mset_contract.referral_workflow import ReferralState
from mset_contract.vocab import AgencyType, ExitReason, Role
from tests.integration.conftest import Intake
from tests.integration.test_referral_intake import tool, wait_for_stage


async def listed(intake: Intake, query: str, workflow_id: str) -> bool:
    for _ in range(50):
        ids = [w.id async for w in intake.client.list_workflows(query)]
        if workflow_id in ids:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_referral_from_submission_to_exit_through_the_apis(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    police_key = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership")
    officer = intake.new_user("PC Hale", Role.panel_member, "Northshire Police")
    body = tool()
    la = body["child"]["local_authority"]

    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        rid, wid = accepted["referral_id"], accepted["workflow_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        assert await listed(
            intake, f"MsetStage='awaiting_pre_mset' AND MsetLocalAuthority='{la}'", wid
        )

        # The partner cannot decide; an invalid decision is refused and leaves no trace.
        refused = await partner.post(
            f"/v1/referrals/{rid}/pre-mset-decision", json={"outcome": "not_met", "level": "low"}
        )
        assert refused.status_code == 404
        invalid = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision", json={"outcome": "not_met", "level": "low"}
        )
        assert invalid.status_code == 422
        assert "rationale" in invalid.json()["detail"]
        assert (await partner.get(f"/v1/referrals/{rid}")).json()["stage"] == "awaiting_pre_mset"

        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium", "decision_id": "pm-1"},
        )
        assert met.status_code == 200, met.text
        assert met.json()["stage"] == "awaiting_mset"
        again = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium", "decision_id": "pm-1"},
        )
        assert again.status_code == 200  # the same decision again is the same decision

        due = datetime.now(UTC) + timedelta(days=14)
        plan_body = {
            "level": "medium",
            "review_id": "mset-1",
            "actions": [
                {
                    "owner_agency_id": str(police_key.id),
                    "due_at": due.isoformat(),
                    "aim": "reduce",
                    "target": "perpetrator",
                    "description": "Serve a Child Abduction Warning Notice.",
                }
            ],
        }
        plan = await chair_http.post(f"/v1/referrals/{rid}/mset-review", json=plan_body)
        assert plan.status_code == 200, plan.text
        action_id = plan.json()["action_ids"][0]
        # A retry of the same review (after a timeout, say) records it once.
        retry = await chair_http.post(f"/v1/referrals/{rid}/mset-review", json=plan_body)
        assert retry.status_code == 200 and retry.json()["action_ids"] == [action_id]
        no_id = {k: v for k, v in plan_body.items() if k != "review_id"}
        missing_id = await chair_http.post(f"/v1/referrals/{rid}/mset-review", json=no_id)
        assert missing_id.status_code == 422
        assert "review_id" in [e["field"] for e in missing_id.json()["errors"]]
        view = await wait_for_stage(partner, rid, "active_plan")
        assert view["level"] == "medium"
        assert [a["action_id"] for a in view["open_actions"]] == [action_id]
        assert view["next_deadline"] is not None
        assert await listed(intake, f"MsetStage='active_plan' AND MsetLocalAuthority='{la}'", wid)

    # The owning agency's officer reports the action done; another agency's may not.
    social_worker = intake.new_user("Alex Reid", Role.panel_member, "Northshire CSC")
    async with intake.http(social_worker) as other_http:
        not_theirs = await other_http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Not our action.", "completed": True},
        )
        assert not_theirs.status_code == 404
    async with intake.http(officer) as officer_http:
        done = await officer_http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Notice served.", "completed": True},
        )
        assert done.status_code == 200, done.text
        assert done.json()["open_actions"] == 0

    async with intake.http(chair) as chair_http, intake.http(key) as partner:
        bad_exit = await chair_http.post(f"/v1/referrals/{rid}/exit", json={"reason": "other"})
        assert bad_exit.status_code == 422
        exited = await chair_http.post(
            f"/v1/referrals/{rid}/exit", json={"reason": "sufficiently_safe"}
        )
        assert exited.status_code == 200, exited.text
        final = await wait_for_stage(partner, rid, "exited")
        assert final["exit_reason"] == "sufficiently_safe"
        assert final["open_actions"] == []
        late = await chair_http.post(f"/v1/referrals/{rid}/exit", json={"reason": "other"})
        assert late.status_code in (409, 422)

        # The same child referred again later opens a new case linked to the closed one.
        again_body = tool(child__local_authority=la)
        again_body["child"]["agency_child_ref"] = body["child"]["agency_child_ref"]
        rereferral = (await partner.post("/v1/referrals", json=again_body)).json()
        assert rereferral["kind"] == "re_referral"
        assert rereferral["case_id"] == rereferral["referral_id"] != rid
        view = await wait_for_stage(partner, rereferral["referral_id"], "awaiting_pre_mset")
        assert view["previous_referral_id"] == rid
    handle = intake.client.get_workflow_handle(wid, result_type=ReferralState)
    result = await handle.result()
    assert result.exit is not None and result.exit.reason == ExitReason.sufficiently_safe
    assert result.exit.decided_by is not None


async def test_a_new_tool_for_an_open_case_reassesses_it(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    body = tool()
    async with intake.http(key) as partner:
        first = (await partner.post("/v1/referrals", json=body)).json()
        await wait_for_stage(partner, first["referral_id"], "awaiting_pre_mset")
        second_body = tool(child__local_authority=body["child"]["local_authority"])
        second_body["child"]["agency_child_ref"] = body["child"]["agency_child_ref"]
        second_body["indicators"].append({"code": "SXH-03", "recency": "current"})
        second = (await partner.post("/v1/referrals", json=second_body)).json()
        assert second["kind"] == "reassessment"
        assert second["case_id"] == first["referral_id"]
        assert second["workflow_id"] == first["workflow_id"]
        # The case is re-triaged with the new tool: disclosed abuse makes it high.
        for _ in range(100):
            view = (await partner.get(f"/v1/referrals/{second['referral_id']}")).json()
            if view["suggested_level"] == "high":
                break
            await asyncio.sleep(0.1)
        assert view["suggested_level"] == "high"
        assert view["case_id"] == first["referral_id"]
    workflows = [
        w.id
        async for w in intake.client.list_workflows(
            f"MsetLocalAuthority='{body['child']['local_authority']}'"
        )
    ]
    assert workflows == [first["workflow_id"]]
