"""The cases at a stage (``GET /v1/referrals?stage=awaiting_pre_mset``), on the real dev
server with real workers: the one submitted longest ago first, a page at a time, only the
authorities the coordinator serves (or the one named), a decided case gone from the list,
and each case listed recorded in the information-sharing ledger."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from mset_contract.vocab import Role
from services.referral.store import LedgerEntry
from tests.integration.conftest import Intake, fresh_authority
from tests.integration.test_referral_intake import tool, wait_for_stage


async def test_a_coordinator_walks_the_cases_awaiting_pre_mset_longest_waiting_first(
    intake: Intake,
) -> None:
    la, la_two, other = fresh_authority(), fresh_authority(), fresh_authority()
    agency = f"Agency {uuid.uuid4().hex[:6]}"
    key = intake.new_agency(agency)
    coordinator = intake.new_user("Coordinator", Role.coordinator, agency, (la, la_two))
    chair = intake.new_user("Chair", Role.chair, agency, (la, la_two))

    async def submit(authority: str) -> str:
        async with intake.http(key) as http:
            # Each its own child: another referral of a child with an open case is a
            # reassessment of that case, not a case of its own.
            body = tool(
                child__local_authority=authority, child__agency_child_ref=uuid.uuid4().hex[:12]
            )
            resp = await http.post("/v1/referrals", json=body)
            assert resp.status_code == 202, resp.text
            rid: str = resp.json()["referral_id"]
            await wait_for_stage(http, rid, "awaiting_pre_mset")
        return rid

    first, second, third = [await submit(la) for _ in range(3)]
    in_two = await submit(la_two)
    elsewhere = await submit(other)

    async def walk(credential: str, **params: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query = {"stage": "awaiting_pre_mset", "limit": "2", **params}
        async with intake.http(credential) as http:
            while True:
                resp = await http.get("/v1/referrals", params=query)
                assert resp.status_code == 200, resp.text
                page = resp.json()
                assert len(page["items"]) <= 2
                items += page["items"]
                if page["next_cursor"] is None:
                    return items
                query["cursor"] = page["next_cursor"]

    listed = await walk(coordinator)
    assert [c["referral_id"] for c in listed] == [first, second, third, in_two]
    assert elsewhere not in [c["referral_id"] for c in listed]
    assert {c["stage"] for c in listed} == {"awaiting_pre_mset"}
    # The case view: no child's details.
    assert "child" not in listed[0] and "date_of_birth" not in str(listed)
    # One authority of those served; one not served is no case at all.
    only = await walk(coordinator, local_authority=la_two)
    assert [c["referral_id"] for c in only] == [in_two]
    assert await walk(coordinator, local_authority=other) == []

    # Each case listed is in the ledger, as shown to the coordinator.
    with intake.store.session() as s:
        shown = s.scalars(
            select(LedgerEntry.record_id).where(
                LedgerEntry.record_id == uuid.UUID(first), LedgerEntry.view == "case_status"
            )
        ).all()
    assert len(shown) >= 2

    # Decided, a case leaves the list.
    async with intake.http(chair) as http:
        decided = {"outcome": "meets_criteria", "level": "high"}
        resp = await http.post(f"/v1/referrals/{second}/pre-mset-decision", json=decided)
        assert resp.status_code == 200, resp.text
    after = await walk(chair, local_authority=la)
    assert [c["referral_id"] for c in after] == [first, third]
    assert [c["referral_id"] for c in await walk(chair, stage="awaiting_mset")] == [second]

    # An unknown stage is a 422 naming the parameter.
    async with intake.http(coordinator) as http:
        resp = await http.get("/v1/referrals", params={"stage": "waiting"})
        assert resp.status_code == 422
        assert [e["field"] for e in resp.json()["errors"]] == ["query.stage"]
