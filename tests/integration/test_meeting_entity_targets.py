"""An MSET plan recorded in a meeting names only people and places the chair may aim at: the
meeting API asks the referral service (which keeps them, with its need-to-know rule) before
anything is sent to the case. Real meeting and referral APIs, Temporal dev server and workers;
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from mset_contract.vocab import MeetingKind, Stage
from services.referral.entities import Entity
from tests.integration.conftest import fresh_authority
from tests.integration.meeting_fixtures import (
    POLICE,
    Panel,
    action,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    state_of,
)
from tests.support.wait import poll

PLACE = {
    "kind": "hotspot",
    "description": "Takeaway where she is seen after 10pm.",
    "place": {"name": "Larkspur Kebabs", "postcode": "NT9 4ZQ"},
}
PERSON = {
    "relationship": "older associate",
    "description": "Adult male who gives her lifts late at night.",
    "identifiers": {"names": ["Ray Dunmore"], "phones": ["07700 900462"]},
}


async def entities_of(panel: Panel, referral_id: str) -> dict[str, str]:
    """The case's linked people and places as its authority's chair sees them: id by kind."""
    async with panel.referral_http("chair") as http:
        resp = await http.get(f"/v1/referrals/{referral_id}/entities")
    assert resp.status_code == 200, resp.text
    return {e["kind"]: e["entity_id"] for e in resp.json()["entities"]}


def decision_url(meeting_id: str, item_id: str) -> str:
    return f"/v1/meetings/{meeting_id}/items/{item_id}/decision"


async def test_a_plan_in_a_meeting_names_only_people_and_places_the_chair_may_aim_at(
    panel: Panel,
) -> None:
    police = panel.agency_ids[POLICE]
    case = await panel.case(locations=[PLACE])
    rid = (await state_of(case)).referral_id
    place = (await entities_of(panel, str(rid)))["location"]
    # A person named in another authority's tool, which has shared nothing with this one.
    other = fresh_authority()
    await panel.case(local_authority=other, persons_of_concern=[PERSON])
    with panel.intake.store.session() as s:
        elsewhere = str(
            s.scalars(
                select(Entity.id).where(Entity.local_authority == other, Entity.kind == "person")
            ).one()
        )

    async with panel.http("chair") as http:
        await panel.visible((Stage.awaiting_pre_mset,), 1)
        pre = await panel.call(MeetingKind.pre_mset)
        [item] = (await panel.agenda(pre["meeting_id"]))["items"]
        resp = await http.post(
            decision_url(pre["meeting_id"], item["item_id"]),
            json={"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"},
        )
        assert resp.status_code == 200, resp.text
        await panel.visible((Stage.awaiting_mset,), 1)
        mset = await panel.call(MeetingKind.mset)
        [item] = (await panel.agenda(mset["meeting_id"]))["items"]
        url = decision_url(mset["meeting_id"], item["item_id"])

        def review(**aimed: Any) -> dict[str, Any]:
            plan = [
                action(police, 10, "Weekly direct work sessions", aim="reduce", target="victim"),
                {**action(police, 20, "Licensing visit and closure review"), **aimed},
            ]
            return {"kind": "mset_review", "level": "high", "actions": plan}

        refused = {
            "a place aimed at as a perpetrator": (
                review(target="perpetrator", entity_id=place),
                "the entity is a location",
            ),
            "an entity that does not exist": (
                review(target="location", entity_id=str(uuid.uuid4())),
                "no person or location with this id that you may see",
            ),
            "another authority's person, not shared": (
                review(target="perpetrator", entity_id=elsewhere),
                "no person or location with this id that you may see",
            ),
        }
        for why, (body, reason) in refused.items():
            resp = await http.post(url, json=body)
            assert resp.status_code == 422, f"{why}: {resp.text}"
            [error] = resp.json()["errors"]
            assert error["field"] == "actions.1.entity_id", why
            assert reason in error["reason"], why

        # Nothing was sent: the case still awaits its MSET review, the item is undecided.
        state = await state_of(case)
        assert state.stage == Stage.awaiting_mset and state.actions == []
        assert (await panel.agenda(mset["meeting_id"]))["items"][0]["decision"] is None

        ok = await http.post(url, json=review(target="location", entity_id=place))
        assert ok.status_code == 200, ok.text
        action_id = ok.json()["actions"][1]["action_id"]

    # The action shows on the place, for those who may see it.
    async with panel.referral_http("chair") as http:

        async def on_place() -> Any:
            resp = await http.get(f"/v1/entities/{place}")
            assert resp.status_code == 200, resp.text
            return resp.json()

        seen = await poll(on_place, lambda v: bool(v["actions"]), what="the action on the place")
    assert [(a["action_id"], a["target"]) for a in seen["actions"]] == [(action_id, "location")]
