"""The returned children awaiting their Return Home Interview
(``GET /v1/missing-episodes?status=returned``), on the real dev server with real workers: the
interview due soonest first, a page at a time, only the commissioning authorities', and a
child whose interview is recorded leaves the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mset_contract.vocab import AgencyType, Role
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_missing_episodes import missing_report
from tests.support.wait import eventually


async def test_a_provider_walks_its_returned_children_due_soonest_first(intake: Intake) -> None:
    la, other = fresh_authority(), fresh_authority()
    police = intake.new_agency("Police " + la, AgencyType.police)
    intake.identity.create_agency("RHI " + la, AgencyType.voluntary_provider, rhi_provider_for=[la])
    provider = intake.new_user("Sam Worker", Role.provider, "RHI " + la)
    now = datetime.now(UTC)

    async def returned_child(authority: str, hours_ago: int) -> str:
        report = missing_report(reported_at=(now - timedelta(hours=hours_ago + 2)).isoformat())
        report["child"]["local_authority"] = authority
        async with intake.http(police) as http:
            eid: str = (await http.post("/v1/missing-episodes", json=report)).json()["episode_id"]
            back = {"returned_at": (now - timedelta(hours=hours_ago)).isoformat()}
            resp = await http.post(f"/v1/missing-episodes/{eid}/return", json=back)
            assert resp.status_code == 200, resp.text
        return eid

    # Returned 10, 40 and 20 hours ago: due in 62, 32 and 52 hours. One in another authority.
    ten, forty, twenty = [await returned_child(la, h) for h in (10, 40, 20)]
    elsewhere = await returned_child(other, 30)

    async def walk() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = {"status": "returned", "limit": "2"}
        async with intake.http(provider) as http:
            while True:
                page = (await http.get("/v1/missing-episodes", params=params)).json()
                assert len(page["items"]) <= 2
                items += page["items"]
                if page["next_cursor"] is None:
                    return items
                params["cursor"] = page["next_cursor"]

    listed = await eventually(
        lambda: _when_all(walk, {ten, forty, twenty}), what="the three returned children listed"
    )
    assert [e["episode_id"] for e in listed] == [forty, twenty, ten]
    assert elsewhere not in [e["episode_id"] for e in listed]
    first = listed[0]
    assert first["local_authority"] == la and first["partner_reference"].startswith("MFH-")
    due = datetime.fromisoformat(first["rhi_due_at"])
    assert timedelta(hours=31) < due - now < timedelta(hours=33)
    # What the police wrote stays with the referral service.
    assert "circumstances" not in first and "argument" not in str(listed)

    async with intake.http(provider) as http:
        done = {"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()}
        resp = await http.post(f"/v1/missing-episodes/{forty}/rhi", json=done)
        assert resp.status_code == 200, resp.text
    gone = await eventually(
        lambda: _when(walk, lambda items: forty not in [e["episode_id"] for e in items]),
        what="the interviewed child gone from the list",
    )
    assert [e["episode_id"] for e in gone] == [twenty, ten]

    # An unknown status is a 422 naming the parameter.
    async with intake.http(provider) as http:
        resp = await http.get("/v1/missing-episodes", params={"status": "missing"})
        assert resp.status_code == 422
        assert [e["field"] for e in resp.json()["errors"]] == ["query.status"]


async def _when_all(walk: Any, wanted: set[str]) -> list[dict[str, Any]] | None:
    return await _when(walk, lambda items: wanted <= {e["episode_id"] for e in items})


async def _when(walk: Any, ok: Any) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = await walk()
    return items if ok(items) else None
