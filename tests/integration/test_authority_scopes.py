"""Need to know by authority (issue 11, "need-to-know scopes"): coordinators, chairs, panel
members and managers see the cases of the local authorities they serve, and a cross-boundary
case only once the case has told their authority, not every case in the region. The real
referral API, workflows and workers, with real credentials, on SQLite and PostgreSQL. Each
test failed on the code before (every such role read every case)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from mset_contract.vocab import AgencyType, Role
from services.referral.store import AuthorityTold
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_need_to_know import same_answer
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.wait import poll

PARTNERSHIP = "MSET Partnership"


async def test_staff_see_only_the_cases_of_the_authorities_they_serve(intake: Intake) -> None:
    csc = intake.new_agency("Northshire CSC")
    intake.new_agency(PARTNERSHIP, AgencyType.local_authority)
    la = fresh_authority()
    ours = {
        role: intake.new_user(f"{role} here", role, PARTNERSHIP, (la,))
        for role in (Role.coordinator, Role.chair, Role.panel_member, Role.manager)
    }
    theirs = {
        role: intake.new_user(f"{role} EM", role, PARTNERSHIP, ("eastmoor",))
        for role in (Role.coordinator, Role.chair, Role.panel_member, Role.manager)
    }
    nobody = intake.new_user("No Authority", Role.coordinator, PARTNERSHIP)
    async with intake.http(csc) as partner:
        body = tool(child__local_authority=la)
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        report = missing_report()
        report["child"]["local_authority"] = la
        eid = (await partner.post("/v1/missing-episodes", json=report)).json()["episode_id"]
    fake = str(uuid.uuid4())

    for token in ours.values():
        async with intake.http(token) as http:
            assert (await http.get(f"/v1/referrals/{rid}")).status_code == 200
            assert (await http.get(f"/v1/missing-episodes/{eid}")).status_code == 200
    for token in [*theirs.values(), nobody]:
        async with intake.http(token) as http:
            for path, real in ((f"/v1/referrals/{rid}", rid), (f"/v1/missing-episodes/{eid}", eid)):
                got = await http.get(path)
                none = await http.get(path.replace(real, fake))
                assert got.status_code == 404, got.text
                same_answer(got, none, real, fake)
    # Another authority's chair cannot decide on the case either, and is not told it exists.
    async with intake.http(theirs[Role.chair]) as http:
        decision = {"outcome": "meets_criteria", "level": "high"}
        got = await http.post(f"/v1/referrals/{rid}/pre-mset-decision", json=decision)
        none = await http.post(f"/v1/referrals/{fake}/pre-mset-decision", json=decision)
    same_answer(got, none, rid, fake)
    assert got.status_code == 404
    async with intake.http(csc) as partner:
        assert (await partner.get(f"/v1/referrals/{rid}")).json()["stage"] == "awaiting_pre_mset"


async def test_a_cross_boundary_case_is_seen_by_the_other_authority_once_it_is_told(
    intake: Intake,
) -> None:
    """A child of one authority with an open case is found in Eastmoor while missing: the case
    tells Eastmoor's coordinators (the missing-in-another-authority escalation), and from
    then on Eastmoor's staff see the case and the episode; before, they did not, and an
    authority nobody told still does not."""
    csc = intake.new_agency("Northshire CSC")
    intake.new_agency(PARTNERSHIP, AgencyType.local_authority)
    eastmoor = intake.new_user("Em Coordinator", Role.coordinator, PARTNERSHIP, ("eastmoor",))
    westdale = intake.new_user("Wes Coordinator", Role.coordinator, PARTNERSHIP, ("westdale",))
    async with intake.http(csc) as partner:
        body = tool()
        referral = (await partner.post("/v1/referrals", json=body)).json()
        rid = referral["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        report = await partner.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=rid)
        )
        assert report.status_code == 202, report.text
        eid = report.json()["episode_id"]

    async with intake.http(eastmoor) as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404
        assert (await http.get(f"/v1/missing-episodes/{eid}")).status_code == 404

    async with intake.http(csc) as partner:
        back = await partner.post(
            f"/v1/missing-episodes/{eid}/return",
            json={"returned_at": datetime.now(UTC).isoformat(), "located_in_authority": "eastmoor"},
        )
        assert back.status_code == 200, back.text

    async with intake.http(eastmoor) as http:

        async def read() -> httpx.Response:
            return await http.get(f"/v1/referrals/{rid}")

        seen = await poll(read, lambda r: r.status_code == 200, what="Eastmoor sees the case")
        assert seen.json()["local_authority"] == body["child"]["local_authority"]
        assert (await http.get(f"/v1/missing-episodes/{eid}")).status_code == 200
    # Told by the escalation the case sent, as its state and the referral service record it.
    state = await intake.client.get_workflow_handle(referral["workflow_id"]).query("state")
    assert "missing_in_other_authority" in [e["kind"] for e in state["escalations"]]
    with intake.store.session() as s:
        told = s.scalars(select(AuthorityTold).where(AuthorityTold.case_id == uuid.UUID(rid)))
        assert [(t.local_authority, t.reason) for t in told] == [
            ("eastmoor", "missing_in_other_authority")
        ]
    async with intake.http(westdale) as http:
        assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404
