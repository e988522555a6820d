"""A notifications worker killed between sending a webhook or an e-mail and recording that it
did (docs/decisions/0018): the message is sent again, with the idempotency key the receiver
drops copies by (the CloudEvent id, the Message-ID), so the receiver has it once. Only the
message in flight is in doubt: the others are sent at once by the worker that takes over.

The kill is a sender whose recording step never runs; the time a real one would wait for the
dead sender's lease to run out is skipped by ending the lease in the database.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from mset_platform.db import make_engine
from services.notifications.mailer import Mailer
from services.notifications.migrate import upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    IN_DOUBT,
    EmailMessage,
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhooks import WebhookDispatcher
from tests.integration.notifications_fixtures import (  # noqa: F401 - fixtures
    Receiver,
    Smtp,
    smtp_server_fixture,
    webhook_receiver_fixture,
)


class Killed(Exception):
    """The worker process died here."""


class DiesAfterPosting(WebhookDispatcher):
    def _record(self, *args: Any) -> None:
        raise Killed


class DiesAfterSending(Mailer):
    def _record(self, *args: Any) -> None:
        raise Killed


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def settings(database_url: str, smtp: Smtp) -> NotificationsSettings:
    return NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "webhook_timeout_seconds": 5,
            # The receiver is plain http on 127.0.0.1: allowed explicitly, as an operator
            # allows a partner's private endpoint.
            "webhook_require_https": False,
            "egress_allow": ["127.0.0.1"],
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_from": "mset-flow@northshire.test",
        }
    )


def end_leases(store: Store) -> None:
    """As if the dead sender's lease had run out."""
    past = now_utc() - timedelta(seconds=1)
    with store.session() as s:
        s.execute(update(WebhookDelivery).values(lease_until=past))
        s.execute(update(EmailMessage).values(lease_until=past))


def pending_deliveries(store: Store, url: str, n: int) -> list[uuid.UUID]:
    """A subscription with ``n`` due deliveries; their event ids, oldest first."""
    now = now_utc()
    sub = uuid.uuid4()
    events = [uuid.uuid4() for _ in range(n)]
    with store.session() as s:
        s.add(
            WebhookSubscription(
                id=sub,
                agency_id=uuid.uuid4(),
                url=url,
                event_types=["mset.referral.escalated"],
                status="active",
                consecutive_failures=0,
                created_at=now,
            )
        )
        s.flush()
        for i, event in enumerate(events):
            s.add(
                WebhookDelivery(
                    id=uuid.uuid4(),
                    subscription_id=sub,
                    event_id=event,
                    event_type="mset.referral.escalated",
                    case_id=uuid.uuid4(),
                    body=json.dumps({"id": str(event), "type": "mset.referral.escalated"}),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now - timedelta(seconds=n - i),
                    created_at=now,
                )
            )
    return events


def test_a_webhook_posted_by_a_killed_dispatcher_reaches_the_partner_once(
    store: Store, database_url: str, smtp_server: Smtp, webhook_receiver: Receiver
) -> None:
    hook = f"claims-{uuid.uuid4().hex[:8]}"
    s = settings(database_url, smtp_server)
    first, *others = pending_deliveries(store, f"{webhook_receiver.url}/hooks/{hook}", 3)
    stop = threading.Event()

    dead = DiesAfterPosting(store, s, stop)
    with pytest.raises(Killed):
        dead.tick()  # posted the oldest, then died
    dead.client.close()  # the process's sockets die with it

    restarted = WebhookDispatcher(store, s, stop)
    try:
        # The one in flight waits for its lease; nothing else does.
        assert restarted.tick() == 2
        posted = [r.headers["mset-event-id"] for r in webhook_receiver.at(hook)]
        assert posted == [str(e) for e in [first, *others]]
        end_leases(store)
        assert restarted.tick() == 1
    finally:
        restarted.client.close()

    received = webhook_receiver.at(hook)
    # Sent again as it was sent: the same event id and body, for the receiver to drop.
    again = [r for r in received if r.headers["mset-event-id"] == str(first)]
    assert len(again) == 2 and again[0].body == again[1].body
    assert again[0].headers["mset-delivery"] == again[1].headers["mset-delivery"]
    # What the partner has, dropping an event id it has already: each event once.
    assert sorted({r.headers["mset-event-id"] for r in received}) == sorted(
        str(e) for e in [first, *others]
    )
    # The ledger knows: two attempts, the first of which nobody heard the answer to.
    with store.session() as db:
        d = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == first)).one()
        tries = db.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == d.id)
            .order_by(WebhookAttempt.attempt)
        ).all()
        assert (d.status, d.attempts, d.claim_token) == ("delivered", 2, None)
        assert [(t.attempt, t.error, t.status_code) for t in tries] == [
            (1, IN_DOUBT, None),
            (2, None, 204),
        ]


def test_an_answer_recorded_after_the_lease_ran_out_changes_nothing(
    store: Store, database_url: str, smtp_server: Smtp, webhook_receiver: Receiver
) -> None:
    hook = f"claims-{uuid.uuid4().hex[:8]}"
    s = settings(database_url, smtp_server)
    (event,) = pending_deliveries(store, f"{webhook_receiver.url}/hooks/{hook}", 1)
    dispatcher = WebhookDispatcher(store, s, threading.Event())
    try:
        slow = store.claim_next_delivery(timedelta(seconds=30))
        assert slow is not None
        end_leases(store)  # the slow sender overran its lease...
        taken_over = store.claim_next_delivery(timedelta(seconds=30))
        assert taken_over is not None and taken_over.in_doubt
        # ...and its failure, arriving late, neither fails nor reschedules the delivery.
        dispatcher._record(slow, None, "ReadTimeout", 5000)
        with store.session() as db:
            d = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event)).one()
            assert (d.status, d.claim_token, d.last_error) == ("pending", taken_over.token, None)
        dispatcher._record(taken_over, 204, None, 5)
        with store.session() as db:
            d = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event)).one()
            assert (d.status, d.attempts, d.claim_token) == ("delivered", 2, None)
    finally:
        dispatcher.client.close()


def test_an_email_sent_by_a_killed_mailer_is_sent_again_with_the_same_message_id(
    store: Store, database_url: str, smtp_server: Smtp
) -> None:
    now = now_utc()
    item = uuid.uuid4()
    with store.session() as s:
        s.add(
            EmailMessage(
                id=uuid.uuid4(),
                event_id=uuid.uuid4(),
                inbox_item_id=item,
                recipient="mset-managers@northshire.test",
                subject="MSET: urgent escalation",
                body="An escalation is in your inbox.",
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    s_ = settings(database_url, smtp_server)
    stop = threading.Event()

    with pytest.raises(Killed):
        DiesAfterSending(store, s_, stop).tick()  # the server accepted it, then we died
    assert Mailer(store, s_, stop).tick() == 0  # its lease still holds
    end_leases(store)
    assert Mailer(store, s_, stop).tick() == 1

    mine = [m for _, m in smtp_server.mailbox.messages if m["X-MSET-Inbox-Item"] == str(item)]
    assert len(mine) == 2
    # The same Message-ID both times: mail systems keep one message.
    assert len({m["Message-ID"] for m in mine}) == 1
    assert str(mine[0]["Message-ID"]).endswith("@northshire.test>")
    with store.session() as db:
        m = db.scalars(select(EmailMessage).where(EmailMessage.inbox_item_id == item)).one()
        assert (m.status, m.attempts, m.claim_token) == ("sent", 2, None)
