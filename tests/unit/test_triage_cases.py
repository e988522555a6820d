"""The shipped default ruleset (v1), pinned case by case: each band boundary, each floor and
override, the referrer's judgement above and below the suggestion, and every escalation at
the edge of its threshold. A change to rules/v1.toml that changes a decision fails here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from mset_contract.triage import (
    AgencyDesignation,
    EscalationKind,
    JudgementRelation,
    PreMsetRecommendation,
    TriageInput,
    TriageResult,
    Urgency,
)
from mset_contract.vocab import RiskLevel, Role
from services.triage.domain import Triage
from services.triage.examples import AS_OF, OWNER, action, case, episode
from services.triage.ruleset_config import packaged_rulesets_dir

pytestmark = pytest.mark.unit

H = timedelta(hours=1)
D = timedelta(days=1)
LOW, MEDIUM, HIGH = RiskLevel.low, RiskLevel.medium, RiskLevel.high
CONSIDER = PreMsetRecommendation.consider_at_pre_mset
ADVICE = PreMsetRecommendation.advice_to_case_holder
K = EscalationKind
SIX_TO_TWELVE = "six_to_twelve_months"

# Ten moderate or vulnerability indicators, each in a different area (1 point each, current).
TEN_ONES = [
    "MIS-01", "PRE-02", "EDU-02", "SUB-02", "SXH-01",
    "GIF-01", "ONL-02", "COE-01", "HOT-01", "ENG-02",
]  # fmt: skip


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


@dataclass
class Case:
    id: str
    input: TriageInput
    score: int | None = None
    band: RiskLevel | None = None
    suggested: RiskLevel | None = None
    level: RiskLevel | None = None
    recommendation: PreMsetRecommendation | None = None
    escalations: set[EscalationKind] | None = None  # exactly these
    fired: set[str] = field(default_factory=set)  # at least these rules
    not_fired: set[str] = field(default_factory=set)
    judgement: tuple[JudgementRelation, bool] | None = None  # relation, coordinator review


CASES = [
    # --- score and bands (low 0-5, medium 6-10, high 11+) ------------------------------
    Case("nothing reported", case(), 0, LOW, LOW, LOW, ADVICE, set(), {"band.low"}),
    Case("score 5: top of low", case(*TEN_ONES[:5]), 5, LOW, LOW, LOW, ADVICE, set()),
    Case("score 6: bottom of medium", case(*TEN_ONES[:6]), 6, MEDIUM, MEDIUM, MEDIUM, CONSIDER),
    Case("score 10: top of medium", case(*TEN_ONES), 10, MEDIUM, MEDIUM, MEDIUM, CONSIDER),
    Case(
        "score 11: bottom of high",
        case(*TEN_ONES, "OFF-02"),
        11, HIGH, HIGH, HIGH, CONSIDER, {K.high_risk}, {"band.high"},
    ),
    Case(
        "significant indicator 6-12 months ago scores 1",
        case(("COE-02", "six_to_twelve_months")),
        1, LOW, LOW, LOW, ADVICE, set(), {"score.significant.six_to_twelve_months"},
    ),
    Case(
        "nothing older than 12 months scores",
        case(("COE-02", "over_twelve_months"), ("MIS-01", "over_twelve_months")),
        0, LOW, LOW, LOW, ADVICE, set(),
    ),
    Case(
        "vulnerability indicators score 1 current and 6-12 months ago",
        case("EMO-01", ("FAM-01", "six_to_twelve_months"), ("FAM-02", "over_twelve_months")),
        2, LOW, LOW,
    ),
    # --- floors ---------------------------------------------------------------------------
    Case(
        "12-year-old with nothing scored is not low",
        case(age_years=12),
        0, LOW, MEDIUM, MEDIUM, CONSIDER, set(), {"floor.young_child"},
    ),
    Case(
        "13-year-old with nothing scored is low",
        case(age_years=13),
        0, LOW, LOW, LOW, ADVICE, set(), set(), {"floor.young_child"},
    ),
    Case(
        "one current significant indicator: area at its maximum, not low",
        case("ADP-02"),
        5, LOW, MEDIUM, MEDIUM, CONSIDER, set(), {"floor.area_maximum"},
    ),
    Case(
        "an area at 4 is below its maximum",
        case("MIS-01", "MIS-02", ("MIS-03", SIX_TO_TWELVE), ("MIS-04", SIX_TO_TWELVE)),
        4, LOW, LOW, LOW, ADVICE, set(), set(), {"floor.area_maximum"},
    ),
    Case(
        "two current significant indicators: 10 is medium, not high",
        case("ADP-02", "GIF-03"),
        10, MEDIUM, MEDIUM, MEDIUM, CONSIDER, set(),
    ),
    Case(
        "two current significant and one moderate: 11 is high",
        case("ADP-02", "GIF-03", "HOT-01"),
        11, HIGH, HIGH, HIGH, CONSIDER, {K.high_risk},
    ),
    # --- overrides ------------------------------------------------------------------------
    Case(
        "current significant trafficking indicator is high",
        case("TRF-01"),
        5, LOW, HIGH, HIGH, CONSIDER, {K.high_risk}, {"override.trafficking"},
    ),
    Case(
        "trafficking indicator 6-12 months ago is no override",
        case(("TRF-02", "six_to_twelve_months")),
        1, LOW, LOW, LOW, ADVICE, set(), set(), {"override.trafficking"},
    ),
    Case(
        "moderate trafficking-area indicator is no override",
        case("TRF-03"),
        1, LOW, LOW, LOW, ADVICE, set(), set(), {"override.trafficking"},
    ),
    Case(
        "current disclosure of sexual abuse is high",
        case("SXH-03"),
        5, LOW, HIGH, HIGH, CONSIDER, {K.high_risk}, {"override.disclosed_sexual_abuse"},
    ),
    Case(
        "disclosure 6-12 months ago is no override",
        case(("SXH-03", "six_to_twelve_months")),
        1, LOW, LOW, LOW, ADVICE, set(), set(), {"override.disclosed_sexual_abuse"},
    ),
    # --- professional judgement -----------------------------------------------------------
    Case(
        "judgement agrees",
        case(*TEN_ONES[:6], referrer_level=MEDIUM),
        6, MEDIUM, MEDIUM, MEDIUM, CONSIDER, set(), {"judgement.agrees"},
        judgement=(JudgementRelation.agrees, False),
    ),
    Case(
        "judgement above the suggestion, with rationale: proceeds at the referrer's level",
        case(referrer_level=HIGH),
        0, LOW, LOW, HIGH, CONSIDER, {K.high_risk}, {"judgement.above"},
        judgement=(JudgementRelation.above, False),
    ),
    Case(
        "judgement above without rationale: still the referrer's (higher) level",
        case(referrer_level=MEDIUM, referrer_rationale_given=False),
        0, LOW, LOW, MEDIUM, CONSIDER, set(),
        judgement=(JudgementRelation.above, False),
    ),
    Case(
        "judgement below with rationale: suggestion stands, kept beside it",
        case(*TEN_ONES[:6], referrer_level=LOW),
        6, MEDIUM, MEDIUM, MEDIUM, CONSIDER, set(), {"judgement.below_with_rationale"},
        judgement=(JudgementRelation.below, False),
    ),
    Case(
        "judgement below without rationale: flagged for the coordinator",
        case(*TEN_ONES[:6], referrer_level=LOW, referrer_rationale_given=False),
        6, MEDIUM, MEDIUM, MEDIUM, CONSIDER, {K.judgement_review},
        {"judgement.below_without_rationale", "escalate.judgement_review"},
        judgement=(JudgementRelation.below, True),
    ),
    Case(
        "medium judgement of a trafficking case without rationale",
        case("TRF-01", referrer_level=MEDIUM, referrer_rationale_given=False),
        5, LOW, HIGH, HIGH, CONSIDER, {K.high_risk, K.judgement_review},
        judgement=(JudgementRelation.below, True),
    ),
    # --- escalations ------------------------------------------------------------------------
    Case(
        "under 13 with a sexual-activity indicator: child protection now",
        case("SXH-04", age_years=12),
        5, LOW, MEDIUM, MEDIUM, CONSIDER, {K.child_protection},
        {"escalate.child_protection", "floor.young_child", "floor.area_maximum"},
    ),
    Case(
        "under 13, sexual health indicator over 12 months ago: still child protection",
        case(("SXH-01", "over_twelve_months"), age_years=11),
        0, LOW, MEDIUM, MEDIUM, CONSIDER, {K.child_protection},
    ),
    Case(
        "13 with a sexual-activity indicator: no child-protection escalation",
        case("SXH-01", age_years=13),
        1, LOW, LOW, LOW, ADVICE, set(),
    ),
    Case(
        "three missing episodes in 90 days: repeat missing, to Pre-MSET though low",
        case(
            missing_episodes=[
                episode("E1", reported=89 * D, returned=88 * D, rhi_offered=87 * D),
                episode("E2", reported=40 * D, returned=39 * D, rhi_offered=38 * D),
                episode("E3", reported=10 * D, returned=9 * D, rhi_offered=9 * D),
            ]
        ),
        0, LOW, LOW, LOW, CONSIDER, {K.repeat_missing}, {"recommend.repeat_missing"},
    ),
    Case(
        "third episode 91 days ago: not repeat missing",
        case(
            missing_episodes=[
                episode("E1", reported=91 * D, returned=90 * D, rhi_offered=89 * D),
                episode("E2", reported=40 * D, returned=39 * D, rhi_offered=38 * D),
                episode("E3", reported=10 * D, returned=9 * D, rhi_offered=9 * D),
            ]
        ),
        0, LOW, LOW, LOW, ADVICE, set(), {"recommend.advice"},
    ),
    Case(
        "no Return Home Interview 72 hours after return",
        case(missing_episodes=[episode("E1", reported=80 * H, returned=72 * H)]),
        escalations={K.rhi_not_offered},
    ),
    Case(
        "71 hours after return: not yet",
        case(missing_episodes=[episode("E1", reported=80 * H, returned=71 * H)]),
        escalations=set(),
    ),
    Case(
        "interview offered late is no live escalation",
        case(missing_episodes=[episode("E1", reported=100 * H, returned=90 * H, rhi_offered=H)]),
        escalations=set(),
    ),
    Case(
        "return 30 days ago without interview: beyond the 28-day look-back",
        case(missing_episodes=[episode("E1", reported=31 * D, returned=30 * D)]),
        escalations=set(),
    ),
    Case(
        "found missing in another authority",
        case(missing_episodes=[episode("E1", 2 * D, D, D - H, where="eastmoor")]),
        escalations={K.missing_in_other_authority},
    ),
    Case(
        "found in the child's own authority",
        case(missing_episodes=[episode("E1", 2 * D, D, D - H, where="northshire")]),
        escalations=set(),
    ),
    Case("action overdue", case(actions=[action("A1", -H)]), escalations={K.action_overdue}),
    Case("action due now", case(actions=[action("A1", 0 * H)]), escalations={K.action_overdue}),
    Case("completed action past due", case(actions=[action("A1", -H, True)]), escalations=set()),
    Case(
        "action due in 48 h", case(actions=[action("A1", 48 * H)]), escalations={K.action_due_soon}
    ),
    Case("action due in 49 h", case(actions=[action("A1", 49 * H)]), escalations=set()),
    Case(
        "assessed 91 days ago: reassessment overdue",
        case(last_assessed_at=AS_OF - 91 * D),
        escalations={K.reassessment_overdue},
    ),
    Case("assessed 90 days ago", case(last_assessed_at=AS_OF - 90 * D), escalations=set()),
    # The rules know the month the child turns 18, never the day; they count to its first
    # day (as of 16 Nov 2026: 1 May 2027 is 166 days away, 1 June 197).
    Case(
        "turns 18 in May 2027: transition planning",
        case(age_years=17, turns_18_month=date(2027, 5, 1)),
        escalations={K.transition_to_adult_services},
    ),
    Case(
        "turns 18 in June 2027",
        case(age_years=17, turns_18_month=date(2027, 6, 1)),
        escalations=set(),
    ),
    Case(
        "turns 18 this month: maybe not 18 yet",
        case(age_years=17, turns_18_month=date(2026, 11, 1)),
        escalations={K.transition_to_adult_services},
    ),
    Case("already 18", case(age_years=18, turns_18_month=date(2026, 10, 1)), escalations=set()),
]  # fmt: skip


def _check(result: TriageResult, c: Case) -> None:
    fired = {f.rule for f in result.fired}
    expected: dict[str, Any] = {
        "score": (result.score, c.score),
        "band": (result.band_level, c.band),
        "suggested": (result.suggested_level, c.suggested),
        "level": (result.level, c.level),
        "recommendation": (result.recommendation, c.recommendation),
        "escalations": ({e.kind for e in result.escalations}, c.escalations),
        "judgement": (
            (result.judgement.relation, result.judgement.coordinator_review),
            c.judgement,
        ),
    }
    for name, (got, want) in expected.items():
        if want is not None:
            assert got == want, f"{name}: got {got}, want {want}"
    assert c.fired <= fired, f"missing rules: {c.fired - fired}"
    assert not (c.not_fired & fired), f"rules that should not fire: {c.not_fired & fired}"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_default_ruleset(triage: Triage, c: Case) -> None:
    result = triage.evaluate(c.input)
    assert result.ruleset_version == "1"
    assert result.ruleset_name == "mset_triage_v1"
    _check(result, c)


def test_every_rule_explains_itself_in_words(triage: Triage) -> None:
    result = triage.evaluate(case("SXH-03", ("MIS-01", "six_to_twelve_months"), age_years=12))
    reasons = [f.reason for f in result.fired]
    assert "significant indicator 'Disclosed sexual abuse' (current): +5" in reasons
    assert "moderate indicator 'Missing from home or care' (6-12 months ago): +1" in reasons
    assert "score 6 is in the medium band (6-10)" in reasons
    assert any(r.startswith("the child is 12: no child under 13 is low") for r in reasons)
    assert any(r.startswith("current disclosure of sexual abuse") for r in reasons)
    points = [f.points for f in result.fired if f.points is not None]
    assert sum(points) == result.score == 6
    assert [f.rule for f in result.fired][:2] == [
        "score.moderate.six_to_twelve_months",
        "score.significant.current",
    ]


def test_high_risk_goes_to_manager_and_chair_at_once(triage: Triage) -> None:
    (esc,) = triage.evaluate(case("TRF-01")).escalations
    assert esc.kind is K.high_risk
    assert esc.urgency is Urgency.immediate
    assert esc.deadline == AS_OF + 4 * H
    assert [(t.role, t.agency, t.agency_ref) for t in esc.notify] == [
        (Role.manager, AgencyDesignation.referring_agency, None),
        (Role.chair, AgencyDesignation.local_authority, "northshire"),
    ]


def test_child_protection_is_one_escalation_naming_every_indicator(triage: Triage) -> None:
    result = triage.evaluate(case("SXH-04", "SXH-02", age_years=12))
    (esc,) = [e for e in result.escalations if e.kind is K.child_protection]
    assert esc.urgency is Urgency.immediate
    assert "SXH-04" in esc.reason and "SXH-02" in esc.reason
    assert esc.deadline == AS_OF + H
    assert result.escalations[0].kind is K.child_protection  # immediate comes first


def test_escalations_name_their_subject_agency_and_due_time(triage: Triage) -> None:
    result = triage.evaluate(
        case(
            missing_episodes=[
                episode("E1", reported=80 * H, returned=73 * H, where="eastmoor"),
            ],
            actions=[action("A1", -2 * H)],
        )
    )
    by_kind = {e.kind: e for e in result.escalations}
    rhi = by_kind[K.rhi_not_offered]
    assert (rhi.subject, rhi.due_at) == ("E1", AS_OF - 73 * H + 72 * H)
    assert rhi.notify[0].agency is AgencyDesignation.rhi_provider
    away = by_kind[K.missing_in_other_authority]
    assert away.notify[0].agency_ref == "eastmoor"
    overdue = by_kind[K.action_overdue]
    assert (overdue.subject, overdue.due_at) == ("A1", AS_OF - 2 * H)
    assert overdue.notify[0].agency_ref == str(OWNER)


def test_timers_and_next_checks_come_from_the_rules(triage: Triage) -> None:
    result = triage.evaluate(
        case(
            age_years=17,
            turns_18_month=date(2027, 6, 1),  # 197 days from AS_OF to its first day
            missing_episodes=[episode("E1", reported=30 * H, returned=20 * H)],
            actions=[action("A1", 72 * H)],
            last_assessed_at=AS_OF - 10 * D,
        )
    )
    t = result.timers
    assert (t.rhi_deadline_hours, t.reassessment_days, t.transition_warning_days) == (72, 91, 183)
    assert (t.action_reminder_hours_before_due, t.action_overdue_grace_hours) == (48, 0)
    assert (t.repeat_missing_episodes, t.repeat_missing_window_days) == (3, 90)
    checks = [(c.kind, c.at, c.subject) for c in result.next_checks]
    assert checks == [
        (K.action_due_soon, AS_OF + 24 * H, "A1"),
        (K.rhi_not_offered, AS_OF + 52 * H, "E1"),
        (K.action_overdue, AS_OF + 72 * H, "A1"),
        (K.transition_to_adult_services, AS_OF + 14 * D, None),
        (K.reassessment_overdue, AS_OF + 81 * D, None),
    ]


def test_a_check_at_its_time_finds_its_escalation(triage: Triage) -> None:
    """What a workflow does when its timer fires: evaluate again with as_of = the timer."""
    before = case(missing_episodes=[episode("E1", reported=30 * H, returned=20 * H)])
    first = triage.evaluate(before)
    assert first.escalations == []
    (check,) = [c for c in first.next_checks if c.kind is K.rhi_not_offered]
    later = triage.evaluate(before.model_copy(update={"as_of": check.at}))
    assert [e.kind for e in later.escalations] == [K.rhi_not_offered]
    assert K.rhi_not_offered not in {c.kind for c in later.next_checks}
