"""The meeting domain: which cases a panel considers and in what order, what each role may
see of an agenda item, who may do what, and what is checked before a decision is sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mset_contract.auth import Principal
from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.meeting import (
    AgendaItemPublic,
    AgendaReason,
    ItemDecisionPublic,
    MeetingCreate,
)
from mset_contract.referral_workflow import (
    ActionProgress,
    CaseAction,
    MsetReviewRecord,
    PreMsetDecisionRecord,
    ReferralState,
    SentEscalation,
    StageChange,
    TriageSummary,
)
from mset_contract.triage import EscalationKind
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    AgencyType,
    MeetingKind,
    PreMsetOutcome,
    RiskLevel,
    Role,
    Stage,
)
from services.meeting.domain import (
    PERMISSIONS,
    WITHHELD,
    DecisionInvalid,
    NotAllowed,
    Permission,
    breaches,
    check_decision,
    draw_up,
    item_for,
    recorded_in_state,
    require,
    summarise,
)
from services.meeting.settings import MeetingSettings

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HELD = NOW + timedelta(days=7)
CHAIR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
POLICE = uuid.UUID("00000000-0000-4000-8000-0000000000a2")


def triage(level: RiskLevel, suggested: RiskLevel | None = None) -> TriageSummary:
    return TriageSummary(
        ruleset_version="1",
        as_of=NOW - timedelta(days=20),
        score=7,
        suggested_level=suggested or level,
        referrer_level=RiskLevel.medium,
        level=level,
        recommendation="consider_at_pre_mset",
        coordinator_review=False,
        fired_rules=["score.band.medium", "floor.under_13"],
    )


def case(
    stage: Stage,
    *,
    level: RiskLevel = RiskLevel.medium,
    entered: datetime = NOW - timedelta(days=10),
    **kw: Any,
) -> ReferralState:
    submitted = entered - timedelta(days=1)
    return ReferralState(
        referral_id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        local_authority="northshire",
        stage=stage,
        submitted_at=submitted,
        referrer_level=RiskLevel.medium,
        triage=triage(level),
        stages=[
            StageChange(stage=Stage.submitted, at=submitted),
            StageChange(stage=stage, at=entered),
        ],
        **kw,
    )


def action(due: datetime, *, done: bool = False, note: str | None = None) -> CaseAction:
    return CaseAction(
        action_id=f"act-{uuid.uuid4().hex[:8]}",
        owner_agency_id=POLICE,
        due_at=due,
        aim=ActionAim.reduce,
        target=ActionTarget.victim,
        description="Weekly direct work sessions",
        created_at=NOW - timedelta(days=40),
        review_id="r1",
        completed_at=due if done else None,
        progress=[ActionProgress(at=NOW - timedelta(days=2), by=CHAIR, note=note, completed=False)]
        if note
        else [],
    )


def review(at: datetime, rationale: str = "Plan agreed after police update") -> MsetReviewRecord:
    return MsetReviewRecord(
        review_id="r1",
        level=RiskLevel.high,
        rationale=rationale,
        decided_by=CHAIR,
        meeting_id=None,
        decided_at=at,
        action_ids=[],
    )


def staff(role: Role) -> Principal:
    return Principal(
        kind="user",
        agency_id=uuid.uuid4(),
        agency_name="Northshire MSET",
        agency_type=AgencyType.local_authority,
        user_id=uuid.uuid4(),
        user_name="A Person",
        role=role,
    )


# --- agendas -------------------------------------------------------------------------------


def test_pre_mset_agenda_is_the_cases_awaiting_it_highest_risk_then_longest_waiting() -> None:
    newest_high = case(Stage.awaiting_pre_mset, level=RiskLevel.high, entered=NOW - timedelta(1))
    old_medium = case(Stage.awaiting_pre_mset, entered=NOW - timedelta(days=20))
    new_medium = case(Stage.awaiting_pre_mset, entered=NOW - timedelta(days=3))
    low = case(Stage.awaiting_pre_mset, level=RiskLevel.low, entered=NOW - timedelta(days=30))
    elsewhere = [case(Stage.awaiting_mset), case(Stage.active_plan), case(Stage.triaged)]

    agenda = draw_up(
        MeetingKind.pre_mset,
        [low, new_medium, *elsewhere, old_medium, newest_high],
        as_of=NOW,
        held_at=HELD,
    )

    assert [e.referral_id for e in agenda] == [
        newest_high.referral_id,
        old_medium.referral_id,
        new_medium.referral_id,
        low.referral_id,
    ]
    assert all(e.reasons == [AgendaReason.new_referral] for e in agenda)
    assert agenda[1].waiting_since == NOW - timedelta(days=20)


def test_the_panel_orders_by_the_level_it_agreed_before_the_rules_suggestion() -> None:
    agreed_high = case(Stage.awaiting_mset, level=RiskLevel.medium)
    agreed_high.level = RiskLevel.high
    suggested_high = case(Stage.awaiting_mset, level=RiskLevel.high, entered=NOW - timedelta(30))
    suggested_high.level = RiskLevel.medium

    agenda = draw_up(MeetingKind.mset, [suggested_high, agreed_high], as_of=NOW, held_at=HELD)

    assert [e.referral_id for e in agenda] == [agreed_high.referral_id, suggested_high.referral_id]
    assert [e.risk_level for e in agenda] == [RiskLevel.high, RiskLevel.medium]


def test_mset_agenda_new_cases_reviews_due_before_the_meeting_and_breaches() -> None:
    new = case(Stage.awaiting_mset)
    due = case(Stage.active_plan, next_review_due=HELD - timedelta(days=1))
    not_due = case(Stage.active_plan, next_review_due=HELD + timedelta(days=5))
    overdue_action = action(NOW - timedelta(days=2))
    breached = case(
        Stage.active_plan,
        next_review_due=HELD + timedelta(days=20),
        actions=[overdue_action, action(NOW + timedelta(days=5))],
    )
    done_late = case(
        Stage.active_plan,
        next_review_due=HELD + timedelta(days=20),
        actions=[action(NOW - timedelta(days=9), done=True)],
    )

    agenda = draw_up(
        MeetingKind.mset, [new, due, not_due, breached, done_late], as_of=NOW, held_at=HELD
    )
    by_case = {e.referral_id: e for e in agenda}

    assert set(by_case) == {new.referral_id, due.referral_id, breached.referral_id}
    assert by_case[new.referral_id].reasons == [AgendaReason.new_to_mset]
    assert by_case[due.referral_id].reasons == [AgendaReason.re_review_due]
    assert by_case[breached.referral_id].reasons == [AgendaReason.breach]
    assert by_case[breached.referral_id].case.breaches == [
        f"action_overdue:{overdue_action.action_id}"
    ]
    # The breach has waited since the action fell due: it comes before the later ones.
    assert by_case[breached.referral_id].waiting_since == overdue_action.due_at


def sent(kind: EscalationKind, subject: str | None, due_at: datetime) -> SentEscalation:
    return SentEscalation(kind=kind, subject=subject, due_at=due_at)


def test_escalations_count_as_breaches_only_since_the_panel_last_decided() -> None:
    last = NOW - timedelta(days=10)
    state = case(
        Stage.active_plan,
        next_review_due=HELD + timedelta(days=20),
        reviews=[review(last)],
        escalations=[
            sent(EscalationKind.rhi_not_offered, "ep-1", last - timedelta(days=3)),  # considered
            sent(EscalationKind.rhi_not_offered, "ep-2", last + timedelta(days=3)),  # since
            sent(EscalationKind.reassessment_overdue, None, last + timedelta(days=1)),
            sent(EscalationKind.high_risk, None, last + timedelta(days=1)),  # not a breach
        ],
    )

    assert breaches(state, NOW) == ["rhi_not_offered:ep-2", "reassessment_overdue"]


def test_an_item_carries_what_the_panel_needs() -> None:
    pre = PreMsetDecisionRecord(
        decision_id="d1",
        outcome=PreMsetOutcome.meets_criteria,
        level=RiskLevel.high,
        rationale="Older adult giving lifts",
        decided_by=CHAIR,
        meeting_id=None,
        decided_at=NOW - timedelta(days=30),
    )
    state = case(
        Stage.active_plan,
        level=RiskLevel.medium,
        pre_mset=pre,
        actions=[action(NOW + timedelta(days=3), note="Two sessions held")],
    )

    summary = summarise(state, NOW)

    assert summary.triage is not None
    assert summary.triage.fired_rules == ["score.band.medium", "floor.under_13"]
    assert summary.triage.referrer_level is RiskLevel.medium
    assert summary.last_decision is not None
    assert summary.last_decision.outcome is PreMsetOutcome.meets_criteria
    assert summary.last_decision.rationale == "Older adult giving lifts"
    [open_action] = summary.open_actions
    assert open_action.last_progress_note == "Two sessions held" and not open_action.overdue


# --- what each role sees -------------------------------------------------------------------


def _full_item() -> AgendaItemPublic:
    pre = PreMsetDecisionRecord(
        decision_id="d1",
        outcome=PreMsetOutcome.meets_criteria,
        level=RiskLevel.high,
        rationale="Older adult giving lifts",
        decided_by=CHAIR,
        meeting_id=None,
        decided_at=NOW - timedelta(days=30),
    )
    state = case(
        Stage.active_plan,
        pre_mset=pre,
        actions=[action(NOW + timedelta(days=3), note="Two sessions held")],
    )
    [entry] = draw_up(
        MeetingKind.mset,
        [state.model_copy(update={"next_review_due": NOW})],
        as_of=NOW,
        held_at=HELD,
    )
    item_id = uuid.uuid4()
    return AgendaItemPublic(
        item_id=item_id,
        position=1,
        referral_id=entry.referral_id,
        reasons=entry.reasons,
        risk_level=entry.risk_level,
        waiting_since=entry.waiting_since,
        case=entry.case,
        decision=ItemDecisionPublic(
            item_id=item_id,
            kind="mset_review",
            decided_at=NOW,
            decided_by=CHAIR,
            decided_by_name="DI Okafor",
            level=RiskLevel.high,
            rationale="Intelligence on a linked address",
            stage_after=Stage.active_plan,
        ),
    )


@pytest.mark.parametrize("role", [Role.coordinator, Role.chair])
def test_coordinator_and_chair_see_the_whole_item(role: Role) -> None:
    item = _full_item()
    assert item_for(role, item) == item


def test_panel_members_see_the_facts_without_the_free_text() -> None:
    item = item_for(Role.panel_member, _full_item())

    assert item.case.last_decision is not None and item.case.last_decision.rationale is None
    assert item.case.last_decision.level is RiskLevel.high  # the outcome itself is shown
    assert item.case.open_actions[0].last_progress_note is None
    assert item.case.open_actions[0].description == "Weekly direct work sessions"
    assert item.decision is not None and item.decision.rationale is None
    assert item.case.triage is not None and item.case.triage.fired_rules
    assert set(item.withheld) == set(WITHHELD[Role.panel_member])
    assert "Older adult" not in item.model_dump_json()
    assert "Two sessions" not in item.model_dump_json()


@pytest.mark.parametrize("role", [Role.provider, Role.manager, Role.analyst, Role.admin])
def test_other_roles_get_no_agenda(role: Role) -> None:
    with pytest.raises(NotAllowed):
        item_for(role, _full_item())
    with pytest.raises(NotAllowed):
        require(staff(role), Permission.read)


def test_who_may_do_what() -> None:
    assert require(staff(Role.chair), Permission.decide) is Role.chair
    for role in (Role.coordinator, Role.panel_member):
        with pytest.raises(NotAllowed, match="chair"):
            require(staff(role), Permission.decide)
    with pytest.raises(NotAllowed):
        require(staff(Role.chair), Permission.prepare)
    assert PERMISSIONS[Permission.attendance_report] == {Role.coordinator, Role.analyst}
    partner = staff(Role.chair).model_copy(update={"kind": "agency", "role": None})
    with pytest.raises(NotAllowed):
        require(partner, Permission.read)


# --- decisions -----------------------------------------------------------------------------


def test_a_decision_must_be_of_the_meetings_kind() -> None:
    pre = PreMsetDecisionRequest(
        kind="pre_mset", outcome=PreMsetOutcome.more_information, level="low"
    )
    review_ = MsetReviewRequest(kind="mset_review", level=RiskLevel.high)
    check_decision(MeetingKind.pre_mset, pre, NOW)
    check_decision(MeetingKind.mset, review_, NOW)
    with pytest.raises(DecisionInvalid) as err:
        check_decision(MeetingKind.mset, pre, NOW)
    assert err.value.field == "kind"


def test_an_action_due_in_the_past_is_refused_naming_it() -> None:
    body = MsetReviewRequest.model_validate(
        {
            "kind": "mset_review",
            "level": "high",
            "actions": [
                {
                    "owner_agency_id": str(POLICE),
                    "due_at": (NOW + timedelta(days=3)).isoformat(),
                    "aim": "avoid",
                    "target": "location",
                    "description": "Patrols near the hotspot",
                },
                {
                    "owner_agency_id": str(POLICE),
                    "due_at": (NOW - timedelta(days=1)).isoformat(),
                    "aim": "remove",
                    "target": "perpetrator",
                    "description": "Child abduction warning notice",
                },
            ],
        }
    )
    with pytest.raises(DecisionInvalid) as err:
        check_decision(MeetingKind.mset, body, NOW)
    assert err.value.field == "actions.1.due_at"


def test_only_an_lmaps_meeting_is_called_by_hand() -> None:
    MeetingCreate(kind=MeetingKind.lmaps, local_authority="northshire", held_at=NOW)
    with pytest.raises(ValueError, match="schedule"):
        MeetingCreate(kind=MeetingKind.pre_mset, local_authority="northshire", held_at=NOW)


def test_a_decision_already_in_the_case_is_read_back_from_it() -> None:
    state = case(
        Stage.active_plan,
        reviews=[review(NOW).model_copy(update={"review_id": "item-1", "action_ids": ["a1"]})],
        actions=[action(NOW + timedelta(days=3)).model_copy(update={"review_id": "item-1"})],
    )
    from mset_contract.meeting import DecisionKind

    found = recorded_in_state(state, DecisionKind.mset_review, "item-1")
    assert found is not None and found.level is RiskLevel.high and len(found.actions) == 1
    assert recorded_in_state(state, DecisionKind.mset_review, "item-2") is None
    assert recorded_in_state(state, DecisionKind.pre_mset, "item-1") is None


# --- settings ------------------------------------------------------------------------------


def test_settings_read_authorities_and_refuse_an_unknown_time_zone() -> None:
    s = MeetingSettings.model_validate({"authorities": "northshire, eastmoor,westdale,eastmoor"})
    assert s.authorities == ["northshire", "eastmoor", "westdale"]  # a repeated name, once
    assert s.schedule_day_hour(MeetingKind.mset) == (s.mset_day, s.mset_hour)
    with pytest.raises(ValueError, match="time zone"):
        MeetingSettings.model_validate({"schedule_timezone": "Europe/Nowhere"})
    with pytest.raises(ValueError):
        MeetingSettings.model_validate({"authorities": "Not An Authority"})


def test_the_meeting_names_the_decision_itself() -> None:
    body = PreMsetDecisionRequest(
        kind="pre_mset",
        outcome=PreMsetOutcome.more_information,
        level=RiskLevel.low,
        decision_id="x",
    )
    with pytest.raises(DecisionInvalid) as err:
        check_decision(MeetingKind.pre_mset, body, NOW)
    assert err.value.field == "decision_id"
    review_ = MsetReviewRequest(kind="mset_review", level=RiskLevel.high, meeting_id=CHAIR)
    with pytest.raises(DecisionInvalid) as err:
        check_decision(MeetingKind.mset, review_, NOW)
    assert err.value.field == "meeting_id"
