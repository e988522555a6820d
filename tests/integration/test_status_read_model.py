"""Status reads come from the read model, never from a workflow query (issue 16, finding 5;
docs/decisions/0022): a case's status, its papers and an agency's actions answer while its
workflow cannot, and say how fresh they are. Real referral API, workflow and workers on the
dev server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.referral_workflow import ReferralState
from mset_contract.temporal import REFERRAL_STATE_QUERY
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store as NotificationsStore
from services.notifications.worker import NotificationsWorker
from services.referral.api import create_app
from services.referral.identity import Identity
from services.referral.store import Store
from services.referral.worker import build_worker as build_referral_worker
from services.triage.worker import build_worker as build_triage_worker
from tests.integration.conftest import Intake, referral_settings, terminate_running
from tests.integration.test_action_owners import plan_action
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.case_world import triage_engine
from tests.support.servers import serve
from workflows.worker import build_worker


@dataclass
class Desk:
    """The referral API and every worker a case needs, with the workflow worker apart, so a
    test can stop it: then no workflow can answer a query (it would wait for a worker)."""

    intake: Intake
    workflows: Worker


@pytest.fixture
async def desk(
    database_url: str, temporal_dev: WorkflowEnvironment, referral_store: Store, broker: str
) -> AsyncIterator[Desk]:
    client = temporal_dev.client
    n_settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "broker": broker}
    )
    n_engine = make_engine(database_url)
    notifications_upgrade(n_engine)
    executor = ThreadPoolExecutor(max_workers=4)
    workflows = build_worker(client)
    address = client.service_client.config.target_host
    settings = referral_settings(database_url, address)
    try:
        async with (
            build_referral_worker(client, referral_store, executor),
            build_triage_worker(client, triage_engine()),
            NotificationsWorker(n_settings, NotificationsStore(n_engine), client, consumers=()),
        ):
            async with workflows:
                with serve(create_app(settings)) as url:
                    intake = Intake(url, referral_store, Identity(referral_store), client, settings)
                    yield Desk(intake, workflows)
                    await terminate_running(client)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        n_engine.dispose()


async def test_a_status_read_answers_while_the_workflow_cannot(desk: Desk) -> None:
    intake = desk.intake
    csc_key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    body = tool()
    # The chair serves the child's authority (need to know: ADR 0026).
    served = (body["child"]["local_authority"],)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", served)

    async with intake.http(csc_key) as partner, intake.http(chair) as chair_http:
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        rid, wid = accepted["referral_id"], accepted["workflow_id"]
        await wait_for_stage(partner, rid, "awaiting_pre_mset")
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "medium", "decision_id": "pm-1"},
        )
        assert met.status_code == 200, met.text
        review = await chair_http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={
                "level": "medium",
                "review_id": "mset-1",
                "actions": [plan_action(police.id, what="Serve a warning notice.")],
            },
        )
        assert review.status_code == 200, review.text
        action_id = review.json()["action_ids"][0]
        before = (await partner.get(f"/v1/referrals/{rid}")).json()
        assert before["stage"] == "active_plan" and before["sequence"] > 0

        # The workflow worker stops: from now on a query of the case waits for a worker
        # that never comes (bounded here at a minute, so the test cannot hang).
        await desk.workflows.shutdown()
        query = asyncio.create_task(
            intake.client.get_workflow_handle(wid).query(
                REFERRAL_STATE_QUERY, result_type=ReferralState, rpc_timeout=timedelta(minutes=1)
            )
        )
        try:
            resp = await partner.get(f"/v1/referrals/{rid}")
            assert resp.status_code == 200, resp.text
            view = resp.json()
            # The case as it is: its stage, level and the open action the review agreed,
            # with how fresh that is (the same record as before the worker stopped).
            assert view["stage"] == "active_plan"
            assert view["level"] == "medium"
            assert [(a["action_id"], a["owner_agency_id"]) for a in view["open_actions"]] == [
                (action_id, str(police.id))
            ]
            assert view["next_deadline"] is not None
            assert (view["sequence"], view["as_of"]) == (before["sequence"], before["as_of"])
            assert datetime.fromisoformat(view["as_of"]) >= datetime.fromisoformat(
                view["submitted_at"]
            )

            # The agency that owns the action still sees it in its list, and the chair the
            # case's papers with the review and the action.
            async with intake.http(police.secret) as police_http:
                owned = await police_http.get("/v1/actions")
            assert owned.status_code == 200, owned.text
            assert [a["action_id"] for a in owned.json()["items"]] == [action_id]
            papers = await chair_http.get(f"/v1/referrals/{rid}/papers")
            assert papers.status_code == 200, papers.text
            history = papers.json()["history"]
            assert [d["decision_id"] for d in history["decisions"]] == ["pm-1", "mset-1"]
            assert [a["description"] for a in history["actions"]] == ["Serve a warning notice."]
            assert papers.json()["sequence"] == view["sequence"]

            # All of that was answered while the workflow could not answer at all.
            assert not _answered(query), "the workflow answered: the worker did not stop"
        finally:
            query.cancel()
            await asyncio.gather(query, return_exceptions=True)


def _answered(query: asyncio.Task[Any]) -> bool:
    """Whether the query came back with the case's state (not merely gave up)."""
    return query.done() and not query.cancelled() and query.exception() is None


async def test_freshness_advances_with_each_change_the_case_records(desk: Desk) -> None:
    intake = desk.intake
    csc_key = intake.new_agency("Northshire CSC")
    police = intake.identity.create_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)
    body = tool()
    # The chair serves the child's authority (need to know: ADR 0026).
    served = (body["child"]["local_authority"],)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", served)

    def fresh(view: dict[str, Any]) -> tuple[int, datetime]:
        return view["sequence"], datetime.fromisoformat(view["as_of"])

    async with intake.http(csc_key) as partner, intake.http(chair) as chair_http:
        rid = (await partner.post("/v1/referrals", json=body)).json()["referral_id"]
        waiting = await wait_for_stage(partner, rid, "awaiting_pre_mset")

        # A decision is recorded before it is answered: the next read shows it, fresher.
        met = await chair_http.post(
            f"/v1/referrals/{rid}/pre-mset-decision",
            json={"outcome": "meets_criteria", "level": "high", "decision_id": "pm-1"},
        )
        assert met.status_code == 200, met.text
        decided = (await partner.get(f"/v1/referrals/{rid}")).json()
        assert (decided["stage"], decided["level"]) == ("awaiting_mset", "high")
        assert fresh(decided)[0] > fresh(waiting)[0]
        assert fresh(decided)[1] > fresh(waiting)[1]

        review = await chair_http.post(
            f"/v1/referrals/{rid}/mset-review",
            json={"level": "high", "review_id": "mset-1", "actions": [plan_action(police.id)]},
        )
        assert review.status_code == 200, review.text
        action_id = review.json()["action_ids"][0]
        planned = (await partner.get(f"/v1/referrals/{rid}")).json()
        assert [a["action_id"] for a in planned["open_actions"]] == [action_id]
        assert fresh(planned) > fresh(decided)

        # Progress that does not complete the action moves no stage, yet it is recorded
        # too: the note is on the papers at once, and the record is newer.
        async with intake.http(police.secret) as police_http:
            note = await police_http.post(
                f"/v1/referrals/{rid}/actions/{action_id}/progress",
                json={"note": "Visited the address; notice to follow."},
            )
        assert note.status_code == 200, note.text
        papers = (await chair_http.get(f"/v1/referrals/{rid}/papers")).json()
        (action,) = papers["history"]["actions"]
        assert [p["note"] for p in action["progress"]] == ["Visited the address; notice to follow."]
        assert papers["sequence"] > planned["sequence"]
        progressed = (await partner.get(f"/v1/referrals/{rid}")).json()
        assert fresh(progressed) > fresh(planned)
        assert progressed["stage"] == "active_plan"
