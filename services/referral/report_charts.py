"""Charts of the board reports, as server-rendered SVG, each beside its table.

Plain SVG written here (no plotting library: a few rectangles, lines and labels, the same
bytes for the same report), drawn from the published report, so a suppressed figure is a
``[c]`` in the chart as in the table. Every chart is a horizontal bar chart, one bar a row of
its table (and a series, at most two: the Pre-MSET cohort beside the MSET cohort):

- a breakdown of one column (referrals by agency type): the count, with its share;
- a breakdown of two cohorts (the profile): each cohort's percentages, as the source
  reports compare them (61 % female at Pre-MSET, 31 % at MSET);
- a rate (Return Home Interviews completed, conversion, % missing): the percentage with its
  numerator and denominator, the total last, and a dashed line at the target where there
  is one (70 % by default);
- counts named for a table (missing episodes and repeats by month; actions and overdue).

Accessible: the chart is ``role="img"`` labelled by its ``<title>`` and a ``<desc>`` that
reads every figure out; each bar has its own ``<title>``; every bar is labelled with its
figure, the two series differ by fill (solid and outlined), not by colour alone, and a rate
below its target says so in words. The table beside it (``report_svg``) is marked up with
ARIA table roles.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from mset_contract.report_publication import (
    SUPPRESSED,
    Count,
    Percent,
    PublishedReport,
    PublishedTable,
)
from mset_contract.reports import ReportName

FONT = "Helvetica, Arial, sans-serif"
INK = "#0b0c0c"
BLUE = "#1d70b8"
GRID = "#b1b4b6"
MUTED = "#505a5f"

# Charts whose series are named rather than found (see ``chart_for``).
NAMED: dict[tuple[ReportName, str], tuple[str, ...]] = {
    (ReportName.missing, "episodes_by_month"): ("episodes", "repeat"),
    (ReportName.actions, "by_aim"): ("actions", "overdue"),
    (ReportName.actions, "by_target"): ("actions", "overdue"),
    (ReportName.actions, "by_owner"): ("actions", "overdue"),
}


def label(text: str) -> str:
    """A code as a reader reads it: ``childrens_social_care`` -> ``childrens social care``."""
    out = text.replace("_", " ")
    out = re.sub(r"\bpre mset\b", "Pre-MSET", out)
    return re.sub(r"\b(mset|rhi|lmaps)\b", lambda m: m.group(1).upper(), out)


def count_text(n: Count) -> str:
    return n if isinstance(n, str) else f"{n:,}"


def percent_text(p: Percent) -> str:
    if p is None:
        return "-"
    if isinstance(p, str):
        return p
    return f"{p:.1f}%"


@dataclass(frozen=True)
class Bar:
    category: str
    value: float | None  # None: not drawn (suppressed, or a rate of nothing)
    text: str  # the label beside the bar
    said: str  # the bar read out (its title, and the description)


@dataclass(frozen=True)
class Series:
    name: str
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    title: str
    percent: bool
    series: list[Series]
    target: float | None = None
    what: str = ""  # what the bars measure, for the description


def _rate_series(t: PublishedTable, key: str, with_total: bool) -> Series:
    ratio = next(r for r in t.ratios if r.key == key)
    rows = t.every_row() if with_total else t.rows
    bars = []
    for row in rows:
        p = t.percentages[row.label][key]
        n, d = t.rates[row.label][key]
        cat = label(row.label)
        if isinstance(p, str):
            bars.append(Bar(cat, None, SUPPRESSED, f"{cat}: suppressed (a small number)"))
            continue
        if p is None:
            bars.append(Bar(cat, None, "none", f"{cat}: none to count ({d} {ratio.label})"))
            continue
        text = f"{p:.1f}% ({count_text(n)} of {count_text(d)})"
        said = f"{cat}: {text}"
        if ratio.target_percent is not None and p < ratio.target_percent:
            text += " below target"
            said += f", below the {ratio.target_percent:g}% target"
        bars.append(Bar(cat, p, text, said))
    return Series(ratio.label, bars)


def _count_series(t: PublishedTable, key: str) -> Series:
    column = next(c for c in t.columns if c.key == key)
    share = next((r for r in t.ratios if r.numerator == key and r.denominator is None), None)
    bars = []
    for row in t.rows:
        n = row.counts[key]
        cat = label(row.label)
        if isinstance(n, str):
            bars.append(Bar(cat, None, SUPPRESSED, f"{cat}: suppressed (a small number)"))
            continue
        text = count_text(n)
        if share is not None:
            text += f" ({percent_text(t.percentages[row.label][share.key])})"
        bars.append(Bar(cat, n, text, f"{cat}: {text} {column.label}"))
    return Series(column.label, bars)


def chart_for(report: ReportName, t: PublishedTable) -> Chart:
    """The chart a table is drawn as (the module's docstring says which)."""
    named = NAMED.get((report, t.key))
    if named is not None:
        return Chart(t.title, False, [_count_series(t, k) for k in named], what="counts")
    targeted = next((r for r in t.ratios if r.target_percent is not None), None)
    rates = [r for r in t.ratios if r.denominator is not None]
    shares = [r for r in t.ratios if r.denominator is None]
    if targeted is not None:
        return Chart(
            t.title,
            True,
            [_rate_series(t, targeted.key, with_total=True)],
            target=targeted.target_percent,
            what=targeted.label,
        )
    if rates:
        return Chart(t.title, True, [_rate_series(t, rates[0].key, True)], what=rates[0].label)
    if len(shares) >= 2:
        series = []
        for r in shares[:2]:
            s = _rate_series(t, r.key, with_total=False)
            name = next(c.label for c in t.columns if c.key == r.numerator)
            series.append(Series(name, s.bars))
        return Chart(t.title, True, series, what="percentages of each cohort")
    return Chart(t.title, False, [_count_series(t, t.columns[0].key)], what="counts")


# --- drawing ---------------------------------------------------------------------------------

LABEL_W = 150  # the category labels' column
BAR_AREA = 190
VALUE_W = 140  # room for the label beside the longest bar
WIDTH = LABEL_W + BAR_AREA + VALUE_W
BAR_H = 14
GAP = 9
TOP = 30  # the legend
BOTTOM = 26  # the axis
CHAR_W = 6.1  # a 12px sans-serif character, near enough to cut labels


def _nice_max(m: float) -> tuple[float, float]:
    """An axis end and step for values up to ``m``: 1, 2 or 5 times a power of ten."""
    if m <= 0:
        return 1.0, 1.0
    raw = m / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 5, 10) if s * mag >= raw)
    step = max(step, 1.0)
    return step * math.ceil(m / step), step


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _cut(text: str, room: float) -> str:
    most = int(room / CHAR_W)
    return text if len(text) <= most else text[: max(most - 3, 1)] + "..."


def description(chart: Chart) -> str:
    parts = [
        f"Horizontal bar chart of {chart.what}"
        + (f", against a target of {chart.target:g}%" if chart.target is not None else "")
        + "."
    ]
    for s in chart.series:
        parts.append(f"{s.name}: " + "; ".join(b.said for b in s.bars) + ".")
    return " ".join(parts)


def chart_svg(chart: Chart, ident: str) -> str:
    """One chart as a standalone SVG document (``ident`` makes its element ids unique)."""
    cats = [b.category for b in chart.series[0].bars]
    n = len(chart.series)
    band = n * BAR_H + GAP
    height = TOP + max(len(cats), 1) * band + BOTTOM + (16 if chart.target is not None else 0)
    values = [b.value for s in chart.series for b in s.bars if b.value is not None]
    if chart.percent:
        top, step = 100.0, 20.0
    else:
        top, step = _nice_max(max(values, default=0.0))

    def x(v: float) -> float:
        return LABEL_W + BAR_AREA * v / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="{FONT}" font-size="12">',
        f'<title id="{ident}-title">{escape(chart.title)}</title>',
        f'<desc id="{ident}-desc">{escape(description(chart))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    # Legend: the series by name, with the fill each is drawn in.
    lx = LABEL_W
    for i, s in enumerate(chart.series):
        fill, stroke = (BLUE, BLUE) if i == 0 else ("#ffffff", BLUE)
        out.append(
            f'<rect x="{lx}" y="8" width="12" height="12" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.5"/>'
        )
        name = _cut(label(s.name), 200)
        out.append(f'<text x="{lx + 16}" y="18" fill="{INK}">{escape(name)}</text>')
        lx += 16 + int(len(name) * CHAR_W) + 20
    # Gridlines and the axis.
    axis_y = TOP + len(cats) * band
    tick = 0.0
    while tick <= top + 1e-9:
        gx = _fmt(x(tick))
        out.append(
            f'<line x1="{gx}" y1="{TOP - 4}" x2="{gx}" y2="{axis_y}" stroke="{GRID}" '
            f'stroke-width="0.5"/>'
        )
        tick_text = f"{_fmt(tick)}%" if chart.percent else _fmt(tick)
        out.append(
            f'<text x="{gx}" y="{axis_y + 14}" text-anchor="middle" fill="{MUTED}">'
            f"{tick_text}</text>"
        )
        tick += step
    out.append(
        f'<line x1="{LABEL_W}" y1="{TOP - 4}" x2="{LABEL_W}" y2="{axis_y}" stroke="{INK}" '
        f'stroke-width="1"/>'
    )
    for c, cat in enumerate(cats):
        y0 = TOP + c * band
        out.append(
            f'<text x="{LABEL_W - 6}" y="{_fmt(y0 + n * BAR_H / 2 + 4)}" text-anchor="end" '
            f'fill="{INK}">{escape(_cut(cat, LABEL_W - 10))}</text>'
        )
        for i, s in enumerate(chart.series):
            b = s.bars[c]
            by = y0 + i * BAR_H
            fill = BLUE if i == 0 else "#ffffff"
            end = float(LABEL_W)
            if b.value is not None:
                w = max(BAR_AREA * b.value / top, 0.0)
                end = LABEL_W + w
                out.append(
                    f'<rect x="{LABEL_W}" y="{_fmt(by + 1)}" width="{_fmt(w)}" '
                    f'height="{BAR_H - 2}" fill="{fill}" stroke="{BLUE}" stroke-width="1.5">'
                    f"<title>{escape(b.said)}</title></rect>"
                )
            out.append(
                f'<text x="{_fmt(end + 4)}" y="{_fmt(by + BAR_H - 3)}" fill="{INK}">'
                f"{escape(b.text)}</text>"
            )
    if chart.target is not None:
        tx = _fmt(x(chart.target))
        out.append(
            f'<line x1="{tx}" y1="{TOP - 4}" x2="{tx}" y2="{axis_y}" stroke="{INK}" '
            f'stroke-width="1.5" stroke-dasharray="5,3"/>'
        )
        out.append(
            f'<text x="{tx}" y="{axis_y + 30}" text-anchor="middle" fill="{INK}">'
            f"- - target {chart.target:g}%</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


# --- the table beside the chart --------------------------------------------------------------


def grid(t: PublishedTable) -> tuple[list[str], list[list[str]]]:
    """The table as text: headings, then one line a row (the total last): every count, then
    every percentage. The same cells in the SVG and in the board pack."""
    head = [label(t.row_header), *(c.label for c in t.columns), *(r.label for r in t.ratios)]
    body = []
    for row in t.every_row():
        body.append(
            [
                label(row.label),
                *(count_text(row.counts[c.key]) for c in t.columns),
                *(percent_text(t.percentages[row.label][r.key]) for r in t.ratios),
            ]
        )
    return head, body


CELL_W = 84
FIRST_W = 200
LINE = 14


def table_svg(t: PublishedTable, x0: float, y0: float) -> tuple[str, float, float]:
    """The table drawn as SVG text with ARIA table roles, at (x0, y0): (markup, width,
    height)."""
    head, body = grid(t)
    widths = [FIRST_W, *([CELL_W] * (len(head) - 1))]
    wrapped = [textwrap.wrap(h, 26 if i == 0 else 13) or [""] for i, h in enumerate(head)]
    head_h = max(len(w) for w in wrapped) * LINE + 6
    out = [f'<g role="table" aria-label={quoteattr(t.title)}>', '<g role="row">']
    cx = x0
    for i, lines in enumerate(wrapped):
        anchor, tx = ("start", cx) if i == 0 else ("end", cx + widths[i] - 6)
        spans = "".join(
            f'<tspan x="{_fmt(tx)}" dy="{0 if k == 0 else LINE}">{escape(s)}</tspan>'
            for k, s in enumerate(lines)
        )
        out.append(
            f'<text role="columnheader" x="{_fmt(tx)}" y="{_fmt(y0 + 11)}" '
            f'text-anchor="{anchor}" font-weight="bold" fill="{INK}">{spans}</text>'
        )
        cx += widths[i]
    out.append("</g>")
    width = sum(widths)
    out.append(
        f'<line x1="{_fmt(x0)}" y1="{_fmt(y0 + head_h - 3)}" x2="{_fmt(x0 + width)}" '
        f'y2="{_fmt(y0 + head_h - 3)}" stroke="{INK}"/>'
    )
    y = y0 + head_h
    for r, cells in enumerate(body):
        total = t.total is not None and r == len(body) - 1
        weight = ' font-weight="bold"' if total else ""
        out.append('<g role="row">')
        cx = x0
        for i, cell in enumerate(cells):
            role = "rowheader" if i == 0 else "cell"
            anchor, tx = ("start", cx) if i == 0 else ("end", cx + widths[i] - 6)
            text = _cut(cell, widths[i] - 8) if i == 0 else cell
            out.append(
                f'<text role="{role}" x="{_fmt(tx)}" y="{_fmt(y + 11)}" text-anchor="{anchor}"'
                f'{weight} fill="{INK}">{escape(text)}</text>'
            )
            cx += widths[i]
        out.append("</g>")
        y += LINE + 2
    out.append("</g>")
    return "\n".join(out), width, y - y0


def report_svg(report: PublishedReport) -> str:
    """A whole report as one SVG document: each table's chart, with the table beside it."""
    parts: list[str] = []
    y = 40.0
    widest = 0.0
    for t in report.tables:
        chart = chart_svg(chart_for(report.name, t), f"{report.name.value}-{t.key}")
        ch = float(re.search(r'height="(\d+)"', chart).group(1))  # type: ignore[union-attr]
        parts.append(
            f'<g role="group" aria-label={quoteattr(t.title)}>'
            f'<text x="10" y="{_fmt(y)}" font-size="14" font-weight="bold" fill="{INK}">'
            f"{escape(t.title)}</text>"
        )
        nested = chart.replace("<svg ", f'<svg x="10" y="{_fmt(y + 8)}" ', 1)
        parts.append(nested)
        table, tw, th = table_svg(t, WIDTH + 30, y + 8)
        parts.append(table)
        parts.append("</g>")
        widest = max(widest, WIDTH + 30 + tw)
        y += 8 + max(ch, th) + 40
    where = "the region" if report.scope.region else report.scope.authorities[0]
    period = f"{report.since.date().isoformat()} to {report.until.date().isoformat()}"
    marked = "; small numbers suppressed" if report.suppression else ""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="group" width="{_fmt(widest + 10)}" '
        f'height="{_fmt(y)}" viewBox="0 0 {_fmt(widest + 10)} {_fmt(y)}" '
        f'font-family="{FONT}" font-size="11" aria-labelledby="report-title">'
        f'<title id="report-title">{escape(report.title)}: {escape(where)}, '
        f"{escape(period)}{escape(marked)}</title>"
        f'<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>'
        f'<text x="10" y="20" font-size="16" font-weight="bold" fill="{INK}">'
        f"{escape(report.title)} ({escape(where)}, {escape(period)}{escape(marked)})</text>"
    )
    return head + "\n" + "\n".join(parts) + "\n</svg>\n"


def chart_svgs(report: PublishedReport) -> list[tuple[PublishedTable, str]]:
    """Each table with its chart alone (the board pack places the table itself)."""
    return [
        (t, chart_svg(chart_for(report.name, t), f"{report.name.value}-{t.key}"))
        for t in report.tables
    ]
