"""The agency owning an action is told of it (issue 10, defect 8): its system's webhook
subscriptions receive the action's events, as the referring agency's do; an agency with no
part in the case hears nothing. Real notifications API and consumers, real broker, SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from mset_contract.events import (
    SOURCE_REFERRAL_WORKFLOW,
    ActionAssigned,
    ActionDueSoon,
    ActionOverdue,
    event_id,
)
from mset_contract.temporal import referral_workflow_id
from mset_contract.vocab import ActionAim, ActionTarget, AgencyType
from services.notifications.store import WebhookDelivery, WebhookSubscription
from tests.integration.notifications_fixtures import (  # noqa: F401 - fixtures
    NotificationsStack,
    notif_db_fixture,
    notifications_fixture,
    smtp_server_fixture,
    webhook_receiver_fixture,
)
from tests.support.wait import eventually

ACTION_EVENTS = ["mset.action.assigned", "mset.action.due_soon", "mset.action.overdue"]


async def _subscribe(stack: NotificationsStack, key: str, hook: str) -> None:
    async with stack.http(key) as http:
        resp = await http.post(
            "/v1/webhooks",
            json={"url": f"{stack.receiver.url}/hooks/{hook}", "event_types": ACTION_EVENTS},
        )
    assert resp.status_code == 201, resp.text


async def test_the_owning_agency_is_told_of_its_actions_by_webhook(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    referrer, referrer_key = stack.agency()
    owner, owner_key = stack.agency(AgencyType.police)
    _, bystander_key = stack.agency(AgencyType.health)
    tag = uuid.uuid4().hex[:8]
    hooks = {"referrer": f"r-{tag}", "owner": f"w-{tag}", "bystander": f"b-{tag}"}
    for key, hook in (
        (referrer_key, hooks["referrer"]),
        (owner_key, hooks["owner"]),
        (bystander_key, hooks["bystander"]),
    ):
        await _subscribe(stack, key, hook)

    case, action = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    wf = referral_workflow_id(case)
    common: dict[str, Any] = {
        "source": SOURCE_REFERRAL_WORKFLOW,
        "time": now,
        "subject": case,
        "referrer_agency_id": stack.agency_id(referrer),
        "local_authority": "northshire",
        "action_id": action,
        "owner_agency_id": stack.agency_id(owner),
        "due_at": now + timedelta(days=14),
    }
    await stack.publish(
        [
            ActionAssigned(
                id=event_id(wf, f"action/{action}/assigned"),
                aim=ActionAim.reduce,
                target=ActionTarget.perpetrator,
                **common,
            ),
            ActionDueSoon(id=event_id(wf, f"action/{action}/due_soon"), **common),
            ActionOverdue(id=event_id(wf, f"action/{action}/overdue"), **common),
        ]
    )

    def types(hook: str) -> set[str] | None:
        got = {json.loads(r.body)["type"] for r in stack.receiver.at(hook)}
        return got if got == set(ACTION_EVENTS) else None

    async def owner_told() -> set[str] | None:
        return types(hooks["owner"])

    async def referrer_told() -> set[str] | None:
        return types(hooks["referrer"])

    assert await eventually(owner_told, what="the owner's webhook") == set(ACTION_EVENTS)
    assert await eventually(referrer_told, what="the referrer's webhook") == set(ACTION_EVENTS)
    for r in stack.receiver.at(hooks["owner"]):
        assert json.loads(r.body)["subject"] == str(case)

    # Each event's deliveries are written together, so the ledger is complete by now: the
    # agency with no part in the case has none.
    with stack.store.session() as s:
        hit = set(
            s.scalars(
                select(WebhookSubscription.agency_id)
                .join(WebhookDelivery, WebhookDelivery.subscription_id == WebhookSubscription.id)
                .where(WebhookDelivery.case_id == case)
            )
        )
    assert hit == {stack.agency_id(referrer), stack.agency_id(owner)}
    assert stack.receiver.at(hooks["bystander"]) == []
