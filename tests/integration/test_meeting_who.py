"""Agendas and minutes name each case by who it is about (issue 10, defect 2): the partner's
child reference, age, gender, legal status, area and the referring agency by name, read from
the referral service (which holds the tool) when they are shown, never copied into the
meeting's tables or the case's history; the referral id stays as the reference. Real meeting
and referral APIs, Temporal dev server and workers; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import date

from sqlalchemy import select

from mset_contract.referral import referral_example
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import MeetingKind, Stage
from services.meeting.store import AgendaItem, Meeting
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    until,
)
from tests.integration.test_meeting_decisions import one_item_meeting


async def test_the_agenda_and_minutes_lead_with_who_the_case_is_about(panel: Panel) -> None:
    case = await panel.case()
    [(referral_id, tool)] = panel.tools.items()
    child = tool["child"]
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    meeting_id, item = await one_item_meeting(panel, MeetingKind.pre_mset)

    who = item["who"]
    assert who["agency_child_ref"] == child["agency_child_ref"]
    assert who["age_years"] == age_on(date.fromisoformat(child["date_of_birth"]), today_uk())
    assert (who["gender"], who["legal_status"]) == (child["gender"], child["legal_status"])
    assert (who["area_of_residence"], who["local_authority"]) == (
        child["area_of_residence"],
        panel.local_authority,
    )
    assert who["referring_agency"] == "Northshire CSC"  # by name, not by id
    assert item["referral_id"] == referral_id  # the id stays, as the reference
    # Panel members are shown who as the papers show them; other roles see no agenda.
    member = await panel.agenda(meeting_id, "member")
    assert member["items"][0]["who"] == who
    async with panel.http("provider") as http:
        assert (await http.get(f"/v1/meetings/{meeting_id}/agenda")).status_code == 403

    async with panel.http("chair") as http:
        md = (await http.get(f"/v1/meetings/{meeting_id}/minutes.md")).text
    age = who["age_years"]
    assert (
        f"### 1. {child['agency_child_ref']}: age {age}, female, looked after (s20), "
        f"{child['area_of_residence']}, {panel.local_authority}; referred by Northshire CSC"
    ) in md
    assert f"Referral {referral_id}." in md

    # Read from the owner each time: the partner's reassessment (the child moved ward) shows
    # at once, on the agenda drawn before it.
    again = referral_example()
    again["partner_reference"] = f"{tool['partner_reference']}-2"
    again["child"] = {**child, "area_of_residence": "Harbour ward"}
    async with panel.intake.http(panel.partner_key) as http:
        resp = await http.post("/v1/referrals", json=again)
    assert resp.status_code == 202, resp.text
    assert resp.json()["kind"] == "reassessment"
    await until(case, lambda s: s.assessment_id is not None and str(s.assessment_id) != referral_id)
    [moved] = (await panel.agenda(meeting_id))["items"]
    assert moved["who"]["area_of_residence"] == "Harbour ward"

    # None of it was copied into the meeting's tables or the case's workflow history.
    with panel.store.session() as s:
        stored = json.dumps(
            [
                [i.snapshot, i.reasons, i.decision]
                for i in s.scalars(
                    select(AgendaItem).where(AgendaItem.meeting_id == uuid.UUID(meeting_id))
                )
            ]
            + [[m.origin, m.chair_name] for m in s.scalars(select(Meeting))],
            default=str,
        )
    history = json.dumps((await case.fetch_history()).to_json_dict())
    for text in (child["agency_child_ref"], child["area_of_residence"], "Harbour ward"):
        assert text not in stored
        assert text not in history
