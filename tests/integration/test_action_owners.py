"""Who owns a plan's actions (issue 10, defects 7 and 8): owners are agencies the referral
service knows, chosen from its directory; the owning agency's system and staff see the
actions it owns and report progress on them. Real referral API, workflow and workers, on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from mset_contract.vocab import AgencyType, MeetingKind, Role, Stage
from services.referral.store import LedgerEntry
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)
from tests.integration.test_meeting_decisions import decision_url, one_item_meeting
from tests.integration.test_referral_intake import tool, wait_for_stage

# The authority of this module's cases: the staff who work them serve it.
LA = fresh_authority()
OURS = (LA,)


def plan_action(owner: uuid.UUID | str, days: int = 14, what: str = "Serve a notice.") -> Any:
    return {
        "owner_agency_id": str(owner),
        "due_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "aim": "reduce",
        "target": "perpetrator",
        "description": what,
    }


async def awaiting_mset(intake: Intake, key: str, chair: str, la: str) -> str:
    """A case in authority ``la`` (which the chair serves), through Pre-MSET, waiting for the
    MSET group; its referral id."""
    async with intake.http(key) as partner, intake.http(chair) as chair_http:
        # A child of its own: another tool for the same child would reassess the open case.
        child = f"C-{uuid.uuid4().hex[:8]}"
        body = tool(child__local_authority=la, child__agency_child_ref=child)
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        rid = str(accepted["referral_id"])
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium", "decision_id": "pm-1"},
        )
        assert met.status_code == 200, met.text
    return rid


async def test_staff_page_through_the_agency_directory_without_minting_a_key(
    intake: Intake,
) -> None:
    police = intake.identity.create_agency("Aston Police", AgencyType.police)
    intake.identity.create_agency(
        "Bexley Youth Hub", AgencyType.voluntary_provider, "northshire", ["northshire"]
    )
    key = intake.identity.create_agency("Carrow CSC", AgencyType.childrens_social_care).secret
    member = intake.new_user("Pat Member", Role.panel_member, "Carrow CSC")

    async with intake.http(member) as http:
        first = await http.get("/v1/agencies", params={"limit": 2})
        assert first.status_code == 200, first.text
        page = first.json()
        assert [a["name"] for a in page["items"]] == ["Aston Police", "Bexley Youth Hub"]
        hub = page["items"][1]
        assert hub["type"] == "voluntary_provider" and hub["local_authority"] == "northshire"
        assert hub["rhi_provider_for"] == ["northshire"]
        rest = await http.get("/v1/agencies", params={"limit": 2, "cursor": page["next_cursor"]})
        assert [a["name"] for a in rest.json()["items"]] == ["Carrow CSC"]
        assert rest.json()["next_cursor"] is None  # the last page says so
        # A cursor is the directory's own: made up, or another list's, it is a 422 naming it.
        bad = await http.get("/v1/agencies", params={"cursor": "Bexley Youth Hub"})
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["query.cursor"]
        police_only = await http.get("/v1/agencies", params={"type": "police"})
        assert [a["agency_id"] for a in police_only.json()["items"]] == [str(police.id)]
        one = await http.get(f"/v1/agencies/{police.id}")
        assert one.status_code == 200 and one.json()["name"] == "Aston Police"
        assert (await http.get(f"/v1/agencies/{uuid.uuid4()}")).status_code == 404

    # The MSET services ask with their token; a partner system's key is not staff.
    async with intake.http(intake.settings.service_token.get_secret_value()) as service:
        by_id = await service.get("/v1/agencies", params=[("id", str(police.id))])
        assert [a["name"] for a in by_id.json()["items"]] == ["Aston Police"]
    async with intake.http(key) as partner:
        assert (await partner.get("/v1/agencies")).status_code == 403
    async with httpx.AsyncClient(base_url=intake.url) as anonymous:
        assert (await anonymous.get("/v1/agencies")).status_code == 401


async def test_a_review_over_the_referral_api_refuses_an_owner_that_does_not_exist(
    intake: Intake,
) -> None:
    key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    rid = await awaiting_mset(intake, key, chair, LA)

    nobody = uuid.uuid4()
    async with intake.http(chair) as http:
        resp = await http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={
                "level": "medium",
                "review_id": "mset-1",
                "actions": [plan_action(police.id), plan_action(nobody)],
            },
        )
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == ["actions.1.owner_agency_id"]
        assert str(nobody) in resp.json()["detail"]
        # Nothing was recorded: the case still waits for its review, which then stands.
        view = (await http.get(f"/v1/referrals/{rid}")).json()
        assert view["stage"] == "awaiting_mset" and view["open_actions"] == []
        ok = await http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={"level": "medium", "review_id": "mset-1", "actions": [plan_action(police.id)]},
        )
        assert ok.status_code == 200, ok.text


async def test_a_panel_decision_refuses_an_owner_that_does_not_exist(panel: Panel) -> None:
    await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    pre_id, item = await one_item_meeting(panel, MeetingKind.pre_mset)
    async with panel.http("chair") as http:
        met = await http.post(
            decision_url(pre_id, item["item_id"]),
            json={"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"},
        )
        assert met.status_code == 200, met.text
    await panel.visible((Stage.awaiting_mset,), 1)
    mset_id, item = await one_item_meeting(panel, MeetingKind.mset)

    nobody = uuid.uuid4()
    async with panel.http("chair") as http:
        resp = await http.post(
            decision_url(mset_id, item["item_id"]),
            json={"kind": "mset_review", "level": "high", "actions": [plan_action(nobody)]},
        )
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["actions.0.owner_agency_id"]
    [still] = (await panel.agenda(mset_id))["items"]
    assert still["decision"] is None


async def test_the_owning_agency_lists_and_updates_its_actions_by_key_and_by_staff(
    intake: Intake,
) -> None:
    csc_key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    health = intake.identity.create_agency("Northshire Health", AgencyType.health)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", OURS)
    officer = intake.new_user("PC Hale", Role.panel_member, "Northshire Police", OURS)
    analyst = intake.new_user("Ana Lyst", Role.analyst, "Northshire Police")

    # Two cases, each with an action for the police and one for health.
    cases = []
    for n in range(2):
        rid = await awaiting_mset(intake, csc_key, chair, LA)
        async with intake.http(chair) as http:
            resp = await http.post(
                f"/v1/referrals/{rid}/mset-review",
                json={
                    "level": "medium",
                    "review_id": f"mset-{n}",
                    "actions": [
                        plan_action(police.id, what=f"Warning notice {n}"),
                        plan_action(health.id, what=f"Sexual health appointment {n}"),
                    ],
                },
            )
            assert resp.status_code == 200, resp.text
            cases.append((rid, resp.json()["action_ids"]))
        async with intake.http(csc_key) as partner:
            await wait_for_stage(partner, rid, "active_plan")

    async def listed(credential: str, **params: Any) -> dict[str, Any]:
        async with intake.http(credential) as http:
            resp = await http.get("/v1/actions", params=params)
        assert resp.status_code == 200, resp.text
        page: dict[str, Any] = resp.json()
        return page

    # The police system (its API key) sees its own actions, one page at a time.
    first = await listed(police.secret, limit=1)
    assert first["next_cursor"] is not None
    second = await listed(police.secret, limit=1, cursor=first["next_cursor"])
    mine = first["items"] + second["items"]
    assert sorted((a["case_id"], a["action_id"]) for a in mine) == sorted(
        (rid, ids[0]) for rid, ids in cases
    )
    assert {a["description"] for a in mine} == {"Warning notice 0", "Warning notice 1"}
    assert {a["owner_agency_id"] for a in mine} == {str(police.id)}
    assert second["next_cursor"] is None  # the last case: no empty page to ask for
    # Its staff see the same; health sees only its own; the referrer owns none of them.
    by_officer = await listed(officer)
    assert {a["action_id"] for a in by_officer["items"]} == {ids[0] for _, ids in cases}
    by_health = await listed(health.secret)
    assert {a["action_id"] for a in by_health["items"]} == {ids[1] for _, ids in cases}
    assert (await listed(csc_key))["items"] == []
    async with intake.http(analyst) as http:
        assert (await http.get("/v1/actions")).status_code == 403

    # The police system reports its action done with its API key; health's key may not.
    rid, ids = cases[0]
    url = f"/v1/referrals/{rid}/actions/{ids[0]}/progress"
    async with intake.http(health.secret) as http:
        refused = await http.post(url, json={"note": "Not ours.", "completed": True})
        assert refused.status_code == 404
    async with intake.http(police.secret) as http:
        done = await http.post(url, json={"note": "Notice served.", "completed": True})
        assert done.status_code == 200, done.text
        assert done.json() == {"action_id": ids[0], "completed": True, "open_actions": 1}
    still_open = await listed(police.secret)
    assert [a["action_id"] for a in still_open["items"]] == [cases[1][1][0]]
    completed = (await listed(police.secret, status="completed"))["items"]
    assert [(a["action_id"], a["status"]) for a in completed] == [(ids[0], "completed")]

    # Every disclosure to the police is in the information-sharing ledger.
    with intake.store.session() as s:
        views = {
            (str(d.record_id), d.view, d.user_id, d.recipient_kind)
            for d in s.scalars(select(LedgerEntry).where(LedgerEntry.agency_id == police.id))
        }
    assert (rid, "action_progress", None, "partner_system") in views
    assert {(r, "owned_actions") for r, _ in cases} <= {(r, v) for r, v, _, _ in views}
