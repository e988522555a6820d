"""Need to know (issue 11, findings 2 to 5): what the probing of the running stack found an
agency, an admin, an analyst or a provider could read or change, and the existence oracles.
The real referral API, workflows and workers, with real credentials, on SQLite and
PostgreSQL. Each test failed on the code before the access policy (services/referral/policy.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from mset_contract.vocab import AgencyType, Role
from services.referral.store import MissingEpisode
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_action_owners import awaiting_mset, plan_action
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_referral_intake import tool, wait_for_stage

# The authority of this module's cases: the staff who work them serve it.
LA = fresh_authority()
OURS = (LA,)


def same_answer(real: httpx.Response, fake: httpx.Response, real_id: str, fake_id: str) -> None:
    """The two answers are the same but for the id the caller sent."""
    assert real.status_code == fake.status_code, (real.text, fake.text)
    assert real.text.replace(real_id, "<id>") == fake.text.replace(fake_id, "<id>")


async def test_an_agency_cannot_attach_a_missing_episode_to_a_case_it_cannot_read(
    intake: Intake,
) -> None:
    """Finding 2: police naming a social-care case they cannot read got 202, the episode then
    counted toward that case's repeat-missing rule; a random id got 422 (an oracle)."""
    csc = intake.new_agency("Northshire CSC")
    police = intake.new_agency("Northshire Police", AgencyType.police)
    async with intake.http(csc) as partner:
        referral = (await partner.post("/v1/referrals", json=tool())).json()
        rid = referral["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
    fake = str(uuid.uuid4())
    async with intake.http(police) as http:
        theirs = await http.post("/v1/missing-episodes", json=missing_report(case_referral_id=rid))
        nothing = await http.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=fake)
        )
    assert theirs.status_code == 422, theirs.text
    assert [e["field"] for e in theirs.json()["errors"]] == ["case_referral_id"]
    same_answer(theirs, nothing, rid, fake)
    # Nothing was recorded, and the case holds no episode.
    with intake.store.session() as s:
        assert s.scalar(select(func.count()).select_from(MissingEpisode)) == 0
    state = await intake.client.get_workflow_handle(referral["workflow_id"]).query("state")
    assert state["missing_episodes"] == []


async def test_admins_and_analysts_of_the_owning_agency_cannot_report_progress(
    intake: Intake,
) -> None:
    """Finding 3: an analyst or admin at the agency owning an action wrote progress notes into
    another agency's case; they never see or change case-level data."""
    csc = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    analyst = intake.new_user("Ana Lyst", Role.analyst, "Northshire Police")
    admin = intake.new_user("Ad Min", Role.admin, "Northshire Police")
    officer = intake.new_user("PC Hale", Role.panel_member, "Northshire Police")
    rid = await awaiting_mset(intake, csc, chair, LA)
    async with intake.http(chair) as http:
        plan = await http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={"level": "medium", "review_id": "r-1", "actions": [plan_action(police.id)]},
        )
        assert plan.status_code == 200, plan.text
        (action_id,) = plan.json()["action_ids"]
    async with intake.http(csc) as partner:
        await wait_for_stage(partner, rid, "active_plan")

    note = {"note": "Written by someone who may not.", "completed": True}
    fake = str(uuid.uuid4())
    for who in (analyst, admin):
        async with intake.http(who) as http:
            resp = await http.post(f"/v1/referrals/{rid}/actions/{action_id}/progress", json=note)
            none = await http.post(f"/v1/referrals/{fake}/actions/{action_id}/progress", json=note)
            # They may not see the case: the answer a case that does not exist gets.
            assert resp.status_code == 404, resp.text
            same_answer(resp, none, rid, fake)
            assert (await http.get(f"/v1/referrals/{rid}")).status_code == 404
    async with intake.http(chair) as http:
        view = (await http.get(f"/v1/referrals/{rid}")).json()
    assert [a["action_id"] for a in view["open_actions"]] == [action_id]  # still open
    # The owning agency's case worker may.
    async with intake.http(officer) as http:
        done = await http.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Notice served.", "completed": True},
        )
    assert done.status_code == 200, done.text


async def episode(intake: Intake, police: str, authority: str) -> str:
    async with intake.http(police) as http:
        body = missing_report()
        body["child"]["local_authority"] = authority
        resp = await http.post("/v1/missing-episodes", json=body)
        assert resp.status_code == 202, resp.text
        eid = str(resp.json()["episode_id"])
        back = await http.post(
            f"/v1/missing-episodes/{eid}/return",
            json={"returned_at": datetime.now(UTC).isoformat()},
        )
        assert back.status_code == 200, back.text
    return eid


async def test_a_provider_acts_only_for_the_authorities_that_commission_it(
    intake: Intake,
) -> None:
    """Finding 4: any provider-role user read every missing episode and could record the
    Return Home Interview on any of them."""
    police = intake.new_agency("Regional Police", AgencyType.police)
    intake.identity.create_agency(
        "Northshire RHI Service", AgencyType.voluntary_provider, rhi_provider_for=["northshire"]
    )
    intake.identity.create_agency(
        "Eastmoor RHI Service", AgencyType.voluntary_provider, rhi_provider_for=["eastmoor"]
    )
    ns_worker = intake.new_user("Jo Worker", Role.provider, "Northshire RHI Service")
    em_worker = intake.new_user("Kim Worker", Role.provider, "Eastmoor RHI Service")
    in_ns = await episode(intake, police, "northshire")
    fake = str(uuid.uuid4())
    rhi = {"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()}

    async with intake.http(em_worker) as http:
        read = await http.get(f"/v1/missing-episodes/{in_ns}")
        read_none = await http.get(f"/v1/missing-episodes/{fake}")
        record = await http.post(f"/v1/missing-episodes/{in_ns}/rhi", json=rhi)
        record_none = await http.post(f"/v1/missing-episodes/{fake}/rhi", json=rhi)
    assert read.status_code == 404 and record.status_code == 404, (read.text, record.text)
    same_answer(read, read_none, in_ns, fake)
    same_answer(record, record_none, in_ns, fake)

    async with intake.http(ns_worker) as http:
        assert (await http.get(f"/v1/missing-episodes/{in_ns}")).json()["rhi_outcome"] is None
        ok = await http.post(f"/v1/missing-episodes/{in_ns}/rhi", json=rhi)
        assert ok.status_code == 200, ok.text


async def test_a_refusal_for_what_the_caller_may_not_see_is_the_404_of_what_does_not_exist(
    intake: Intake,
) -> None:
    """Finding 5: progress on action 'x' answered "no action x" for a real referral and "no
    referral" for a made-up one. Every route on a referral answers an outsider (another
    agency's system, its staff) for a real one exactly as for one that does not exist."""
    csc = intake.new_agency("Northshire CSC")
    other = intake.new_agency("Eastmoor CSC")
    provider = intake.new_user("Jo Marsh", Role.provider, "Eastmoor CSC")
    analyst = intake.new_user("Ali Khan", Role.analyst, "Eastmoor CSC")
    async with intake.http(csc) as partner:
        rid = (await partner.post("/v1/referrals", json=tool())).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
    fake = str(uuid.uuid4())
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/v1/referrals/{id}", None),
        ("GET", "/v1/referrals/{id}/papers", None),
        ("POST", "/v1/referrals/{id}/actions/x/progress", {"note": "n", "completed": False}),
        (
            "POST",
            "/v1/referrals/{id}/pre-mset-decision",
            {"outcome": "not_met", "level": "low", "rationale": "r"},
        ),
        ("POST", "/v1/referrals/{id}/mset-review", {"level": "medium", "review_id": "r"}),
        ("POST", "/v1/referrals/{id}/exit", {"reason": "sufficiently_safe"}),
    ]
    for who in (other, provider, analyst):
        async with intake.http(who) as http:
            for method, path, body in calls:
                real = await http.request(method, path.format(id=rid), json=body)
                none = await http.request(method, path.format(id=fake), json=body)
                assert real.status_code == 404, (who[:6], path, real.text)
                same_answer(real, none, rid, fake)


async def test_progress_on_an_action_the_case_does_not_have_is_a_404_naming_it(
    intake: Intake,
) -> None:
    """A coordinator who may update the case's actions, reporting on an action id the case
    has no action under, is told it is not there (404), as for any record that is not: not
    that the request was invalid (the id is well formed), and nothing is recorded."""
    csc = intake.new_agency("Northshire CSC")
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    coordinator = intake.new_user("Cass Ord", Role.coordinator, "MSET Partnership", OURS)
    body = tool(child__local_authority=LA, child__agency_child_ref=f"C-{uuid.uuid4().hex[:8]}")
    async with intake.http(csc) as partner:
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
    async with intake.http(coordinator) as http:
        resp = await http.post(
            f"/v1/referrals/{rid}/actions/no-such-action/progress",
            json={"note": "visited", "completed": True},
        )
        assert resp.status_code == 404, resp.text
        assert "no-such-action" in resp.json()["detail"]
        case = await http.get(f"/v1/referrals/{rid}")
        assert case.status_code == 200, case.text
        assert case.json()["open_actions"] == []
