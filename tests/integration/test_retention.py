"""Retention on the real dev server with real workers and real tables (SQLite and
PostgreSQL): a closed case whose time has come is erased from every service's tables and from
Temporal by the sweep the retention schedule starts, a sweep killed half-way is finished by
the next, the erasure is recorded without the erased data, and a case not yet due is
untouched."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.events.catalogue import event_id
from mset_contract.notifications import ReescalationInput
from mset_contract.retention import RetentionSweepInput, RetentionSweepResult
from mset_contract.temporal import (
    NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
    NOTIFICATIONS_TASK_QUEUE,
    RETENTION_SWEEP_WORKFLOW,
    inbox_reescalation_workflow_id,
    missing_episode_workflow_id,
    referral_workflow_id,
)
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from mset_platform.retention import executions_listed
from services.meeting import store as meeting_db
from services.meeting.migrate import upgrade as meeting_upgrade
from services.meeting.retention import MeetingRetentionActivities, erase_cases
from services.notifications import store as notifications_db
from services.notifications.migrate import upgrade as notifications_upgrade
from services.notifications.retention import NotificationsRetentionActivities
from services.referral.retention import ERASED, ErasureRecord, RetentionStore
from services.referral.retention_schedule import ensure_retention_schedule
from services.referral.worker import build_worker as build_referral_worker
from tests.integration.conftest import Intake
from tests.integration.test_missing_episodes import missing_report
from tests.integration.test_referral_intake import tool, wait_for_stage
from tests.support.wait import eventually, poll
from workflows.retention import RetentionSweepWorkflow

# The sweep's clock: twelve years on, the 14-year-old is 26 and the case closed six years
# ago and more (due); the 10-year-old is 22 (not due until 25).
YEARS_ON = 12


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The other services' tables, beside the referral service's in the test's database."""
    e = make_engine(database_url)
    meeting_upgrade(e)
    notifications_upgrade(e)
    yield e
    e.dispose()


async def closed_case(
    intake: Intake, partner_key: str, chair: str, dob: date, local_authority: str
) -> dict[str, Any]:
    body = tool(child__date_of_birth=dob.isoformat(), child__local_authority=local_authority)
    async with intake.http(partner_key) as partner, intake.http(chair) as chair_http:
        accepted = (await partner.post("/v1/referrals", json=body)).json()
        await wait_for_stage(partner, accepted["referral_id"], "awaiting_pre_mset")
        decided = await chair_http.post(
            f"/v1/referrals/{accepted['referral_id']}/pre-mset-decision",
            json={
                "outcome": "not_met",
                "level": "low",
                "rationale": "Advice to the case holder is proportionate.",
            },
        )
        assert decided.status_code == 200, decided.text
        await wait_for_stage(partner, accepted["referral_id"], "closed_advice_given")
    return {**accepted, "tool": body}


def meeting_rows(engine: Engine, case_id: uuid.UUID, words: str) -> None:
    """What the meeting service holds about a case once it was on an agenda and an action
    was agreed for it."""
    store = meeting_db.Store(engine)
    now = datetime.now(UTC)
    with store.session() as s:
        meeting = meeting_db.Meeting(
            id=uuid.uuid4(),
            kind="mset",
            local_authority="northshire",
            status="closed",
            called_at=now,
            held_at=now,
            origin=f"test-{uuid.uuid4()}",
            called_by_schedule=False,
            agenda_built_at=now,
        )
        s.add(meeting)
        s.flush()
        item = meeting_db.AgendaItem(
            id=uuid.uuid4(),
            meeting_id=meeting.id,
            referral_id=case_id,
            position=1,
            reasons=["level.medium"],
            risk_level="medium",
            waiting_since=now,
            snapshot={"referral_id": str(case_id), "note": words},
            decision={"rationale": words},
        )
        s.add(item)
        s.flush()
        s.add(
            meeting_db.AgreedActionRow(
                action_id=str(uuid.uuid4()),
                referral_id=case_id,
                meeting_id=meeting.id,
                item_id=item.id,
                owner_agency_id=uuid.uuid4(),
                due_at=now,
                aim="reduce",
                target="victim",
                description=words,
                created_at=now,
            )
        )


def notification_rows(engine: Engine, case_id: uuid.UUID, words: str) -> uuid.UUID:
    """What the notifications service holds about a case whose events reached a manager's
    inbox (with an e-mail) and a partner's webhook; returns the inbox item's id."""
    store = notifications_db.Store(engine)
    now = datetime.now(UTC)
    first_event = event_id(referral_workflow_id(case_id), "1")
    with store.session() as s:
        item = notifications_db.InboxItem(
            id=uuid.uuid4(),
            event_id=first_event,
            case_id=case_id,
            referrer_agency_id=uuid.uuid4(),
            local_authority="northshire",
            kind="high_risk",
            urgency="immediate",
            rule="escalation.high_risk",
            ruleset_version="v1",
            fired_rules=["escalation.high_risk"],
            designation="case_holder",
            created_at=now,
            action_note=words,
        )
        sub = notifications_db.WebhookSubscription(
            id=uuid.uuid4(),
            agency_id=uuid.uuid4(),
            url="https://partner.example/hooks",
            event_types=["mset.referral.escalated"],
            status="active",
            created_at=now,
        )
        s.add(item)
        s.add(sub)
        s.flush()
        delivery = notifications_db.WebhookDelivery(
            id=uuid.uuid4(),
            subscription_id=sub.id,
            event_id=first_event,
            event_type="mset.referral.escalated",
            case_id=case_id,
            body=json.dumps({"subject": str(case_id)}),
            status="delivered",
            created_at=now,
        )
        s.add(delivery)
        s.flush()
        s.add_all(
            [
                notifications_db.WebhookAttempt(
                    delivery_id=delivery.id, attempt=1, at=now, status_code=200, duration_ms=5
                ),
                notifications_db.EmailMessage(
                    id=uuid.uuid4(),
                    event_id=first_event,
                    inbox_item_id=item.id,
                    recipient="manager@northshire.example",
                    subject=f"Escalation: {case_id}",
                    body=words,
                    status="sent",
                    created_at=now,
                ),
                *(
                    notifications_db.HandledEvent(
                        consumer=consumer,
                        event_id=event_id(referral_workflow_id(case_id), str(n)),
                        event_type="mset.referral.submitted",
                        handled_at=now,
                    )
                    for consumer in ("inbox", "webhooks")
                    for n in (1, 2, 3)
                ),
            ]
        )
        return item.id


def rows_holding(engine: Engine, markers: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """Every (table: marker) where any row of any table of the database holds a marker."""
    found = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table in skip:
                continue
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 - our tables
                as_text = " ".join(str(v) for v in row)
                found += [f"{table}: {m}" for m in markers if m in as_text]
    return found


def cli_lists(temporal_cli: str, address: str, workflow_id: str) -> str:
    """What ``temporal workflow list`` shows for a workflow id (the operator's own check)."""
    return subprocess.run(
        [
            temporal_cli,
            "workflow",
            "list",
            "--address",
            address,
            "--query",
            f"WorkflowId = '{workflow_id}'",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


async def sweep_started_by(client: Client, schedule_id: str) -> RetentionSweepResult:
    schedule = client.get_schedule_handle(schedule_id)
    await schedule.trigger()

    async def started() -> str | None:
        actions = (await schedule.describe()).info.recent_actions
        for a in actions:
            if isinstance(a.action, ScheduleActionExecutionStartWorkflow):
                return a.action.workflow_id
        return None

    workflow_id = await eventually(started, what="the schedule started a sweep")
    handle = client.get_workflow_handle(workflow_id, result_type=RetentionSweepResult)
    result: RetentionSweepResult = await handle.result()
    return result


async def test_a_case_whose_time_has_come_leaves_no_trace(
    intake: Intake,
    engine: Engine,
    temporal_dev: WorkflowEnvironment,
    temporal_cli: str,
) -> None:
    client = intake.client
    today = date.today()
    csc = intake.new_agency("Northshire CSC")
    intake.new_agency("Northshire Police", AgencyType.police)
    intake.new_agency("MSET Partnership", AgencyType.local_authority)

    # Child A: 14, referred, a missing episode on the case, closed at Pre-MSET.
    dob_a = date(today.year - 14, 2, 3)
    body_a = tool(
        child__date_of_birth=dob_a.isoformat(),
        child__agency_child_ref=f"NS-{uuid.uuid4().hex[:8]}",
    )
    # The chair serves the children's authority (need to know: ADR 0026).
    served = (body_a["child"]["local_authority"],)
    chair = intake.new_user("Det Insp Rao", Role.chair, "MSET Partnership", served)
    async with intake.http(csc) as partner, intake.http(chair) as chair_http:
        a = (await partner.post("/v1/referrals", json=body_a)).json()
        await wait_for_stage(partner, a["referral_id"], "awaiting_pre_mset")
        # The agency that referred the child links the episode to its case (an agency names
        # only a case it may read: issue 11, finding 2).
        async with intake.http(csc) as police_http:
            report = missing_report(
                case_referral_id=a["referral_id"],
                child={
                    "agency_child_ref": f"NP-{uuid.uuid4().hex[:6]}",
                    "date_of_birth": dob_a.isoformat(),
                    "local_authority": body_a["child"]["local_authority"],
                },
            )
            reported = await police_http.post("/v1/missing-episodes", json=report)
            assert reported.status_code == 202, reported.text
            episode_id = reported.json()["episode_id"]
        decided = await chair_http.post(
            f"/v1/referrals/{a['referral_id']}/pre-mset-decision",
            json={
                "outcome": "not_met",
                "level": "low",
                "rationale": "Advice to the case holder is proportionate.",
            },
        )
        assert decided.status_code == 200, decided.text
        await wait_for_stage(partner, a["referral_id"], "closed_advice_given")
    case_a = uuid.UUID(a["referral_id"])
    # Child B: 10, closed the same way: not due for another 15 years.
    b = await closed_case(intake, csc, chair, date(today.year - 10, 2, 3), served[0])
    case_b = uuid.UUID(b["referral_id"])

    words_a, words_b = f"about-A-{uuid.uuid4().hex}", f"about-B-{uuid.uuid4().hex}"
    meeting_rows(engine, case_a, words_a)
    meeting_rows(engine, case_b, words_b)
    item_a = notification_rows(engine, case_a, words_a)
    notification_rows(engine, case_b, words_b)
    # A's escalation has its re-escalation timer running in Temporal.
    timer_id = inbox_reescalation_workflow_id(item_a)
    await client.start_workflow(
        NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
        ReescalationInput(item_id=item_a, after_seconds=3600),
        id=timer_id,
        task_queue=NOTIFICATIONS_TASK_QUEUE,
    )
    a_workflows = [
        referral_workflow_id(case_a),
        missing_episode_workflow_id(episode_id),
        timer_id,
    ]
    assert await eventually(lambda: _all_listed(client, a_workflows), what="A's workflows listed")

    # The sweep's workers, each on a queue of this test's.
    queues = {k: f"test-{k}-{uuid.uuid4().hex[:8]}" for k in ("wf", "ref", "meet", "notif")}
    settings = intake.settings
    clock = lambda: datetime.now(UTC) + timedelta(days=365 * YEARS_ON + 3)  # noqa: E731
    meeting_store = meeting_db.Store(engine)
    executor = ThreadPoolExecutor(max_workers=4)
    sweep = RetentionSweepInput(
        referral_task_queue=queues["ref"],
        meeting_task_queue=queues["meet"],
        notifications_task_queue=queues["notif"],
    )
    schedule_id = f"retention-sweep-test-{uuid.uuid4().hex[:8]}"
    retention = RetentionStore(intake.store)

    # Only A is due.
    due = retention.due(settings, clock(), 10)
    assert [d.referral_ids for d in due] == [[case_a]]
    assert due[0].episode_ids == [uuid.UUID(episode_id)]

    # A sweep that was killed after the meeting service erased its rows: the record was
    # begun and the meeting's counts put on it, nothing else.
    record_id, still_due = retention.begin(due[0], settings, "killed-sweep", clock())
    assert still_due
    retention.add_counts(record_id, erase_cases(meeting_store, due[0].subject_ids))

    try:
        async with (
            Worker(client, task_queue=queues["wf"], workflows=[RetentionSweepWorkflow]),
            build_referral_worker(
                client,
                intake.store,
                executor,
                retention=settings,
                clock=clock,
                task_queue=queues["ref"],
            ),
            Worker(
                client,
                task_queue=queues["meet"],
                activities=[MeetingRetentionActivities(meeting_store).erase],
            ),
            Worker(
                client,
                task_queue=queues["notif"],
                activities=[
                    NotificationsRetentionActivities(notifications_db.Store(engine), client).erase
                ],
            ),
        ):
            await ensure_retention_schedule(
                client, settings, schedule_id=schedule_id, task_queue=queues["wf"], sweep=sweep
            )
            result = await sweep_started_by(client, schedule_id)
            assert (result.erased, result.failed) == (1, 0)
            assert result.record_ids == [record_id]

            # Run again: nothing is due, nothing fails.
            again = await client.execute_workflow(
                RETENTION_SWEEP_WORKFLOW,
                sweep,
                id=f"retention-again-{uuid.uuid4().hex[:8]}",
                task_queue=queues["wf"],
                result_type=RetentionSweepResult,
            )
            assert (again.erased, again.failed) == (0, 0)
    finally:
        await client.get_schedule_handle(schedule_id).delete()
        executor.shutdown(wait=False, cancel_futures=True)

    # No table holds anything of the child's: not the tool, the references, the date of
    # birth, the episode, what the panels and managers wrote. The record of the erasure and
    # the disclosure log keep the random ids (by design: docs/retention.md); nothing else.
    personal = [
        body_a["partner_reference"],
        body_a["child"]["agency_child_ref"],
        report["partner_reference"],
        report["child"]["agency_child_ref"],
        dob_a.isoformat(),
        words_a,
    ]
    # Both spellings: SQLite keeps a UUID column as 32 hex digits, JSON as the dashed form.
    ids = [f(i) for i in (case_a, uuid.UUID(episode_id), item_a) for f in (str, _hex)]
    assert rows_holding(engine, personal) == []
    kept = ("referral_retention_erasures", "referral_ledger")
    assert rows_holding(engine, ids, skip=kept) == []
    # B is untouched.
    assert len(rows_holding(engine, [_hex(case_b), words_b, b["tool"]["partner_reference"]])) > 3

    # Temporal keeps none of A's executions (every run deleted); B's case is still there.
    gone = await poll(
        lambda: executions_listed(client, a_workflows),
        lambda listed: listed == [],
        # Temporal answers a delete at once and removes a closed execution from its list
        # later (a few seconds on the tests' dev server, DELETE_PROMPTLY in tests/conftest.py;
        # about 30 s at Temporal's defaults).
        within=100,
        what="A's executions gone from Temporal",
    )
    assert gone == []
    address = temporal_dev.client.service_client.config.target_host
    for workflow_id in a_workflows:
        assert workflow_id not in cli_lists(temporal_cli, address, workflow_id)
    assert b["workflow_id"] in cli_lists(temporal_cli, address, b["workflow_id"])

    # The record: what, when, under which policy; the counts of the killed sweep kept.
    with intake.store.session() as s:
        record = s.get(ErasureRecord, record_id)
        assert record is not None
        assert record.status == ERASED
        assert record.policy == "later-of-age-25-or-6y-after-closure"
        assert record.sweep_id == "killed-sweep"
        assert record.finished_at is not None
        assert record.referral_ids == [str(case_a)]
        assert record.episode_ids == [episode_id]
        counts = record.counts
        as_text = json.dumps(
            {c.name: str(getattr(record, c.name)) for c in ErasureRecord.__table__.columns}
        )
    assert counts["meeting.agenda_items"] == 1
    assert counts["meeting.actions"] == 1
    assert counts["referral.referrals"] == 1
    assert counts["referral.missing_episodes"] == 1
    assert counts["notifications.inbox_items"] == 1
    assert counts["notifications.webhook_deliveries"] == 1
    assert counts["notifications.webhook_attempts"] == 1
    assert counts["notifications.email_messages"] == 1
    assert counts["notifications.handled_events"] == 6
    assert counts["temporal.reescalation_executions"] >= 1
    assert counts["temporal.case_executions"] >= 2
    assert not [m for m in personal if m in as_text]


def _hex(i: uuid.UUID) -> str:
    return i.hex


async def _all_listed(client: Client, workflow_ids: list[str]) -> bool:
    return len(await executions_listed(client, workflow_ids)) == len(workflow_ids)
