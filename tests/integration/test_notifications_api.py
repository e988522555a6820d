"""The notifications API on SQLite and PostgreSQL: who sees which inbox item, what staff and
partner systems may do, and the error bodies they get. Credentials are resolved by a stand-in
here; test_notifications.py resolves them through the real referral service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mset_contract.auth import Principal
from mset_contract.events import EscalationTargetRef, high_risk_escalation
from mset_contract.triage import AgencyDesignation, EscalationKind, Urgency
from mset_contract.vocab import AgencyType, Role
from services.notifications.api import create_app
from services.notifications.consumers import InboxHandler
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store


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

    def staff(self, role: Role, agency: uuid.UUID, type_: AgencyType) -> str:
        token = f"tok-{uuid.uuid4().hex}"
        self.principals[token] = Principal(
            kind="user",
            agency_id=agency,
            agency_name="a",
            agency_type=type_,
            user_id=uuid.uuid4(),
            user_name="someone",
            role=role,
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


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = NotificationsSettings.model_validate(
        {"environment": "test", "database_url": database_url, "webhook_require_https": True}
    )
    principals: dict[str, Principal] = {}

    async def resolve(credential: str) -> Principal | None:
        return principals.get(credential)

    app = create_app(settings, resolver=resolve)
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
        resp = await http.get("/v1/inbox", params=params)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


async def test_each_user_sees_the_items_for_their_role_and_agency(api: Api) -> None:
    csc, police, partnership = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    police_manager = api.staff(Role.manager, police, AgencyType.police)
    coordinator = api.staff(Role.coordinator, csc, AgencyType.childrens_social_care)
    chair = api.staff(Role.chair, partnership, AgencyType.local_authority)
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
        listed = (await http.get("/v1/webhooks")).json()["subscriptions"]
        assert [s["id"] for s in listed] == [sub["id"]]
        assert "secret" not in listed[0]  # shown once

    async with api.as_(b) as http:
        assert (await http.get("/v1/webhooks")).json()["subscriptions"] == []
        assert (await http.get(f"/v1/webhooks/{sub['id']}")).status_code == 404
        assert (await http.delete(f"/v1/webhooks/{sub['id']}")).status_code == 404

    async with api.as_(a) as http:
        assert (await http.delete(f"/v1/webhooks/{sub['id']}")).status_code == 204
        assert (await http.get(f"/v1/webhooks/{sub['id']}")).status_code == 404
        assert (await http.get("/v1/webhooks")).json()["subscriptions"] == []


async def test_an_item_shows_codes_and_deadlines_not_prose(api: Api) -> None:
    csc = uuid.uuid4()
    manager = api.staff(Role.manager, csc, AgencyType.childrens_social_care)
    escalate(api, csc)
    (item,) = await items(api, manager)
    assert item["kind"] == EscalationKind.high_risk.value
    assert item["urgency"] == Urgency.immediate.value
    assert item["rule"] == "escalation.high_risk" and "band.high" in item["fired_rules"]
    assert item["deadline"] is not None and item["level"] == "high"
