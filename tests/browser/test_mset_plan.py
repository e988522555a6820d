"""A chair records "meets criteria" and then an MSET plan: the plan's actions (owner agency,
due date, aim, target) over the referral API's review route, each refusal beside the field
it concerns (an owner agency that does not exist, a due date in the past), and a second
chair's different review of the same case shown as a conflict."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until

LONDON = ZoneInfo("Europe/London")


def fill_action(
    page: Page, n: int, what: str, owner: str, due: datetime, aim: str, to: str
) -> None:
    p = f"action-{n}-"
    page.fill(f"#{p}description", what)
    page.locator(f"#{p}owner").select_option(label=owner)
    page.fill(f"#{p}due", str(due.day))
    page.fill(f"#{p}due-month", str(due.month))
    page.fill(f"#{p}due-year", str(due.year))
    page.locator(f"input[name='{p}aim'][value='{aim}']").check()
    page.locator(f"input[name='{p}target'][value='{to}']").check()


def test_a_chair_records_meets_criteria_and_then_an_mset_plan(
    page: Page, stack: Stack, browser: Browser
) -> None:
    case = stack.submit("high risk")
    until(lambda: stack.stage(case) == "awaiting_pre_mset", what="the case awaits Pre-MSET")

    # "Meets criteria" at the suggested level; a second chair has the form open too.
    sign_in(page, stack, "chair", then=f"/cases/{case}/pre-mset-decision")
    accessible(page)
    other = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    second = other.new_page()
    sign_in(second, stack, "chair", then=f"/cases/{case}/pre-mset-decision")
    page.get_by_label("Meets the MSET criteria").check()
    page.get_by_role("button", name="Record the decision").click()
    page.wait_for_url(f"{stack.portal}/cases/{case}")
    accessible(page)
    expect(page.get_by_test_id("case-summary")).to_contain_text("Awaiting MSET")
    expect(page.get_by_role("button", name="Record the Pre-MSET decision")).to_have_count(0)

    # The second chair decides otherwise on the form opened before: shown as a conflict.
    second.get_by_label("More information needed from the referrer").check()
    second.get_by_role("button", name="Record the decision").click()
    accessible(second)
    expect(second.locator(".govuk-error-summary")).to_contain_text(
        "Another chair recorded a different decision on this case first (their outcome differs"
    )
    expect(second.locator("#outcome-error")).to_contain_text("Another chair")
    assert stack.stage(case) == "awaiting_mset"

    # The MSET review: the level agreed so far is preselected.
    page.get_by_role("button", name="Record the MSET review and plan").click()
    accessible(page)
    expect(page.locator("#level-high")).to_be_checked()
    review_id = page.locator("input[name=review_id]").input_value()

    # The second chair opens the same case's form now, before the first records the plan.
    second.goto(f"{stack.portal}/cases/{case}/mset-review")
    assert second.locator("input[name=review_id]").input_value() == review_id

    today = datetime.now(LONDON)
    fill_action(
        page, 0, "Serve a Child Abduction Warning Notice.", "Demo Children's Social Care",
        today - timedelta(days=1), "reduce", "perpetrator",
    )  # fmt: skip
    page.get_by_role("button", name="Add another action").click()
    accessible(page)
    # What was typed stays; a second action row is there.
    expect(page.locator("#action-0-description")).to_have_value(
        "Serve a Child Abduction Warning Notice."
    )
    fill_action(
        page, 1, "Disrupt the address where the child was found.", "Demo MSET Partnership",
        today + timedelta(days=20), "avoid", "location",
    )  # fmt: skip
    # An owner that is not in the directory (a page opened before an agency was removed).
    gone = str(uuid.uuid4())
    page.evaluate(
        """([id]) => { const s = document.querySelector('#action-1-owner');
        s.add(new Option('A removed agency', id)); s.value = id; }""",
        [gone],
    )
    page.get_by_role("button", name="Record the review and plan").click()
    accessible(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text(f"Action 2: No agency {gone}")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#action-1-owner")
    expect(page.locator("#action-1-owner-error")).to_contain_text("choose one from the list")
    assert stack.stage(case) == "awaiting_mset"

    # The directory's agency: now the case refuses the first action's date, in the past.
    page.locator("#action-1-owner").select_option(label="Demo MSET Partnership")
    page.get_by_role("button", name="Record the review and plan").click()
    accessible(page)
    expect(summary).to_contain_text("Action 1: The due date must be in the future")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#action-0-due")
    expect(page.locator("#action-0-due-error")).to_contain_text("must be in the future")
    expect(page.locator("#action-0-due")).to_have_class(
        "govuk-input govuk-date-input__input govuk-input--width-2 govuk-input--error"
    )
    shot(page, "mset-plan-refused")
    summary.get_by_role("link").click()
    expect(page.locator("#action-0-due")).to_be_focused()
    assert stack.stage(case) == "awaiting_mset"

    next_week = today + timedelta(days=7)
    page.fill("#action-0-due", str(next_week.day))
    page.fill("#action-0-due-month", str(next_week.month))
    page.fill("#action-0-due-year", str(next_week.year))
    page.get_by_role("button", name="Record the review and plan").click()
    page.wait_for_url(f"{stack.portal}/cases/{case}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="plan are recorded")).to_be_visible()
    expect(page.get_by_test_id("case-summary")).to_contain_text("Active plan")
    actions = page.get_by_test_id("open-actions")
    expect(actions).to_contain_text("Serve a Child Abduction Warning Notice.")
    expect(actions).to_contain_text("Demo Children's Social Care")
    expect(actions).to_contain_text("Disrupt the address where the child was found.")
    expect(actions).to_contain_text("Demo MSET Partnership")
    expect(page.get_by_test_id("timeline")).to_contain_text("MSET review")
    assert stack.stage(case) == "active_plan"
    shot(page, "case-plan")

    # The second chair's different review, on the form opened before: refused as such.
    second.get_by_label("Medium").check()
    second.fill("#rationale", "Lower: the child is settled in the new placement.")
    second.get_by_role("button", name="Record the review and plan").click()
    accessible(second)
    expect(second.locator(".govuk-error-summary")).to_contain_text(
        "Another chair recorded a different review of this case first (their"
    )
    expect(second.locator("#level-error")).to_contain_text("Another chair")
    # Nothing of it was recorded: the level agreed is still the first chair's.
    second.goto(f"{stack.portal}/cases/{case}")
    expect(second.get_by_test_id("agreed-level")).to_have_text("High")
    other.close()
