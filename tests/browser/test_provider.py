"""A Return Home Interview provider: the returned children of the authorities that
commission its agency, each with the 72-hour clock (time left, or overdue), and the
interview's outcome recorded with the keyboard alone, its mistakes in the GOV.UK error
summary beside their fields."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until, visit
from tests.browser.test_chair_decision import tab_to


def episode_status(stack: Stack, episode: str) -> str:
    resp = httpx.get(
        f"{stack.referral}/v1/missing-episodes/{episode}",
        headers={"X-API-Key": stack.creds["api_key"]},
        timeout=30,
    )
    return str(resp.json()["status"])


def test_a_provider_sees_the_clock_and_records_an_interview_by_keyboard(
    page: Page, stack: Stack
) -> None:
    fresh = stack.returned_child(hours_ago=1)
    late = stack.returned_child(hours_ago=80)

    sign_in(page, stack, "provider", then="/returned")

    def listed() -> bool:
        page.reload()
        rows = page.get_by_test_id("returned-table").locator("tbody tr")
        ids = [str(r.get_attribute("data-testid")) for r in rows.all()]
        return f"episode-{fresh}" in ids and f"episode-{late}" in ids

    # The episode's record reaches the referral service's table after its return.
    until(listed, what="both returned children in the provider's list")
    accessible(page)
    # The overdue child first (due soonest), the clock in words.
    rows = page.get_by_test_id("returned-table").locator("tbody tr")
    ids = [str(r.get_attribute("data-testid")) for r in rows.all()]
    assert ids.index(f"episode-{late}") < ids.index(f"episode-{fresh}")
    expect(page.get_by_test_id(f"episode-{late}").get_by_test_id("clock")).to_contain_text(
        "Overdue by 8 hours"
    )
    expect(page.get_by_test_id(f"episode-{fresh}").get_by_test_id("clock")).to_contain_text(
        "70 hours"
    )
    shot(page, "returned-children")

    # The form: an outcome without the offer's date is refused beside the date.
    page.get_by_test_id(f"episode-{fresh}").get_by_role("link").click()
    accessible(page)
    expect(page.get_by_test_id("clock")).to_contain_text("left")
    page.get_by_label("Interview completed").check()
    page.get_by_role("button", name="Record the outcome").click()
    accessible(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the date and time the interview was offered")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#offered_at")
    expect(page.locator("#offered_at-error")).to_be_visible()
    expect(page.get_by_label("Interview completed")).to_be_checked()
    # An offer before the child returned: the episode's own refusal, beside the date.
    page.fill("#offered_at", "1")
    page.fill("#offered_month", "1")
    page.fill("#offered_year", "2020")
    page.fill("#offered_time", "10:00")
    page.get_by_role("button", name="Record the outcome").click()
    accessible(page)
    expect(page.locator("#offered_at-error")).to_contain_text("before the child returned")
    shot(page, "rhi-refused")
    assert episode_status(stack, fresh) == "returned"

    # With the keyboard alone: "not offered", the reason, submit.
    visit(page, f"{stack.portal}/returned/{fresh}")
    page.locator("body").focus()
    tab_to(page, "input[name=outcome]")
    # Arrow keys move through a radio group and choose as they go.
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(page.locator("#outcome-not_offered")).to_be_checked()
    tab_to(page, "#reason_not_offered")
    page.keyboard.type("The young person had moved to a placement out of area.")
    tab_to(page, "form[action^='/returned/'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.portal}/returned")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="outcome is recorded")).to_be_visible()
    until(lambda: episode_status(stack, fresh) == "closed", what="the episode closed")
    # Closed, the child leaves the list.

    def gone() -> bool:
        page.reload()
        return page.get_by_test_id(f"episode-{fresh}").count() == 0

    until(gone, what="the child gone from the list")
    accessible(page)
    expect(page.get_by_test_id(f"episode-{late}")).to_be_visible()
