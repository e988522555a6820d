"""A case's panel papers (issue 10, defect 2): who, why and its history, read from the
referral service and the case, trimmed by the reader's role, each read recorded; the rules'
readable reasons come from the real triage API. Real referral and triage APIs, Temporal dev
server and workers; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from mset_contract.auth import SERVICE_PRINCIPAL, Principal
from mset_contract.types import age_on, today_uk
from mset_contract.vocab import AgencyType, Role
from services.referral.api import create_app as referral_app
from services.referral.store import LedgerEntry
from services.triage.api import create_app as triage_app
from services.triage.settings import TriageSettings
from tests.integration.conftest import Intake, fresh_authority, referral_settings
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.case_world import triage_engine
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.servers import serve


@pytest.fixture
def papers_url(
    intake: Intake, database_url: str, temporal_dev: WorkflowEnvironment
) -> Iterator[str]:
    """The referral API, asking the real triage API (served here) for the rules' reasons."""

    async def services_only(credential: str) -> Principal | None:
        return SERVICE_PRINCIPAL if credential == TEST_SERVICE_TOKEN else None

    rules = triage_app(
        TriageSettings(environment="test"), resolver=services_only, triage=triage_engine()
    )
    with serve(rules) as triage_url:
        address = temporal_dev.client.service_client.config.target_host
        settings = referral_settings(database_url, address, triage_url=triage_url)
        with serve(referral_app(settings)) as url:
            yield url


def http(url: str, credential: str) -> httpx.AsyncClient:
    header = "X-API-Key" if credential.startswith("msetk_") else "Authorization"
    value = credential if header == "X-API-Key" else f"Bearer {credential}"
    return httpx.AsyncClient(base_url=url, headers={header: value}, timeout=30)


async def test_the_panel_reads_a_cases_papers_as_its_role_may(
    intake: Intake, papers_url: str
) -> None:
    key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    la = fresh_authority()  # the case's authority, which the panel serves
    staff = {
        role: intake.new_user(f"{role.value} person", role, "MSET Partnership", (la,))
        for role in (Role.coordinator, Role.chair, Role.panel_member, Role.analyst, Role.admin)
    }
    body = tool(child__local_authority=la)
    async with http(papers_url, key) as partner, http(papers_url, staff[Role.chair]) as chair:
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        met = await chair.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={
                "outcome": "meets_criteria",
                "level": "high",
                "rationale": "Older adult supplying alcohol; the panel agrees high.",
                "decision_id": "pm-1",
            },
        )
        assert met.status_code == 200, met.text
        due = datetime.now(UTC) + timedelta(days=14)
        review = await chair.post(
            f"/v1/referrals/{rid}/mset-review",
            json={
                "level": "high",
                "review_id": "mset-1",
                "actions": [
                    {
                        "owner_agency_id": str(police.id),
                        "due_at": due.isoformat(),
                        "aim": "avoid",
                        "target": "perpetrator",
                        "description": "Child abduction warning notice.",
                    }
                ],
            },
        )
        assert review.status_code == 200, review.text
        [action_id] = review.json()["action_ids"]
    async with http(papers_url, police.secret) as owner:
        noted = await owner.post(
            f"/v1/referrals/{rid}/actions/{action_id}/progress",
            json={"note": "Notice drafted; serving this week."},
        )
        assert noted.status_code == 200, noted.text

    async def papers(role: Role | None, credential: str | None = None) -> httpx.Response:
        async with http(papers_url, credential or staff[role or Role.coordinator]) as h:
            return await h.get(f"/v1/referrals/{rid}/papers")

    resp = await papers(Role.coordinator)
    assert resp.status_code == 200, resp.text
    full: dict[str, Any] = resp.json()
    dob = date.fromisoformat(body["child"]["date_of_birth"])
    who = full["who"]
    assert who["agency_child_ref"] == body["child"]["agency_child_ref"]
    assert who["age_years"] == age_on(dob, today_uk())
    assert who["referring_agency"] == "Northshire CSC"
    assert (who["gender"], who["legal_status"]) == ("female", "looked_after_s20")
    assert who["area_of_residence"] == "Riverside ward"
    assert body["child"]["date_of_birth"] not in resp.text  # age, never the date of birth

    why = full["why"]
    areas = {a["area"]: a["indicators"] for a in why["indicators"]}
    assert [(i["code"], i["recency"]) for i in areas["missing"]] == [("MIS-01", "current")]
    assert areas["substance_misuse"][0]["recency"] == "six_to_twelve_months"
    assert why["rules"] and all(r["reason"] for r in why["rules"]), why["rules"]
    assert why["referrer_rationale"] == body["referrer_judgement"]["rationale"]
    assert why["persons_of_concern"] == body["persons_of_concern"]
    assert why["locations"] == body["locations"]
    assert why["exploitation_types"] == body["exploitation_types"]

    history = full["history"]
    assert [(d["kind"], d["level"]) for d in history["decisions"]] == [
        ("pre_mset", "high"),
        ("mset_review", "high"),
    ]
    assert history["decisions"][0]["rationale"].startswith("Older adult")
    [act] = history["actions"]
    assert (act["owner_agency"], act["status"]) == ("Northshire Police", "open")
    assert act["progress"][0]["note"] == "Notice drafted; serving this week."
    assert full["withheld"] == []

    # A panel member: the same papers without the rationales and notes.
    member = (await papers(Role.panel_member)).json()
    assert member["why"]["referrer_rationale"] is None
    assert [d["rationale"] for d in member["history"]["decisions"]] == [None, None]
    assert member["history"]["actions"][0]["progress"][0]["note"] is None
    assert member["why"]["persons_of_concern"] == body["persons_of_concern"]
    assert "why.referrer_rationale" in member["withheld"]
    # Admins, analysts and partner systems read no papers. Admins and analysts may not see
    # the case (404, as for none); the referring system may, so it is told why (403).
    for role in (Role.analyst, Role.admin):
        assert (await papers(role)).status_code == 404
    refused = await papers(None, key)
    assert refused.status_code == 403 and "panel papers" in refused.json()["detail"]

    # Each read is in the information-sharing ledger, for the panel, with what was shown.
    with intake.store.session() as s:
        read = list(s.scalars(select(LedgerEntry).where(LedgerEntry.view == "panel_papers")))
    staff_ids = {r: intake.identity.user_id("MSET Partnership", f"{r.value} person") for r in staff}
    assert {(e.user_id, e.purpose) for e in read} >= {
        (staff_ids[Role.coordinator], "panel"),
        (staff_ids[Role.panel_member], "panel"),
    }
    by_role = {e.role: e.fields for e in read}
    assert "why.referrer_rationale" in by_role["coordinator"]
    assert "why.referrer_rationale" not in by_role["panel_member"]
    # And none of the tool's free text entered the case's workflow history.
    handle = intake.client.get_workflow_handle(f"referral-{rid}")
    history_json = json.dumps((await handle.fetch_history()).to_json_dict())
    for text in (
        body["referrer_judgement"]["rationale"],
        body["persons_of_concern"][0]["description"],
        body["locations"][0]["description"],
        body["child"]["date_of_birth"],
    ):
        assert text not in history_json
