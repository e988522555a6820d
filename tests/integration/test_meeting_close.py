"""Meetings have an authority scope and a close guard (issue 10, defect 5): only a coordinator
or chair who serves the meeting's authority closes it; undecided items are closed over only
with an explicit carry-over, which puts them on the next meeting of the kind and authority;
an LMAPS meeting refuses an authority outside the partnership and a date years ahead. Real
meeting and referral APIs, Temporal dev server and workers; SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.vocab import MeetingKind, Stage
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    state_of,
)
from tests.integration.test_meeting_decisions import decision_url, one_item_meeting

MEETS = {"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"}


async def _close(panel: Panel, who: str, meeting_id: str, **body: Any) -> Any:
    async with panel.http(who) as http:
        return await http.post(f"/v1/meetings/{meeting_id}/close", json=body or None)


async def _meeting(panel: Panel, meeting_id: str) -> dict[str, Any]:
    async with panel.http("chair") as http:
        resp = await http.get(f"/v1/meetings/{meeting_id}")
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def test_only_the_authoritys_coordinator_or_chair_closes_and_undecided_items_carry_over(
    panel: Panel,
) -> None:
    case = await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    first, item = await one_item_meeting(panel, MeetingKind.pre_mset)

    # A coordinator of another of the partnership's authorities does not see the meeting: the
    # answer a meeting that does not exist gets; a panel member's role may not close any
    # meeting (403, whatever the id).
    fake = str(uuid.uuid4())
    elsewhere = await _close(panel, "coordinator_elsewhere", first, carry_over=True)
    none = await _close(panel, "coordinator_elsewhere", fake, carry_over=True)
    assert elsewhere.status_code == 404, elsewhere.text
    assert elsewhere.text.replace(first, "<id>") == none.text.replace(fake, "<id>")
    member = await _close(panel, "member", first, carry_over=True)
    assert member.status_code == 403
    assert (await _close(panel, "coordinator", fake)).status_code == 404

    # Its own coordinator, with an item undecided and no carry-over: refused, saying how many
    # and how to carry them; the meeting stays open.
    undecided = await _close(panel, "coordinator", first)
    assert undecided.status_code == 409, undecided.text
    assert undecided.json()["detail"].startswith("1 of 1 agenda items are undecided")
    assert '{"carry_over": true}' in undecided.json()["detail"]
    assert (await _meeting(panel, first))["status"] == "scheduled"

    # With the carry-over: closed, the item carried, and the minutes say so.
    carried = await _close(panel, "chair", first, carry_over=True)
    assert carried.status_code == 200, carried.text
    assert (carried.json()["status"], carried.json()["carried_over"]) == ("closed", 1)
    [was] = (await panel.agenda(first))["items"]
    assert was["carried_over_at"] is not None and was["carried_to_meeting_id"] is None
    async with panel.http("chair") as http:
        minutes = (await http.get(f"/v1/meetings/{first}/minutes.md")).text
    assert "Not decided: carried over to the next Pre-MSET panel" in minutes
    # Closing again is harmless.
    assert (await _close(panel, "coordinator", first)).status_code == 200

    # The next Pre-MSET meeting of the authority takes the carried item, and decides it.
    second, carried_item = await one_item_meeting(panel, MeetingKind.pre_mset)
    assert carried_item["referral_id"] == item["referral_id"]
    assert carried_item["reasons"] == ["new_referral", "carried_over"]
    [was] = (await panel.agenda(first))["items"]
    assert was["carried_to_meeting_id"] == second
    async with panel.http("chair") as http:
        decided = await http.post(decision_url(second, carried_item["item_id"]), json=MEETS)
    assert decided.status_code == 200, decided.text
    assert (await state_of(case)).stage == Stage.awaiting_mset
    assert (await _close(panel, "chair", second)).status_code == 200


async def test_a_next_meeting_already_called_takes_the_carried_items_at_once(
    panel: Panel,
) -> None:
    await panel.case()
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    first, item = await one_item_meeting(panel, MeetingKind.pre_mset)
    second, same = await one_item_meeting(panel, MeetingKind.pre_mset)
    assert same["reasons"] == ["new_referral"]

    closed = await _close(panel, "coordinator", first, carry_over=True)
    assert closed.status_code == 200, closed.text
    [now] = (await panel.agenda(second))["items"]
    assert now["reasons"] == ["new_referral", "carried_over"]
    [was] = (await panel.agenda(first))["items"]
    assert was["carried_to_meeting_id"] == second
    # A redrawn agenda keeps the reason the item is there.
    async with panel.http("coordinator") as http:
        redrawn = await http.post(f"/v1/meetings/{second}/agenda/refresh")
    assert redrawn.status_code == 200, redrawn.text
    assert [i["reasons"] for i in redrawn.json()["items"]] == [["new_referral", "carried_over"]]
    assert item["item_id"] != now["item_id"]


async def test_an_lmaps_meeting_refuses_an_unknown_authority_and_a_date_years_ahead(
    panel: Panel,
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    async with panel.http("coordinator") as http:
        atlantis = await http.post(
            "/v1/meetings", json={"kind": "lmaps", "local_authority": "atlantis", "held_at": soon}
        )
        far = await http.post(
            "/v1/meetings",
            json={
                "kind": "lmaps",
                "local_authority": panel.local_authority,
                "held_at": "2199-11-20T14:00:00Z",
            },
        )
        trigger = await http.post(
            f"/v1/schedules/{panel.local_authority}/mset/trigger",
            json={"held_at": "2199-11-20T14:00:00Z"},
        )
        ok = await http.post(
            "/v1/meetings",
            json={"kind": "lmaps", "local_authority": panel.local_authority, "held_at": soon},
        )
    assert atlantis.status_code == 422, atlantis.text
    [error] = atlantis.json()["errors"]
    assert error["field"] == "local_authority"
    assert "no local authority 'atlantis'" in error["reason"]
    assert panel.local_authority in error["reason"]  # the authorities that exist
    for resp in (far, trigger):
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == ["held_at"]
        assert "within 365 days" in resp.json()["errors"][0]["reason"]
    assert ok.status_code == 201, ok.text
    async with panel.http("coordinator") as http:
        listed = await http.get("/v1/meetings", params={"kind": "lmaps"})
    assert [m["local_authority"] for m in listed.json()["items"]] == [panel.local_authority]
