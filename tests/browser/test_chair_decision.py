"""A chair's case page and the Pre-MSET decision: the case's refusal shown as a GOV.UK
error summary, its message beside the field it concerns; then a decision made with the
keyboard alone."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until, visit


def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until ``selector`` has the focus: it is reachable from the keyboard."""
    for _ in range(presses):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never took the focus in {presses} presses of Tab")


def test_a_refused_decision_is_shown_next_to_its_field_then_decided_by_keyboard(
    page: Page, stack: Stack
) -> None:
    referral = stack.submit("high risk")
    until(lambda: stack.stage(referral) == "awaiting_pre_mset", what="the case awaits Pre-MSET")

    sign_in(page, stack, "chair", then=f"/cases/{referral}")
    accessible(page)
    # The case's timeline: the submission, and the triage with every rule that fired and why.
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("Referral submitted")
    expect(timeline).to_contain_text("Triaged by the rules")
    expect(timeline).to_contain_text("The rules suggest high risk")
    expect(timeline).to_contain_text("current disclosure of sexual abuse")
    expect(page.get_by_test_id("suggested-level")).to_contain_text("High")
    shot(page, "case-chair")

    page.get_by_role("button", name="Record the Pre-MSET decision").click()
    accessible(page)
    # "Not met" without a rationale: the case refuses it, and nothing is recorded.
    page.get_by_label("Does not meet the criteria").check()
    page.get_by_role("button", name="Record the decision").click()
    accessible(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("A rationale is required when the criteria are not met")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#rationale")
    expect(page.locator("#rationale-error")).to_contain_text("A rationale is required")
    expect(page.locator("#rationale")).to_have_attribute(
        "aria-describedby", "rationale-hint rationale-error"
    )
    # The chair's choices are kept on the page shown again.
    expect(page.get_by_label("Does not meet the criteria")).to_be_checked()
    shot(page, "decision-refused")
    assert stack.stage(referral) == "awaiting_pre_mset"
    # The summary's link takes the chair to the field.
    summary.get_by_role("link").click()
    expect(page.locator("#rationale")).to_be_focused()

    # Now with the keyboard alone: choose "meets the criteria", keep the level, submit.
    visit(page, f"{stack.portal}/cases/{referral}/pre-mset-decision")
    page.locator("body").focus()
    tab_to(page, "input[name=outcome]")
    # Nothing is chosen yet, so Tab lands on the group's first radio; Space chooses it.
    assert page.evaluate("() => document.activeElement.value") == "meets_criteria"
    page.keyboard.press("Space")
    expect(page.locator("#outcome")).to_be_checked()
    expect(page.locator("#level-high")).to_be_checked()  # the suggested level, preselected
    tab_to(page, "form[action$='pre-mset-decision'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.portal}/cases/{referral}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="decision is recorded")).to_be_visible()
    expect(page.get_by_test_id("agreed-level")).to_have_text("High")
    expect(page.get_by_test_id("timeline")).to_contain_text("Meets the MSET criteria.")
    assert stack.stage(referral) == "awaiting_mset"
    shot(page, "case-decided")
