"""A coordinator prepares a Pre-MSET meeting from submitted referrals: the cases awaiting
Pre-MSET in an authority (paged), the meeting called from there, its agenda holding them,
and the attendance recorded by agency (a missing agency shown beside its row first)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, accessible, page_to, shot, sign_in, until

AUTHORITY = "eastmoor"


def called_with(stack: Stack, case: str) -> str | None:
    """A scheduled Pre-MSET meeting of the authority whose agenda holds ``case``, if one is
    called yet (what the coordinator waits for after calling it)."""
    coordinator = {"Authorization": f"Bearer {stack.token('coordinator')}"}
    meetings: dict[str, Any] = httpx.get(
        f"{stack.meeting}/v1/meetings",
        params={"local_authority": AUTHORITY, "status": "scheduled", "kind": "pre_mset"},
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
        if case in [i["referral_id"] for i in agenda["items"]]:
            return str(m["meeting_id"])
    return None


def agenda_cases(page: Page) -> list[str]:
    """Every case the agenda links to, following its pages as a person would."""
    found: list[str] = []
    while True:
        table = page.get_by_test_id("agenda-table")
        found += [
            str(a.get_attribute("href")).removeprefix("/cases/")
            for a in table.locator("a[href^='/cases/']").all()
        ]
        following = page.locator("a[rel=next]")
        if following.count() == 0:
            return found
        following.click()
        accessible(page)


def test_a_coordinator_prepares_a_pre_mset_meeting_from_submitted_referrals(
    page: Page, stack: Stack
) -> None:
    cases = [stack.submit(level, authority=AUTHORITY) for level in ("high risk", "medium risk")]

    def awaiting() -> bool:
        return all(stack.stage(c) == "awaiting_pre_mset" for c in cases)

    until(awaiting, what="the cases await Pre-MSET")

    # The cases awaiting Pre-MSET in the authority, a page at a time (two rows a page here).
    sign_in(page, stack, "coordinator", then="/awaiting")
    accessible(page)
    page.get_by_label("Local authority", exact=True).select_option(AUTHORITY)
    page.get_by_role("button", name="Show the cases").click()
    accessible(page)
    assert f"local_authority={AUTHORITY}" in page.url
    table = page.get_by_test_id("awaiting-table")
    expect(table).to_contain_text(AUTHORITY)
    expect(table).not_to_contain_text("northshire")
    shot(page, "awaiting")
    for case in cases:
        row = page_to(page, page.locator(f"a[href='/cases/{case}']"), f"the case {case}")
        expect(row).to_be_visible()

    # Call the authority's Pre-MSET meeting from the list.
    page.get_by_label("Local authority of the meeting").select_option(AUTHORITY)
    page.get_by_role("button", name="Call a Pre-MSET meeting").click()
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="being called")).to_be_visible()
    meeting = until(lambda: called_with(stack, cases[-1]), what="the called meeting's agenda")

    # Its agenda: the cases submitted, among the authority's others awaiting.
    page.reload()
    link = page.locator(f"a[href='/meetings/{meeting}']")
    expect(link).to_have_count(1)  # the newest meeting, on the list's first page
    link.click()
    accessible(page)
    expect(page.get_by_test_id("attendance-empty")).to_be_visible()
    on_agenda = agenda_cases(page)
    assert set(cases) <= set(on_agenda), on_agenda
    assert len(on_agenda) == len(set(on_agenda))

    # The attendance, by agency: the chair present, another agency's apologies.
    page.goto(f"{stack.portal}/meetings/{meeting}")
    page.get_by_role("button", name="Record the attendance").click()
    page.wait_for_url(f"{stack.portal}/meetings/{meeting}/attendance")
    accessible(page)
    page.get_by_label("Name (person 1)").fill("DI Sam Okafor")
    page.get_by_label("Agency (person 1)").select_option(label="Demo MSET Partnership")
    page.get_by_label("Attending as (person 1)").select_option("chair")
    page.get_by_role("button", name="Add another person").click()
    accessible(page)
    # What was typed stays; a second row is there.
    expect(page.get_by_label("Name (person 1)")).to_have_value("DI Sam Okafor")
    page.get_by_label("Name (person 2)").fill("Jo Patel")
    page.get_by_test_id("person-1").get_by_label("Sent apologies").check()
    page.get_by_role("button", name="Record the attendance").click()
    # No agency for person 2: the summary says so and links to the field beside it.
    accessible(page)
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Person 2: select the agency they represent")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#person-1-agency")
    expect(page.locator("#person-1-agency-error")).to_contain_text("select the agency")
    expect(page.get_by_test_id("person-1").get_by_label("Sent apologies")).to_be_checked()
    shot(page, "attendance-refused")
    page.get_by_label("Agency (person 2)").select_option(label="Demo Children's Social Care")
    page.get_by_role("button", name="Record the attendance").click()
    page.wait_for_url(f"{stack.portal}/meetings/{meeting}")
    accessible(page)
    expect(page.get_by_role("alert").filter(has_text="attendance is recorded")).to_be_visible()
    attendance = page.get_by_test_id("attendance")
    expect(attendance).to_contain_text("DI Sam Okafor")
    expect(attendance.locator("div", has_text="Agencies present")).to_contain_text(
        "Demo MSET Partnership"
    )
    expect(attendance.locator("div", has_text="Apologies")).to_contain_text(
        "Demo Children's Social Care"
    )
    shot(page, "meeting-prepared")
