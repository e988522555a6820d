"""Minutes that are true (issue 10, defect 6): a meeting the coordinator calls now is held
when they say (default: now), not a week after; the minutes name agencies as the referral
service's directory names them. Real meeting and referral APIs, Temporal dev server and
workers; SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.types import UK
from mset_contract.vocab import MeetingKind, Stage
from mset_platform.paging import every_item
from tests.integration.meeting_fixtures import (
    POLICE,
    Panel,
    action,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    state_of,
)
from tests.integration.test_meeting_decisions import decision_url, one_item_meeting
from tests.support.wait import poll


async def _meetings(panel: Panel) -> list[dict[str, Any]]:
    async with panel.http("coordinator") as http:
        return await every_item(http, "/v1/meetings", [("local_authority", panel.local_authority)])


async def test_a_meeting_called_now_is_held_when_the_coordinator_says(panel: Panel) -> None:
    before = datetime.now(UTC)
    async with panel.http("coordinator") as http:
        now = await http.post(f"/v1/schedules/{panel.local_authority}/pre_mset/trigger")
        assert now.status_code == 202, now.text
        later = before.replace(microsecond=0) + timedelta(days=2, hours=3)
        then = await http.post(
            f"/v1/schedules/{panel.local_authority}/mset/trigger",
            json={"held_at": later.isoformat()},
        )
        assert then.status_code == 202, then.text
        past = await http.post(
            f"/v1/schedules/{panel.local_authority}/mset/trigger",
            json={"held_at": (before - timedelta(days=30)).isoformat()},
        )
        assert past.status_code == 422
        assert [e["field"] for e in past.json()["errors"]] == ["held_at"]
    meetings = await poll(lambda: _meetings(panel), lambda m: len(m) == 2, what="two meetings")
    held = {m["kind"]: datetime.fromisoformat(m["held_at"]) for m in meetings}
    # Called today, held today: the minutes say so (not "held" a week later).
    assert before <= held["pre_mset"] <= datetime.now(UTC)
    assert held["mset"] == later
    assert datetime.fromisoformat(now.json()["held_at"]) == held["pre_mset"]
    meeting = next(m for m in meetings if m["kind"] == "pre_mset")
    async with panel.http("chair") as http:
        minutes = await http.get(f"/v1/meetings/{meeting['meeting_id']}/minutes.md")
    uk_day = held["pre_mset"].astimezone(UK).strftime("%d %B %Y")
    assert f"Held {uk_day}" in minutes.text


async def test_minutes_name_the_owning_agency_from_the_directory(panel: Panel) -> None:
    police = panel.agency_ids[POLICE]
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
    async with panel.http("chair") as http:
        # No attendance recorded: the police's name can come only from the directory.
        resp = await http.post(
            decision_url(mset_id, item["item_id"]),
            json={
                "kind": "mset_review",
                "level": "high",
                "actions": [action(police, 10, "Closure notice for the flat")],
            },
        )
        assert resp.status_code == 200, resp.text
        md = (await http.get(f"/v1/meetings/{mset_id}/minutes.md")).text
        pdf = await http.get(f"/v1/meetings/{mset_id}/minutes.pdf")
    assert f"owner {POLICE}, due" in md
    assert str(police) not in md
    assert "| Action | Item | Owner |" in md
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


async def test_minutes_list_decisions_and_actions_recorded_through_either_api(
    panel: Panel,
) -> None:
    """Issue 10, defect 6: a decision the chair records through the referral API with the
    meeting's id is that meeting's decision: on its record, in its minutes, with its actions."""
    police = panel.agency_ids[POLICE]
    first, second = await panel.case(), await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 2)
    pre = await panel.call(MeetingKind.pre_mset)
    by_case = {i["referral_id"]: i for i in (await panel.agenda(pre["meeting_id"]))["items"]}
    one, two = [str((await state_of(h)).referral_id) for h in (first, second)]
    meets = {"outcome": "meets_criteria", "level": "high"}
    async with panel.http("chair") as http:
        resp = await http.post(
            decision_url(pre["meeting_id"], by_case[one]["item_id"]),
            json={"kind": "pre_mset", **meets},
        )
        assert resp.status_code == 200, resp.text
    async with panel.referral_http("chair") as http:
        resp = await http.post(
            f"/v1/referrals/{two}/pre-mset-decision",
            json={**meets, "meeting_id": pre["meeting_id"], "decision_id": "pre-2026-11-2"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["decision_id"] == "pre-2026-11-2"

    await panel.visible((Stage.awaiting_mset,), 2)
    mset = await panel.call(MeetingKind.mset)
    mid = mset["meeting_id"]
    by_case = {i["referral_id"]: i for i in (await panel.agenda(mid))["items"]}
    async with panel.http("chair") as http:
        here = await http.post(
            decision_url(mid, by_case[one]["item_id"]),
            json={
                "kind": "mset_review",
                "level": "high",
                "actions": [action(police, 10, "Closure notice for the flat")],
            },
        )
        assert here.status_code == 200, here.text
    review = {
        "level": "high",
        "meeting_id": mid,
        "review_id": "mset-2026-11-item-2",
        "actions": [action(police, 21, "Child abduction warning notice", aim="avoid")],
    }
    async with panel.referral_http("chair") as http:
        there = await http.post(f"/v1/referrals/{two}/mset-review", json=review)
        assert there.status_code == 200, there.text
        # The same review again (a retry) is the first answer, recorded once.
        again = await http.post(f"/v1/referrals/{two}/mset-review", json=review)
        assert again.status_code == 200 and again.json() == there.json()
        # A meeting the case is not on, or that does not exist: refused, naming meeting_id.
        for other in (pre["meeting_id"], str(uuid.uuid4())):
            wrong = await http.post(
                f"/v1/referrals/{one}/mset-review",
                json={**review, "meeting_id": other, "review_id": "mset-x"},
            )
            assert wrong.status_code == 422, wrong.text
            assert wrong.json()["errors"][0]["field"] in ("meeting_id", "kind"), wrong.text
    [action_id] = there.json()["action_ids"]

    # The meeting's record holds it: its item is decided, through the referral API.
    item = next(i for i in (await panel.agenda(mid))["items"] if i["referral_id"] == two)
    decision = item["decision"]
    assert (decision["recorded_via"], decision["decision_id"]) == (
        "referral_api",
        "mset-2026-11-item-2",
    )
    assert [a["action_id"] for a in decision["actions"]] == [action_id]
    state = await state_of(second)
    assert (state.reviews[-1].review_id, state.reviews[-1].meeting_id) == (
        "mset-2026-11-item-2",
        uuid.UUID(mid),
    )
    assert len(state.reviews) == 1
    async with panel.http("chair") as http:
        twice = await http.post(
            decision_url(mid, item["item_id"]), json={"kind": "mset_review", "level": "high"}
        )
        assert twice.status_code == 409, twice.text  # decided once, whichever way
        closed = await http.post(f"/v1/meetings/{mid}/close")
        assert closed.status_code == 200 and closed.json()["decided"] == 2, closed.text
        md = (await http.get(f"/v1/meetings/{mid}/minutes.md")).text
        pre_md = (await http.get(f"/v1/meetings/{pre['meeting_id']}/minutes.md")).text

    assert "Closure notice for the flat" in md and "Child abduction warning notice" in md
    assert f"Action {action_id} (avoid / victim), owner {POLICE}" in md
    assert md.count("Decision: reviewed, level high") == 2
    assert "through the referral API." in md
    assert "| referral API |" in md and "| meeting |" in md
    assert pre_md.count("Decision: meets criteria, level high") == 2
