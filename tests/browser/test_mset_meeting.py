"""An MSET meeting run item by item: a coordinator calls the authority's MSET meeting for cases
awaiting MSET; the chair records an item's review and plan of two actions through the
meeting's decision route (an owner not in the directory, then a due date in the past, each
refused beside its action's field), a second, different decision on the item is shown as such,
and another item's plan is recorded with the keyboard alone; the minutes (view, Markdown,
PDF) show the actions and their owners to the chair, and to a panel member without the
rationales."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, accessible, page_to, shot, sign_in, until, visit
from tests.browser.test_chair_decision import tab_to
from tests.browser.test_mset_plan import fill_action

AUTHORITY = "eastmoor"
LONDON = ZoneInfo("Europe/London")
RATIONALE = "Seen with the child weekly; the exploitation is organised and continuing."
KEYBOARD_RATIONALE = "Placed out of area; the carer reports no missing episode since."
FIRST = "Serve a Child Abduction Warning Notice."
SECOND = "Disrupt the address where the child was found."
BY_KEYBOARD = "Refer to the National Referral Mechanism."


def awaiting_mset(stack: Stack) -> str:
    """A case of the authority the chair has found to meet the criteria (through the referral
    API, as the Pre-MSET panel's journey is tested on its own): its referral id."""
    case = stack.submit("high risk", authority=AUTHORITY)
    until(lambda: stack.stage(case) == "awaiting_pre_mset", what="the case awaits Pre-MSET")
    resp = httpx.post(
        f"{stack.referral}/v1/referrals/{case}/pre-mset-decision",
        json={"outcome": "meets_criteria", "level": "high", "decision_id": f"b-{case[:8]}"},
        headers={"Authorization": f"Bearer {stack.token('chair')}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    until(lambda: stack.stage(case) == "awaiting_mset", what="the case awaits MSET")
    return case


def mset_meeting_with(stack: Stack, cases: list[str]) -> tuple[str, dict[str, tuple[str, int]]]:
    """The authority's scheduled MSET meeting whose agenda holds ``cases``, once it is called
    and drawn up: its id, and each case's item id and place on the agenda."""
    coordinator = {"Authorization": f"Bearer {stack.token('coordinator')}"}

    def found() -> tuple[str, dict[str, tuple[str, int]]] | None:
        meetings: dict[str, Any] = httpx.get(
            f"{stack.meeting}/v1/meetings",
            params={"local_authority": AUTHORITY, "kind": "mset", "status": "scheduled"},
            headers=coordinator,
            timeout=30,
        ).json()
        for m in meetings["items"]:
            agenda = httpx.get(
                f"{stack.meeting}/v1/meetings/{m['meeting_id']}/agenda",
                params={"limit": 200},
                headers=coordinator,
                timeout=30,
            ).json()
            items = {
                i["referral_id"]: (str(i["item_id"]), int(i["position"])) for i in agenda["items"]
            }
            if all(c in items for c in cases):
                return str(m["meeting_id"]), {c: items[c] for c in cases}
        return None

    return until(found, what=f"an MSET agenda of {AUTHORITY} holding {cases}")


def test_a_chair_runs_an_mset_meeting_item_by_item_and_the_minutes_show_the_plans(
    page: Page, stack: Stack, browser: Browser
) -> None:
    case, other_case = awaiting_mset(stack), awaiting_mset(stack)

    # The coordinator calls the authority's MSET meeting; its agenda is the cases at MSET.
    sign_in(page, stack, "coordinator", then="/meetings")
    accessible(page)
    page.get_by_text("Call a meeting now").click()
    page.locator("#local_authority").select_option(AUTHORITY)
    page.locator("#kind").select_option(label="MSET")
    page.get_by_role("button", name="Call the meeting").click()
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="being called")).to_be_visible()
    meeting, items = mset_meeting_with(stack, [case, other_case])
    (item, position), (other_item, other_position) = items[case], items[other_case]
    page.reload()
    page.locator(f"a[href='/meetings/{meeting}']").click()
    accessible(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("MSET meeting")
    # Only a chair records a decision.
    expect(page.get_by_role("link", name="Record the review and plan")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    # The chair opens the first item's review from the agenda.
    sign_in(page, stack, "chair", then=f"/meetings/{meeting}")
    accessible(page)
    link = page.locator(f"a[href^='/meetings/{meeting}/items/{item}/review']")
    page_to(page, link, "the first case's review link").click()
    accessible(page)
    form_url = page.url
    other_form = f"/meetings/{meeting}/items/{other_item}/review?case={other_case}"
    expect(page.get_by_test_id("recorded-in")).to_contain_text("the meeting's minutes hold it")
    expect(page.locator("#level-high")).to_be_checked()  # the level agreed at Pre-MSET

    # A second chair has the same item's form open.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    second = ctx.new_page()
    sign_in(second, stack, "chair", then=form_url.removeprefix(stack.portal))

    today = datetime.now(LONDON)
    page.fill("#rationale", RATIONALE)
    fill_action(
        page, 0, FIRST, "Demo Children's Social Care", today - timedelta(days=1),
        "reduce", "perpetrator",
    )  # fmt: skip
    page.get_by_role("button", name="Add another action").click()
    accessible(page)
    expect(page.locator("#action-0-description")).to_have_value(FIRST)
    fill_action(
        page, 1, SECOND, "Demo MSET Partnership", today + timedelta(days=20), "avoid", "location"
    )
    # An owner the directory does not hold (a page opened before the agency was removed).
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

    # The directory's agency: now the meeting refuses the first action's date, in the past.
    page.locator("#action-1-owner").select_option(label="Demo MSET Partnership")
    page.get_by_role("button", name="Record the review and plan").click()
    accessible(page)
    expect(summary).to_contain_text("Action 1: The due date has passed: give a future date")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#action-0-due")
    expect(page.locator("#action-0-due-error")).to_contain_text("The due date has passed")
    expect(page.locator("#action-1-description")).to_have_value(SECOND)
    shot(page, "mset-item-refused")
    assert stack.stage(case) == "awaiting_mset"

    next_week = today + timedelta(days=7)
    page.fill("#action-0-due", str(next_week.day))
    page.fill("#action-0-due-month", str(next_week.month))
    page.fill("#action-0-due-year", str(next_week.year))
    page.get_by_role("button", name="Record the review and plan").click()
    page.wait_for_url(f"{stack.portal}/meetings/{meeting}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="review of this item")).to_be_visible()
    decided = page_to(page, page.get_by_test_id(f"item-{position}-decision"), "the first item")
    expect(decided).to_have_text("Reviewed: high risk, 2 actions")
    until(lambda: stack.stage(case) == "active_plan", what="the case's plan is active")

    # The second chair's different decision on the item, from the form opened before.
    second.get_by_label("Medium").check()
    second.fill("#rationale", "Lower: the child is settled in the new placement.")
    second.get_by_role("button", name="Record the review and plan").click()
    accessible(second)
    expect(second.locator(".govuk-error-summary")).to_contain_text(
        "Another decision is recorded for this item already"
    )
    # Who decided first and when, in words (not the service's timestamp).
    expect(second.locator("#level-error")).to_contain_text("already decided by Demo Chair")
    expect(second.locator("#level-error")).not_to_contain_text("+00:00")
    shot(second, "mset-item-conflict")
    ctx.close()

    # The other item, with the keyboard alone: Tab to each field, type, Space, Enter.
    visit(page, stack.portal + other_form)
    page.locator("body").focus()
    soon = today + timedelta(days=14)
    tab_to(page, "#rationale", presses=80)
    page.keyboard.type(KEYBOARD_RATIONALE)
    tab_to(page, "#action-0-description")
    page.keyboard.type(BY_KEYBOARD)
    page.keyboard.press("Tab")
    # A closed list takes the name typed (the browser's own type-ahead).
    page.keyboard.type("Demo Children")
    expect(page.locator("#action-0-owner option:checked")).to_have_text(
        "Demo Children's Social Care"
    )
    for box, value in (("due", soon.day), ("due-month", soon.month), ("due-year", soon.year)):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.id") == f"action-0-{box}"
        page.keyboard.type(str(value))
    # Nothing chosen yet: Tab lands on each group's first radio, and Space chooses it.
    for group in ("aim", "target"):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.id") == f"action-0-{group}"
        page.keyboard.press("Space")
        expect(page.locator(f"#action-0-{group}")).to_be_checked()
    tab_to(page, "form button[type=submit]:not([name])")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.portal}/meetings/{meeting}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="review of this item")).to_be_visible()
    until(lambda: stack.stage(other_case) == "active_plan", what="the other case's plan")

    # The minutes: the chair sees each item's plan, its owners and the rationale.
    visit(page, f"{stack.portal}/meetings/{meeting}/minutes")
    actions = page_to(page, page.get_by_test_id(f"minute-{position}-actions"), "the first plan")
    expect(actions).to_contain_text(FIRST)
    expect(actions).to_contain_text("Demo Children's Social Care")
    expect(actions).to_contain_text(SECOND)
    expect(actions).to_contain_text("Demo MSET Partnership")
    expect(actions).to_contain_text("Reduce the risk")
    expect(page.get_by_test_id(f"minute-{position}")).to_contain_text(RATIONALE)
    shot(page, "minutes-mset-chair")
    md = page.request.get(f"{stack.portal}/meetings/{meeting}/minutes.md")
    assert md.status == 200 and "attachment" in md.headers["content-disposition"]
    text = md.text()
    for words in (RATIONALE, KEYBOARD_RATIONALE, FIRST, SECOND, BY_KEYBOARD):
        assert words in text, words
    assert "owner Demo MSET Partnership" in text
    pdf = page.request.get(f"{stack.portal}/meetings/{meeting}/minutes.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    # A panel member: the plans without the rationales.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        member = ctx.new_page()
        sign_in(member, stack, "panel_member", then=f"/meetings/{meeting}")
        accessible(member)
        expect(member.get_by_role("link", name="Record the review and plan")).to_have_count(0)
        visit(member, f"{stack.portal}/meetings/{meeting}/minutes")
        for at, what in sorted([(position, FIRST), (other_position, BY_KEYBOARD)]):
            shown = page_to(member, member.get_by_test_id(f"minute-{at}-actions"), what)
            expect(shown).to_contain_text(what)
            expect(member.get_by_test_id("minutes")).not_to_contain_text(RATIONALE)
            expect(member.get_by_test_id("minutes")).not_to_contain_text(KEYBOARD_RATIONALE)
        shot(member, "minutes-mset-panel-member")
        md = member.request.get(f"{stack.portal}/meetings/{meeting}/minutes.md")
        text = md.text()
        assert md.status == 200 and FIRST in text and BY_KEYBOARD in text
        assert RATIONALE not in text and KEYBOARD_RATIONALE not in text
    finally:
        ctx.close()
