"""A manager's escalation inbox, fed by a real partner API submission of a high-risk
referral: the list (paged), the item, acknowledge, mark actioned with a note."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until, visit


def test_a_manager_acknowledges_and_actions_a_high_risk_escalation(
    page: Page, stack: Stack
) -> None:
    # Three partner submissions, so the inbox (two rows a page here) has a second page.
    referrals = [stack.submit("high risk") for _ in range(3)]
    items = [stack.inbox_item_for("manager", r) for r in referrals]

    sign_in(page, stack, "manager", then="/inbox")
    accessible(page)
    # The navigation offers what a manager can use, nothing else.
    nav = page.get_by_role("navigation", name="Menu")
    expect(nav.get_by_role("link")).to_have_text(["My work", "Inbox", "Reports"])

    # Two rows a page: walking the pages shows every escalation once.
    table = page.get_by_test_id("inbox-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    shot(page, "inbox")
    seen: list[str] = []
    while True:
        seen += [
            str(a.get_attribute("href")) for a in table.locator("tbody a[href^='/inbox/']").all()
        ]
        following = page.get_by_role("link", name="Next page")
        if following.count() == 0:
            break
        following.click()
        accessible(page)
    assert sorted(h for h in seen if h.removeprefix("/inbox/") in items) == sorted(
        f"/inbox/{i}" for i in items
    )
    assert len(seen) == len(set(seen))
    if page.get_by_role("link", name="First page").count():
        page.get_by_role("link", name="First page").click()

    visit(page, f"{stack.portal}/inbox/{items[2]}")
    expect(page.get_by_role("heading", level=1)).to_have_text("High risk")
    expect(page.get_by_test_id("acknowledged")).to_have_text("Not yet")
    shot(page, "inbox-item")

    page.get_by_role("button", name="Acknowledge").click()
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="acknowledged")).to_be_visible()
    expect(page.get_by_test_id("acknowledged")).not_to_have_text("Not yet")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    # An empty note is refused as GOV.UK errors are shown: a summary linking to the field.
    page.get_by_role("button", name="Mark as actioned").click()
    accessible(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter what was done")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#note")
    expect(page.locator("#note-error")).to_contain_text("Enter what was done")

    page.get_by_label("What was done").fill("Strategy discussion booked with the police.")
    page.get_by_role("button", name="Mark as actioned").click()
    accessible(page)
    expect(page.get_by_test_id("actioned")).to_contain_text(
        "Strategy discussion booked with the police."
    )
    # Actioned, it has left the open list.
    visit(page, f"{stack.portal}/inbox?state=open")
    expect(page.locator(f"a[href='/inbox/{items[2]}']")).to_have_count(0)
    visit(page, f"{stack.portal}/inbox?state=actioned")
    expect(page.locator(f"a[href='/inbox/{items[2]}']")).to_be_visible()


def test_the_inbox_works_without_javascript(browser: Browser, stack: Stack) -> None:
    referral = stack.submit("high risk")
    item = stack.inbox_item_for("manager", referral)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, stack, "manager", then=f"/inbox/{item}")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_test_id("acknowledged")).not_to_have_text("Not yet")
        page.get_by_label("What was done").fill("Called the social worker.")
        page.get_by_role("button", name="Mark as actioned").click()
        expect(page.get_by_test_id("actioned")).to_contain_text("Called the social worker.")
    finally:
        context.close()


def test_the_escalation_reaches_the_inbox_only_after_the_partner_submits(
    page: Page, stack: Stack
) -> None:
    # The home page lists what waits for acknowledgement: a new submission appears there.
    sign_in(page, stack, "manager")
    referral = stack.submit("high risk")
    item = stack.inbox_item_for("manager", referral)

    def listed() -> bool:
        page.reload()
        return page.locator(f"a[href='/inbox/{item}']").count() == 1

    until(listed, what="the new escalation on the manager's home page")
    accessible(page)
    shot(page, "home-manager")
