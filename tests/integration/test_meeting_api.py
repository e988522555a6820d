"""What staff are told when a request cannot be done: unknown meetings and items, roles that
may not act, invalid bodies naming the field, and closed meetings."""

from __future__ import annotations

import uuid

from mset_contract.vocab import MeetingKind
from tests.integration.meeting_fixtures import (
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)


async def test_clear_errors_for_what_cannot_be_done(panel: Panel) -> None:
    meeting = await panel.call(MeetingKind.pre_mset)  # no cases waiting: an empty agenda
    mid = meeting["meeting_id"]
    assert meeting["items"] == 0
    decision = f"/v1/meetings/{mid}/items/{uuid.uuid4()}/decision"
    body = {"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"}

    async with panel.http("chair") as http:
        missing = await http.get(f"/v1/meetings/{uuid.uuid4()}")
        assert missing.status_code == 404 and "no meeting" in missing.json()["detail"]
        no_item = await http.post(decision, json=body)
        assert no_item.status_code == 404 and "no agenda item" in no_item.json()["detail"]
        bad = await http.post(decision, json={**body, "outcome": "maybe", "colour": "red"})
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"outcome", "colour"}
        not_json = await http.post(
            decision,
            content="outcome=maybe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert not_json.status_code == 422
        assert not_json.json()["errors"][0]["field"] == "header.content-type"
        lmaps = await http.post(f"/v1/schedules/{panel.local_authority}/lmaps/trigger")
        assert lmaps.status_code == 403  # running schedules is the coordinator's

    async with panel.http("member") as http:
        refused = await http.post(decision, json=body)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "your role may not record panel decisions (the chair does)"

    async with panel.http("coordinator") as http:
        two_chairs = await http.put(
            f"/v1/meetings/{mid}/attendance",
            json={
                "attendees": [
                    {"person_name": "A", "agency_name": "Police", "capacity": "chair"},
                    {"person_name": "B", "agency_name": "Health", "capacity": "chair"},
                ]
            },
        )
        assert two_chairs.status_code == 422
        assert "one chair" in two_chairs.json()["errors"][0]["reason"]
        for path in ("lmaps", "pre_mset"):
            la = panel.local_authority if path == "lmaps" else "nowhere"
            resp = await http.post(f"/v1/schedules/{la}/{path}/trigger")
            assert resp.status_code == 404, resp.text
        pre = await http.post(
            "/v1/meetings",
            json={
                "kind": "pre_mset",
                "local_authority": "northshire",
                "held_at": "2026-12-01T10:00:00Z",
            },
        )
        assert pre.status_code == 422 and pre.json()["errors"][0]["field"] == "kind"

        closed = await http.post(f"/v1/meetings/{mid}/close")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        late = await http.put(f"/v1/meetings/{mid}/attendance", json={"attendees": []})
        assert late.status_code == 409 and "closed" in late.json()["detail"]
