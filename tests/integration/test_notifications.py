"""Notifications end to end on the real broker, Temporal dev server, SMTP server and a partner's
HTTP receiver, on SQLite and PostgreSQL: escalation inbox, signed webhooks, e-mail, duplicate
events, dead letters, re-escalation up the line."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import func, select

from mset_contract.events import (
    DLQ_CONSUMER_HEADER,
    DLQ_ORIGIN_HEADER,
    DLQ_REASON_HEADER,
    EscalationTargetRef,
    ReferralEscalated,
    ReferralSubmitted,
    event_id,
    high_risk_escalation,
    to_kafka,
)
from mset_contract.notifications import ReescalationResult
from mset_contract.referral import referral_example
from mset_contract.temporal import (
    NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW,
    inbox_reescalation_workflow_id,
    referral_workflow_id,
)
from mset_contract.triage import AgencyDesignation, Urgency
from mset_contract.vocab import AgencyType, RiskLevel, Role
from mset_platform.metrics import serve_worker_metrics
from mset_platform.paging import every_item
from services.notifications.store import (
    EmailMessage,
    HandledEvent,
    InboxItem,
    WebhookAttempt,
    WebhookDelivery,
)
from tests.integration.notifications_fixtures import (  # noqa: F401 - fixtures
    CHAIRS_MAILBOX,
    MANAGERS_MAILBOX,
    NotificationsStack,
    notif_db_fixture,
    notifications_fixture,
    smtp_server_fixture,
    webhook_receiver_fixture,
)
from tests.support.metrics import value
from tests.support.net import free_port
from tests.support.tracing import ancestry, recorded_spans, strings
from tests.support.wait import eventually


def high_risk_tool() -> dict[str, Any]:
    tool = referral_example()
    tool["partner_reference"] = f"CSC-{uuid.uuid4().hex[:10]}"
    tool["child"]["agency_child_ref"] = f"NS-CHILD-{uuid.uuid4().hex[:10]}"
    tool["referrer_judgement"]["level"] = "high"
    return tool


def child_details(tool: dict[str, Any]) -> list[str]:
    """What identifies or describes the child: none of it may leave the referral service."""
    child = tool["child"]
    return [
        child["agency_child_ref"],
        child["date_of_birth"],
        child["area_of_residence"],
        child["ethnicity"],
        tool["partner_reference"],
        tool["referrer_judgement"]["rationale"],
        *(p["description"] for p in tool["persons_of_concern"]),
        *(p["relationship"] for p in tool["persons_of_concern"]),
        *(loc["description"] for loc in tool["locations"]),
    ]


def assert_none_of(details: list[str], *texts: bytes | str) -> None:
    for text in texts:
        blob = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for d in details:
            assert d not in blob, f"{d!r} leaked"


async def inbox_for(
    stack: NotificationsStack, token: str, case_id: uuid.UUID
) -> list[dict[str, Any]]:
    async with stack.http(token) as http:
        got = await every_item(http, "/v1/inbox", [("state", "all")])
    return [i for i in got if i["case_id"] == str(case_id)]


async def test_high_risk_referral_escalation_reaches_manager_inbox_email_and_partner_webhook(
    notifications: NotificationsStack,
) -> None:
    """A high-risk referral submitted through the referral API; the escalation a high-risk
    triage produces is published through the real ``notifications.publish`` activity (until
    ReferralWorkflow publishes it itself, issue 4), and reaches the referring agency's
    manager (inbox over HTTP, with a real token the referral service introspects), the
    managers' mailbox (SMTP) and the partner's own webhook (signed)."""
    stack = notifications
    agency, key = stack.agency()
    agency_id = stack.agency_id(agency)
    manager = stack.user(Role.manager, agency)
    partnership, _ = stack.agency(AgencyType.local_authority)
    chair = stack.user(Role.chair, partnership, ("northshire",))
    other_agency, other_key = stack.agency()
    other_manager = stack.user(Role.manager, other_agency)

    # Both partners subscribe; only the referring one may hear of this case.
    hook, other_hook = f"p-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    subs = {}
    for k, name in ((key, hook), (other_key, other_hook)):
        async with stack.http(k) as http:
            resp = await http.post(
                "/v1/webhooks",
                json={
                    "url": f"{stack.receiver.url}/hooks/{name}",
                    "event_types": ["mset.referral.escalated", "mset.referral.submitted"],
                },
            )
        assert resp.status_code == 201, resp.text
        subs[name] = resp.json()
    secret = subs[hook]["secret"]

    tool = high_risk_tool()
    async with stack.referral_http(key) as http:
        resp = await http.post("/v1/referrals", json=tool)
    assert resp.status_code == 202, resp.text
    case_id = uuid.UUID(resp.json()["case_id"])

    now = datetime.now(UTC)
    wf = referral_workflow_id(case_id)
    submitted = ReferralSubmitted(
        id=event_id(wf, "submitted"),
        source="/mset/workflows/referral",
        time=now,
        subject=case_id,
        referrer_agency_id=agency_id,
        local_authority=tool["child"]["local_authority"],
        referrer_level=RiskLevel.high,
        agency_type=AgencyType.childrens_social_care,
        catalogue_version=tool["catalogue_version"],
    )
    escalated = high_risk_escalation(case_id, agency_id, tool["child"]["local_authority"], now)
    published = await stack.publish([submitted, escalated])
    assert [p.id for p in published.events] == [submitted.id, escalated.id]
    assert len({p.partition for p in published.events}) == 1  # keyed by case: one partition

    # The manager's inbox item, over HTTP with the manager's real token.
    items = await eventually(lambda: inbox_for(stack, manager, case_id))
    assert len(items) == 1
    item = items[0]
    assert item["kind"] == "high_risk" and item["urgency"] == "immediate"
    assert item["target_role"] == "manager" and item["target_agency_id"] == str(agency_id)
    assert item["level"] == "high" and item["acknowledged_at"] is None
    async with stack.http(manager) as http:
        ack = await http.post(f"/v1/inbox/{item['id']}/acknowledge")
        assert ack.status_code == 200 and ack.json()["acknowledged_at"] is not None

    # The MSET chair (at the authority's partnership) has one too; another agency's manager
    # sees nothing of this case.
    chair_items = await eventually(lambda: inbox_for(stack, chair, case_id))
    assert [i["target_role"] for i in chair_items] == ["chair"]
    assert await inbox_for(stack, other_manager, case_id) == []

    # E-mail at the real SMTP server: codes and a link, nothing about the child.
    ref = case_id.hex[:8]
    mails = await eventually(
        lambda: _async(
            [m for m in stack.smtp.mailbox.find(f"case ref {ref}") if MANAGERS_MAILBOX in m[0]]
        )
    )
    assert len(mails) == 1
    msg = mails[0][1]
    assert msg["Subject"] == f"MSET urgent escalation: high_risk (case ref {ref})"
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    link = f"https://mset.test/v1/inbox/{item['id']}"
    assert link in body.decode()
    assert_none_of(child_details(tool), str(msg), body)
    async with stack.http(manager) as http:  # the link's item, for the manager
        assert (await http.get(f"/v1/inbox/{item['id']}")).status_code == 200
    await eventually(
        lambda: _async(
            [m for m in stack.smtp.mailbox.find(f"case ref {ref}") if CHAIRS_MAILBOX in m[0]]
        )
    )

    # The partner's receiver got both events, signed; it verifies them as a partner would.
    deliveries = await eventually(lambda: _async(_at_least(stack.receiver.at(hook), 2)))
    types = set()
    for d in deliveries:
        t, v1 = dict(p.split("=", 1) for p in d.headers["mset-signature"].split(",")).values()
        expected = hmac.new(secret.encode(), f"{t}.".encode() + d.body, hashlib.sha256)
        assert hmac.compare_digest(v1, expected.hexdigest())
        assert abs(time.time() - int(t)) < 60
        doc = json.loads(d.body)
        assert doc["specversion"] == "1.0" and doc["subject"] == str(case_id)
        assert d.headers["content-type"] == "application/cloudevents+json"
        types.add(doc["type"])
        assert_none_of(child_details(tool), d.body)
    assert types == {"mset.referral.submitted", "mset.referral.escalated"}
    # The other partner heard nothing of it.
    with stack.store.session() as s:
        subs_hit = set(
            s.scalars(
                select(WebhookDelivery.subscription_id).where(WebhookDelivery.case_id == case_id)
            )
        )
    assert subs_hit == {uuid.UUID(subs[hook]["id"])}
    assert stack.receiver.at(other_hook) == []

    # The partner sees its ledger.
    async def delivered() -> list[Any] | None:
        async with stack.http(key) as http:
            listed = await every_item(http, "/v1/webhooks")
        mine = [d for d in listed[0]["recent_deliveries"] if d["status"] == "delivered"]
        return mine if len(mine) == 2 else None

    assert {d["event_type"] for d in await eventually(delivered)} == types

    # Actioned, with a note that stays in the notifications service.
    async with stack.http(manager) as http:
        done = await http.post(
            f"/v1/inbox/{item['id']}/actioned", json={"note": "Strategy discussion booked."}
        )
        assert done.status_code == 200, done.text
        assert done.json()["action_note"] == "Strategy discussion booked."
        again = await http.post(f"/v1/inbox/{item['id']}/actioned", json={"note": "again"})
        assert again.status_code == 409
        open_items = await every_item(http, "/v1/inbox")
    assert item["id"] not in {i["id"] for i in open_items}

    # On the wire: CloudEvents headers, key = case id, none of the child's details.
    topic = await asyncio.to_thread(stack.read_topic, stack.settings.events_topic)
    records = [r for r in topic if r.key == str(case_id).encode()]
    assert {dict(r.headers)["ce_type"] for r in records} == {
        b"mset.referral.submitted",
        b"mset.referral.escalated",
    }
    for r in records:
        headers = dict(r.headers)
        assert headers["ce_specversion"] == b"1.0" and headers["ce_subject"] == r.key
        assert_none_of(child_details(tool), r.value, *headers.values())
    assert_none_of(["Strategy discussion booked."], *(r.value for r in records))


async def _async(value: Any) -> Any:
    return value


def _at_least(items: list[Any], n: int) -> list[Any] | None:
    return items if len(items) >= n else None


def _lag(stack: NotificationsStack) -> dict[str, int]:
    """How far each consumer group's committed offsets are behind the topic's end."""
    topic = stack.settings.events_topic
    admin = KafkaAdminClient(bootstrap_servers=stack.settings.broker)
    probe = KafkaConsumer(bootstrap_servers=stack.settings.broker, enable_auto_commit=False)
    try:
        parts = probe.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        end = probe.end_offsets(tps)
        lag = {}
        for name in ("inbox", "webhooks", "email"):
            group = f"{stack.settings.consumer_group_prefix}.{name}"
            committed = admin.list_group_offsets({group: tps})[group]
            # Tansu's end offset is sometimes one short of the offset after the last record,
            # so "caught up" is committed >= end, not ==.
            lag[name] = sum(
                max(0, end[tp] - max(0, committed[tp].offset if tp in committed else 0))
                for tp in tps
            )
        return lag
    finally:
        probe.close()
        admin.close()


async def test_the_same_event_delivered_twice_yields_one_inbox_item(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    agency, key = stack.agency()
    agency_id = stack.agency_id(agency)
    async with stack.http(key) as http:
        sub = await http.post(
            "/v1/webhooks",
            json={
                "url": f"{stack.receiver.url}/hooks/dup-{uuid.uuid4().hex[:8]}",
                "event_types": ["mset.referral.escalated"],
            },
        )
    assert sub.status_code == 201
    case_id = uuid.uuid4()
    event = high_risk_escalation(case_id, agency_id, "northshire", datetime.now(UTC))

    # A retried activity re-sends the same event (same id, built from the workflow step)...
    await stack.publish([event])
    await stack.publish([event])
    # ...and a broker may redeliver the very same record.
    producer = KafkaProducer(bootstrap_servers=stack.settings.broker)
    rec = to_kafka(event)
    producer.send(stack.settings.events_topic, key=rec.key, value=rec.value, headers=rec.headers)
    producer.flush()
    producer.close()

    # Every consumer is done with all three copies and has committed past them.
    async def caught_up() -> bool:
        return not any((await asyncio.to_thread(_lag, stack)).values())

    await eventually(caught_up)
    with stack.store.session() as s:
        items = s.scalars(select(InboxItem).where(InboxItem.case_id == case_id)).all()
        handled = s.execute(
            select(HandledEvent.consumer, func.count())
            .where(HandledEvent.event_id == event.id)
            .group_by(HandledEvent.consumer)
        ).all()
        mails = s.scalar(
            select(func.count()).select_from(EmailMessage).where(EmailMessage.event_id == event.id)
        )
        hooks = s.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.event_id == event.id)
        )
    # One item per target (a re-escalation, after 3 s, is an item of its own).
    firsts = [i for i in items if i.reescalation_of is None]
    assert sorted(i.target_role or "" for i in firsts) == ["chair", "manager"]
    assert dict(handled) == {"inbox": 1, "webhooks": 1, "email": 1}
    assert mails == 2 and hooks == 1
    topic = await asyncio.to_thread(stack.read_topic, stack.settings.events_topic)
    copies = [r for r in topic if r.key == rec.key]
    assert len(copies) == 3  # the broker really carried three copies


async def test_malformed_messages_land_in_the_dead_letter_topic_with_the_reason(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    topic = stack.settings.events_topic
    agency_id = uuid.uuid4()
    producer = KafkaProducer(bootstrap_servers=stack.settings.broker)

    def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> str:
        md = producer.send(topic, key=key, value=value, headers=headers).get(10)
        return f"{md.topic}/{md.partition}/{md.offset}"

    # Not a CloudEvent at all.
    garbage = send(b"whatever", b"\x00\x01 not an event", [])
    # A CloudEvent whose data breaks the schema (a producer bug puts a name in a code).
    bad = high_risk_escalation(uuid.uuid4(), agency_id, "northshire", datetime.now(UTC))
    rec = to_kafka(bad)
    data = json.loads(rec.value)
    data["kind"] = "Jane Smith"
    invalid = send(rec.key, json.dumps(data).encode(), rec.headers)
    # Valid, but an action-owner escalation with no owner: only the inbox cannot act on it.
    unowned = bad.model_copy(
        update={
            "id": uuid.uuid4(),
            "urgency": Urgency.routine,
            "notify": [
                EscalationTargetRef(role=Role.manager, agency=AgencyDesignation.action_owner)
            ],
        }
    )
    r2 = to_kafka(unowned)
    unresolvable = send(r2.key, r2.value, r2.headers)
    producer.close()
    # After them, a good event is still handled: the consumers did not stop at the bad ones.
    good = high_risk_escalation(uuid.uuid4(), agency_id, "northshire", datetime.now(UTC))
    await stack.publish([good])

    async def handled() -> bool:
        with stack.store.session() as s:
            return bool(
                s.scalar(select(InboxItem.id).where(InboxItem.event_id == good.id).limit(1))
            )

    await eventually(handled)

    def dead() -> dict[str, list[dict[str, bytes]]]:
        out: dict[str, list[dict[str, bytes]]] = {}
        for r in stack.read_topic(stack.settings.dead_letter_topic):
            h = dict(r.headers)
            out.setdefault(h[DLQ_ORIGIN_HEADER].decode(), []).append(h)
        return out

    def complete() -> dict[str, list[dict[str, bytes]]] | None:
        d = dead()
        wanted = {garbage: 3, invalid: 3, unresolvable: 1}
        return d if all(len(d.get(k, [])) == n for k, n in wanted.items()) else None

    letters = await eventually(lambda: asyncio.to_thread(complete))
    consumers = {k: sorted(h[DLQ_CONSUMER_HEADER].decode() for h in v) for k, v in letters.items()}
    assert consumers[garbage] == ["email", "inbox", "webhooks"]  # each group says so
    assert consumers[invalid] == ["email", "inbox", "webhooks"]
    assert consumers[unresolvable] == ["inbox"]
    reasons = {k: {h[DLQ_REASON_HEADER].decode() for h in v} for k, v in letters.items()}
    assert reasons[garbage] == {"not a CloudEvent: no ce_ headers (binary content mode expected)"}
    (why,) = reasons[invalid]
    assert "kind" in why and "Jane" not in why
    assert reasons[unresolvable] == {"action_owner target without an agency id"}
    # The dead letter keeps the original CloudEvents headers for whoever repairs it.
    assert letters[invalid][0]["ce_id"] == str(bad.id).encode()


async def test_an_urgent_item_nobody_acknowledges_goes_up_the_line(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    agency, _ = stack.agency()
    agency_id = stack.agency_id(agency)
    manager = stack.user(Role.manager, agency)
    partnership, _ = stack.agency(AgencyType.local_authority)
    chair = stack.user(Role.chair, partnership, ("northshire",))
    ignored, answered = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await stack.publish(
        [
            high_risk_escalation(ignored, agency_id, "northshire", now),
            high_risk_escalation(answered, agency_id, "northshire", now),
        ]
    )
    ignored_item = (await eventually(lambda: inbox_for(stack, manager, ignored)))[0]
    answered_item = (await eventually(lambda: inbox_for(stack, manager, answered)))[0]

    def timer_started(item_id: str) -> Callable[[], bool]:
        def started() -> bool:
            with stack.store.session() as s:
                row = s.get(InboxItem, uuid.UUID(item_id))
                return row is not None and row.timer_started_at is not None

        return started

    # Acknowledged while its timer runs: the case this test is about. (An item acknowledged
    # before the timer outbox reaches it never gets a timer at all, so waiting for the
    # timer's outcome then would wait for ever: CI saw that once.)
    await eventually(timer_started(answered_item["id"]))
    async with stack.http(manager) as http:
        assert (await http.post(f"/v1/inbox/{answered_item['id']}/acknowledge")).status_code == 200

    async def outcome(item_id: str) -> str:
        await eventually(timer_started(item_id))
        handle = stack.client.get_workflow_handle(
            inbox_reescalation_workflow_id(uuid.UUID(item_id)), result_type=ReescalationResult
        )
        result = await handle.result()
        return str(result.outcome)

    # Durable timers (20 s here) on the notifications task queue decide.
    assert await outcome(answered_item["id"]) == "acknowledged"
    assert await outcome(ignored_item["id"]) == "reescalated"

    # The chair now holds the original chair item and the re-escalated manager item.
    async def two() -> list[dict[str, Any]] | None:
        got = await inbox_for(stack, chair, ignored)
        return got if len(got) == 2 else None

    chair_items = await eventually(two)
    (up,) = [i for i in chair_items if i["reescalation_of"]]
    assert up["reescalation_of"] == ignored_item["id"] and up["line_step"] == 1
    assert up["kind"] == "high_risk" and up["urgency"] == "immediate"
    async with stack.http(manager) as http:
        original = (await http.get(f"/v1/inbox/{ignored_item['id']}")).json()
    assert original["reescalated_at"] is not None
    assert await inbox_for(stack, chair, answered) != []  # its own chair item only
    assert all(not i["reescalation_of"] for i in await inbox_for(stack, chair, answered))
    # The re-escalation is an event like any other: the chairs' mailbox hears of it.
    await eventually(
        lambda: _async(
            [
                m
                for m in stack.smtp.mailbox.find(f"case ref {ignored.hex[:8]}")
                if CHAIRS_MAILBOX in m[0] and up["id"] in str(m[1].get_payload())
            ]
        )
    )


async def test_the_webhook_post_and_the_reescalation_timer_are_in_the_trace_of_the_event(
    notifications: NotificationsStack,
) -> None:
    """Issue 12, item 3: what the consumers' rows lead to later, on other loops, stays in the
    trace of the request that published the event. The partner's webhook POST is a client
    span under the webhook consumer's span, and the re-escalation workflow started for the
    manager's urgent item hangs from the inbox consumer's span that wrote the item; both lead
    back to the request (here a root span around the publish). No ``traceparent`` reaches
    the partner."""
    spans = recorded_spans()
    stack = notifications
    agency, key = stack.agency()
    agency_id = stack.agency_id(agency)
    manager = stack.user(Role.manager, agency)
    hook = f"t-{uuid.uuid4().hex[:8]}"
    async with stack.http(key) as http:
        resp = await http.post(
            "/v1/webhooks",
            json={
                "url": f"{stack.receiver.url}/hooks/{hook}",
                "event_types": ["mset.referral.escalated"],
            },
        )
    assert resp.status_code == 201, resp.text
    case_id = uuid.uuid4()
    escalation = high_risk_escalation(case_id, agency_id, "northshire", datetime.now(UTC))
    with trace.get_tracer("tests").start_as_current_span("a partner's request") as root:
        await stack.publish([escalation])
    trace_id = root.get_span_context().trace_id
    (item,) = await eventually(lambda: inbox_for(stack, manager, case_id), what="the item")

    def delivery_row() -> WebhookDelivery | None:
        with stack.store.session() as s:
            return s.scalar(
                select(WebhookDelivery).where(WebhookDelivery.event_id == escalation.id)
            )

    # Its own consumer group writes it, on its own fetch cycle: not necessarily before the
    # inbox consumer's item.
    delivery = await eventually(delivery_row, what="the webhook delivery")

    def line_from(match: Any) -> list[ReadableSpan] | None:
        """The recorded span ``match`` picks, and its ancestors, once they reach the root."""
        finished = list(spans.get_finished_spans())
        found = [s for s in finished if match(s)]
        if len(found) != 1:
            return None
        line = ancestry(found[0], finished)
        return line if line[-1].context == root.get_span_context() else None

    # The POST: a client span, child of the webhook consumer's span that wrote the delivery.
    post, wrote_delivery, *_ = await eventually(
        lambda: line_from(
            lambda s: (
                s.name == "POST webhook"
                and (s.attributes or {}).get("mset.webhook.delivery_id") == str(delivery.id)
            )
        ),
        what="the webhook POST's span, in the request's trace",
    )
    assert post.kind == SpanKind.CLIENT
    assert post.context is not None and post.context.trace_id == trace_id
    assert post.attributes is not None
    assert post.attributes["http.response.status_code"] == 204
    assert post.attributes["mset.webhook.attempt"] == 1
    assert post.status.status_code != StatusCode.ERROR
    assert wrote_delivery.kind == SpanKind.CONSUMER
    assert (wrote_delivery.attributes or {})["messaging.consumer.group.name"] == "webhooks"
    assert str(delivery.id) in strings(wrote_delivery, "mset.webhook.delivery_ids")
    # The partner's URL is not in the span (it may hold a token), and our trace context is
    # not in the partner's request.
    assert not any(stack.receiver.url in str(v) for v in post.attributes.values())
    # This event's: the manager's item may have gone up the line already (20 s), and its
    # re-escalation is one more event for the partner.
    (received,) = [
        r for r in stack.receiver.at(hook) if json.loads(r.body)["id"] == str(escalation.id)
    ]
    assert "traceparent" not in received.headers and "tracestate" not in received.headers
    assert "traceparent" not in json.loads(received.body)

    # The manager's urgent item gets its re-escalation workflow, started in the item's trace.
    workflow_id = inbox_reescalation_workflow_id(uuid.UUID(item["id"]))
    start, wrote_item, *_ = await eventually(
        lambda: line_from(
            lambda s: (
                s.name == f"StartWorkflow:{NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW}"
                and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
            )
        ),
        what="the re-escalation workflow's start, in the request's trace",
    )
    assert start.context is not None and start.context.trace_id == trace_id
    assert wrote_item.kind == SpanKind.CONSUMER
    assert (wrote_item.attributes or {})["messaging.consumer.group.name"] == "inbox"
    assert item["id"] in strings(wrote_item, "mset.inbox.item_ids")

    # The workflow runs in that trace too (so would the re-escalation it may publish).
    def ran() -> bool:
        return any(
            s.name == f"RunWorkflow:{NOTIFICATIONS_INBOX_REESCALATION_WORKFLOW}"
            and s.context is not None
            and s.context.trace_id == trace_id
            and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
            for s in spans.get_finished_spans()
        )

    await eventually(ran, what="the re-escalation workflow's run, in the request's trace")
    async with stack.http(manager) as http:  # nothing more to follow: the timer stands down
        assert (await http.post(f"/v1/inbox/{item['id']}/acknowledge")).status_code == 200


async def test_a_failing_webhook_is_retried_with_backoff_then_parked_until_resumed(
    notifications: NotificationsStack,
) -> None:
    stack = notifications
    agency, key = stack.agency()
    agency_id = stack.agency_id(agency)
    hook = f"f-{uuid.uuid4().hex[:8]}"
    stack.receiver.status[hook] = 500
    async with stack.http(key) as http:
        resp = await http.post(
            "/v1/webhooks",
            json={
                "url": f"{stack.receiver.url}/hooks/{hook}",
                "event_types": ["mset.referral.escalated"],
            },
        )
    sub_id = resp.json()["id"]

    def escalation() -> ReferralEscalated:
        # Routine: an immediate one's manager item, left unacknowledged, would go up the
        # line after 20 s and send the partner one more event than this test counts.
        event = high_risk_escalation(uuid.uuid4(), agency_id, "northshire", datetime.now(UTC))
        return event.model_copy(update={"urgency": Urgency.routine})

    first = escalation()
    await stack.publish([first])

    async def parked() -> dict[str, Any] | None:
        async with stack.http(key) as http:
            got = (await http.get(f"/v1/webhooks/{sub_id}")).json()
        return got if got["status"] == "parked" else None

    sub = await eventually(parked)
    assert sub["consecutive_failures"] == 3 and "last_error" not in sub
    (delivery,) = sub["recent_deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    log = delivery["attempt_log"]
    # The partner sees outcomes only; what its URL answered stays in our ledger.
    assert [a["outcome"] for a in log] == ["failed", "failed", "failed"]
    assert all(set(a) == {"attempt", "at", "outcome"} for a in log)
    with stack.store.session() as s:
        codes = s.scalars(
            select(WebhookAttempt.status_code)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.event_id == first.id)
        ).all()
    assert codes == [500, 500, 500]
    at = [datetime.fromisoformat(a["at"]) for a in log]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(at)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential backoff
    assert len(stack.receiver.at(hook)) == 3

    # While parked, new events are kept, not sent.
    second = escalation()
    await stack.publish([second])

    async def held() -> bool:
        with stack.store.session() as s:
            d = s.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == second.id))
            return d is not None and d.status == "held"

    await eventually(held)
    assert len(stack.receiver.at(hook)) == 3

    # The partner fixes its endpoint and resumes: the held delivery goes out.
    stack.receiver.status[hook] = 204
    async with stack.http(key) as http:
        resumed = await http.post(f"/v1/webhooks/{sub_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    got = await eventually(lambda: _async(_at_least(stack.receiver.at(hook), 4)))
    assert json.loads(got[-1].body)["id"] == str(second.id)


async def test_the_workers_counters_rise_on_its_metrics_port_for_an_escalation_and_a_dead_letter(
    notifications: NotificationsStack,
) -> None:
    """Issue 12, item 2: ``mset_escalations_published_total`` and ``mset_dead_lettered_total``
    on the notifications worker's own metrics port (as ``worker_start_metrics`` serves it)
    rise when the worker publishes an escalation and when its consumers dead-letter a
    message: what the MsetDeadLetters alert and the dashboard read."""
    stack = notifications
    port = free_port()
    server = serve_worker_metrics("127.0.0.1", port)
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def read() -> tuple[float, dict[str, float]]:
            text = httpx.get(url, timeout=10).text
            published = (
                value(
                    text, "mset_escalations_published_total", kind="high_risk", urgency="immediate"
                )
                or 0.0
            )
            dead = {
                g: value(text, "mset_dead_lettered_total", consumer_group=g) or 0.0
                for g in ("inbox", "webhooks", "email")
            }
            return published, dead

        name, _ = stack.agency()
        ops = stack.user(Role.ops, name)

        async def ops_counts() -> dict[str, int]:
            async with stack.http(ops) as http:
                got = await http.get("/v1/aggregates/operations")
            assert got.status_code == 200, got.text
            return {g["consumer_group"]: g["count"] for g in got.json()["dead_letters"]}

        counted_before = await ops_counts()
        published_before, dead_before = await asyncio.to_thread(read)
        escalation = high_risk_escalation(
            uuid.uuid4(), uuid.uuid4(), "northshire", datetime.now(UTC)
        )
        await stack.publish([escalation])
        producer = KafkaProducer(bootstrap_servers=stack.settings.broker)
        try:
            producer.send(stack.settings.events_topic, key=b"k", value=b"not an event").get(10)
        finally:
            producer.close()

        def risen() -> tuple[float, dict[str, float]] | None:
            published, dead = read()
            if published > published_before and all(dead[g] > dead_before[g] for g in dead):
                return published, dead
            return None

        published, dead = await eventually(lambda: asyncio.to_thread(risen), what="the counters")
        # One escalation published (more only if the activity was retried); the garbage
        # dead-lettered once by each consumer group.
        assert published - published_before >= 1
        assert {g: dead[g] - dead_before[g] for g in dead} == {
            "inbox": 1,
            "webhooks": 1,
            "email": 1,
        }
        # The ops dashboard's count (GET /v1/aggregates/operations) says the same: one dead
        # letter more for each group.
        counted = await ops_counts()
        assert {g: counted.get(g, 0) - counted_before.get(g, 0) for g in dead} == {
            "inbox": 1,
            "webhooks": 1,
            "email": 1,
        }
    finally:
        server.shutdown()
        server.server_close()
