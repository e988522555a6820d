"""The ops dashboard's and the report pages' presentation (services/portal/dashboards.py):
counts laid out by authority and stage with their Temporal UI links, and a report's tables
with each chart taken from the service's SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from mset_contract.operations import (
    AuthorityCount,
    CaseAggregates,
    GroupCount,
    KindCount,
    NotificationAggregates,
    StageCount,
    UrgencyCount,
)
from mset_contract.report_publication import PublishedReport
from mset_contract.reports import Column, ReportName, ReportScope, Row, Table
from mset_contract.vocab import Stage
from services.portal.dashboards import charts_by_table, ops_view, report_view
from services.referral.report_charts import report_svg
from services.referral.report_suppression import publish

NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


def _query(link: str | None) -> str:
    assert link is not None
    return parse_qs(urlsplit(link).query)["query"][0]


def test_the_dashboard_counts_by_authority_and_stage_and_links_each_to_its_workflows() -> None:
    cases = CaseAggregates(
        as_of=NOW,
        open_cases=[
            StageCount(stage=Stage.awaiting_pre_mset, local_authority="northshire", count=3),
            StageCount(stage=Stage.active_plan, local_authority="northshire", count=2),
            StageCount(stage=Stage.active_plan, local_authority="southvale", count=4),
        ],
        due_within_7_days=[AuthorityCount(local_authority="southvale", count=1)],
        overdue=[AuthorityCount(local_authority="northshire", count=2)],
        failed_workflows=5,
        failed_since=NOW - timedelta(days=7),
        namespace="default",
    )
    notes = NotificationAggregates(
        as_of=NOW,
        unacknowledged=[
            UrgencyCount(
                kind="high_risk", urgency="immediate", local_authority="southvale", count=2
            ),
            UrgencyCount(
                kind="action_overdue", urgency="routine", local_authority="southvale", count=7
            ),
        ],
        breaches=[KindCount(kind="action_overdue", local_authority="southvale", count=7)],
        dead_letters=[GroupCount(consumer_group="inbox", count=1)],
        dead_letters_last_24h=1,
        consumer_lag=[GroupCount(consumer_group="inbox", count=0)],
        parked_webhooks=2,
    )
    view = ops_view(cases, notes, "http://ui.example:8233/")
    assert [r.authority for r in view.by_stage] == ["northshire", "southvale"]
    north = view.by_stage[0]
    assert [c.count for c in north.cells] == [0, 0, 3, 0, 0, 2] and north.total.count == 5
    assert view.open_total.count == 9
    q = _query(north.cells[2].link)
    assert 'MsetStage = "awaiting_pre_mset"' in q and 'MsetLocalAuthority = "northshire"' in q
    assert north.cells[2].link.startswith("http://ui.example:8233/namespaces/default/workflows?")  # type: ignore[union-attr]
    assert (view.due_total.count, view.overdue_total.count) == (1, 2)
    assert "MsetNextDeadline" in _query(view.overdue_total.link)
    # Only the immediate escalations are "urgent"; every urgency is in the total.
    assert view.urgent == [("southvale", "high_risk", 2)] and view.unacknowledged_total == 9
    assert (view.breach_total, view.dead_letters_total, view.parked_webhooks) == (7, 1, 2)
    assert view.failed_workflows is not None and view.failed_workflows.count == 5
    assert 'ExecutionStatus = "Failed"' in _query(view.failed_workflows.link)


def test_a_portal_not_told_where_the_temporal_ui_is_shows_counts_without_links() -> None:
    # A deployed portal left with no MSET_PORTAL_TEMPORAL_UI_URL: no link at all, rather than
    # links to a developer's loopback address that an ops user's browser would follow.
    cases = CaseAggregates(
        as_of=NOW,
        open_cases=[StageCount(stage=Stage.awaiting_mset, local_authority="northshire", count=3)],
        due_within_7_days=[AuthorityCount(local_authority="northshire", count=1)],
        overdue=[], failed_workflows=2, failed_since=NOW - timedelta(days=7), namespace="default",
    )  # fmt: skip
    notes = NotificationAggregates(
        as_of=NOW, unacknowledged=[], breaches=[], dead_letters=[], dead_letters_last_24h=0,
        consumer_lag=[], parked_webhooks=0,
    )  # fmt: skip
    view = ops_view(cases, notes, None)
    cells = [*view.by_stage[0].cells, view.by_stage[0].total, *view.stage_totals]
    cells += [view.open_total, view.due_total, view.overdue_total, view.urgent_total]
    cells += [c for _, due, passed in view.deadlines for c in (due, passed)]
    assert view.failed_workflows is not None
    assert [c.link for c in [*cells, view.failed_workflows]] == [None] * (len(cells) + 1)
    assert view.open_total.count == 3 and view.failed_workflows.count == 2


def test_temporal_not_answering_shows_failed_workflows_as_not_known() -> None:
    cases = CaseAggregates(
        as_of=NOW, open_cases=[], due_within_7_days=[], overdue=[], failed_workflows=None,
        failed_since=NOW, namespace="default",
    )  # fmt: skip
    notes = NotificationAggregates(
        as_of=NOW, unacknowledged=[], breaches=[], dead_letters=[], dead_letters_last_24h=0,
        consumer_lag=[], parked_webhooks=0,
    )  # fmt: skip
    assert ops_view(cases, notes, "http://ui").failed_workflows is None


def _report() -> PublishedReport:
    table = Table(
        key="by_agency",
        title="Referrals by referring agency type",
        row_header="agency_type",
        columns=[Column(key="referrals", label="Referrals")],
        rows=[
            Row(label="police", counts={"referrals": 12}),
            Row(label="education", counts={"referrals": 3}),
        ],
        total=Row(label="total", counts={"referrals": 15}),
    )
    from mset_contract.reports import Report

    made = Report(
        name=ReportName.referrals,
        title="Referrals",
        scope=ReportScope(authorities=["northshire"], region=False),
        since=NOW - timedelta(days=365),
        until=NOW,
        generated_at=NOW,
        tables=[table],
    )
    return publish(made, 5)


def test_a_report_shows_each_table_with_its_own_chart_from_the_services_svg() -> None:
    published = _report()
    svg = report_svg(published)
    charts = charts_by_table(svg, "referrals")
    assert list(charts) == ["by_agency"]
    assert charts["by_agency"].startswith("<svg xmlns=") and 'role="img"' in charts["by_agency"]
    view = report_view(published.model_dump(mode="json"), svg)
    (t,) = view.tables
    assert t.head == ["Agency type", "Referrals"]
    # Suppressed for publication: 3 is [c], and so is the cell that would give it away.
    assert t.body == [["Police", "[c]"], ["Education", "[c]"]] and t.total == ["Total", "15"]
    assert t.chart == charts["by_agency"] and view.suppressed and view.where == "northshire"
