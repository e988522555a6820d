"""The browser tier: the staff portal in Debian's Chromium (headless, launched by path:
nothing is downloaded), against the whole stack as `make dev` starts it, one stack for the
whole tier. Every page a test visits is checked with axe-core (vendored through the portal's
npm lockfile) and must have no violations; the main pages are photographed: into
docs/portal/ for the README when MSET_PORTAL_SCREENSHOTS=docs (`make browser-shots`), else
into the run's temporary folder, so a test run leaves the checkout as it found it."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from mset_contract.referral import referral_examples
from tests.support.stack import ROOT, RunningStack, stack_env, start_stack

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "services" / "portal" / "node_modules" / "axe-core" / "axe.min.js"
DOC_SCREENSHOTS = ROOT / "docs" / "portal"
# The stack's first start on a loaded 2-core machine, then each test's few pages.
pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")


def until(check: Callable[[], T | None], within: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; return that (never a fixed sleep)."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f} s")
        time.sleep(0.25)


@dataclass
class Stack:
    """The running stack: where the portal and the referral API are, and the demo
    credentials `make dev` made (the agency's API key, each demo role's staff token)."""

    portal: str
    referral: str
    notifications: str
    meeting: str
    creds: dict[str, str]

    def token(self, role: str) -> str:
        return self.creds[f"{role}_token"]

    def submit(self, level: str = "high risk", authority: str | None = None) -> str:
        """A partner system's submission of the Risk Assessment Tool (the demo agency's
        key): the referral id."""
        tool: dict[str, Any] = json.loads(json.dumps(referral_examples()[level]))
        tool["partner_reference"] = f"browser-{uuid.uuid4().hex[:10]}"
        tool["child"]["agency_child_ref"] = f"child-{uuid.uuid4().hex[:6]}"
        if authority is not None:
            tool["child"]["local_authority"] = authority
        resp = httpx.post(
            f"{self.referral}/v1/referrals",
            json=tool,
            headers={"X-API-Key": self.creds["api_key"]},
            timeout=30,
        )
        assert resp.status_code == 202, resp.text
        referral_id: str = resp.json()["referral_id"]
        return referral_id

    def returned_child(self, hours_ago: float, authority: str = "northshire") -> str:
        """A child the police (the demo agency's key) reported missing and then found
        ``hours_ago``: the episode id, once its return is recorded."""
        key = {"X-API-Key": self.creds["api_key"]}
        now = datetime.now(UTC)
        report = {
            "partner_reference": f"MFH-{uuid.uuid4().hex[:8]}",
            "child": {
                "agency_child_ref": f"NP-{uuid.uuid4().hex[:6]}",
                "date_of_birth": (now - timedelta(days=14 * 365)).date().isoformat(),
                "local_authority": authority,
            },
            "reported_at": (now - timedelta(hours=hours_ago + 6)).isoformat(),
            "circumstances": "Left the children's home after an argument.",
        }
        resp = httpx.post(f"{self.referral}/v1/missing-episodes", json=report, headers=key)
        assert resp.status_code == 202, resp.text
        episode: str = resp.json()["episode_id"]
        back = {"returned_at": (now - timedelta(hours=hours_ago)).isoformat()}

        def returned() -> bool:
            # The episode's workflow takes the return once it has started.
            path = f"{self.referral}/v1/missing-episodes/{episode}/return"
            return httpx.post(path, json=back, headers=key, timeout=30).status_code == 200

        until(returned, what=f"the return of {episode} recorded")
        return episode

    def stage(self, referral_id: str) -> str:
        resp = httpx.get(
            f"{self.referral}/v1/referrals/{referral_id}",
            headers={"X-API-Key": self.creds["api_key"]},
            timeout=30,
        )
        return str(resp.json()["stage"]) if resp.status_code == 200 else ""

    def inbox_item_for(self, role: str, referral_id: str) -> str:
        """The id of the escalation about ``referral_id`` in ``role``'s inbox, once it is
        there (the escalation travels workflow → broker → the inbox consumer)."""

        def find() -> str | None:
            resp = httpx.get(
                f"{self.notifications}/v1/inbox",
                params={"state": "all", "limit": 200},
                headers={"Authorization": f"Bearer {self.token(role)}"},
                timeout=30,
            )
            resp.raise_for_status()
            for item in resp.json()["items"]:
                if item["case_id"] == referral_id:
                    return str(item["id"])
            return None

        return until(find, what=f"an inbox item about {referral_id} for the {role}")


# Package scope, not session: Playwright's sync API holds an event loop of its own in the main
# thread while it runs, and every async test after it in the same pytest process (make test
# runs all tiers in one: ADR 0012) would find a loop already running. The browser tier starts
# and stops it around its own tests.
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (npm ci in services/portal)")
    folder = tmp_path_factory.mktemp("browser-stack")
    env = stack_env(folder / "data")
    # Two rows a page, so a handful of escalations already pages.
    env["MSET_PORTAL_PAGE_SIZE"] = "2"
    running: RunningStack = start_stack(env, folder / "stack.log")
    try:
        creds = json.loads((folder / "data" / "demo-credentials.json").read_text())
        url = "http://127.0.0.1:{}".format
        yield Stack(
            portal=url(env["MSET_PORTAL_PORT"]),
            referral=url(env["MSET_REFERRAL_PORT"]),
            notifications=url(env["MSET_NOTIFICATIONS_PORT"]),
            meeting=url(env["MSET_MEETING_PORT"]),
            creds=creds,
        )
    finally:
        assert running.stop() == 0, (folder / "stack.log").read_text()[-3000:]


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # bypass_csp: axe-core is injected as an inline script, which the portal's own content
    # security policy (script-src 'self') rightly refuses.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    try:
        yield p
    finally:
        p.close()


def accessible(page: Page) -> None:
    """axe-core over the page as it stands: no violations (WCAG 2.2 AA and best practice)."""
    # After a click that navigates, the new document may be committed but not yet parsed:
    # axe (and its script tag) waits for it.
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in result["violations"]
    ]
    assert violations == [], f"{page.url}:\n" + "\n".join(violations)


def page_to(page: Page, wanted: Locator, what: str) -> Locator:
    """Follow "Next page" (as a person would) until ``wanted`` is on the page: lists page
    through their rows, and on the tier's shared stack other tests' rows come first."""
    while wanted.count() == 0:
        following = page.locator("a[rel=next]")
        assert following.count() == 1, f"{what}: not on any page of {page.url}"
        following.click()
        accessible(page)
    return wanted


def shot(page: Page, name: str) -> None:
    """A screenshot of the whole page: docs/portal/<name>.png when asked for, else beside the
    run's other temporary files."""
    if os.environ.get("MSET_PORTAL_SCREENSHOTS") == "docs":
        folder = DOC_SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "mset-portal-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, stack: Stack, role: str, then: str = "/") -> None:
    page.goto(f"{stack.portal}{then}")
    assert page.url.startswith(f"{stack.portal}/sign-in"), page.url
    page.fill("#token", stack.token(role))
    page.click("button:has-text('Sign in')")
    expect(page.get_by_test_id("signed-in-as")).to_be_visible()


def visit(page: Page, url: str) -> None:
    """Go to ``url`` and check the page's accessibility."""
    page.goto(url)
    accessible(page)
