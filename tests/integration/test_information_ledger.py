"""The information-sharing ledger and subject access (issue 11): every kind of disclosure of a
child's record is one entry (what, with whom, why, on what basis, when); the DPO reads it,
filtered, and exports it as CSV, and each of those reads is itself an entry; a subject access
export gathers everything held about one child into one document. Real referral API (and the
notifications API for its part of the export), workflows and workers; SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType, Role
from services.notifications.api import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referral.api import create_app as referral_app
from services.referral.ledger import Ledger
from tests.integration.conftest import Intake, referral_settings
from tests.integration.test_action_owners import plan_action
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.environment import TEST_SERVICE_TOKEN
from tests.support.servers import serve


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed


@pytest.fixture
def ledger_url(
    intake: Intake, database_url: str, temporal_dev: WorkflowEnvironment
) -> Iterator[str]:
    """The referral API with the notifications API beside it (its part of a subject access
    export), and a meeting service that cannot be reached (so the export says so)."""

    async def nobody(_: str) -> Principal | None:
        return None

    n_settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url}
    )
    with serve(notifications_app(n_settings, resolver=nobody)) as n_url:
        address = temporal_dev.client.service_client.config.target_host
        settings = referral_settings(
            database_url, address, notifications_url=n_url, meeting_url=_closed_port()
        )
        with serve(referral_app(settings)) as url:
            yield url


def http(url: str, credential: str) -> httpx.AsyncClient:
    header = "X-API-Key" if credential.startswith("msetk_") else "Authorization"
    value = credential if header == "X-API-Key" else f"Bearer {credential}"
    return httpx.AsyncClient(base_url=url, headers={header: value}, timeout=30)


async def test_every_kind_of_disclosure_is_an_entry_and_the_dpo_exports_a_subject_access(
    intake: Intake, ledger_url: str
) -> None:
    csc_key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    body = tool(consent__lawful_basis="legal_obligation")
    # The panel serves the child's authority (need to know: ADR 0026); the DPO serves none.
    served = (body["child"]["local_authority"],)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", served)
    member = intake.new_user("Pat Member", Role.panel_member, "MSET Partnership", served)
    coordinator = intake.new_user("Sam Coord", Role.coordinator, "MSET Partnership", served)
    dpo = intake.new_user("Dee Protection", Role.dpo, "MSET Partnership")
    member_id = intake.identity.user_id("MSET Partnership", "Pat Member")
    dpo_id = intake.identity.user_id("MSET Partnership", "Dee Protection")

    async with (
        http(ledger_url, csc_key) as partner,
        http(ledger_url, chair) as chair_http,
        http(ledger_url, police.secret) as police_http,
        http(ledger_url, member) as member_http,
        http(ledger_url, TEST_SERVICE_TOKEN) as service,
        http(ledger_url, dpo) as dpo_http,
        http(ledger_url, coordinator) as coord_http,
    ):
        # The child's record: a referral, a Pre-MSET decision, an MSET review with an
        # action for the police, and a missing episode.
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        rid = accepted["referral_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")  # reads the status
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "high", "decision_id": "pm-1"},
        )
        assert met.status_code == 200, met.text
        review = await chair_http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={"level": "high", "review_id": "mset-1", "actions": [plan_action(police.id)]},
        )
        assert review.status_code == 200, review.text
        episode = await partner.post(
            "/v1/missing-episodes",
            json=missing_report(
                child={
                    "agency_child_ref": body["child"]["agency_child_ref"],
                    "date_of_birth": body["child"]["date_of_birth"],
                    "local_authority": body["child"]["local_authority"],
                }
            ),
        )
        assert episode.status_code == 202, episode.text
        episode_id = episode.json()["episode_id"]
        assert episode.json()["case_referral_id"] == rid

        # Each kind of disclosure.
        assert (await partner.get(f"/v1/referrals/{rid}")).status_code == 200  # status
        assert (await member_http.get(f"/v1/referrals/{rid}/papers")).status_code == 200
        assert (await police_http.get("/v1/actions")).status_code == 200  # owned actions
        assert (await partner.get(f"/v1/missing-episodes/{episode_id}")).status_code == 200
        meeting_id = str(uuid.uuid4())
        agenda = await service.get(  # the meeting service shows its agenda to a member
            "/v1/cases/who",
            params={
                "id": rid,
                "for_agency": str(member_principal_agency(intake)),
                "for_user": str(member_id),
                "for_role": "panel_member",
                "view": "agenda",
                "meeting_id": meeting_id,
            },
        )
        assert agenda.status_code == 200, agenda.text
        half = await service.get("/v1/cases/who", params={"id": rid, "view": "agenda"})
        assert half.status_code == 422  # a reader is named whole, or not at all
        assert [e["field"] for e in half.json()["errors"]] == ["query.for_agency"]
        webhook = {
            "report_id": str(uuid.uuid4()),
            "case_id": rid,
            "record": "event",
            "record_id": str(uuid.uuid4()),
            "view": "webhook",
            "recipient_kind": "webhook",
            "agency_id": str(police.id),
            "recipient": "subscription 1234",
            "purpose": "case_work",
            "at": datetime.now(UTC).isoformat(),
        }
        email = {**webhook, "report_id": str(uuid.uuid4()), "view": "email"}
        email |= {"recipient_kind": "mailbox", "recipient": "managers@northshire.example"}
        reports = {"reporter": "notifications", "entries": [webhook, email]}
        first = await service.post("/v1/disclosures", json=reports)
        assert first.status_code == 200, first.text
        assert first.json() == {"recorded": 2}
        again = await service.post("/v1/disclosures", json=reports)  # a retried report
        assert again.json() == {"recorded": 0}
        assert (await partner.post("/v1/disclosures", json=reports)).status_code == 403

        # Only the DPO reads the ledger.
        for who in (coord_http, chair_http, partner):
            assert (await who.get("/v1/disclosures", params={"child": rid})).status_code == 403
        listed = await dpo_http.get("/v1/disclosures", params={"child": rid, "limit": 200})
        assert listed.status_code == 200, listed.text
        entries = listed.json()["items"]
        kinds = {e["view"] for e in entries}
        assert kinds >= {
            "case_status",
            "case_decision",
            "panel_papers",
            "owned_actions",
            "missing_episode",
            "agenda",
            "webhook",
            "email",
            "ledger",  # this very read, recorded before it was answered
        }, kinds
        by_view = {e["view"]: e for e in entries}
        status = by_view["case_status"]
        assert status["recipient_kind"] == "partner_system"
        assert status["purpose"] == "case_work"
        assert status["lawful_basis"] == "legal_obligation"  # as the referrer recorded it
        assert "stage" in status["fields"]
        papers = by_view["panel_papers"]
        assert (papers["user_id"], papers["role"], papers["purpose"]) == (
            str(member_id),
            "panel_member",
            "panel",
        )
        assert "why.referrer_rationale" not in papers["fields"]  # withheld from a member
        shown = by_view["agenda"]
        assert (shown["user_id"], shown["record_id"], shown["reported_by"]) == (
            str(member_id),
            meeting_id,
            "meeting",
        )
        assert by_view["webhook"]["agency_id"] == str(police.id)
        assert by_view["owned_actions"]["agency_id"] == str(police.id)
        read = by_view["ledger"]
        assert (read["user_id"], read["purpose"], read["lawful_basis"]) == (
            str(dpo_id),
            "oversight",
            "legal_obligation",
        )
        assert all(e["case_id"] == rid for e in entries)
        # The chain: each entry names the one before it.
        seqs = [e["seq"] for e in entries]
        assert seqs == sorted(seqs)

        # Filtered by agency, and by period.
        to_police = await dpo_http.get("/v1/disclosures", params={"agency": str(police.id)})
        assert {e["agency_id"] for e in to_police.json()["items"]} == {str(police.id)}
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        later = await dpo_http.get("/v1/disclosures", params={"since": future})
        assert later.json()["items"] == []
        paged = await dpo_http.get("/v1/disclosures", params={"child": rid, "limit": 2})
        assert len(paged.json()["items"]) == 2 and paged.json()["next_cursor"]

        # The CSV export, itself an entry.
        exported = await dpo_http.get("/v1/disclosures/export.csv", params={"child": rid})
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {"webhook", "panel_papers", "missing_episode"} <= {r["view"] for r in rows}
        assert {"lawful_basis", "purpose", "user_id", "agency_id", "at"} <= set(rows[0])

        # Subject access: everything about the child, as one document.
        sar = await dpo_http.get(f"/v1/subject-access/{rid}")
        assert sar.status_code == 200, sar.text
        doc = sar.json()
        assert doc["marking"] == "OFFICIAL-SENSITIVE"
        assert [r["referral_id"] for r in doc["referrals"]] == [rid]
        assert (
            doc["referrals"][0]["tool"]["child"]["date_of_birth"]
            == (body["child"]["date_of_birth"])
        )
        case = doc["cases"][0]
        assert case["case_id"] == rid
        assert case["pre_mset"]["decision_id"] == "pm-1"
        assert [a["owner_agency_id"] for a in case["actions"]] == [str(police.id)]
        assert [e["episode_id"] for e in doc["missing_episodes"]] == [episode_id]
        assert doc["missing_episodes"][0]["report"]["circumstances"]
        assert doc["notifications"] == [
            {"case_id": rid, "inbox_items": [], "webhook_deliveries": [], "emails": []}
        ]
        sar_views = {d["view"] for d in doc["disclosures"]}
        assert sar_views >= kinds | {"subject_access"}
        # The meeting service could not be asked: the export says so, never silently.
        assert doc["meetings"] == []
        assert any(m.startswith("meeting service") for m in doc["incomplete"]), doc["incomplete"]
        # By the child's reference, with the agency whose reference it is.
        ref = body["child"]["agency_child_ref"]
        agency_id = str(agency_of(intake, "Northshire CSC"))
        by_ref = await dpo_http.get(f"/v1/subject-access/{ref}", params={"agency": agency_id})
        assert [r["referral_id"] for r in by_ref.json()["referrals"]] == [rid]
        vague = await dpo_http.get(f"/v1/subject-access/{ref}")
        assert vague.status_code == 422
        assert [e["field"] for e in vague.json()["errors"]] == ["query.agency"]
        assert (await dpo_http.get(f"/v1/subject-access/{uuid.uuid4()}")).status_code == 404
        assert (await coord_http.get(f"/v1/subject-access/{rid}")).status_code == 403
        printable = await dpo_http.get(f"/v1/subject-access/{rid}", params={"format": "html"})
        assert printable.headers["content-type"].startswith("text/html")
        assert printable.text.count("OFFICIAL-SENSITIVE") >= 2
        assert "<script" not in printable.text

    # Nothing in the chain was changed.
    assert Ledger(intake.store).verify() is None


def member_principal_agency(intake: Intake) -> uuid.UUID:
    return agency_of(intake, "MSET Partnership")


def agency_of(intake: Intake, name: str) -> uuid.UUID:
    with intake.store.session() as s:
        agency = intake.store.agency_by_name(s, name)
        assert agency is not None
        return agency.id
