"""The notifications API on SQLite and PostgreSQL: who sees which inbox item, what staff and
partner systems may do, and the error bodies they get. Credentials are resolved by a stand-in
here; test_notifications.py resolves them through the real referral service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mset_contract.auth import Principal
from mset_contract.events import EscalationTargetRef, high_risk_escalation
from mset_contract.triage import AgencyDesignation, EscalationKind, Urgency
from mset_contract.vocab import AgencyType, Role
from mset_platform.paging import every_item
from services.notifications.api import create_app
from services.notifications.consumers import InboxHandler
from services.notifications.settings import NotificationsSettings
from services.notifications.store import InboxItem, Store, WebhookAttempt, WebhookDelivery


@dataclass
class Api:
    app_settings: NotificationsSettings
    store: Store
    principals: dict[str, Principal]
    transport: httpx.ASGITransport

    def as_(self, who: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {who}"} if who else {}
        return httpx.AsyncClient(
            transport=self.transport, base_url="http://notifications", headers=headers
        )

    def staff(
        self, role: Role, agency: uuid.UUID, type_: AgencyType, serves: tuple[str, ...] = ()
    ) -> str:
        token = f"tok-{uuid.uuid4().hex}"
        self.principals[token] = Principal(
            kind="user",
            agency_id=agency,
            agency_name="a",
            agency_type=type_,
            user_id=uuid.uuid4(),
            user_name="someone",
            role=role,
            authorities=serves,
        )
        return token

    def partner(self, agency: uuid.UUID) -> str:
        token = f"key-{uuid.uuid4().hex}"
        self.principals[token] = Principal(
            kind="agency",
            agency_id=agency,
            agency_name="a",
            agency_type=AgencyType.childrens_social_care,
        )
        return token


def public_dns(host: str, port: int) -> list[str]:
    """Every partner name resolves to a public address here (no DNS server is asked)."""
    return ["93.184.215.14"]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "webhook_require_https": True}
    )
    principals: dict[str, Principal] = {}

    async def resolve(credential: str) -> Principal | None:
        return principals.get(credential)

    app = create_app(settings, resolver=resolve, lookup=public_dns)
    async with app.router.lifespan_context(app):  # migrations, store
        yield Api(settings, app.state.store, principals, httpx.ASGITransport(app=app))
    # The lifespan disposed of its engine; nothing else to close.


def escalate(api: Api, referrer: uuid.UUID, *targets: EscalationTargetRef) -> uuid.UUID:
    """Inbox items as the inbox consumer makes them (the consumer itself, without Kafka)."""
    case = uuid.uuid4()
    event = high_risk_escalation(case, referrer, "northshire", datetime.now(UTC))
    if targets:
        event = event.model_copy(update={"notify": list(targets)})
    InboxHandler(api.store).handle(event)
    return case


async def items(api: Api, who: str, **params: Any) -> list[dict[str, Any]]:
    async with api.as_(who) as http:
        return await every_item(http, "/v1/inbox", list(params.items()))


async def test_each_user_sees_the_items_for_their_role_and_agency(api: Api) -> None:
    csc, police, partnership = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    police_manager = api.staff(Role.manager, police, AgencyType.police)
    coordinator = api.staff(Role.coordinator, csc, AgencyType.childrens_social_care)
    chair = api.staff(Role.chair, partnership, AgencyType.local_authority, ("northshire",))
    case = escalate(api, csc)  # manager at the referring agency + chair at the authority

    mine = await items(api, manager)
    assert [(i["case_id"], i["target_role"]) for i in mine] == [(str(case), "manager")]
    assert await items(api, police_manager) == []
    assert await items(api, coordinator) == []
    assert [i["target_role"] for i in await items(api, chair)] == ["chair"]

    # A case-holder item (no role) reaches every user of that agency.
    escalate(api, csc, EscalationTargetRef(agency=AgencyDesignation.referring_agency))
    assert len(await items(api, coordinator)) == 1
    assert len(await items(api, police_manager)) == 0


async def test_acknowledge_then_actioned_with_a_note(api: Api) -> None:
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    other = api.staff(Role.manager, uuid.uuid4(), AgencyType.childrens_social_care)
    escalate(api, csc)
    (item,) = await items(api, manager)
    async with api.as_(manager) as http:
        first = (await http.post(f"/v1/inbox/{item['id']}/acknowledge")).json()
        again = (await http.post(f"/v1/inbox/{item['id']}/acknowledge")).json()
        assert first["acknowledged_at"] == again["acknowledged_at"]  # the first one stands
        assert len(await items(api, manager, state="unacknowledged")) == 0

        empty = await http.post(f"/v1/inbox/{item['id']}/actioned", json={"note": "  "})
        assert empty.status_code == 422
        assert empty.json()["errors"][0]["field"] == "note"
        done = await http.post(f"/v1/inbox/{item['id']}/actioned", json={"note": "Called DI."})
        assert done.status_code == 200 and done.json()["action_note"] == "Called DI."
        twice = await http.post(f"/v1/inbox/{item['id']}/actioned", json={"note": "x"})
        assert twice.status_code == 409
    assert await items(api, manager) == []  # open = not yet actioned
    assert len(await items(api, manager, state="actioned")) == 1

    # Someone else's item is "not found", whatever they try.
    async with api.as_(other) as http:
        for path in ("", "/acknowledge"):
            method = http.get if not path else http.post
            resp = await method(f"/v1/inbox/{item['id']}{path}")
            assert resp.status_code == 404, path


async def test_the_inbox_is_for_staff_and_webhooks_are_for_partner_systems(api: Api) -> None:
    agency = uuid.uuid4()
    key = api.partner(agency)
    manager = api.staff(Role.manager, agency, AgencyType.childrens_social_care)
    async with api.as_(None) as http:
        assert (await http.get("/v1/inbox")).status_code == 401
    async with api.as_("not-a-credential") as http:
        assert (await http.get("/v1/inbox")).status_code == 401
    async with api.as_(key) as http:
        resp = await http.get("/v1/inbox")
        assert resp.status_code == 403 and "webhook" in resp.json()["detail"]
    async with api.as_(manager) as http:
        resp = await http.post(
            "/v1/webhooks",
            json={"url": "https://p.example/h", "event_types": ["mset.referral.escalated"]},
        )
        assert resp.status_code == 403 and "X-API-Key" in resp.json()["detail"]


async def test_admins_and_analysts_have_no_inbox_even_for_their_agencys_case_holder(
    api: Api,
) -> None:
    """Issue 11, finding 3: an item for "the case holder" names no role, so every user of the
    agency saw it, and an admin read the item (case id, level, fired rules). Admins and
    analysts never see case-level data: no inbox, 403 whatever the id."""
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    outsiders = [
        api.staff(role, csc, AgencyType.childrens_social_care, ("northshire",))
        for role in (Role.admin, Role.analyst)
    ]
    case = escalate(api, csc, EscalationTargetRef(agency=AgencyDesignation.referring_agency))
    (item,) = await items(api, manager)
    assert item["case_id"] == str(case)
    for who in outsiders:
        async with api.as_(who) as http:
            for method, path in (
                ("GET", "/v1/inbox"),
                ("GET", f"/v1/inbox/{item['id']}"),
                ("GET", f"/v1/inbox/{uuid.uuid4()}"),
                ("POST", f"/v1/inbox/{item['id']}/acknowledge"),
            ):
                resp = await http.request(method, path)
                assert resp.status_code == 403, (method, path, resp.text)
                assert str(case) not in resp.text
                assert "case-level data" in resp.json()["detail"]
    async with api.as_(manager) as http:
        assert (await http.get(f"/v1/inbox/{item['id']}")).json()["acknowledged_at"] is None


async def test_webhook_subscriptions_are_validated_and_private_to_their_agency(api: Api) -> None:
    a, b = api.partner(uuid.uuid4()), api.partner(uuid.uuid4())
    async with api.as_(a) as http:
        types = (await http.get("/v1/event-types")).json()["event_types"]
        assert "mset.referral.escalated" in types and "mset.case.exited" in types

        unknown = await http.post(
            "/v1/webhooks",
            json={"url": "https://p.example/h", "event_types": ["mset.referral.vanished"]},
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"] == [
            {
                "field": "event_types",
                "reason": "unknown event types: mset.referral.vanished (see GET /v1/event-types)",
            }
        ]
        plain = await http.post(
            "/v1/webhooks",
            json={"url": "http://p.example/h", "event_types": ["mset.referral.escalated"]},
        )
        assert plain.status_code == 422 and plain.json()["errors"][0]["field"] == "url"
        extra = await http.post(
            "/v1/webhooks",
            json={"url": "https://p.example/h", "event_types": ["x"], "secret": "mine"},
        )
        assert extra.status_code == 422

        created = await http.post(
            "/v1/webhooks",
            json={"url": "https://p.example/h", "event_types": ["mset.referral.escalated"]},
        )
        assert created.status_code == 201, created.text
        sub = created.json()
        assert sub["secret"].startswith("whsec_") and sub["status"] == "active"
        listed = (await http.get("/v1/webhooks")).json()["items"]
        assert [s["id"] for s in listed] == [sub["id"]]
        assert "secret" not in listed[0]  # shown once

    async with api.as_(b) as http:
        assert (await http.get("/v1/webhooks")).json()["items"] == []
        assert (await http.get(f"/v1/webhooks/{sub['id']}")).status_code == 404
        assert (await http.delete(f"/v1/webhooks/{sub['id']}")).status_code == 404

    async with api.as_(a) as http:
        assert (await http.delete(f"/v1/webhooks/{sub['id']}")).status_code == 204
        assert (await http.get(f"/v1/webhooks/{sub['id']}")).status_code == 404
        assert (await http.get("/v1/webhooks")).json()["items"] == []


async def test_an_item_shows_codes_and_deadlines_not_prose(api: Api) -> None:
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    escalate(api, csc)
    (item,) = await items(api, manager)
    assert item["kind"] == EscalationKind.high_risk.value
    assert item["urgency"] == Urgency.immediate.value
    assert item["rule"] == "escalation.high_risk" and "band.high" in item["fired_rules"]
    assert item["deadline"] is not None and item["level"] == "high"


async def _walk(http: httpx.AsyncClient, url: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a list, asked for ``limit`` at a time; each page's items."""
    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["next_cursor"] is not None:
        params: dict[str, Any] = {"limit": limit}
        if pages:
            params["cursor"] = pages[-1]["next_cursor"]
        resp = await http.get(url, params=params)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
    return pages


async def test_a_manager_walks_every_page_of_a_long_inbox_and_misses_nothing(api: Api) -> None:
    # Issue 16, finding 4: with 201 items the inbox answered 200 and the oldest vanished.
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    cases = [escalate(api, csc) for _ in range(201)]
    oldest = cases[0]
    # A burst can give many items one timestamp: let 30 share one, across a page boundary,
    # so the order's tie-break (the id) is what keeps them apart.
    with api.store.session() as s:
        mine = list(
            s.scalars(
                select(InboxItem)
                .where(InboxItem.target_role == "manager")
                .order_by(InboxItem.created_at.desc())
            )
        )
        for item in mine[40:70]:
            item.created_at = mine[40].created_at

    async with api.as_(manager) as http:
        pages = await _walk(http, "/v1/inbox", limit=50)
        default = (await http.get("/v1/inbox")).json()
        widest = (await http.get("/v1/inbox", params={"limit": 200})).json()

    assert [len(p["items"]) for p in pages] == [50, 50, 50, 50, 1]
    seen = [i for p in pages for i in p["items"]]
    assert len({i["id"] for i in seen}) == len(seen) == 201  # each once
    assert {i["case_id"] for i in seen} == {str(c) for c in cases}
    assert seen[-1]["case_id"] == str(oldest)  # newest first, as before: the oldest last
    stamps = [datetime.fromisoformat(i["created_at"]) for i in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert pages[-1]["next_cursor"] is None and all(p["next_cursor"] for p in pages[:-1])
    # The default page is 50; even the widest page says there is more.
    assert len(default["items"]) == 50 and default["next_cursor"] is not None
    assert len(widest["items"]) == 200 and widest["next_cursor"] is not None


async def test_an_item_that_arrives_mid_walk_neither_repeats_nor_hides_another(
    api: Api,
) -> None:
    # Paging by offset would show an item twice here: the new one pushes the rest down.
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    cases = [escalate(api, csc) for _ in range(5)]
    async with api.as_(manager) as http:
        first = (await http.get("/v1/inbox", params={"limit": 2})).json()
        newest = escalate(api, csc)
        rest = await _walk_from(http, first["next_cursor"], limit=2)
        again = await items(api, manager)
    seen = [i["case_id"] for i in first["items"] + rest]
    assert sorted(seen) == sorted(str(c) for c in cases)  # each once, none missing
    assert again[0]["case_id"] == str(newest)  # there, first, for the next walk


async def _walk_from(http: httpx.AsyncClient, cursor: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while cursor is not None:
        page = (await http.get("/v1/inbox", params={"limit": limit, "cursor": cursor})).json()
        out += page["items"]
        cursor = page["next_cursor"]
    return out


async def test_a_bad_cursor_or_limit_on_the_inbox_is_a_422_naming_it(api: Api) -> None:
    manager = api.staff(Role.manager, uuid.uuid4(), AgencyType.childrens_social_care)
    async with api.as_(manager) as http:
        for params, field in (
            ({"cursor": "bm90IGEgY3Vyc29y"}, "query.cursor"),
            ({"limit": 0}, "query.limit"),
            ({"limit": 201}, "query.limit"),
        ):
            resp = await http.get("/v1/inbox", params=params)
            assert resp.status_code == 422, (params, resp.text)
            assert [e["field"] for e in resp.json()["errors"]] == [field]


async def test_a_partner_pages_through_its_subscriptions_and_each_delivery_ledger(
    api: Api,
) -> None:
    agency = uuid.uuid4()
    key, stranger = api.partner(agency), api.partner(uuid.uuid4())
    async with api.as_(key) as http:
        made = []
        for n in range(3):
            resp = await http.post(
                "/v1/webhooks",
                json={"url": f"https://p.example/h{n}", "event_types": ["mset.referral.escalated"]},
            )
            assert resp.status_code == 201, resp.text
            made.append(resp.json()["id"])
        subs = await _walk(http, "/v1/webhooks", limit=2)
    assert [[s["id"] for s in p["items"]] for p in subs] == [made[:2], made[2:]]  # oldest first

    # Thirty deliveries for one subscription, the latest with two attempts: the subscription
    # shows its latest twenty; the ledger, page by page, all thirty.
    sub_id = uuid.UUID(made[0])
    start = datetime.now(UTC)
    with api.store.session() as s:
        rows = [
            WebhookDelivery(
                id=uuid.uuid4(),
                subscription_id=sub_id,
                event_id=uuid.uuid4(),
                event_type="mset.referral.escalated",
                case_id=uuid.uuid4(),
                body="{}",
                status="failed",
                attempts=2,
                created_at=start + timedelta(seconds=n),
            )
            for n in range(30)
        ]
        s.add_all(rows)
        s.flush()
        for n in (1, 2):
            s.add(
                WebhookAttempt(
                    delivery_id=rows[-1].id, attempt=n, at=start, status_code=500, duration_ms=3
                )
            )
    async with api.as_(key) as http:
        one = (await http.get(f"/v1/webhooks/{sub_id}")).json()
        ledger = await _walk(http, f"/v1/webhooks/{sub_id}/deliveries", limit=12)
        wrong = await http.get(
            f"/v1/webhooks/{sub_id}/deliveries", params={"cursor": subs[0]["next_cursor"]}
        )
    async with api.as_(stranger) as http:
        theirs = await http.get(f"/v1/webhooks/{sub_id}/deliveries")

    assert len(one["recent_deliveries"]) == 20
    assert [len(p["items"]) for p in ledger] == [12, 12, 6]
    seen = [d["id"] for p in ledger for d in p["items"]]
    assert seen == [str(r.id) for r in reversed(rows)]  # newest first, each once
    assert [a["attempt"] for a in ledger[0]["items"][0]["attempt_log"]] == [1, 2]
    assert wrong.status_code == 422  # the subscriptions list's cursor is not the ledger's
    assert wrong.json()["errors"][0]["field"] == "query.cursor"
    assert theirs.status_code == 404  # another agency's ledger is not there to page
