"""Agendas over HTTP: drawn up when the authority's schedule fires, from the real case
workflows waiting for the panel, ordered by risk then waiting time, and trimmed to what the
reader's role may see. Real Temporal dev server; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from mset_contract.cases import NewAction
from mset_contract.referral_workflow import (
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionResult,
)
from mset_contract.temporal import (
    REFERRAL_RECORD_MSET_REVIEW_UPDATE,
    REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
)
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    MeetingKind,
    PreMsetOutcome,
    RiskLevel,
    Stage,
)
from tests.integration.meeting_fixtures import (
    HIGH,
    MEDIUM,
    Panel,
    panel_fixture,  # noqa: F401 - the `panel` fixture
    until,
)

CHAIR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")


async def test_pre_mset_agenda_lists_waiting_referrals_highest_risk_then_oldest(
    panel: Panel,
) -> None:
    first = await panel.case(MEDIUM)
    second = await panel.case(MEDIUM)
    high = await panel.case(HIGH)
    moved_on = await panel.case(MEDIUM)
    await moved_on.execute_update(
        REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
        PreMsetDecisionInput(
            outcome=PreMsetOutcome.meets_criteria, level=RiskLevel.medium, decided_by=CHAIR
        ),
        result_type=PreMsetDecisionResult,
    )
    await panel.visible((Stage.awaiting_pre_mset,), 3)

    meeting = await panel.call(MeetingKind.pre_mset)

    assert meeting["called_by_schedule"] is True and meeting["status"] == "scheduled"
    # Called now by the coordinator's trigger, so held now (issue 10, defect 6: it was
    # "held" a week's notice later, which the minutes then said).
    held = datetime.fromisoformat(meeting["held_at"])
    assert abs(held - datetime.fromisoformat(meeting["called_at"])) < timedelta(minutes=1)
    agenda = await panel.agenda(meeting["meeting_id"], "coordinator")
    ids = [i["referral_id"] for i in agenda["items"]]
    assert ids == [h.id.removeprefix("referral-") for h in (high, first, second)]
    top = agenda["items"][0]
    assert [i["position"] for i in agenda["items"]] == [1, 2, 3]
    assert top["reasons"] == ["new_referral"] and top["risk_level"] == "high"
    # What the panel needs: the rules' suggestion and why, beside the referrer's judgement.
    assert top["case"]["triage"]["suggested_level"] == "high"
    assert top["case"]["triage"]["referrer_level"] == "medium"
    assert top["case"]["triage"]["fired_rules"]
    assert top["case"]["stage"] == "awaiting_pre_mset" and top["case"]["last_decision"] is None


async def test_the_coordinator_redraws_the_agenda_until_the_first_decision(panel: Panel) -> None:
    first = await panel.case(MEDIUM)
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    meeting = await panel.call(MeetingKind.pre_mset)
    mid = meeting["meeting_id"]
    [item] = (await panel.agenda(mid))["items"]

    late = await panel.case(HIGH)
    await panel.visible((Stage.awaiting_pre_mset,), 2)
    async with panel.http("chair") as http:
        assert (await http.post(f"/v1/meetings/{mid}/agenda/refresh")).status_code == 403
    async with panel.http("coordinator") as http:
        resp = await http.post(f"/v1/meetings/{mid}/agenda/refresh")
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["referral_id"] for i in items] == [
        late.id.removeprefix("referral-"),
        first.id.removeprefix("referral-"),
    ]
    assert items[1]["item_id"] == item["item_id"]  # the same case keeps its item

    async with panel.http("chair") as http:
        decided = await http.post(
            f"/v1/meetings/{mid}/items/{items[0]['item_id']}/decision",
            json={"kind": "pre_mset", "outcome": "meets_criteria", "level": "high"},
        )
    assert decided.status_code == 200, decided.text
    async with panel.http("coordinator") as http:
        refused = await http.post(f"/v1/meetings/{mid}/agenda/refresh")
    assert refused.status_code == 409
    assert "agenda can no longer be redrawn" in refused.json()["detail"]


async def test_mset_agenda_has_new_cases_and_breaches_trimmed_by_role(panel: Panel) -> None:
    police = panel.agency_ids["Northshire Police"]
    new = await panel.case(MEDIUM)
    breached = await panel.case(HIGH)
    for handle, level, rationale in (
        (new, RiskLevel.medium, "Lifts from an older adult"),
        (breached, RiskLevel.high, "Disclosure"),
    ):
        await handle.execute_update(
            REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
            PreMsetDecisionInput(
                outcome=PreMsetOutcome.meets_criteria,
                level=level,
                rationale=rationale,
                decided_by=CHAIR,
            ),
            result_type=PreMsetDecisionResult,
        )
    # An earlier MSET review gave the breached case an action due in a moment: a few seconds,
    # as the workflow refuses a due date already past by the time the update's task runs.
    due = datetime.now().astimezone() + timedelta(seconds=8)
    await breached.execute_update(
        REFERRAL_RECORD_MSET_REVIEW_UPDATE,
        MsetReviewInput(
            level=RiskLevel.high,
            actions=[
                NewAction(
                    owner_agency_id=police,
                    due_at=due,
                    aim=ActionAim.remove,
                    target=ActionTarget.perpetrator,
                    description="Child abduction warning notice to the linked adult",
                )
            ],
            decided_by=CHAIR,
        ),
        result_type=MsetReviewRecorded,
    )
    await until(breached, lambda s: s.stage == Stage.active_plan)
    await panel.visible((Stage.awaiting_mset, Stage.active_plan), 2)
    await asyncio.sleep(max(0.0, (due - datetime.now().astimezone()).total_seconds()) + 0.2)

    meeting = await panel.call(MeetingKind.mset)
    mid = meeting["meeting_id"]

    chair_view = await panel.agenda(mid, "chair")
    by_case = {i["referral_id"]: i for i in chair_view["items"]}
    # High before medium, though the medium case has waited longer.
    assert list(by_case) == [
        breached.id.removeprefix("referral-"),
        new.id.removeprefix("referral-"),
    ]
    b, n = by_case.values()
    assert b["reasons"] == ["breach"] and n["reasons"] == ["new_to_mset"]
    [overdue] = b["case"]["open_actions"]
    assert overdue["overdue"] is True and b["case"]["breaches"] == [
        f"action_overdue:{overdue['action_id']}"
    ]
    assert n["case"]["last_decision"]["rationale"] == "Lifts from an older adult"
    assert n["withheld"] == []

    member_view = await panel.agenda(mid, "member")
    m = {i["referral_id"]: i for i in member_view["items"]}[n["referral_id"]]
    assert m["case"]["last_decision"]["rationale"] is None
    assert m["case"]["last_decision"]["outcome"] == "meets_criteria"
    assert "case.last_decision.rationale" in m["withheld"]
    assert "Lifts from an older adult" not in str(member_view)
    assert "Child abduction warning notice" in str(member_view)  # the plan is discussed

    for who, status in (("provider", 403), ("analyst", 403), ("partner", 403), (None, 401)):
        async with panel.http(who) as http:
            resp = await http.get(f"/v1/meetings/{mid}/agenda")
        assert resp.status_code == status, (who, resp.text)
        assert resp.json()["detail"]
