"""A coordinator calls a Pre-MSET meeting: its agenda is the cases awaiting Pre-MSET, each
a link to the case's page and its timeline."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until, visit


def test_a_coordinator_calls_pre_mset_and_opens_a_waiting_case(page: Page, stack: Stack) -> None:
    # Eastmoor: the other journeys refer Northshire's children.
    case = stack.submit("medium risk", authority="eastmoor")
    until(lambda: stack.stage(case) == "awaiting_pre_mset", what="the case awaits Pre-MSET")

    sign_in(page, stack, "coordinator", then="/meetings")
    accessible(page)
    page.get_by_text("Call a meeting now").click()
    page.get_by_label("Local authority").select_option("eastmoor")
    page.get_by_label("Meeting").select_option("pre_mset")
    page.get_by_role("button", name="Call the meeting").click()
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="being called")).to_be_visible()

    def called() -> bool:
        page.reload()
        return page.get_by_role("link", name="Pre-MSET meeting").count() > 0

    until(called, what="the called Pre-MSET meeting in the list")
    accessible(page)
    shot(page, "meetings")
    page.get_by_role("link", name="Pre-MSET meeting").first.click()
    accessible(page)
    agenda = page.get_by_test_id("agenda-table")
    link = agenda.locator(f"a[href='/cases/{case}']")
    expect(link).to_be_visible()
    expect(agenda).to_contain_text("New referral")
    shot(page, "agenda")

    link.click()
    accessible(page)
    expect(page.get_by_test_id("case-summary")).to_contain_text("Awaiting Pre-MSET")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("Referral submitted")
    expect(timeline).to_contain_text("Triaged by the rules")
    # The coordinator prepares; the chair decides.
    expect(page.get_by_role("button", name="Record the Pre-MSET decision")).to_have_count(0)
    visit(page, f"{stack.portal}/")
    shot(page, "home-coordinator")
