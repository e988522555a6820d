"""The ops dashboard (deploy/grafana/mset-ops.json) and the alert rules
(deploy/prometheus/alerts.yaml, and the same as a PrometheusRule in deploy/k8s/base) parse,
every query in them is PromQL that parses (promql-parser, the Greptime parser that follows
Prometheus's grammar), and every metric a query names is one the services really export:
the names come from the code that exports them (tests/support/exported_metrics.py), so a
renamed metric or a typo in a query fails here, not on a blank panel or a silent alert.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from mset_contract import temporal as temporal_contract
from tests.support.exported_metrics import exported_metric_names, sdk_metric_names
from tests.unit.test_deploy_manifests import named, render

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "mset-ops.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# What the issue asks an alert for (issue 12, item 5), by the rule that answers it.
REQUIRED_ALERTS = {
    "MsetBreachRateRising",  # breach rate rising
    "MsetDeadLetters",  # dead letters present
    "MsetConsumerLagGrowing",  # consumer lag growing
    "MsetWorkflowTasksFailing",  # workflow tasks failing
    "MsetWorkerAbsent",  # a worker absent
}


def alert_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(ALERTS.read_text())["groups"])


def rules() -> list[dict[str, Any]]:
    return [r for g in alert_groups() for r in g["rules"]]


@functools.cache
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def metric_names(expr: str) -> set[str]:
    """The metric every selector in ``expr`` names; fails on a query that does not parse or
    a selector without a metric name (it would match whatever a scrape holds)."""
    names: set[str] = set()
    nameless: list[str] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            else:
                nameless.append(str(node))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    assert not nameless, f"selectors without a metric name in {expr!r}: {nameless}"
    return names


# Grafana's built-in interval variables, and a stand-in for the dashboard's own variables,
# so that a panel's query is PromQL as Grafana would send it.
GRAFANA_INTERVALS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def as_sent(expr: str) -> str:
    return GRAFANA_VARIABLE.sub("all", GRAFANA_INTERVALS.sub("5m", expr))


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable."""
    out = [(f"panel {p['title']!r}", as_sent(t["expr"])) for p in panels() for t in p["targets"]]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            # Grafana's label_values(metric, label): the metric is a selector.
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert found, f"variable {var['name']}: {query!r} is not label_values(metric, label)"
            out.append((f"variable {var['name']!r}", found.group(1)))
    return out


def test_the_alert_rules_parse_and_have_what_an_on_call_person_needs() -> None:
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names)), names
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description", "runbook_url"} <= rule["annotations"].keys()


def test_every_alert_has_a_runbook_section_in_the_operations_guide() -> None:
    # GitHub's anchors: a heading lower-cased, spaces to hyphens, punctuation dropped.
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, rule["alert"]


def test_every_alert_query_parses_and_names_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], sorted(used - exported))


def test_the_worker_alert_watches_every_task_queue_the_platform_has() -> None:
    (absent,) = [r for r in rules() if r["alert"] == "MsetWorkerAbsent"]
    watched = set(re.findall(r'task_queue="([^"]+)"', absent["expr"]))
    queues = {
        v
        for k, v in vars(temporal_contract).items()
        if k.endswith("_TASK_QUEUE") and isinstance(v, str)
    }
    assert queues and watched == queues


def test_the_dashboard_parses_and_every_query_names_only_exported_metrics() -> None:
    d = dashboard()
    assert d["uid"] and d["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    exported = exported_metric_names()
    queries = dashboard_queries()
    assert len(queries) >= 15
    for where, expr in queries:
        used = metric_names(expr)
        assert used, where
        assert used <= exported, (where, sorted(used - exported))
    # Every panel asks the dashboard's Prometheus variable, so an import can choose it.
    for p in panels():
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]


def test_the_dashboard_shows_the_ops_view_the_issue_asks_for() -> None:
    used: set[str] = set()
    for _, expr in dashboard_queries():
        used |= metric_names(expr)
    wanted = {
        "mset_http_requests_total",  # intake rate
        "mset_http_request_errors_total",  # errors
        "temporal_workflow_task_execution_failed",  # workflow failures
        "temporal_activity_execution_failed",  # activity failures
        "temporal_workflow_task_schedule_to_start_latency_bucket",  # task queue backlog
        "temporal_activity_schedule_to_start_latency_bucket",
        "mset_deadlines_due_7d",  # deadlines by authority
        "mset_deadlines_overdue",
        "mset_breaches",  # breaches by authority
        "mset_consumer_lag_events",  # consumer lag
        "mset_dead_lettered_total",  # dead letters
        "mset_webhooks_parked",  # parked webhooks
    }
    assert wanted <= used, sorted(wanted - used)
    by_authority = [
        t["expr"] for p in panels() for t in p["targets"] if "local_authority" in t["expr"]
    ]
    assert any("mset_breaches" in e for e in by_authority)
    assert any("mset_deadlines_due_7d" in e for e in by_authority)


def test_the_name_check_fails_on_a_metric_no_service_exports() -> None:
    # So that the checks above can fail: a misspelt name, a counter without its _total, the
    # SDK's counters with one, and a query that does not parse.
    exported = exported_metric_names()
    assert not metric_names("rate(mset_http_request_total[5m])") <= exported
    assert not metric_names("rate(mset_dead_lettered[5m])") <= exported
    assert not metric_names("rate(temporal_workflow_task_execution_failed_total[5m])") <= exported
    assert metric_names("rate(temporal_workflow_task_execution_failed[5m])") <= exported
    with pytest.raises(ValueError):
        metric_names("sum(rate(mset_http_requests_total[5m])")
    with pytest.raises(AssertionError):
        metric_names('{job="mset"}')


def test_the_sdk_names_are_the_workers_real_ones() -> None:
    # Names the integration tier has seen on a real worker's SDK port
    # (tests/integration/test_metrics.py checks the whole scrape against this set).
    assert {
        "temporal_request",
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_worker_task_slots_available",
    } <= sdk_metric_names()


def test_the_prometheus_rule_in_the_manifests_is_the_alert_file(overlay: str) -> None:
    rule = named(render(overlay), "PrometheusRule", "mset-alerts")
    assert rule["spec"]["groups"] == alert_groups()


@pytest.fixture(params=("development", "production"))
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)
