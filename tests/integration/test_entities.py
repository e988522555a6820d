"""People and places that link children together (issue 15 items 3-5, ADR 0030), over HTTP
against the real services (Temporal dev server, the Tansu broker, SQLite and PostgreSQL).

The scenario: three children, referred by three agencies (social care and health in
Northshire, the police in Eastmoor), each tool naming the same older male (one by his
mobile and car, one by the same mobile written another way, one by the mobile and an
Instagram handle) and the same takeaway (by its name, address and postcode). Matching
suggests the mentions are one man and one place; the coordinators confirm, with reasons,
and an undo is recorded with who and why. Each coordinator sees the cluster as need-to-know
allows: the detail of their own authority's mentions, only that the other's exist. An MSET
action against the takeaway appears on the place. None of the names, phone numbers, handles,
registrations or addresses is in the database in clear, in any Kafka event, in any
workflow's history or in the logs."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mset_contract.events import EVENTS_TOPIC
from mset_contract.vocab import AgencyType, Role
from services.referral.store import LedgerEntry
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.notifications_fixtures import read_topic
from tests.integration.test_child_links import decoded_history
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.integration.test_retention import rows_holding
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.wait import poll

# Planted in the tools' identifiers: none of it may be readable at rest, in events, in
# history or in logs.
NAME, ALIAS, PHONE, PHONE_INTL, HANDLE, VRM = (
    "Mahmood Quillfeather",
    "Big Mo",
    "07700 900461",
    "+44 7700 900461",
    "@mo_quill",
    "QF19 XKZ",
)
PLACE, ADDRESS, POSTCODE = "Quillfeather Kebabs", "14 Larkspur Parade, Northtown", "NT9 4ZQ"
PLANTED = (NAME, "Quillfeather", PHONE, "7700 900461", "7700900461", HANDLE, "mo_quill",
           VRM, "QF19", "Larkspur", POSTCODE)  # fmt: skip


def scenario_tool(
    la: str, ref: str, person: dict[str, Any], place: dict[str, Any]
) -> dict[str, Any]:
    t = tool(child__local_authority=la, child__agency_child_ref=ref)
    t["persons_of_concern"] = [
        {
            "relationship": "older associate",
            "description": "Adult male who gives her lifts late at night.",
            "known_to_police": True,
            "identifiers": person,
        }
    ]
    t["locations"] = [
        {"kind": "hotspot", "description": "Takeaway where she is seen after 10pm.", "place": place}
    ]
    return t


def write_picture(path: Path, text: str) -> None:
    path.write_text(text)


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post("/v1/referrals", json=body)
    assert resp.status_code == 202, resp.text
    accepted: dict[str, Any] = resp.json()
    await wait_for_stage(http, accepted["referral_id"], "awaiting_pre_mset")
    return accepted


async def get(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    resp = await http.get(path, params=params or None)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def decide(http: httpx.AsyncClient, match_id: str, verb: str, reason: str) -> Any:
    resp = await http.post(f"/v1/entity-matches/{match_id}/{verb}", json={"reason": reason})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.timeout(240)
async def test_three_children_in_two_authorities_share_a_hotspot_and_a_person(
    intake: Intake, broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    north, east = fresh_authority(), fresh_authority()
    tag = uuid.uuid4().hex[:6]
    csc = intake.identity.create_agency(f"Northshire CSC {tag}", AgencyType.childrens_social_care)
    health = intake.identity.create_agency(f"Northshire Health {tag}", AgencyType.health)
    police = intake.identity.create_agency(f"Eastmoor Police {tag}", AgencyType.police)
    partnership = f"MSET Partnership {tag}"
    intake.identity.create_agency(partnership, AgencyType.local_authority)
    coord_n = intake.new_user(f"Coord N {tag}", Role.coordinator, partnership, (north,))
    coord_e = intake.new_user(f"Coord E {tag}", Role.coordinator, partnership, (east,))
    chair_n = intake.new_user(f"Chair N {tag}", Role.chair, partnership, (north,))

    place = {"name": PLACE, "address": ADDRESS, "postcode": POSTCODE}
    async with intake.http(csc.secret) as h:
        a = await submit(
            h,
            scenario_tool(
                north, "CSC-1", {"names": [NAME], "phones": [PHONE], "vehicles": [VRM]}, place
            ),
        )
    async with intake.http(health.secret) as h:
        b = await submit(
            h,
            scenario_tool(
                north,
                "H-2",
                {"names": ["Mo"], "phones": [PHONE_INTL]},
                {"name": PLACE, "postcode": POSTCODE},
            ),
        )
    async with intake.http(police.secret) as h:
        c = await submit(
            h,
            scenario_tool(
                east,
                "P-3",
                {"names": [ALIAS], "phones": [PHONE.replace(" ", "")], "handles": [HANDLE]},
                {
                    "name": PLACE.upper(),
                    "address": ADDRESS.replace("Parade", "Parade "),
                    "postcode": POSTCODE.lower(),
                },
            ),
        )
        # The partner's own tool reads back without the identifiers: they are held apart.
        own = await get(h, f"/v1/referrals/{c['referral_id']}")
        assert own["referral_id"] == c["referral_id"]

    # --- matching suggests, the coordinators decide -------------------------------------
    async with intake.http(coord_n) as cn, intake.http(coord_e) as ce:
        queue = (await get(cn, "/v1/entity-matches/candidates", limit=100))["items"]
        # Each later mention against each earlier one: b~a, c~a, c~b, for the man and the place.
        assert sorted((m["kind"], len(m["events"])) for m in queue) == [
            ("location", 1), ("location", 1), ("location", 1),
            ("person", 1), ("person", 1), ("person", 1),
        ]  # fmt: skip
        assert all(m["status"] == "candidate" for m in queue)

        def sides(m: dict[str, Any]) -> set[str]:
            return {m["a"]["local_authority"], m["b"]["local_authority"]}

        person_ab = next(m for m in queue if m["kind"] == "person" and sides(m) == {north})
        assert person_ab["agreement"][0] == "phone"  # the same mobile, written two ways
        assert PHONE in person_ab["b"]["detail"]["phones"]  # Northshire's own: shown
        cross = [m for m in queue if east in (m["a"]["local_authority"], m["b"]["local_authority"])]
        assert len(cross) == 4
        for m in cross:
            east_side = m["a"] if m["a"]["local_authority"] == east else m["b"]
            assert east_side["visible"] is False and east_side["detail"] is None
        # Eastmoor's coordinator sees the same matches from the other side.
        queue_e = (await get(ce, "/v1/entity-matches/candidates", limit=100))["items"]
        assert {m["match_id"] for m in queue_e} == {m["match_id"] for m in cross}
        for m in queue_e:
            north_side = m["a"] if m["a"]["local_authority"] == north else m["b"]
            assert north_side["detail"] is None
            east_side = m["b"] if north_side is m["a"] else m["a"]
            assert east_side["detail"] is not None

        # The chair may not decide matches: the coordinator's queue.
        async with intake.http(chair_n) as ch:
            refused = await ch.post(
                f"/v1/entity-matches/{person_ab['match_id']}/confirm", json={"reason": "x"}
            )
            assert refused.status_code == 403, refused.text

        # Northshire confirms its two children's matches; Eastmoor those with its child.
        why = "Same mobile number; both girls describe the same car."
        for m in queue:
            if east not in (m["a"]["local_authority"], m["b"]["local_authority"]):
                done = await decide(cn, m["match_id"], "confirm", why)
                assert done["status"] == "confirmed"
        cross_by_kind: dict[str, list[dict[str, Any]]] = {}
        for m in cross:
            cross_by_kind.setdefault(m["kind"], []).append(m)
        for ms in cross_by_kind.values():
            first, second = ms
            await decide(ce, first["match_id"], "confirm", "Same phone and the same takeaway.")
            # The second is the same link again: rejected as redundant, then the first undone
            # and redone, each with who and why.
            rejected = await decide(ce, second["match_id"], "reject", "Already joined.")
            assert rejected["status"] == "rejected"
            again = await ce.post(
                f"/v1/entity-matches/{second['match_id']}/reject", json={"reason": "twice"}
            )
            assert again.status_code == 409, again.text
        undone = await decide(
            cn, cross_by_kind["person"][0]["match_id"], "undo", "Checking the handle."
        )
        assert [(e["action"], e["by_user_id"] is not None) for e in undone["events"]] == [
            ("proposed", False), ("confirmed", True), ("undone", True),
        ]  # fmt: skip
        assert "handle" in undone["events"][-1]["reason"]
        redone = await decide(
            ce, cross_by_kind["person"][0]["match_id"], "confirm", "Handle confirmed by police."
        )
        assert redone["status"] == "confirmed"
        assert (await get(cn, "/v1/entity-matches/candidates"))["items"] == []

        # --- the entity, as each coordinator may see it --------------------------------------
        place_id = next(
            m["a"]["entity_id"] for m in queue
            if m["kind"] == "location" and m["a"]["local_authority"] == north
        )  # fmt: skip
        seen_n = await get(cn, f"/v1/entities/{place_id}")
        assert seen_n["kind"] == "location" and seen_n["location_kind"] == "hotspot"
        assert seen_n["children"] == 3
        assert seen_n["authorities"] == sorted([north, east])
        shown = [m for m in seen_n["mentions"] if m["visible"]]
        hidden = [m for m in seen_n["mentions"] if not m["visible"]]
        assert len(shown) == 2 and {m["detail"]["postcode"] for m in shown} == {POSTCODE}
        assert hidden == [
            {
                "entity_id": None,
                "visible": False,
                "local_authority": east,
                "mentioned_at": None,
                "referral_id": None,
                "case_id": None,
                "detail": None,
            }
        ]
        assert set(seen_n["cases"]) == {a["case_id"], b["case_id"]}
        east_place = next(
            m["a"]["entity_id"] if m["a"]["local_authority"] == east else m["b"]["entity_id"]
            for m in cross if m["kind"] == "location"
        )  # fmt: skip
        seen_e = await get(ce, f"/v1/entities/{east_place}")
        assert seen_e["children"] == 3 and seen_e["cases"] == [c["case_id"]]
        assert sum(m["visible"] for m in seen_e["mentions"]) == 1
        # A partner system sees no entity: the 404 of one that does not exist.
        async with intake.http(csc.secret) as h:
            assert (await h.get(f"/v1/entities/{place_id}")).status_code == 404

    # --- an MSET action against the takeaway --------------------------------------------
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    action = {
        "owner_agency_id": str(police.id),
        "due_at": due,
        "aim": "reduce",
        "target": "location",
        "description": "Licensing visit and closure notice review.",
        "entity_id": place_id,
    }
    async with intake.http(chair_n) as ch, intake.http(csc.secret) as h:
        pre = await ch.post(
            f"/v1/referrals/{a['referral_id']}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "high"},
        )
        assert pre.status_code == 200, pre.text
        await wait_for_stage(h, a["referral_id"], "awaiting_mset")
        wrong = await ch.post(
            f"/v1/referrals/{a['referral_id']}/mset-review",
            json={
                "level": "high",
                "review_id": "r-wrong",
                "actions": [{**action, "target": "perpetrator"}],
            },
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["errors"][0]["field"] == "actions.0.entity_id"
        review = await ch.post(
            f"/v1/referrals/{a['referral_id']}/mset-review",
            json={"level": "high", "review_id": "r-1", "actions": [action]},
        )
        assert review.status_code == 200, review.text
        action_id = review.json()["action_ids"][0]
    async with intake.http(coord_n) as cn, intake.http(coord_e) as ce:

        async def on_entity() -> Any:
            return await get(cn, f"/v1/entities/{place_id}")

        seen = await poll(on_entity, lambda v: bool(v["actions"]), what="the action on the place")
        assert [(x["action_id"], x["target"], x["status"]) for x in seen["actions"]] == [
            (action_id, "location", "open")
        ]
        assert "action_agreed" in [t["what"] for t in seen["timeline"]]
        # Eastmoor sees that the place is being acted on, not in which case.
        from_east = await get(ce, f"/v1/entities/{east_place}")
        assert from_east["actions"] == []
        agreed = [t for t in from_east["timeline"] if t["what"] == "action_agreed"]
        assert agreed == [{**agreed[0], "case_id": None, "local_authority": north}]

    # --- seeing the pattern --------------------------------------------------------------
    async with intake.http(coord_n) as cn, intake.http(coord_e) as ce, intake.http(chair_n) as ch:
        linked = await get(cn, f"/v1/referrals/{a['referral_id']}/entities")
        # b and c, each linked through both the person and the place: two children, once each.
        assert linked["summary"] == (
            "Linked to two other children through one location and one person."
        ), linked["summary"]
        by_kind = {e["kind"]: e for e in linked["entities"]}
        assert by_kind["location"]["other_children"] == 2
        assert by_kind["location"]["other_children_visible"] == [b["case_id"]]
        assert by_kind["location"]["other_children_by_authority"] == {east: 1}
        assert by_kind["person"]["detail"]["vehicles"] == [VRM]
        # The panel papers say it too.
        papers = await get(ch, f"/v1/referrals/{a['referral_id']}/papers")
        assert papers["links"]["summary"] == linked["summary"]
        assert papers["who"]["links"] == linked["summary"]
        # The agenda reads who each case is about from the referral service (the MSET
        # services' token): the links come with it, in words and counts only.
        async with intake.http(TEST_SERVICE_TOKEN) as svc:
            who = await get(svc, "/v1/cases/who", id=a["case_id"])
        assert who["cases"][0]["who"]["links"] == linked["summary"]
        # Eastmoor's child: the two Northshire children are counts only.
        from_c = await get(ce, f"/v1/referrals/{c['referral_id']}/entities")
        for e in from_c["entities"]:
            assert e["other_children_visible"] == []
            assert e["other_children_by_authority"] == {north: 2}

        # Hotspots: the takeaway first, with its three children.
        spots = await get(cn, "/v1/hotspots", authority=north)
        top = spots["items"][0]
        assert top["children"] == 3
        assert top["entity_id"] in {m["entity_id"] for m in seen_n["mentions"] if m["visible"]}
        assert spots["items"][0]["place_name"] == PLACE
        assert spots["items"][0]["authorities"] == sorted([north, east])
        # Asked of Eastmoor: the same place, named from Northshire's own mentions.
        east_spots = await get(cn, "/v1/hotspots", authority=east)
        assert [(h["children"], h["place_name"]) for h in east_spots["items"]] == [(3, PLACE)]
        unknown = await cn.get("/v1/hotspots", params={"authority": "nowhere-shire"})
        assert unknown.status_code == 422, unknown.text

        # The graph: three children, one person, one place; the action an edge.
        graph = await get(cn, f"/v1/entities/{place_id}/graph")
        kinds = sorted(n["kind"] for n in graph["nodes"])
        assert kinds == ["child", "child", "hidden", "location", "person"], kinds
        [place_node] = [n["id"] for n in graph["nodes"] if n["kind"] == "location"]
        assert ("action", place_node) in {(e["kind"], e["target"]) for e in graph["edges"]}
        hidden_node = next(n for n in graph["nodes"] if n["kind"] == "hidden")
        assert hidden_node["label"] == f"A child in {east}"
        svg = await cn.get(f"/v1/entities/{place_id}/network.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert '<title id="network-title">' in svg.text
        assert (
            "3 children linked through 1 person and 1 place of concern; 1 of the children in "
            "authorities that have not shared; 1 plan action." in svg.text
        )
        # docs/entities-network.svg is this picture: MSET_NETWORK_SVG=path writes it again.
        if os.environ.get("MSET_NETWORK_SVG"):
            write_picture(Path(os.environ["MSET_NETWORK_SVG"]), svg.text)

    # --- need to know across borders: Northshire shares the place with Eastmoor ----------
    reason = "Joint disruption plan for the takeaway with Eastmoor police."
    async with intake.http(coord_n) as cn, intake.http(coord_e) as ce, intake.http(chair_n) as ch:
        # The chair may read the place, not share it: the coordinator's to share.
        assert (
            await ch.post(
                f"/v1/entities/{place_id}/share", json={"to_authority": east, "reason": reason}
            )
        ).status_code == 403
        shared = await cn.post(
            f"/v1/entities/{place_id}/share", json={"to_authority": east, "reason": reason}
        )
        assert shared.status_code == 200, shared.text
        assert shared.json()["mentions_shared"] == 2
        assert shared.json()["from_authorities"] == [north]
        now_seen = await get(ce, f"/v1/entities/{east_place}")
        assert [m["visible"] for m in now_seen["mentions"]] == [True, True, True]
        assert {m["detail"]["postcode"] for m in now_seen["mentions"]} == {POSTCODE}
        assert "shared" in [t["what"] for t in now_seen["timeline"]]
        # The person was not shared: still only that Northshire's mentions exist.
        from_c = await get(ce, f"/v1/referrals/{c['referral_id']}/entities")
        by_kind = {e["kind"]: e for e in from_c["entities"]}
        assert by_kind["person"]["other_children_by_authority"] == {north: 2}
        assert sorted(by_kind["location"]["other_children_visible"]) == sorted(
            [a["case_id"], b["case_id"]]
        )
        # Shared once: again is nothing new.
        again = await cn.post(
            f"/v1/entities/{place_id}/share", json={"to_authority": east, "reason": reason}
        )
        assert again.json()["mentions_shared"] == 0
    # The ledger says it, with the reason.
    with intake.store.session() as s:
        entries = s.scalars(select(LedgerEntry).where(LedgerEntry.view == "entity_share")).all()
    assert len(entries) == 2
    assert {e.recipient for e in entries} == {f"staff serving {east}: {reason}"}
    assert {str(e.case_id) for e in entries} == {a["case_id"], b["case_id"]}

    # --- nowhere in clear --------------------------------------------------------------
    assert rows_holding(intake.store.engine, list(PLANTED)) == []
    events = read_topic(broker, EVENTS_TOPIC)
    assert events, "the cases published their events"
    published = "\n".join(
        (r.value or b"").decode("utf-8", "replace") + str(r.headers) for r in events
    )
    assert [m for m in PLANTED if m in published] == []
    for x in (a, b, c):
        text = await decoded_history(intake, x["workflow_id"])
        assert [m for m in PLANTED if m in text] == [], x["workflow_id"]
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records)
    assert [m for m in PLANTED if m in logged] == []
