"""The board pack: every board report for a period, one authority or the region, as one PDF
laid out like the partnerships' own profiles (docs/board-pack.md).

A cover page (the authority or region, the period, when it was made, whether small numbers
are suppressed, the key figures and the contents), then the sections in the order the 2019
scoping report has them: the Risk Assessment Tool and the MSET process (referrals, Pre-MSET),
the characteristics of the Pre-MSET and MSET cohorts, exits, missing from home or care (Return
Home Interviews against the target), then plan actions, agency attendance and data quality,
and the notes. Every table has its chart beside it (or above it, where the table is too wide
to share the page's width), drawn from the same SVG the API serves. OFFICIAL-SENSITIVE at the
top and bottom of every page (``mset_platform.pdf``, as the minutes).

Made from the published reports (``report_suppression.publish``), so a pack made with
suppression shows ``[c]`` wherever the reports do.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from fpdf import FontFace
from fpdf.enums import XPos, YPos

from mset_contract.auth import Principal
from mset_contract.report_publication import (
    SUPPRESSED,
    Count,
    Percent,
    PublishedReport,
    PublishedTable,
)
from mset_contract.reports import Report, ReportName
from mset_contract.types import UK
from mset_platform.pdf import PROTECTIVE_MARKING, MarkedPdf, latin1
from services.referral.meetings import MeetingsUnavailable
from services.referral.policy import BOARD_PACK_READ, require
from services.referral.report_charts import (
    chart_for,
    chart_svg,
    count_text,
    grid,
    percent_text,
)
from services.referral.report_suppression import publish
from services.referral.reports import ReportQuery, ReportsDesk

HANDLING = (
    f"{PROTECTIVE_MARKING}: multi-agency safeguarding. Counts of records, no child named. "
    "Do not forward outside the partnership."
)

# What a pack without a report says in its place.
UNANSWERED = {
    ReportName.attendance: "the meeting service did not give the attendance figures when "
    "the pack was made.",
}

# The sections, in the source report's order, and the reports each holds.
SECTIONS: tuple[tuple[str, tuple[ReportName, ...]], ...] = (
    ("The MSET Risk Assessment Tool and the MSET process",
     (ReportName.referrals, ReportName.pre_mset)),
    ("Characteristics of the young people considered at Pre-MSET and MSET",
     (ReportName.profile,)),
    ("Exit from MSET", (ReportName.exits,)),
    ("Missing from home or care", (ReportName.missing,)),
    ("Plan actions", (ReportName.actions,)),
    ("Agency attendance at panels", (ReportName.attendance,)),
    ("Data quality: what the records do not say", (ReportName.data_quality,)),
)  # fmt: skip
ORDER = [name for _, names in SECTIONS for name in names]


async def board_pack_reports(
    desk: ReportsDesk, principal: Principal, q: ReportQuery
) -> list[Report]:
    """Every report of the pack, for the caller (each refused as the report itself would
    be). Made one after another: one period, one scope, the same records. Attendance, the
    meeting service's part, is left out when that service does not answer, and the pack
    says so on its cover and in its section, rather than the board going without a pack."""
    require(principal, BOARD_PACK_READ)
    made = []
    for name in ORDER:
        try:
            made.append(await desk.report(principal, name, q))
        except MeetingsUnavailable:
            if name is not ReportName.attendance:
                raise
    return made


def _day(at: datetime) -> str:
    return at.astimezone(UK).strftime("%d %B %Y").lstrip("0")


def _when(at: datetime) -> str:
    return at.astimezone(UK).strftime("%d %B %Y, %H:%M %Z").lstrip("0")


def period_text(since: datetime, until: datetime) -> str:
    """The half-open period as a reader says it: its first day to its last."""
    return f"{_day(since)} to {_day(until - timedelta(microseconds=1))}"


def scope_text(r: PublishedReport) -> str:
    if r.scope.region:
        return "The region: " + ", ".join(r.scope.authorities)
    return f"Local authority: {r.scope.authorities[0]}"


# --- key figures -----------------------------------------------------------------------------


def _table(
    reports: dict[ReportName, PublishedReport], name: ReportName, key: str
) -> PublishedTable | None:
    r = reports.get(name)
    return next((t for t in r.tables if t.key == key), None) if r else None


def _count(t: PublishedTable | None, row: str, column: str) -> Count | None:
    if t is None:
        return None
    found = next((r for r in t.every_row() if r.label == row), None)
    return found.counts.get(column, 0) if found is not None else 0


def _pct(t: PublishedTable | None, row: str, ratio: str) -> Percent:
    if t is None or row not in t.percentages:
        return None
    return t.percentages[row].get(ratio)


def key_figures(
    reports: dict[ReportName, PublishedReport], threshold: int | None = None
) -> list[tuple[str, str, str]]:
    """(figure, count, percentage) for the cover, from the reports' own cells. The one
    figure made here (partners: the total less children's social care) is suppressed when
    small, as a cell would be: it is the sum of the rows the table may have suppressed."""
    agency = _table(reports, ReportName.referrals, "by_agency_type")
    total = _count(agency, "total", "referrals")
    csc = _count(agency, "childrens_social_care", "referrals")
    partners: Count | None = None
    if isinstance(total, int) and isinstance(csc, int):
        partners = total - csc
        if threshold is not None and 0 < partners < threshold:
            partners = SUPPRESSED
    elif total is not None:
        partners = SUPPRESSED
    conversion = _table(reports, ReportName.pre_mset, "conversion")
    exits = _table(reports, ReportName.exits, "by_reason")
    eps = _table(reports, ReportName.missing, "episodes_by_month")
    rhi = _table(reports, ReportName.missing, "rhi_by_month")
    held = _table(reports, ReportName.attendance, "meetings_held")
    target = None
    if rhi is not None:
        target = next((r.target_percent for r in rhi.ratios if r.key == "completion"), None)

    def share(n: Count | None) -> str:
        if isinstance(n, int) and isinstance(total, int) and total:
            return f"{100 * n / total:.1f}%"
        return SUPPRESSED if n == SUPPRESSED or total == SUPPRESSED else "-"

    def c(n: Count | None) -> str:
        return "-" if n is None else count_text(n)

    rows = [
        ("Risk Assessment Tools referred", c(total), ""),
        ("  from children's social care", c(csc), share(csc)),
        ("  from partner agencies", c(partners), share(partners)),
        (
            "Met the criteria for MSET (conversion)",
            c(_count(conversion, "total", "met_criteria")),
            percent_text(_pct(conversion, "total", "conversion")),
        ),
        ("Exits from MSET", c(_count(exits, "total", "exits")), ""),
        ("Missing episodes reported", c(_count(eps, "total", "episodes")), ""),
        ("Return Home Interviews: children returned", c(_count(rhi, "total", "referred")), ""),
        (
            "Return Home Interviews completed"
            + (f" (target {target:g}%)" if target is not None else ""),
            c(_count(rhi, "total", "completed")),
            percent_text(_pct(rhi, "total", "completion")),
        ),
        ("Panel meetings held", c(_count(held, "total", "meetings")), ""),
    ]
    return rows


# --- the PDF ---------------------------------------------------------------------------------

BLUE = (29, 112, 184)
HEAD_FILL = (222, 226, 230)
# Charts share the page with tables of at most this many columns (the row label included).
BESIDE_MAX_COLUMNS = 5
CHART_BESIDE_W = 95.0  # mm
CHART_FULL_W = 115.0


def _title_block(pdf: MarkedPdf, text: str) -> None:
    pdf.set_fill_color(*BLUE)
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("helvetica", "B", 18)
    pdf.multi_cell(0, 11, latin1(text), fill=True, padding=3, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(4)


def _heading(pdf: MarkedPdf, text: str, size: int) -> None:
    pdf.set_font("helvetica", "B", size)
    pdf.multi_cell(0, size * 0.5, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def _para(pdf: MarkedPdf, text: str, size: float = 10, style: str = "") -> None:
    pdf.set_font("helvetica", style, size)
    pdf.multi_cell(0, size * 0.5, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _grid_table(
    pdf: MarkedPdf,
    head: Sequence[str],
    body: Sequence[Sequence[str]],
    x: float,
    width: float,
    size: float,
    total_last: bool,
    first_share: float = 2.2,
    headings: bool = True,
    align_right: bool = True,
) -> None:
    """A table of text at ``x``, ``width`` mm wide: headings shaded, figures right-aligned,
    the total row bold."""
    margin = pdf.l_margin
    pdf.set_left_margin(x)
    pdf.set_x(x)
    pdf.set_font("helvetica", "", size)
    widths = (first_share, *([1.0] * (len(head) - 1)))
    try:
        with pdf.table(
            width=width,
            align="LEFT",
            col_widths=widths,
            text_align=("LEFT", *([("RIGHT" if align_right else "LEFT")] * (len(head) - 1))),
            first_row_as_headings=headings,
            line_height=size * 0.45,
            padding=0.8,
            headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL),
        ) as table:
            if headings:
                cells = table.row()
                for h in head:
                    cells.cell(latin1(h))
            for n, line in enumerate(body):
                bold = total_last and n == len(body) - 1
                style = FontFace(emphasis="BOLD") if bold else None
                cells = table.row()
                for v in line:
                    cells.cell(latin1(v), style=style)
    finally:
        pdf.set_left_margin(margin)
    pdf.set_x(margin)


def _chart_height(svg: str, width_mm: float) -> float:
    w = float(re.search(r'width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    h = float(re.search(r'height="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    return width_mm * h / w


def _for_pdf(svg: str) -> str:
    """The chart for the page: its title and description are the table beside it there (the
    PDF's own text), and fpdf2 does not carry SVG's."""
    return re.sub(r"<(title|desc)\b[^>]*>.*?</\1>", "", svg, flags=re.S)


def _table_with_chart(pdf: MarkedPdf, report: ReportName, t: PublishedTable) -> None:
    svg = chart_svg(chart_for(report, t), f"{report.value}-{t.key}")
    head, body = grid(t)
    beside = len(head) <= BESIDE_MAX_COLUMNS
    chart_w = CHART_BESIDE_W if beside else CHART_FULL_W
    chart_h = _chart_height(svg, chart_w)
    rows_h = (len(body) + 3) * 4.5
    need = 12 + (max(chart_h, rows_h) if beside else chart_h + min(rows_h, 60))
    if pdf.get_y() + need > pdf.h - 22:
        pdf.add_page()
    _heading(pdf, t.title, 11)
    top = pdf.get_y()
    pdf.image(io.BytesIO(_for_pdf(svg).encode()), x=pdf.l_margin, y=top, w=chart_w)
    if beside:
        x = pdf.l_margin + chart_w + 4
        pdf.set_y(top)
        _grid_table(pdf, head, body, x, pdf.w - pdf.r_margin - x, 8, t.total is not None)
        pdf.set_y(max(pdf.get_y(), top + chart_h) + 2)
    else:
        pdf.set_y(top + chart_h + 2)
        size = 8 if len(head) <= 8 else 7
        _grid_table(pdf, head, body, pdf.l_margin, pdf.epw, size, t.total is not None, 1.6)
    for note in t.notes:
        _para(pdf, note, 8, "I")
    pdf.ln(3)


def _cover(
    pdf: MarkedPdf, reports: dict[ReportName, PublishedReport], threshold: int | None
) -> None:
    first = next(iter(reports.values()))
    _para(pdf, HANDLING, 8, "I")
    pdf.ln(6)
    _title_block(pdf, "MSET board pack")
    _para(
        pdf,
        "Missing, sexually exploited and trafficked children: the partnership's profile, "
        "counted from the records.",
        11,
    )
    pdf.ln(2)
    facts = [
        ("Area", scope_text(first)),
        ("Period", period_text(first.since, first.until)),
        ("Generated at", _when(first.generated_at)),
        (
            "Small numbers",
            f"suppressed for publication: counts of 1 to {threshold - 1} shown as [c]"
            if threshold is not None
            else "shown as counted (not for publication)",
        ),
        *(("Not in this pack", UNANSWERED[n]) for n in UNANSWERED if n not in reports),
    ]
    _grid_table(
        pdf,
        ["", ""],
        facts,
        pdf.l_margin,
        pdf.epw,
        10,
        total_last=False,
        first_share=0.4,
        headings=False,
        align_right=False,
    )
    pdf.ln(4)
    _heading(pdf, "Key figures", 13)
    _grid_table(
        pdf,
        ["Figure", "Count", "%"],
        key_figures(reports, threshold),
        pdf.l_margin,
        pdf.epw,
        10,
        total_last=False,
        first_share=4,
    )
    pdf.ln(4)
    _heading(pdf, "Contents", 13)
    for n, (title, _) in enumerate(SECTIONS, start=1):
        _para(pdf, f"{n}. {title}", 10)
    _para(pdf, f"{len(SECTIONS) + 1}. Notes", 10)


def board_pack_pdf(reports: Sequence[Report], threshold: int | None = None) -> bytes:
    """The board pack of ``reports`` (those of ``board_pack_reports``), suppressed for
    publication when ``threshold`` is given."""
    published = {r.name: publish(r, threshold) for r in reports}
    if not published:
        raise ValueError("a board pack needs its reports")
    first = next(iter(published.values()))
    where = "region" if first.scope.region else first.scope.authorities[0]
    pdf = MarkedPdf(format="A4")
    pdf.set_title(latin1(f"MSET board pack, {where}, {period_text(first.since, first.until)}"))
    pdf.set_creator("MSET Flow")
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.add_page()
    _cover(pdf, published, threshold)
    for n, (title, names) in enumerate(SECTIONS, start=1):
        pdf.add_page()
        _heading(pdf, f"{n}. {title}", 15)
        for name in names:
            r = published.get(name)
            if r is None:
                _para(pdf, f"Not in this pack: {UNANSWERED[name]}", 10, "B")
                continue
            for t in r.tables:
                _table_with_chart(pdf, name, t)
    pdf.add_page()
    _heading(pdf, f"{len(SECTIONS) + 1}. Notes", 15)
    notes = {note for r in published.values() for note in r.notes}
    for note in sorted(notes):
        _para(pdf, f"- {note}", 9)
    if first.suppression is not None:
        _para(pdf, f"- Suppression: {first.suppression.method}", 9)
    _para(
        pdf,
        "- Every table adds up: its rows to its total ('not recorded' is a row of its own), "
        "and every percentage is computed from the numerator and denominator beside it.",
        9,
    )
    return bytes(pdf.output())
