"""Each role is offered only what it can use, and refused the rest: the portal's own 403
page for a section its role never uses, and the services' refusal shown the same way."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack, accessible, shot, sign_in, until

# Each role, the sections its navigation offers, and pages outside its role.
ROLES = {
    "manager": (
        ["My work", "Inbox", "Reports"],
        ["/meetings", "/cases/{case}/pre-mset-decision", "/returned", "/awaiting", "/ops"],
    ),
    "coordinator": (
        ["My work", "Inbox", "Meetings", "Awaiting Pre-MSET", "Returned children", "Reports"],
        ["/cases/{case}/pre-mset-decision", "/cases/{case}/mset-review", "/ops"],
    ),
    "panel_member": (
        ["My work", "Inbox", "Meetings"],
        [
            "/cases/{case}/pre-mset-decision",
            "/returned",
            "/awaiting",
            "/cases/{case}/mset-review",
            "/reports",
            "/ops",
        ],
    ),
    "provider": (
        ["My work", "Inbox", "Returned children"],
        ["/meetings", "/cases/{case}/pre-mset-decision", "/awaiting", "/reports"],
    ),
    "chair": (
        ["My work", "Inbox", "Meetings", "Awaiting Pre-MSET"],
        ["/returned", "/reports/referrals", "/ops"],
    ),
    # The roles that read counts only: no case, inbox or meeting.
    "analyst": (["My work", "Reports"], ["/ops", "/inbox", "/cases/{case}", "/meetings"]),
    "dpo": (["My work", "Reports"], ["/ops", "/inbox", "/cases/{case}"]),
    "ops": (
        ["My work", "Operations"],
        ["/reports", "/reports/board-pack.pdf", "/inbox", "/cases/{case}", "/returned"],
    ),
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_sees_its_own_navigation_and_is_refused_the_rest(
    page: Page, stack: Stack, role: str
) -> None:
    offered, refused = ROLES[role]
    case = stack.submit("medium risk")
    sign_in(page, stack, role)
    accessible(page)
    expect(page.get_by_role("navigation", name="Menu").get_by_role("link")).to_have_text(offered)
    for path in refused:
        response = page.goto(stack.portal + path.format(case=case))
        assert response is not None and response.status == 403, (role, path)
        expect(page.get_by_role("heading", level=1)).to_have_text("You cannot see this page")
        accessible(page)
    if role == "manager":
        shot(page, "refused")


def test_a_provider_is_refused_a_case_its_agency_did_not_refer_by_the_service(
    page: Page, stack: Stack
) -> None:
    # The provider may open case pages (its own agency's referrals); the referral service,
    # which owns the record, decides which. The demo provider works for the referring
    # agency, so it sees the case's summary but not the panel papers.
    case = stack.submit("medium risk")
    until(lambda: stack.stage(case) == "awaiting_pre_mset", what="the case awaits Pre-MSET")
    sign_in(page, stack, "provider", then=f"/cases/{case}")
    accessible(page)
    expect(page.get_by_test_id("case-summary")).to_contain_text("Awaiting Pre-MSET")
    expect(page.get_by_test_id("timeline")).not_to_contain_text("Triaged by the rules")
    # A case that does not exist and one the caller may not see get the same page.
    response = page.goto(f"{stack.portal}/cases/00000000-0000-4000-8000-000000000000")
    assert response is not None and response.status == 404
    accessible(page)


def test_sign_in_refuses_a_wrong_token_and_sign_out_ends_the_session(
    page: Page, stack: Stack
) -> None:
    page.goto(f"{stack.portal}/")
    accessible(page)
    shot(page, "sign-in")
    page.fill("#token", "msetu_not-a-token")
    page.click("button:has-text('Sign in')")
    accessible(page)
    expect(page.locator(".govuk-error-summary")).to_contain_text("not valid")
    # An agency's system key is not a staff sign-in.
    page.fill("#token", stack.creds["api_key"])
    page.click("button:has-text('Sign in')")
    expect(page.locator(".govuk-error-summary")).to_contain_text("not a staff token")

    sign_in(page, stack, "coordinator")
    cookie = next(c for c in page.context.cookies() if c["name"] == "mset_portal_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("notice")).to_have_text("You have signed out.")
    page.goto(f"{stack.portal}/inbox")
    assert page.url.startswith(f"{stack.portal}/sign-in")
