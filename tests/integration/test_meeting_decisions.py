"""Decisions over HTTP: recorded by the chair, sent to the real case workflow as updates,
and read back from the case; a decision the workflow refuses; two chairs deciding one item
at once. Then the plan's actions as timers in the case, minutes, and an LMAPS referral.
Real Temporal dev server and workers; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from mset_contract.vocab import MeetingKind, PreMsetOutcome, RiskLevel, Stage
from tests.integration.meeting_fixtures import (
    POLICE,
    Panel,
    action,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    state_of,
)


def decision_url(meeting_id: str, item_id: str) -> str:
    return f"/v1/meetings/{meeting_id}/items/{item_id}/decision"


async def one_item_meeting(panel: Panel, kind: MeetingKind) -> tuple[str, dict[str, Any]]:
    meeting = await panel.call(kind)
    [item] = (await panel.agenda(meeting["meeting_id"]))["items"]
    return meeting["meeting_id"], item


async def timer_durations(handle: WorkflowHandle[Any, Any]) -> list[timedelta]:
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def test_decisions_flow_to_the_case_and_the_plan_becomes_timers(panel: Panel) -> None:
    police = panel.agency_ids[POLICE]
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    pre_id, item = await one_item_meeting(panel, MeetingKind.pre_mset)

    async with panel.http("coordinator") as http:
        resp = await http.put(
            f"/v1/meetings/{pre_id}/attendance",
            json={
                "attendees": [
                    {
                        "person_name": "DI Sam Okafor",
                        "agency_name": POLICE,
                        "agency_id": str(police),
                        "capacity": "chair",
                    },
                    {"person_name": "Alex Reid", "agency_name": "Northshire CSC"},
                    {
                        "person_name": "Jo Patel",
                        "agency_name": "Northshire Health",
                        "present": False,
                    },
                ]
            },
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["chair_name"] == "DI Sam Okafor"
    assert resp.json()["agencies_sent_apologies"] == ["Northshire Health"]

    async with panel.http("chair") as http:
        resp = await http.post(
            decision_url(pre_id, item["item_id"]),
            json={
                "kind": "pre_mset",
                "outcome": "meets_criteria",
                "level": "high",
                "rationale": "Older adult supplying alcohol; the panel agrees high.",
            },
        )
    assert resp.status_code == 200, resp.text
    decided = resp.json()
    assert decided["stage_after"] == "awaiting_mset" and decided["level"] == "high"
    assert decided["decided_by_name"] == "DI Sam Okafor"

    # The case itself moved on, and holds the decision under the agenda item's id.
    state = await state_of(case)
    assert state.stage == Stage.awaiting_mset and state.level == RiskLevel.high
    assert state.pre_mset is not None
    assert state.pre_mset.decision_id == item["item_id"]
    assert str(state.pre_mset.meeting_id) == pre_id
    agenda = await panel.agenda(pre_id)
    assert agenda["status"] == "in_progress"
    assert agenda["items"][0]["decision"]["outcome"] == "meets_criteria"

    # The MSET group reviews it and agrees a plan.
    await panel.visible((Stage.awaiting_mset,), 1)
    mset_id, item = await one_item_meeting(panel, MeetingKind.mset)
    assert item["reasons"] == ["new_to_mset"]
    assert item["case"]["last_decision"]["outcome"] == "meets_criteria"
    timers_before = await timer_durations(case)
    plan = [
        action(police, 10, "Closure notice for the flat", aim="remove", target="location"),
        action(police, 20, "Child abduction warning notice", aim="avoid", target="perpetrator"),
    ]
    async with panel.http("chair") as http:
        resp = await http.post(
            decision_url(mset_id, item["item_id"]),
            json={
                "kind": "mset_review",
                "level": "high",
                "actions": plan,
                "raise_lmaps": {"reason": "Offender disruption for two linked adults"},
            },
        )
    assert resp.status_code == 200, resp.text
    review = resp.json()
    assert review["stage_after"] == "active_plan" and review["lmaps_referral_id"]
    ids = [a["action_id"] for a in review["actions"]]
    assert [a["description"] for a in review["actions"]] == [p["description"] for p in plan]

    state = await state_of(case)
    assert state.stage == Stage.active_plan
    assert [a.action_id for a in state.actions if a.open] == ids
    assert [a.due_at for a in state.actions] == [datetime.fromisoformat(p["due_at"]) for p in plan]
    assert state.reviews[-1].review_id == item["item_id"]
    # Each action's due date is a durable timer in the case's workflow (a reminder shortly
    # before it is due): two new timers, firing within the days before 10 and 20 days.
    new_timers = (await timer_durations(case))[len(timers_before) :]
    for days in (10, 20):
        assert any(timedelta(days=days - 3) < t <= timedelta(days=days) for t in new_timers), (
            new_timers
        )

    # Minutes: final once closed; a panel member reads them without the rationale.
    async with panel.http("chair") as http:
        closed = await http.post(f"/v1/meetings/{pre_id}/close")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        pdf = await http.get(f"/v1/meetings/{mset_id}/minutes.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    async with panel.http("member") as http:
        md = await http.get(f"/v1/meetings/{pre_id}/minutes.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    text = md.text
    assert "Minutes final" in text and "Northshire Police: DI Sam Okafor (chair)" in text
    assert f"Referral {state.referral_id}" in text
    assert "Decision: meets criteria, level high; the case is now awaiting MSET." in text
    assert "Rationale: withheld for your role." in text and "alcohol" not in text

    # The LMAPS referral is on the agenda of the next extraordinary meeting.
    async with panel.http("coordinator") as http:
        resp = await http.post(
            "/v1/meetings",
            json={
                "kind": "lmaps",
                "local_authority": panel.local_authority,
                "held_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            },
        )
    assert resp.status_code == 201, resp.text
    lmaps = await panel.agenda(resp.json()["meeting_id"])
    [lmaps_item] = lmaps["items"]
    assert lmaps_item["reasons"] == ["lmaps_referral"]
    assert lmaps_item["lmaps_reason"] == "Offender disruption for two linked adults"
    disruption = action(police, 5, "Disruption visit to the linked adults", aim="remove")
    async with panel.http("chair") as http:
        resp = await http.post(
            decision_url(lmaps["meeting_id"], lmaps_item["item_id"]),
            json={"kind": "mset_review", "level": "high", "actions": [disruption]},
        )
    assert resp.status_code == 200, resp.text
    state = await state_of(case)
    assert [a.description for a in state.actions if a.open][-1] == disruption["description"]
    async with panel.http("coordinator") as http:
        resp = await http.post(
            "/v1/meetings",
            json={
                "kind": "lmaps",
                "local_authority": panel.local_authority,
                "held_at": (datetime.now(UTC) + timedelta(days=9)).isoformat(),
            },
        )
    assert resp.status_code == 201 and resp.json()["items"] == 0  # considered already

    # The partnership's attendance report counts agencies, not people.
    async with panel.http("analyst") as http:
        resp = await http.get(
            "/v1/reports/attendance",
            params={
                "local_authority": panel.local_authority,
                "until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            },
        )
    assert resp.status_code == 200, resp.text
    agencies = {a["agency_name"]: a for a in resp.json()["agencies"]}
    assert agencies[POLICE]["attended"] == 1
    assert agencies["Northshire Health"]["sent_apologies"] == 1


async def test_a_decision_the_case_refuses_is_shown_and_nothing_is_recorded(
    panel: Panel,
) -> None:
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    meeting_id, item = await one_item_meeting(panel, MeetingKind.pre_mset)
    url = decision_url(meeting_id, item["item_id"])

    async with panel.http("chair") as http:
        # Below the suggested level (medium) with no rationale: the case's own rule.
        refused = await http.post(
            url, json={"kind": "pre_mset", "outcome": "more_information", "level": "low"}
        )
        assert refused.status_code == 422, refused.text
        assert "is below the suggested 'medium'" in refused.json()["detail"]
        assert "nothing was recorded" in refused.json()["detail"]

        # A rule the schema states is refused at the edge, naming the field.
        invalid = await http.post(
            url, json={"kind": "pre_mset", "outcome": "meets_criteria", "level": "low"}
        )
        assert invalid.status_code == 422, invalid.text
        [error] = invalid.json()["errors"]
        assert error["field"] == "level"
        assert error["reason"].startswith("MSET considers medium and high risk cases")

        wrong_kind = await http.post(url, json={"kind": "mset_review", "level": "high"})
        assert wrong_kind.status_code == 422
        assert wrong_kind.json()["errors"] == [
            {"field": "kind", "reason": "a pre_mset meeting records 'pre_mset' decisions"}
        ]

    state = await state_of(case)
    assert state.stage == Stage.awaiting_pre_mset and state.pre_mset is None
    agenda = await panel.agenda(meeting_id)
    assert agenda["items"][0]["decision"] is None

    # The item is free again: a decision the case accepts is recorded.
    async with panel.http("chair") as http:
        ok = await http.post(
            url,
            json={
                "kind": "pre_mset",
                "outcome": "more_information",
                "level": "medium",
                "information_due_days": 10,
            },
        )
    assert ok.status_code == 200, ok.text
    state = await state_of(case)
    assert state.stage == Stage.more_information_requested
    assert state.pre_mset is not None and state.pre_mset.outcome == PreMsetOutcome.more_information


async def test_two_chairs_deciding_one_item_at_once_one_wins_the_other_gets_409(
    panel: Panel,
) -> None:
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    meeting_id, item = await one_item_meeting(panel, MeetingKind.pre_mset)
    url = decision_url(meeting_id, item["item_id"])
    bodies = {
        "chair": {"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"},
        "chair2": {
            "kind": "pre_mset",
            "outcome": "not_met",
            "level": "medium",
            "rationale": "Advice to the case holder is proportionate.",
        },
    }

    async def decide(who: str) -> Any:
        async with panel.http(who) as http:
            return await http.post(url, json=bodies[who])

    first, second = await asyncio.gather(decide("chair"), decide("chair2"))

    assert sorted([first.status_code, second.status_code]) == [200, 409], (
        first.text,
        second.text,
    )
    winner, loser = ("chair", second) if first.status_code == 200 else ("chair2", first)
    assert "another chair" in loser.json()["detail"] or "already decided" in loser.json()["detail"]
    state = await state_of(case)
    assert state.pre_mset is not None and state.pre_mset.decision_id == item["item_id"]
    assert state.pre_mset.outcome == PreMsetOutcome(bodies[winner]["outcome"])
    recorded = (await panel.agenda(meeting_id))["items"][0]["decision"]
    assert recorded["outcome"] == bodies[winner]["outcome"]

    # The winner's retried request gets the same answer; the other chair is told who decided.
    again = await decide(winner)
    assert again.status_code == 200 and again.json() == recorded
    other = "chair2" if winner == "chair" else "chair"
    late = await decide(other)
    assert late.status_code == 409
    assert recorded["decided_by_name"] in late.json()["detail"]
