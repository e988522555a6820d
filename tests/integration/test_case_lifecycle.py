"""A referral from submission to exit through the APIs, on the real dev server with every
worker real (referral record keeping, triage rules, workflow, publishing to the broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.referral_workflow import ReferralState
from mset_contract.vocab import AgencyType, ExitReason, Role
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.wait import eventually, poll

# The authority of this module's cases: the staff who work them serve it.
LA = fresh_authority()
OURS = (LA,)


async def listed(intake: Intake, query: str, workflow_id: str) -> bool:
    async def found() -> bool:
        return workflow_id in [w.id async for w in intake.client.list_workflows(query)]

    return bool(await eventually(found, what=f"{workflow_id} listed by {query!r}"))


async def test_a_referral_from_submission_to_exit_through_the_apis(intake: Intake) -> None:
    key = intake.new_agency("Northshire CSC")
    police_key = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    officer = intake.new_user("PC Hale", Role.panel_member, "Northshire Police", OURS)
    body = tool(child__local_authority=LA)
    la = body["child"]["local_authority"]

    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        rid, wid = accepted["referral_id"], accepted["workflow_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        assert await listed(
            intake, f"MsetStage='awaiting_pre_mset' AND MsetLocalAuthority='{la}'", wid
        )

        # The partner cannot decide (it may read the case, so it is told why: 403); an
        # invalid decision is refused and leaves no trace.
        refused = await partner.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "not_met", "level": "low", "rationale": "Advice is enough."},
        )
        assert refused.status_code == 403
        assert "only the chair" in refused.json()["detail"]
        invalid = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision", json={"outcome": "not_met", "level": "low"}
        )
        assert invalid.status_code == 422
        assert [e["field"] for e in invalid.json()["errors"]] == ["rationale"]
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
    social_worker = intake.new_user("Alex Reid", Role.panel_member, "Northshire CSC", OURS)
    async with intake.http(social_worker) as other_http:
        not_theirs = await other_http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Not our action.", "completed": True},
        )
        # A panel member reads the case (and sees whose action it is): 403, with the reason.
        assert not_theirs.status_code == 403
        assert "agency that owns it" in not_theirs.json()["detail"]
    async with intake.http(officer) as officer_http:
        done = await officer_http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Notice served.", "completed": True},
        )
        assert done.status_code == 200, done.text
        assert done.json()["open_actions"] == 0

    async with intake.http(chair) as chair_http, intake.http(key) as partner:
        # An action the case does not have is a record that does not exist: 404.
        no_action = await chair_http.post(
            f"/v1/referrals/{rid}/actions/no-such-action/progress", json={"note": "Done."}
        )
        assert no_action.status_code == 404, no_action.text
        bad_exit = await chair_http.post(f"/v1/referrals/{rid}/exit", json={"reason": "other"})
        assert bad_exit.status_code == 422
        assert [e["field"] for e in bad_exit.json()["errors"]] == ["detail"]
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
        async def read() -> dict[str, Any]:
            resp = await partner.get(f"/v1/referrals/{second['referral_id']}")
            return dict(resp.json())

        view = await poll(read, lambda v: v["suggested_level"] == "high", what="re-triage")
        assert view["suggested_level"] == "high"
        assert view["case_id"] == first["referral_id"]
    workflows = [
        w.id
        async for w in intake.client.list_workflows(
            f"MsetLocalAuthority='{body['child']['local_authority']}'"
        )
    ]
    assert workflows == [first["workflow_id"]]


async def test_a_refusal_by_role_is_403_with_why_and_a_case_out_of_sight_stays_404(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    intake.new_agency("Eastmoor CSC")
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    coordinator = intake.new_user("Sam Patel", Role.coordinator, "MSET Partnership", OURS)
    other_agency_provider = intake.new_user("Jo Marsh", Role.provider, "Eastmoor CSC")
    analyst = intake.new_user("Ali Khan", Role.analyst, "MSET Partnership")
    async with intake.http(key) as partner:
        accepted = (
            await partner.post("/v1/referrals", json=tool(child__local_authority=LA))
        ).json()
        rid = accepted["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        decision = {"outcome": "meets_criteria", "level": "medium"}
        for path, body in (
            ("pre-mset-decision", decision),
            ("mset-review", {"level": "medium", "review_id": "r-1"}),
            ("exit", {"reason": "sufficiently_safe"}),
        ):
            resp = await partner.post(f"/v1/referrals/{rid}/{path}", json=body)
            assert resp.status_code == 403, (path, resp.text)
            assert "may not record" in resp.json()["detail"]
    async with intake.http(coordinator) as coord:
        # The coordinator reads every case, but Pre-MSET decisions are the chair's.
        resp = await coord.post(f"/v1/referrals/{rid}/pre-mset-decision", json=decision)
        assert resp.status_code == 403
        assert "only the chair may" in resp.json()["detail"]
        assert (await coord.get(f"/v1/referrals/{rid}")).json()["stage"] == "awaiting_pre_mset"
    for outsider in (other_agency_provider, analyst):
        async with intake.http(outsider) as http:
            # May not see the case at all: nothing says it exists.
            resp = await http.post(f"/v1/referrals/{rid}/pre-mset-decision", json=decision)
            assert resp.status_code == 404
            assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404


async def test_an_exit_accounts_for_every_open_action_and_the_view_after_it_is_final(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        body = tool(child__local_authority=LA)
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium"},
        )
        assert met.status_code == 200, met.text
        due = (datetime.now(UTC) + timedelta(days=14)).isoformat()
        plan = await chair_http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={
                "level": "medium",
                "review_id": "mset-1",
                "actions": [
                    {
                        "owner_agency_id": str(police.id),
                        "due_at": due,
                        "aim": "reduce",
                        "target": "perpetrator",
                        "description": "Serve a Child Abduction Warning Notice.",
                    }
                ],
            },
        )
        assert plan.status_code == 200, plan.text
        action_id = plan.json()["action_ids"][0]

        # An exit that leaves the open action unaccounted for is refused, naming it.
        refused = await chair_http.post(
            f"/v1/referrals/{rid}/exit", json={"reason": "sufficiently_safe"}
        )
        assert refused.status_code == 422
        assert "open actions not accounted for" in refused.json()["detail"]
        assert action_id in refused.json()["detail"]
        assert (await partner.get(f"/v1/referrals/{rid}")).json()["stage"] == "active_plan"

        exited = await chair_http.post(
            f"/v1/referrals/{rid}/exit",
            json={
                "reason": "sufficiently_safe",
                "actions": [{"action_id": action_id, "disposition": "carried"}],
            },
        )
        assert exited.status_code == 200, exited.text
        # Straight after the exit, and ever after: final and consistent.
        seen: set[tuple[int, str]] = set()
        for _ in range(2):
            view = (await partner.get(f"/v1/referrals/{rid}")).json()
            seen.add((view["sequence"], view["as_of"]))
            assert view["stage"] == "exited"
            assert view["exit_reason"] == "sufficiently_safe"
            assert view["open_actions"] == []
            assert view["next_deadline"] is None
            await intake.client.get_workflow_handle(f"referral-{rid}").result()
        assert len(seen) == 1  # the exit's record is the last: nothing after it changes it
