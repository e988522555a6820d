"""The report tables reconcile by construction: a breakdown that does not add up cannot be
built, percentages are computed from the counts beside them, and the source reports' own
figures come out of the builders as the records make them (with the hand-built
inconsistencies impossible)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mset_contract.referral_workflow import CaseAction, PreMsetDecisionRecord
from mset_contract.reports import (
    Bound,
    Column,
    Part,
    Ratio,
    Report,
    ReportName,
    ReportScope,
    Row,
    Table,
)
from mset_contract.vocab import ActionAim, ActionTarget, PreMsetOutcome, RiskLevel
from services.referral.report_store import CaseFacts, EpisodeFacts
from services.referral.report_tables import (
    actions_tables,
    missing_tables,
    pre_mset_tables,
)

T0 = datetime(2018, 7, 1, tzinfo=UTC)


def risk_mix(low: int, medium: int, high: int, total: int) -> Table:
    return Table(
        key="risk",
        title="Risk level at referral",
        row_header="level",
        columns=[Column(key="referrals", label="referrals")],
        rows=[
            Row(label="low", counts={"referrals": low}),
            Row(label="medium", counts={"referrals": medium}),
            Row(label="high", counts={"referrals": high}),
        ],
        total=Row(label="total", counts={"referrals": total}),
        ratios=[Ratio(key="share", label="%", numerator="referrals")],
    )


def test_the_scoping_reports_risk_mix_cannot_be_built() -> None:
    # "The level of risk in the 274 tools submitted was; 35 as low risk, 182 as medium risk
    # and 64 as high risk": 281.
    with pytest.raises(ValidationError, match="add up to 281, the total is 274"):
        risk_mix(35, 182, 64, 274)
    ok = risk_mix(35, 182, 57, 274)
    assert ok.percentages["medium"]["share"] == 66.4
    assert ok.percentages["total"]["share"] == 100.0


def test_parts_bounds_and_overlapping_rows_are_checked() -> None:
    cols = [Column(key=k, label=k) for k in ("referred", "completed", "other", "in72")]

    def rhi(referred: int, completed: int, other: int, in72: int) -> Table:
        counts = {"referred": referred, "completed": completed, "other": other, "in72": in72}
        return Table(
            key="rhi",
            title="RHI",
            row_header="month",
            columns=cols,
            rows=[Row(label="2018-12", counts=counts)],
            total=Row(label="total", counts=counts),
            parts=[Part(whole="referred", parts=["completed", "other"])],
            bounds=[Bound(lesser="in72", greater="completed")],
        )

    rhi(56, 24, 32, 24)
    with pytest.raises(ValidationError, match="referred is 56 but completed \\+ other is 55"):
        rhi(56, 24, 31, 24)
    with pytest.raises(ValidationError, match="in72 \\(25\\) exceeds completed \\(24\\)"):
        rhi(56, 24, 32, 25)
    many = dict(
        key="types",
        title="Exploitation types",
        row_header="type",
        columns=[Column(key="children", label="children")],
        total=Row(label="total", counts={"children": 3}),
        additive=False,
    )
    Table(**many, rows=[Row(label="gang", counts={"children": 3}),
                        Row(label="online", counts={"children": 2})])  # fmt: skip
    with pytest.raises(ValidationError, match="exceeds the total"):
        Table(**many, rows=[Row(label="gang", counts={"children": 4})])
    with pytest.raises(ValidationError, match=r"add up to 217, the total is 274"):
        risk_mix(35, 182, 0, 274)  # the rest left out instead of an 'unknown' row
    with pytest.raises(ValidationError):
        # A percentage is never sent in: it is computed from the counts.
        Table.model_validate({**risk_mix(1, 1, 1, 3).model_dump(), "percentages": {}})


def episode(
    n: int, returned: datetime, outcome: str | None, offered_after: timedelta | None
) -> EpisodeFacts:
    child = (uuid.UUID(int=1), f"child-{n}")
    return EpisodeFacts(
        episode_id=uuid.uuid4(),
        local_authority="sunderland",
        child=child,
        reported_at=returned - timedelta(hours=6),
        returned_at=returned,
        rhi_offered_at=returned + offered_after if offered_after is not None else None,
        rhi_outcome=outcome,
    )


def test_december_2018_rhi_figures_come_out_with_their_denominators() -> None:
    # "56 referrals ... 46 (82%) referrals processed with interviews offered ... 24 (43%)
    # RHI's completed ... 24 RHI's were offered within the 72 hour time period".
    dec = datetime(2018, 12, 10, 12, tzinfo=UTC)
    eps = [
        *(episode(i, dec, "completed", timedelta(hours=24)) for i in range(24)),
        *(episode(100 + i, dec, "refused_by_young_person", timedelta(hours=100))
          for i in range(15)),
        *(episode(200 + i, dec, "refused_by_parent_carer", timedelta(hours=100))
          for i in range(7)),
        *(episode(300 + i, dec, "not_offered", None) for i in range(6)),
        *(episode(400 + i, dec, None, None) for i in range(4)),
    ]  # fmt: skip
    _, rhi = missing_tables(eps, [], datetime(2018, 12, 1, tzinfo=UTC),
                            datetime(2019, 1, 1, tzinfo=UTC), 70.0)  # fmt: skip
    row = rhi.rows[0]
    assert row.label == "2018-12"
    assert row.counts == {
        "referred": 56, "offered": 46, "offered_72h": 24, "completed": 24,
        "refused_young_person": 15, "refused_parent_carer": 7, "not_offered": 6,
        "awaiting_outcome": 4,
    }  # fmt: skip
    assert rhi.percentages["2018-12"] == {"offered": 82.1, "offered_72h": 42.9, "completion": 42.9}
    completion = next(r for r in rhi.ratios if r.key == "completion")
    assert completion.target_percent == 70.0
    assert rhi.rate(row, completion) == (24, 56, 42.9)


def case(level: str, outcome: PreMsetOutcome | None, agreed: str = "medium") -> CaseFacts:
    return CaseFacts(
        case_id=uuid.uuid4(),
        local_authority="sunderland",
        agency_type="childrens_social_care",
        origin="tool",
        submitted_at=T0,
        referrer_level=level,
        suggested_level=level,
        gender="female",
        age_at_referral=14,
        ethnicity=None,
        legal_status="none",
        area_of_residence="North",
        exploitation_types=(),
        pre_mset=None
        if outcome is None
        else PreMsetDecisionRecord(
            decision_id="d",
            outcome=outcome,
            level=RiskLevel(agreed),
            rationale=None,
            decided_by=uuid.uuid4(),
            meeting_id=None,
            decided_at=T0 + timedelta(days=10),
        ),
        exit=None,
    )


def test_the_scoping_reports_conversion_is_23_of_274() -> None:
    # 274 tools (35 low, 182 medium; 57 high, so that they add up); 9 medium and 14 high met
    # the criteria: "a conversion rate ... very low at 9%" is 23 of 274, 8.4 %.
    met, not_met = PreMsetOutcome.meets_criteria, PreMsetOutcome.not_met
    cases = [
        *(case("low", not_met) for _ in range(35)),
        *(case("medium", met, "medium") for _ in range(9)),
        *(case("medium", not_met) for _ in range(173)),
        *(case("high", met, "high") for _ in range(14)),
        *(case("high", not_met) for _ in range(43)),
    ]
    tables = {t.key: t for t in pre_mset_tables(cases)}
    conversion = tables["conversion"]
    assert conversion.total is not None
    assert conversion.total.counts == {"referrals": 274, "decided": 274, "met_criteria": 23}
    assert conversion.percentages["total"]["conversion"] == 8.4
    by_level = tables["met_by_level"]
    assert {r.label: r.counts["met_criteria"] for r in by_level.rows} == {
        "low": 0,
        "medium": 9,
        "high": 14,
    }
    timing = tables["time_to_decision"]
    assert {r.label: r.counts["referrals"] for r in timing.rows}["8 to 14 days"] == 274


def test_actions_on_time_late_and_overdue() -> None:
    owner = uuid.uuid4()

    def action(due_days: int, done_days: int | None) -> CaseAction:
        return CaseAction(
            action_id=str(uuid.uuid4()),
            owner_agency_id=owner,
            due_at=T0 + timedelta(days=due_days),
            aim=ActionAim.remove,
            target=ActionTarget.location,
            description="x",
            created_at=T0,
            review_id="r",
            completed_at=None if done_days is None else T0 + timedelta(days=done_days),
        )

    c = case("high", PreMsetOutcome.meets_criteria)
    c = CaseFacts(**{**c.__dict__, "actions": (action(7, 5), action(7, 9), action(7, None),
                                               action(60, None))})  # fmt: skip
    by_aim, _, by_owner = actions_tables(
        [c], T0 - timedelta(days=1), T0 + timedelta(days=30), T0 + timedelta(days=20),
        {owner: "Sunderland Police"},
    )  # fmt: skip
    remove = by_aim.rows[0].counts
    assert remove == {
        "actions": 4, "completed_on_time": 1, "completed_late": 1, "open_not_due": 1,
        "open_overdue": 1, "ended_at_exit": 0, "overdue": 2,
    }  # fmt: skip
    assert by_aim.percentages["remove"] == {"on_time": 25.0, "overdue": 50.0}
    assert [r.label for r in by_owner.rows] == ["Sunderland Police"]


def test_csv_has_every_figure_with_its_numerator_and_denominator() -> None:
    t = risk_mix(35, 182, 57, 274)
    report = Report(
        name=ReportName.referrals,
        title="Referrals",
        scope=ReportScope(authorities=["sunderland"], region=False),
        since=T0,
        until=T0 + timedelta(days=184),
        generated_at=T0 + timedelta(days=200),
        tables=[t],
    )
    lines = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(lines) == 4 * 2  # three rows and the total; a count and a share each
    share = next(r for r in lines if r["row"] == "medium" and r["measure"] == "share_percent")
    assert (share["value"], share["numerator"], share["denominator"]) == ("66.4", "182", "274")
    assert {r["scope"] for r in lines} == {"sunderland"}
