"""What the ops dashboard and the report pages show, made from the services' answers: plain
presentation (tables as rows of words, links into the Temporal UI), no web or HTTP code.

The ops dashboard's counts come from the services that own them (the referral service's
``/v1/aggregates/cases``, the notifications service's ``/v1/aggregates/operations``); where
a workflow is involved, a count links to the Temporal UI's list of those workflows (a
visibility query on the search attributes the workflows keep: no personal data)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from mset_contract.operations import CaseAggregates, NotificationAggregates
from mset_contract.temporal import (
    LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
    NEXT_DEADLINE_SEARCH_ATTRIBUTE,
    NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
    REFERRAL_WORKFLOW,
    STAGE_SEARCH_ATTRIBUTE,
)
from mset_contract.vocab import Stage

# The stages a case is open at, in the order a case moves through them.
OPEN_STAGES = (
    Stage.submitted,
    Stage.triaged,
    Stage.awaiting_pre_mset,
    Stage.more_information_requested,
    Stage.awaiting_mset,
    Stage.active_plan,
)
# The escalations that ask for action at once: "urgent" on the dashboard.
URGENT = "immediate"


@dataclass(frozen=True)
class Cell:
    count: int
    link: str | None = None  # the Temporal UI's list of the workflows counted


@dataclass
class AuthorityRow:
    authority: str
    cells: list[Cell]
    total: Cell


@dataclass
class OpsView:
    stages: tuple[Stage, ...]
    by_stage: list[AuthorityRow]
    stage_totals: list[Cell]
    open_total: Cell
    deadlines: list[tuple[str, Cell, Cell]]  # authority, due within 7 days, overdue
    due_total: Cell
    overdue_total: Cell
    breaches: list[tuple[str, str, int]]  # authority, kind, count
    breach_total: int
    urgent: list[tuple[str, str, int]]  # authority, kind, unacknowledged immediate items
    urgent_total: Cell
    unacknowledged_total: int
    dead_letters: list[tuple[str, int]]
    dead_letters_total: int
    dead_letters_24h: int
    consumer_lag: list[tuple[str, int]]
    parked_webhooks: int
    failed_workflows: Cell | None
    failed_since: datetime
    as_of: datetime
    temporal_ui: str | None
    notes: list[str] = field(default_factory=list)


class TemporalLinks:
    """Links to the Temporal UI's workflow list, filtered by a visibility query; none when
    the portal is not told where the UI is."""

    def __init__(self, base_url: str | None, namespace: str) -> None:
        self.base = base_url.rstrip("/") if base_url else None
        self.namespace = namespace

    def query(self, q: str) -> str | None:
        if self.base is None:
            return None
        return f"{self.base}/namespaces/{quote(self.namespace)}/workflows?query={quote(q)}"

    def open_cases(self, stage: Stage | None = None, authority: str | None = None) -> str | None:
        parts = [f'WorkflowType = "{REFERRAL_WORKFLOW}"', 'ExecutionStatus = "Running"']
        if stage is not None:
            parts.append(f'{STAGE_SEARCH_ATTRIBUTE.name} = "{stage.value}"')
        if authority is not None:
            parts.append(f'{LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name} = "{authority}"')
        return self.query(" AND ".join(parts))

    def deadlines(
        self, after: datetime | None, before: datetime, authority: str | None = None
    ) -> str | None:
        name = NEXT_DEADLINE_SEARCH_ATTRIBUTE.name
        parts = [f'WorkflowType = "{REFERRAL_WORKFLOW}"', 'ExecutionStatus = "Running"']
        if after is not None:
            parts.append(f'{name} >= "{after.isoformat()}"')
        parts.append(f'{name} < "{before.isoformat()}"')
        if authority is not None:
            parts.append(f'{LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name} = "{authority}"')
        return self.query(" AND ".join(parts))

    def reescalations(self) -> str | None:
        return self.query(
            f'WorkflowType = "{NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW}" '
            'AND ExecutionStatus = "Running"'
        )

    def failed(self, since: datetime) -> str | None:
        return self.query(
            '(ExecutionStatus = "Failed" OR ExecutionStatus = "TimedOut") '
            f'AND CloseTime > "{since.isoformat()}"'
        )


def ops_view(
    cases: CaseAggregates, notes: NotificationAggregates, temporal_ui: str | None
) -> OpsView:
    links = TemporalLinks(temporal_ui, cases.namespace)
    now = cases.as_of
    counts: dict[tuple[str, Stage], int] = {
        (c.local_authority, c.stage): c.count for c in cases.open_cases
    }
    authorities = sorted(
        {c.local_authority for c in cases.open_cases}
        | {c.local_authority for c in cases.due_within_7_days}
        | {c.local_authority for c in cases.overdue}
    )
    stages = tuple(s for s in OPEN_STAGES)
    rows = []
    for la in authorities:
        cells = [Cell(counts.get((la, st), 0), links.open_cases(st, la)) for st in stages]
        rows.append(
            AuthorityRow(la, cells, Cell(sum(c.count for c in cells), links.open_cases(None, la)))
        )
    totals = [
        Cell(sum(counts.get((la, st), 0) for la in authorities), links.open_cases(st))
        for st in stages
    ]
    due = {c.local_authority: c.count for c in cases.due_within_7_days}
    overdue = {c.local_authority: c.count for c in cases.overdue}
    soon = now + timedelta(days=7)
    deadlines = [
        (
            la,
            Cell(due.get(la, 0), links.deadlines(now, soon, la)),
            Cell(overdue.get(la, 0), links.deadlines(None, now, la)),
        )
        for la in authorities
        if due.get(la) or overdue.get(la)
    ]
    urgent: dict[tuple[str, str], int] = {}
    for u in notes.unacknowledged:
        if u.urgency == URGENT:
            urgent[(u.local_authority, u.kind)] = (
                urgent.get((u.local_authority, u.kind), 0) + u.count
            )
    failed = (
        None
        if cases.failed_workflows is None
        else Cell(cases.failed_workflows, links.failed(cases.failed_since))
    )
    return OpsView(
        stages=stages,
        by_stage=rows,
        stage_totals=totals,
        open_total=Cell(sum(c.count for c in totals), links.open_cases()),
        deadlines=deadlines,
        due_total=Cell(sum(due.values()), links.deadlines(now, soon)),
        overdue_total=Cell(sum(overdue.values()), links.deadlines(None, now)),
        breaches=[(b.local_authority, b.kind, b.count) for b in notes.breaches],
        breach_total=sum(b.count for b in notes.breaches),
        urgent=[(la, kind, n) for (la, kind), n in sorted(urgent.items())],
        urgent_total=Cell(sum(urgent.values()), links.reescalations()),
        unacknowledged_total=sum(u.count for u in notes.unacknowledged),
        dead_letters=[(g.consumer_group, g.count) for g in notes.dead_letters],
        dead_letters_total=sum(g.count for g in notes.dead_letters),
        dead_letters_24h=notes.dead_letters_last_24h,
        consumer_lag=[(g.consumer_group, g.count) for g in notes.consumer_lag],
        parked_webhooks=notes.parked_webhooks,
        failed_workflows=failed,
        failed_since=cases.failed_since,
        as_of=now,
        temporal_ui=temporal_ui,
    )


# --- reports ---------------------------------------------------------------------------------

REPORT_NAMES = {
    "referrals": "Referrals",
    "pre-mset": "Pre-MSET outcomes",
    "profile": "Profile of the children",
    "exits": "Exits from MSET",
    "missing": "Missing episodes and Return Home Interviews",
    "actions": "Actions",
    "attendance": "Meeting attendance",
    "data-quality": "Data quality",
}


@dataclass
class ReportTable:
    key: str
    title: str
    head: list[str]
    numeric: list[bool]
    body: list[list[str]]
    total: list[str] | None
    notes: list[str]
    chart: str | None  # the service's SVG chart of this table, or None


@dataclass
class ReportView:
    title: str
    where: str
    since: datetime
    until: datetime
    suppressed: bool
    tables: list[ReportTable]
    notes: list[str]


def _label(text: str) -> str:
    out = text.replace("_", " ")
    out = re.sub(r"\bpre mset\b", "Pre-MSET", out)
    out = re.sub(r"\b(mset|rhi|lmaps)\b", lambda m: m.group(1).upper(), out)
    return out[:1].upper() + out[1:]


def _count(n: Any) -> str:
    return n if isinstance(n, str) else f"{n:,}"


def _percent(p: Any) -> str:
    if p is None:
        return "-"
    return p if isinstance(p, str) else f"{p:.1f}%"


# Each table's chart in the service's SVG: ``<svg x="10" y="…" xmlns=…>…</svg>`` nested in the
# report's document, its ids made from the report's and the table's names.
_CHART = re.compile(r'<svg x="[^"]*" y="[^"]*" (xmlns="http://www.w3.org/2000/svg".*?</svg>)', re.S)
_IDENT = re.compile(r'aria-labelledby="([a-z0-9_-]+)-title ')


def charts_by_table(svg: str, report: str) -> dict[str, str]:
    """Each table's chart (a standalone SVG, to place inline beside its table), by key."""
    found: dict[str, str] = {}
    for m in _CHART.finditer(svg):
        chart = "<svg " + m.group(1)
        ident = _IDENT.search(chart)
        if ident and ident.group(1).startswith(f"{report}-"):
            found[ident.group(1).removeprefix(f"{report}-")] = chart
    return found


def report_view(report: dict[str, Any], svg: str | None) -> ReportView:
    """A report's JSON (counts, or as published with ``[c]``) as tables of words, each with
    its chart from the service's SVG."""
    charts = charts_by_table(svg, report["name"]) if svg else {}
    tables = []
    for t in report["tables"]:
        columns, ratios = t["columns"], t.get("ratios", [])

        def line(row: dict[str, Any], t: dict[str, Any] = t) -> list[str]:
            pct = t.get("percentages", {}).get(row["label"], {})
            return [
                _label(row["label"]),
                *(_count(row["counts"][c["key"]]) for c in t["columns"]),
                *(_percent(pct.get(r["key"])) for r in t.get("ratios", [])),
            ]

        tables.append(
            ReportTable(
                key=t["key"],
                title=t["title"],
                head=[
                    _label(t["row_header"]),
                    *(c["label"] for c in columns),
                    *(r["label"] for r in ratios),
                ],
                numeric=[False, *([True] * (len(columns) + len(ratios)))],
                body=[line(r) for r in t["rows"]],
                total=line(t["total"]) if t.get("total") else None,
                notes=list(t.get("notes", [])),
                chart=charts.get(t["key"]),
            )
        )
    scope = report["scope"]
    return ReportView(
        title=report["title"],
        where="every authority of the partnership" if scope["region"] else scope["authorities"][0],
        since=datetime.fromisoformat(report["since"]),
        until=datetime.fromisoformat(report["until"]),
        suppressed=bool(report.get("suppression")),
        tables=tables,
        notes=list(report.get("notes", [])),
    )
