"""A Pre-MSET panel run item by item: the chair records each item's outcome through the
meeting's decision route (a refusal beside its field; a second, different decision on a
decided item shown as such), then the minutes (view, Markdown, PDF); a panel member sees the
agenda and the minutes without the rationale."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, accessible, page_to, shot, sign_in, until, visit
from tests.browser.test_chair_decision import tab_to

RATIONALE = "Known to the youth offending team; no exploitation indicators this month."


def pre_mset_with(stack: Stack, case: str) -> tuple[str, str, int]:
    """A Pre-MSET meeting of Northshire called now (the coordinator's trigger), once its
    agenda holds ``case``: the meeting's id, the case's item id and its place on the agenda."""
    coordinator = {"Authorization": f"Bearer {stack.token('coordinator')}"}
    resp = httpx.post(
        f"{stack.meeting}/v1/schedules/northshire/pre_mset/trigger", headers=coordinator, timeout=30
    )
    assert resp.status_code == 202, resp.text

    def found() -> tuple[str, str, int] | None:
        meetings: dict[str, Any] = httpx.get(
            f"{stack.meeting}/v1/meetings",
            params={"local_authority": "northshire", "status": "scheduled", "limit": 50},
            headers=coordinator,
            timeout=30,
        ).json()
        for m in meetings["items"]:
            if m["kind"] != "pre_mset":
                continue
            agenda = httpx.get(
                f"{stack.meeting}/v1/meetings/{m['meeting_id']}/agenda",
                params={"limit": 200},
                headers=coordinator,
                timeout=30,
            ).json()
            for item in agenda["items"]:
                if item["referral_id"] == case:
                    return str(m["meeting_id"]), str(item["item_id"]), int(item["position"])
        return None

    return until(found, what=f"a Pre-MSET agenda holding {case}")


def test_a_chair_runs_the_panel_and_a_panel_member_reads_the_minutes_without_rationale(
    page: Page, stack: Stack, browser: Browser
) -> None:
    case = stack.submit("low risk")
    until(lambda: stack.stage(case) == "awaiting_pre_mset", what="the case awaits Pre-MSET")
    meeting, item, position = pre_mset_with(stack, case)

    sign_in(page, stack, "chair", then=f"/meetings/{meeting}")
    accessible(page)
    link = page.locator(f"a[href^='/meetings/{meeting}/items/{item}/decision']")
    page_to(page, link, "the case's decision link").click()
    accessible(page)
    form_url = page.url
    # "Not met" without a rationale: the case refuses it through the meeting's route.
    page.get_by_label("Does not meet the criteria").check()
    page.get_by_label("Low").check()
    page.get_by_role("button", name="Record the decision").click()
    accessible(page)
    expect(page.locator("#rationale-error")).to_contain_text("rationale is required")
    assert stack.stage(case) == "awaiting_pre_mset"

    # The rationale typed and the form sent with the keyboard.
    page.locator("#rationale").focus()
    page.keyboard.type(RATIONALE)
    tab_to(page, "form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.portal}/meetings/{meeting}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="decision on this item")).to_be_visible()
    until(lambda: stack.stage(case) == "closed_advice_given", what="the case closed with advice")
    shot(page, "panel-meeting")

    # A second chair's different decision on the decided item (a valid one: "meets" needs a
    # medium or high level) is shown as such.
    visit(page, form_url)
    page.get_by_label("Meets the MSET criteria").check()
    page.get_by_label("Medium").check()
    page.get_by_role("button", name="Record the decision").click()
    accessible(page)
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Another decision is recorded for this item already"
    )
    shot(page, "decision-conflict")

    # The minutes: the chair sees the rationale; Markdown and PDF download.
    visit(page, f"{stack.portal}/meetings/{meeting}/minutes")
    page_to(page, page.get_by_test_id("minutes").filter(has_text=RATIONALE), "the rationale")
    shot(page, "minutes-chair")
    md = page.request.get(f"{stack.portal}/meetings/{meeting}/minutes.md")
    assert md.status == 200 and "attachment" in md.headers["content-disposition"]
    assert RATIONALE in md.text()
    pdf = page.request.get(f"{stack.portal}/meetings/{meeting}/minutes.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    # A panel member: the agenda and the minutes, without the rationale.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        member = ctx.new_page()
        sign_in(member, stack, "panel_member", then=f"/meetings/{meeting}")
        accessible(member)
        expect(member.get_by_test_id("agenda-table")).to_be_visible()
        expect(member.get_by_role("link", name="Record the decision")).to_have_count(0)
        visit(member, f"{stack.portal}/meetings/{meeting}/minutes")
        # The page that holds the case's decision, which shows it without its rationale.
        minute = page_to(member, member.get_by_test_id(f"minute-{position}"), "the case's decision")
        expect(minute).to_contain_text("Does not meet the criteria")
        expect(member.get_by_test_id("minutes")).not_to_contain_text(RATIONALE)
        shot(member, "minutes-panel-member")
        md = member.request.get(f"{stack.portal}/meetings/{meeting}/minutes.md")
        assert md.status == 200 and RATIONALE not in md.text()
    finally:
        ctx.close()
