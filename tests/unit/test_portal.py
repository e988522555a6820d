"""The portal's own logic, in process (its browser journeys against the real stack are
tests/browser): sessions and their idle time-out, the CSRF check on every form, the cookie's
flags, the role table, and where a case's refusal is shown on the decision form."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mset_contract.auth import Principal
from mset_contract.operations import (
    AuthorityCount,
    CaseAggregates,
    NotificationAggregates,
    StageCount,
)
from mset_contract.vocab import AgencyType, Role, Stage
from services.notifications.schemas import InboxItemPublic, InboxPage
from services.portal import domain
from services.portal.api import COOKIE, _in_words, create_app
from services.portal.backend import Backend
from services.portal.sessions import MemorySessionStore, SignedIn, SignInRefused
from services.portal.settings import PortalSettings

TOKEN = "msetu_test-token"


def principal(role: Role) -> Principal:
    return Principal(
        kind="user",
        agency_id=uuid.uuid4(),
        agency_name="Northshire Children's Services",
        agency_type=AgencyType.childrens_social_care,
        user_id=uuid.uuid4(),
        user_name="Test Person",
        role=role,
        authorities=("northshire",),
    )


class FakeSignIn:
    def __init__(self, role: Role) -> None:
        self.role = role

    async def sign_in(self, form: dict[str, str]) -> SignedIn:
        if form.get("token") != TOKEN:
            raise SignInRefused("token", "The staff token is not valid, or no longer valid")
        return SignedIn(TOKEN, principal(self.role))


class EmptyInbox(Backend):
    """The services, answering as an empty partnership would."""

    def __init__(self) -> None:
        super().__init__("http://referral", "http://meeting", "http://notifications", 1.0)
        self.acknowledged: list[uuid.UUID] = []

    async def inbox(self, credential: str, state: object, cursor: object, limit: int) -> InboxPage:
        assert credential == TOKEN
        return InboxPage(items=[])

    async def acknowledge(self, credential: str, item_id: uuid.UUID) -> InboxItemPublic:
        self.acknowledged.append(item_id)
        raise AssertionError("not reached in these tests")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def portal(
    role: Role = Role.manager,
    environment: str = "development",
    clock: Clock | None = None,
    backend: EmptyInbox | None = None,
    **settings_: object,
) -> tuple[httpx.AsyncClient, EmptyInbox]:
    settings = PortalSettings.model_validate(
        {"environment": environment, "session_idle_minutes": 30, **settings_}
    )
    backend = backend or EmptyInbox()
    store = MemorySessionStore(idle=timedelta(minutes=30), clock=clock or Clock())
    app = create_app(settings, sessions=store, sign_in=FakeSignIn(role), backend=backend)
    transport = httpx.ASGITransport(app=app)
    return (
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", follow_redirects=True),
        backend,
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    page = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={"token": token, "csrf_token": csrf_of(page.text), "next": "/inbox"},
        follow_redirects=False,
    )


async def test_signing_in_starts_a_new_session_in_an_httponly_samesite_cookie() -> None:
    async with portal()[0] as client:
        await client.get("/sign-in")
        before = client.cookies[COOKIE]
        resp = await sign_in(client)
        assert resp.status_code == 303 and resp.headers["location"] == "/inbox"
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        # An id planted before sign-in is not the signed-in session's.
        assert client.cookies[COOKIE] != before
        assert (await client.get("/inbox")).status_code == 200


async def test_outside_development_the_cookie_is_secure() -> None:
    async with portal(environment="production")[0] as client:
        assert "Secure" in (await sign_in(client)).headers["set-cookie"]


async def test_a_wrong_token_is_an_error_beside_its_field() -> None:
    async with portal()[0] as client:
        resp = await sign_in(client, "msetu_wrong")
        assert resp.status_code == 422
        assert 'href="#token"' in resp.text
        assert 'id="token-error"' in resp.text


async def test_a_form_without_the_session_s_csrf_token_changes_nothing() -> None:
    client, backend = portal()
    async with client:
        await sign_in(client)
        item = uuid.uuid4()
        for data in ({}, {"csrf_token": "forged"}):
            resp = await client.post(
                f"/inbox/{item}/acknowledge", data=data, follow_redirects=False
            )
            assert resp.status_code == 400
            assert "Your form was not sent" in resp.text
        assert backend.acknowledged == []
        # Nor does sign-in itself take a form from elsewhere.
        client.cookies.clear()
        resp = await client.post("/sign-in", data={"token": TOKEN}, follow_redirects=False)
        assert resp.status_code == 400


async def test_a_session_idle_past_the_time_out_signs_the_person_out() -> None:
    clock = Clock()
    async with portal(clock=clock)[0] as client:
        await sign_in(client)
        clock.now += timedelta(minutes=29)
        assert (await client.get("/inbox")).status_code == 200
        # Each request restarts the clock; 31 quiet minutes end the session.
        clock.now += timedelta(minutes=31)
        resp = await client.get("/inbox", follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/sign-in?next=/inbox"
        page = await client.get("/sign-in")
        assert "You were signed out because you did nothing for 30 minutes" in page.text


async def test_sign_out_ends_the_session() -> None:
    async with portal()[0] as client:
        await sign_in(client)
        home = await client.get("/")
        resp = await client.post("/sign-out", data={"csrf_token": csrf_of(home.text)})
        assert "You have signed out." in resp.text
        assert (await client.get("/inbox", follow_redirects=False)).status_code == 303


async def test_a_page_outside_the_role_is_the_403_page_without_asking_a_service() -> None:
    async with portal(Role.manager)[0] as client:
        await sign_in(client)
        resp = await client.get("/meetings")
        assert resp.status_code == 403 and "You cannot see this page" in resp.text
        # The navigation does not offer it either.
        home = await client.get("/")
        assert 'href="/meetings"' not in home.text and 'href="/inbox"' in home.text


async def test_pages_carry_their_own_security_policy_and_are_not_cached() -> None:
    async with portal()[0] as client:
        resp = await client.get("/sign-in")
        assert "default-src 'self'" in resp.headers["content-security-policy"]
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["x-frame-options"] == "DENY"
        css = await client.get("/static/govuk/govuk-frontend.min.css")
        assert css.status_code == 200 and "govuk" in css.text
        # Both packages' fonts and images are under /assets/, where their stylesheets ask.
        assert (await client.get("/assets/fonts/bold-b542beb274-v2.woff2")).status_code == 200
        assert (await client.get("/assets/images/icon-close-cross-black.svg")).status_code == 200


async def test_sign_in_goes_back_only_to_a_page_of_this_site() -> None:
    async with portal()[0] as client:
        page = await client.get("/sign-in")
        resp = await client.post(
            "/sign-in",
            data={"token": TOKEN, "csrf_token": csrf_of(page.text), "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert resp.headers["location"] == "/"


async def test_sign_in_goes_back_to_the_page_asked_for_with_its_query() -> None:
    # An agenda item's form names its case in the query: signing in keeps it.
    async with portal()[0] as client:
        wanted = "/inbox?state=all"
        resp = await client.get(wanted, follow_redirects=False)
        assert resp.headers["location"] == "/sign-in?next=/inbox%3Fstate%3Dall"
        page = await client.get(resp.headers["location"])
        assert f'name="next" value="{wanted}"' in page.text
        resp = await client.post(
            "/sign-in",
            data={"token": TOKEN, "csrf_token": csrf_of(page.text), "next": wanted},
            follow_redirects=False,
        )
        assert resp.headers["location"] == wanted


def test_a_service_s_instants_in_a_reason_are_shown_in_words_in_uk_time() -> None:
    reason = "this item was already decided by Demo Chair at 2026-07-01T12:05:00.5+00:00"
    assert (
        _in_words(reason) == "this item was already decided by Demo Chair at 1 July 2026 at 1:05pm"
    )


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        ("a rationale is required when the criteria are not met", "rationale"),
        ("the level 'low' is below the suggested 'high': a rationale is required", "rationale"),
        ("MSET considers medium and high risk cases: record 'not_met' with advice", "level"),
        ("the case is at stage 'awaiting_mset': a Pre-MSET decision can only be", "outcome"),
    ],
)
def test_a_refusal_is_shown_beside_the_field_it_concerns(reason: str, field: str) -> None:
    assert domain.refusal_field(reason, ("outcome", "level", "rationale"), "outcome") == field


def test_every_role_is_offered_only_the_sections_the_services_let_it_use() -> None:
    assert [i.text for i in domain.navigation(Role.manager)] == ["My work", "Inbox", "Reports"]
    assert [i.text for i in domain.navigation(Role.chair)] == [
        "My work",
        "Inbox",
        "Meetings",
        "Awaiting Pre-MSET",
    ]
    assert [i.text for i in domain.navigation(Role.analyst)] == ["My work", "Reports"]
    assert [i.text for i in domain.navigation(Role.dpo)] == ["My work", "Reports"]
    assert [i.text for i in domain.navigation(Role.ops)] == ["My work", "Operations"]
    assert domain.navigation(None) == []
    assert domain.may_use(Role.chair, domain.Section.decide)
    assert not domain.may_use(Role.coordinator, domain.Section.decide)


# --- the Return Home Interview clock and the offer's date ------------------------------------

DUE = datetime(2026, 3, 27, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before_due", "text", "tag", "overdue"),
    [
        (timedelta(hours=50, minutes=5), "50 hours 5 min left", "govuk-tag--green", False),
        (timedelta(hours=30), "30 hours 0 min left", "govuk-tag--yellow", False),
        (timedelta(hours=1), "1 hour 0 min left", "govuk-tag--red", False),
        (timedelta(minutes=20), "20 min left", "govuk-tag--red", False),
        (timedelta(0), "Overdue by 0 min", "govuk-tag--red", True),
        (-timedelta(hours=5, minutes=30), "Overdue by 5 hours 30 min", "govuk-tag--red", True),
    ],
)
def test_the_interview_clock_says_time_left_or_how_long_overdue(
    before_due: timedelta, text: str, tag: str, overdue: bool
) -> None:
    clock = domain.rhi_clock(DUE, DUE - before_due)
    assert (clock.text, clock.tag, clock.overdue) == (text, tag, overdue)


def test_the_offer_is_typed_in_uk_time_and_its_mistakes_are_named() -> None:
    # 27 March 2026 is before the clocks go forward: 14:30 in London is 14:30 UTC; in July,
    # 13:30 UTC.
    assert domain.local_datetime("27", "3", "2026", "14:30") == datetime(
        2026, 3, 27, 14, 30, tzinfo=UTC
    )
    assert domain.local_datetime("1", "7", "2026", "14:30") == datetime(
        2026, 7, 1, 13, 30, tzinfo=UTC
    )
    with pytest.raises(domain.BadDate, match="must include a month"):
        domain.local_datetime("27", "", "2026", "14:30")
    with pytest.raises(domain.BadDate, match="like 14:30"):
        domain.local_datetime("27", "3", "2026", "")
    with pytest.raises(domain.BadDate, match="real date"):
        domain.local_datetime("31", "2", "2026", "10:00")
    with pytest.raises(domain.BadDate, match="in numbers"):
        domain.local_datetime("27", "March", "2026", "10:00")


def test_an_episodes_refusal_stands_beside_the_field_it_is_about() -> None:
    assert domain.rhi_refusal_field("offered_at is before the child returned") == "offered_at"
    assert (
        domain.rhi_refusal_field("say why the interview was not offered (reason_not_offered)")
        == "reason_not_offered"
    )
    assert domain.rhi_refusal_field("the interview's outcome is recorded already") == "outcome"


def test_the_returned_children_are_offered_to_providers_and_coordinators_only() -> None:
    offered = {r for r in Role if domain.may_use(r, domain.Section.returned)}
    assert offered == {Role.provider, Role.coordinator}
    assert "/returned" in [i.href for i in domain.navigation(Role.provider)]
    assert "/returned" not in [i.href for i in domain.navigation(Role.chair)]


class OpsCounts(EmptyInbox):
    """The services' counts for the ops dashboard: a few open cases, one deadline due."""

    async def case_aggregates(self, credential: str) -> CaseAggregates:
        now = Clock()()
        return CaseAggregates(
            as_of=now,
            open_cases=[
                StageCount(stage=Stage.awaiting_mset, local_authority="northshire", count=3)
            ],
            due_within_7_days=[AuthorityCount(local_authority="northshire", count=1)],
            overdue=[], failed_workflows=2, failed_since=now - timedelta(days=7),
            namespace="default",
        )  # fmt: skip

    async def operation_aggregates(self, credential: str) -> NotificationAggregates:
        return NotificationAggregates(
            as_of=Clock()(), unacknowledged=[], breaches=[], dead_letters=[],
            dead_letters_last_24h=0, consumer_lag=[], parked_webhooks=0,
        )  # fmt: skip


@pytest.mark.parametrize("ui", [None, "https://temporal.example.org"])
async def test_the_ops_dashboard_links_into_the_temporal_ui_only_when_told_where_it_is(
    ui: str | None,
) -> None:
    client, _ = portal(Role.ops, backend=OpsCounts(), temporal_ui_url=ui)
    async with client:
        await sign_in(client)
        page = await client.get("/ops")
    assert page.status_code == 200, page.text
    links = re.findall(r'href="([^"]*/namespaces/[^"]*)"', page.text)
    if ui is None:
        # No link to a developer's loopback address (the old default) or anywhere else.
        assert links == [] and "127.0.0.1:8233" not in page.text
        assert "not linked to the Temporal UI" in page.text
    else:
        assert links and all(h.startswith(f"{ui}/namespaces/default/workflows?") for h in links)
        assert "not linked" not in page.text
