"""Missing episodes through the API on the real dev server with real workers: report, return,
Return Home Interview, idempotency, bad input, and the link to the child's open case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mset_contract.types import today_uk
from mset_contract.vocab import AgencyType, Role
from services.referral.api import create_app
from tests.integration.conftest import Intake, referral_settings
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.servers import serve
from tests.support.wait import eventually, poll

# The authority of the tests' cases (the example tool's): the staff who work them serve it.
NS = ("northshire",)


def missing_report(**over: Any) -> dict[str, Any]:
    today = today_uk()
    body: dict[str, Any] = {
        "partner_reference": f"MFH-{uuid.uuid4().hex[:8]}",
        "child": {
            "agency_child_ref": f"NP-{uuid.uuid4().hex[:6]}",
            "date_of_birth": today.replace(year=today.year - 14, day=1).isoformat(),
            "local_authority": "northshire",
        },
        "reported_at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
        "circumstances": "Left the children's home after an argument.",
    }
    body.update(over)
    return body


async def test_report_return_and_interview(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    intake.identity.create_agency(
        "Northshire RHI Service", AgencyType.voluntary_provider, rhi_provider_for=["northshire"]
    )
    provider = intake.new_user("Jo Worker", Role.provider, "Northshire RHI Service")
    body = missing_report()
    async with intake.http(police) as http:
        first = await http.post(
            "/v1/missing-episodes", json=body, headers={"Idempotency-Key": "m1"}
        )
        assert first.status_code == 202, first.text
        again = await http.post(
            "/v1/missing-episodes", json=body, headers={"Idempotency-Key": "m1"}
        )
        assert again.json()["episode_id"] == first.json()["episode_id"]
        assert again.json()["duplicate"] is True
        eid = first.json()["episode_id"]

        back = await http.post(
            f"/v1/missing-episodes/{eid}/return",
            json={"returned_at": datetime.now(UTC).isoformat(), "located_in_authority": "eastmoor"},
        )
        assert back.status_code == 200, back.text
        due = datetime.fromisoformat(back.json()["rhi_due_at"])
        assert timedelta(hours=71) < due - datetime.now(UTC) < timedelta(hours=73)
        # The police cannot record the interview: the provider does. The police read the
        # episode they reported, so they are told why (403).
        refused = await http.post(
            f"/v1/missing-episodes/{eid}/rhi",
            json={"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()},
        )
        assert refused.status_code == 403, refused.text
        assert "commissioned" in refused.json()["detail"]
    async with intake.http(provider) as http:
        bad = await http.post(f"/v1/missing-episodes/{eid}/rhi", json={"outcome": "not_offered"})
        assert bad.status_code == 422
        assert "reason_not_offered" in bad.json()["detail"]
        ok = await http.post(
            f"/v1/missing-episodes/{eid}/rhi",
            json={"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()},
        )
        assert ok.status_code == 200, ok.text
        view = await http.get(f"/v1/missing-episodes/{eid}")
        assert view.status_code == 200
        assert view.json()["status"] == "closed" and view.json()["rhi_outcome"] == "completed"
        assert view.json()["located_in_authority"] == "eastmoor"
        # What the police wrote stays with the referral service: not in the episode's state.
        assert "circumstances" not in view.text and "argument" not in view.text


async def test_bad_reports_name_the_field(intake: Intake) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with intake.http(police) as http:
        resp = await http.post("/v1/missing-episodes", json=missing_report(reported_at=future))
        assert resp.status_code == 422
        assert "reported_at" in [e["field"] for e in resp.json()["errors"]]
        resp = await http.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=str(uuid.uuid4()))
        )
        assert resp.status_code == 422
        assert resp.json()["errors"][0]["field"] == "case_referral_id"
        unknown = missing_report()
        unknown["child"]["local_authority"] = "atlantis"
        resp = await http.post("/v1/missing-episodes", json=unknown)
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == ["child.local_authority"]
        assert "atlantis" in resp.json()["detail"]


async def test_an_episode_reported_for_an_open_case_reaches_it(intake: Intake) -> None:
    # The reporting agency names a case it may read: its own referral.
    police = intake.new_agency("Northshire Police", AgencyType.police)
    async with intake.http(police) as partner:
        referral = (await partner.post("/v1/referrals", json=tool())).json()
        await wait_for_stage(partner, referral["referral_id"], "awaiting_pre_mset")
    async with intake.http(police) as http:
        resp = await http.post(
            "/v1/missing-episodes", json=missing_report(case_referral_id=referral["referral_id"])
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["case_referral_id"] == referral["referral_id"]
    handle = intake.client.get_workflow_handle(referral["workflow_id"])
    state = await poll(
        lambda: handle.query("state"), lambda s: bool(s["missing_episodes"]), what="episode linked"
    )
    assert [e["episode_id"] for e in state["missing_episodes"]] == [resp.json()["episode_id"]]


async def test_a_third_episode_in_90_days_opens_a_referral_for_consideration(
    intake: Intake,
) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    coordinator = intake.new_user("Sam", Role.coordinator, "MSET Partnership", NS)
    child = missing_report()["child"]
    episode_ids = []
    async with intake.http(police) as http:
        for days_ago in (40, 12, 0):
            at = datetime.now(UTC) - timedelta(days=days_ago, hours=6)
            resp = await http.post(
                "/v1/missing-episodes",
                json=missing_report(child=child, reported_at=at.isoformat()),
            )
            assert resp.status_code == 202, resp.text
            assert resp.json()["case_referral_id"] is None  # no case yet
            episode_ids.append(resp.json()["episode_id"])
            back = await http.post(
                f"/v1/missing-episodes/{episode_ids[-1]}/return",
                json={"returned_at": (at + timedelta(hours=5)).isoformat()},
            )
            assert back.status_code == 200, (days_ago, episode_ids, back.text)
    # The third return makes the rules say "consider": a referral is opened and linked.
    async with intake.http(coordinator) as http:

        async def opened() -> Any:
            view = (await http.get(f"/v1/missing-episodes/{episode_ids[-1]}")).json()
            return view["case_referral_id"]

        case_id = await eventually(opened, what="a referral opened for consideration")
        assert case_id, "no referral was opened"
        case = await wait_for_stage(http, case_id, "awaiting_pre_mset")
        assert case["suggested_level"] in {"medium", "high"}
    state = await intake.client.get_workflow_handle(f"referral-{case_id}").query("state")
    assert len(state["missing_episodes"]) == 3


async def test_a_return_or_rhi_sent_again_gets_the_first_answer_and_a_timeout_is_503(
    intake: Intake, database_url: str
) -> None:
    police = intake.new_agency("Northshire Police", AgencyType.police)
    intake.identity.create_agency(
        "Northshire RHI Service", AgencyType.voluntary_provider, rhi_provider_for=["northshire"]
    )
    provider = intake.new_user("Jo Worker", Role.provider, "Northshire RHI Service")
    returned_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    back_body = {"returned_at": returned_at}
    # The same API with an update timeout no workflow can meet: the update RPC times out, as
    # it did on a loaded server.
    impatient = referral_settings(
        database_url, intake.settings.temporal_address, decision_timeout_seconds=0.001
    )
    with serve(create_app(impatient)) as impatient_url:
        async with intake.http(police) as http:
            eid = (await http.post("/v1/missing-episodes", json=missing_report())).json()[
                "episode_id"
            ]
            async with httpx.AsyncClient(
                base_url=impatient_url, headers={"X-API-Key": police}, timeout=30
            ) as slow:
                timed_out = await slow.post(f"/v1/missing-episodes/{eid}/return", json=back_body)
            assert timed_out.status_code == 503, timed_out.text
            assert int(timed_out.headers["Retry-After"]) > 0
            assert "did not answer in time" in timed_out.json()["detail"]

            # The partner retries after Retry-After (the server may take its workflow task
            # timeout to recover from the abandoned call): 503 until the episode answers,
            # then the first answer however often it asks; never a 500 or a 422.
            seen: list[int] = []

            async def retry() -> httpx.Response:
                resp = await http.post(f"/v1/missing-episodes/{eid}/return", json=back_body)
                seen.append(resp.status_code)
                return resp

            first = await poll(retry, lambda r: r.status_code != 503, what="the return")
            assert first.status_code == 200, first.text
            assert set(seen) <= {503, 200}, seen
            again = await http.post(f"/v1/missing-episodes/{eid}/return", json=back_body)
            assert again.status_code == 200, again.text
            assert again.json() == first.json()
            # A different return for the same episode is refused, saying what is recorded.
            other = {"returned_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
            refused = await http.post(f"/v1/missing-episodes/{eid}/return", json=other)
            assert refused.status_code == 422
            assert "recorded already" in refused.json()["detail"]

    rhi = {"outcome": "completed", "offered_at": datetime.now(UTC).isoformat()}
    async with intake.http(provider) as http:
        first = await http.post(f"/v1/missing-episodes/{eid}/rhi", json=rhi)
        assert first.status_code == 200, first.text
        again = await http.post(f"/v1/missing-episodes/{eid}/rhi", json=rhi)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        refused = await http.post(
            f"/v1/missing-episodes/{eid}/rhi",
            json={"outcome": "refused_by_young_person", "offered_at": rhi["offered_at"]},
        )
        assert refused.status_code == 422
        assert "recorded already" in refused.json()["detail"]
