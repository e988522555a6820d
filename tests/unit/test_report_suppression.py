"""Publishing a board report with small numbers suppressed: every count from 1 to 4 is [c],
and no [c] can be worked out from the published figures, neither by subtracting a row from
its total nor by combining the table's sums (checked here by a rank test written apart from
the code under test, over tables hypothesis makes); a percentage of a [c] is [c]."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from mset_contract.report_publication import SUPPRESSED, Count, PublishedTable
from mset_contract.reports import (
    Column,
    Part,
    Ratio,
    Report,
    ReportName,
    ReportScope,
    Row,
    Table,
)
from services.referral.report_suppression import equations, publish, publish_table
from tests.support.board_pack_example import example_reports

THRESHOLD = 5


def _rank(rows: list[list[Fraction]]) -> int:
    m = [r[:] for r in rows if any(r)]
    rank, width = 0, len(m[0]) if m else 0
    for col in range(width):
        pivot = next((r for r in range(rank, len(m)) if m[r][col] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for r in range(rank + 1, len(m)):
            f = m[r][col] / m[rank][col]
            m[r] = [a - f * b for a, b in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank


def _cells(t: Table) -> dict[tuple[int, str], int]:
    out = {(i, k): n for i, r in enumerate(t.rows) for k, n in r.counts.items()}
    if t.total is not None:
        out.update({(-1, k): n for k, n in t.total.counts.items()})
    return out


def _shown(p: PublishedTable) -> dict[tuple[int, str], Count]:
    out = {(i, k): n for i, r in enumerate(p.rows) for k, n in r.counts.items()}
    if p.total is not None:
        out.update({(-1, k): n for k, n in p.total.counts.items()})
    return out


def assert_nothing_recoverable(t: Table, p: PublishedTable) -> None:
    """Every small count is [c]; every other figure is as counted; and for each [c], the
    table's sums, with the published figures put in, leave it free: its unit vector is not in
    the span of the sums over the [c] cells (rank test)."""
    real, shown = _cells(t), _shown(p)
    hidden = sorted(c for c, v in shown.items() if v == SUPPRESSED)
    for cell, n in real.items():
        if 0 < n < THRESHOLD:
            assert shown[cell] == SUPPRESSED, cell
        elif shown[cell] != SUPPRESSED:
            assert shown[cell] == n, cell
    sums = []
    for whole, parts in equations(t):
        row = [Fraction(0)] * len(hidden)
        for cell, sign in ((whole, 1), *((q, -1) for q in parts)):
            if cell in hidden:
                row[hidden.index(cell)] += sign
        # By subtraction alone: never exactly one [c] in a sum.
        assert sum(1 for x in row if x) != 1 or sum(abs(x) for x in row) != 1, (whole, parts)
        sums.append(row)
    base = _rank(sums)
    for j, cell in enumerate(hidden):
        unit = [Fraction(int(k == j)) for k in range(len(hidden))]
        assert _rank([*sums, unit]) == base + 1, f"{cell} can be worked out from the totals"
    for line in p.every_row():
        for r in p.ratios:
            num, den = p.rates[line.label][r.key]
            if SUPPRESSED in (num, den):
                assert p.percentages[line.label][r.key] == SUPPRESSED


@st.composite
def tables(draw: st.DrawFn) -> Table:
    n_rows = draw(st.integers(1, 6))
    parted = draw(st.booleans())
    bases = ["a", "b", "c"][: draw(st.integers(1, 3))]
    small = st.integers(0, 12)
    rows = []
    for i in range(n_rows):
        counts = {k: draw(small) for k in bases}
        if parted:
            counts["whole"] = sum(counts.values())
        rows.append(Row(label=f"r{i}", counts=counts))
    keys = [*bases, *(["whole"] if parted else [])]
    total = Row(label="total", counts={k: sum(r.counts[k] for r in rows) for k in keys})
    return Table(
        key="t",
        title="t",
        row_header="row",
        columns=[Column(key=k, label=k) for k in keys],
        rows=rows,
        total=total,
        parts=[Part(whole="whole", parts=bases)] if parted else [],
        ratios=[Ratio(key=f"{k}_share", label="%", numerator=k) for k in keys]
        + ([Ratio(key="a_rate", label="%", numerator="a", denominator="whole")] if parted else []),
    )


@settings(max_examples=300, deadline=None)
@given(tables())
def test_no_suppressed_figure_can_be_worked_out_from_the_published_ones(t: Table) -> None:
    assert_nothing_recoverable(t, publish_table(t, THRESHOLD))


def test_a_small_row_is_hidden_with_the_next_smallest_not_the_total() -> None:
    t = Table(
        key="risk",
        title="Risk level at referral",
        row_header="level",
        columns=[Column(key="referrals", label="referrals")],
        rows=[
            Row(label="low", counts={"referrals": 3}),
            Row(label="medium", counts={"referrals": 182}),
            Row(label="high", counts={"referrals": 89}),
        ],
        total=Row(label="total", counts={"referrals": 274}),
        ratios=[Ratio(key="share", label="%", numerator="referrals")],
    )
    p = publish_table(t, THRESHOLD)
    shown = {r.label: r.counts["referrals"] for r in p.every_row()}
    # 274 - 182 - 89 would give the 3 away: the next smallest, 89, goes with it.
    assert shown == {"low": "[c]", "medium": 182, "high": "[c]", "total": 274}
    assert p.percentages["low"]["share"] == "[c]" and p.percentages["high"]["share"] == "[c]"
    assert p.percentages["medium"]["share"] == 66.4


def test_every_table_of_the_example_board_pack_publishes_safely() -> None:
    reports = example_reports()
    hidden = 0
    for r in reports:
        published = publish(r, THRESHOLD)
        assert published.suppression is not None and published.suppression.threshold == 5
        for t, p in zip(r.tables, published.tables, strict=True):
            if r.name is ReportName.attendance:  # meetings and agencies, not children
                assert p.suppressed_cells == 0
                continue
            assert_nothing_recoverable(t, p)
            hidden += p.suppressed_cells
    assert hidden > 0
    rhi = next(
        t for r in reports if r.name is ReportName.missing for t in r.tables
        if t.key == "rhi_by_month"
    )  # fmt: skip
    p = publish_table(rhi, THRESHOLD)
    # The months' returns and completions, what the board reads, stay published.
    assert all(isinstance(row.counts["completed"], int) for row in p.every_row())
    assert all(isinstance(row.counts["referred"], int) for row in p.every_row())


def test_csv_as_published_shows_c_and_unsuppressed_is_the_reports_own_csv() -> None:
    t = Table(
        key="by_reason",
        title="Exits",
        row_header="reason",
        columns=[Column(key="exits", label="exits")],
        rows=[Row(label="safe", counts={"exits": 2}), Row(label="moved", counts={"exits": 40})],
        total=Row(label="total", counts={"exits": 42}),
        ratios=[Ratio(key="exits_share", label="%", numerator="exits")],
    )
    t0 = datetime(2018, 7, 1, tzinfo=UTC)
    report = Report(
        name=ReportName.exits,
        title="Exits",
        scope=ReportScope(authorities=["sunderland"], region=False),
        since=t0,
        until=t0 + timedelta(days=184),
        generated_at=t0 + timedelta(days=200),
        tables=[t],
    )
    assert publish(report).to_csv() == report.to_csv()
    lines = list(csv.DictReader(io.StringIO(publish(report, THRESHOLD).to_csv())))
    figures = {(r["row"], r["measure"]): (r["value"], r["numerator"]) for r in lines}
    assert figures[("safe", "exits")] == ("[c]", "")
    assert figures[("moved", "exits")] == ("[c]", "")  # 42 - 40 would give the 2 away
    assert figures[("safe", "exits_share_percent")] == ("[c]", "[c]")
    assert figures[("total", "exits")] == ("42", "")
    assert "2" not in {v for v, _ in figures.values()}
