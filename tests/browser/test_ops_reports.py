"""The pages that show counts only: the ops dashboard (open cases by stage and authority,
deadlines, breaches, urgent escalations nobody acknowledged, dead letters, parked webhooks,
failed workflows, linking into the Temporal UI) and the board reports (each chart with its
table, filters that work without JavaScript, suppression, the board pack PDF)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, visit


def _figure(page: Page, name: str) -> int:
    text = page.get_by_test_id(f"figure-{name}").locator("p").nth(1).inner_text()
    return int(text) if text.isdigit() else -1


def test_ops_sees_an_urgent_escalation_and_the_open_cases_linking_into_temporal(
    page: Page, stack: Stack
) -> None:
    # A partner's high-risk submission: an open case, and an immediate escalation nobody has
    # acknowledged yet (in a manager's inbox).
    case = stack.submit("high risk", authority="eastmoor")
    stack.inbox_item_for("manager", case)
    sign_in(page, stack, "ops")
    accessible(page)
    page.get_by_role("link", name="Go to the operations dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
    accessible(page)
    assert _figure(page, "open") >= 1 and _figure(page, "urgent") >= 1
    urgent = page.get_by_test_id("ops-urgent")
    expect(urgent.get_by_role("row").filter(has_text="eastmoor")).not_to_have_count(0)
    # The authority's open cases link to its running case workflows in the Temporal UI.
    stages = page.get_by_test_id("ops-stages")
    row = stages.get_by_role("row").filter(has=page.get_by_role("rowheader", name="eastmoor"))
    link = row.get_by_role("link", name=re.compile("open cases in eastmoor"))
    href = link.get_attribute("href") or ""
    parts = urlsplit(href)
    assert parts.path == "/namespaces/default/workflows", href
    query = parse_qs(parts.query)["query"][0]
    assert 'MsetLocalAuthority = "eastmoor"' in query and "ReferralWorkflow" in query
    assert httpx.get(href, timeout=30).status_code == 200  # the Temporal UI answers it
    expect(page.get_by_test_id("parked-webhooks")).to_have_text("0")
    shot(page, "ops")
    # Counts only: the ops role opens no case.
    response = page.goto(f"{stack.portal}/cases/{case}")
    assert response is not None and response.status == 403


def test_an_analyst_reads_a_report_with_each_chart_beside_its_table_and_downloads_the_pack(
    page: Page, stack: Stack
) -> None:
    stack.submit("medium risk", authority="northshire")
    sign_in(page, stack, "analyst")
    page.get_by_role("link", name="Reports", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Board reports")
    accessible(page)
    # A period whose last day is before its first: the GOV.UK error summary, and the field.
    page.select_option("#area", "northshire")
    for end, (d, m, y) in (("from", ("2", "3", "2026")), ("to", ("1", "3", "2026"))):
        page.fill(f"#{end}-day", d)
        page.fill(f"#{end}-month", m)
        page.fill(f"#{end}-year", y)
    page.get_by_role("button", name="Apply filters").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("must be the same as or after its first day")
    summary.get_by_role("link").click()
    expect(page.locator("#to-day")).to_be_focused()
    accessible(page)
    for part in ("day", "month", "year"):
        page.fill(f"#from-{part}", "")
        page.fill(f"#to-{part}", "")
    page.check("#suppress")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_test_id("report-list").get_by_role("link", name="Referrals").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Referrals")
    expect(page.get_by_test_id("report-scope")).to_contain_text("northshire")
    expect(page.get_by_test_id("report-scope")).to_contain_text("small numbers suppressed")
    tables = page.get_by_test_id("report-table")
    expect(tables).not_to_have_count(0)
    for i in range(tables.count()):
        section = tables.nth(i)
        # Each chart (the service's SVG, described for a screen reader) beside its table.
        chart = section.locator("svg[role=img]")
        expect(chart).to_have_count(1)
        expect(chart.locator(":scope > title")).not_to_be_empty()
        expect(section.get_by_role("table")).to_have_count(1)
    accessible(page)
    shot(page, "report")
    # The other reports keep the filters (the sub-navigation's links carry them).
    page.get_by_role("navigation", name="Reports").get_by_role(
        "link", name="Pre-MSET outcomes"
    ).click()
    expect(page.get_by_test_id("report-scope")).to_contain_text("northshire")
    accessible(page)
    with page.expect_download() as got:
        page.get_by_role("link", name=re.compile("Download the board pack")).first.click()
    pdf = got.value
    assert pdf.suggested_filename.startswith("board-pack-northshire")
    with open(pdf.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"


def test_the_report_filters_work_without_javascript(browser: Browser, stack: Stack) -> None:
    ctx = browser.new_context(java_script_enabled=False, bypass_csp=True)
    try:
        page = ctx.new_page()
        sign_in(page, stack, "manager", then="/reports/missing")
        page.select_option("#area", "northshire")
        page.get_by_role("button", name="Apply filters").click()
        assert "area=northshire" in page.url
        expect(page.get_by_test_id("report-scope")).to_contain_text("northshire")
        expect(page.get_by_test_id("report-table")).not_to_have_count(0)
    finally:
        ctx.close()


def test_the_dpo_reads_the_reports(page: Page, stack: Stack) -> None:
    sign_in(page, stack, "dpo", then="/reports/attendance")
    expect(page.get_by_role("heading", level=1)).to_have_text("Meeting attendance")
    visit(page, f"{stack.portal}/reports/data-quality?area=region")
    expect(page.get_by_test_id("report-table")).not_to_have_count(0)
