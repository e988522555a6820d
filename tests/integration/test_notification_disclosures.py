"""The notifications service's disclosures reach the information-sharing ledger (issue 11): a
webhook delivery to a partner agency, an escalation e-mailed to a role's mailbox and an inbox
item read by a manager are each noted before they are made and relayed to the referral
service, which records each once, however often it is relayed. Real notifications
dispatchers and relay, a real SMTP server and webhook receiver, the real referral API;
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from mset_contract.auth import Principal
from mset_contract.vocab import AgencyType, Role
from mset_platform.db import make_engine
from services.notifications.disclosures import DisclosureRelay
from services.notifications.inbox import Inbox
from services.notifications.mailer import Mailer
from services.notifications.migrate import upgrade
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    DisclosureNote,
    EmailMessage,
    InboxItem,
    Store,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)
from services.notifications.webhooks import WebhookDispatcher
from services.referral.ledger import Ledger
from tests.integration.conftest import Intake
from tests.integration.notifications_fixtures import (  # noqa: F401 - fixtures
    Receiver,
    Smtp,
    smtp_server_fixture,
    webhook_receiver_fixture,
)


@pytest.fixture
def notif_store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def test_webhooks_e_mails_and_inbox_reads_are_ledger_entries(
    intake: Intake,
    notif_store: Store,
    database_url: str,
    smtp_server: Smtp,
    webhook_receiver: Receiver,
) -> None:
    settings = NotificationsSettings.model_validate(
        {
            "environment": "test",
            "database_url": database_url,
            "referral_url": intake.url,
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_from": "mset-flow@northshire.test",
            # The receiver is plain http on 127.0.0.1: a partner's private endpoint, which
            # only an operator's explicit allow-list lets webhooks reach (ADR 0020).
            "webhook_require_https": False,
            "egress_allow": ["127.0.0.1"],
        }
    )
    partner = intake.identity.create_agency("Northshire Police", AgencyType.police)
    council = intake.identity.create_agency("Northshire Council", AgencyType.local_authority)
    manager = Principal(
        kind="user",
        agency_id=council.id,
        agency_name="Northshire Council",
        agency_type=AgencyType.local_authority,
        user_id=uuid.uuid4(),
        user_name="Mo Manager",
        role=Role.manager,
    )
    case_id = uuid.uuid4()
    hook = f"ledger-{uuid.uuid4().hex[:8]}"
    now = now_utc()
    item_id, sub_id, delivery_id, email_id = (uuid.uuid4() for _ in range(4))
    with notif_store.session() as s:
        s.add(
            InboxItem(
                id=item_id,
                event_id=uuid.uuid4(),
                case_id=case_id,
                referrer_agency_id=partner.id,
                local_authority="northshire",
                kind="high_risk",
                urgency="immediate",
                level="high",
                rule="escalate.high_risk",
                ruleset_version="v1",
                fired_rules=["band.high"],
                designation="referring_agency",
                target_role="manager",
                target_agency_id=council.id,
                line_step=0,
                created_at=now,
            )
        )
        s.add(
            WebhookSubscription(
                id=sub_id,
                agency_id=partner.id,
                url=f"{webhook_receiver.url}/hooks/{hook}",
                event_types=["mset.referral.escalated"],
                status="active",
                consecutive_failures=0,
                created_at=now,
            )
        )
        s.flush()
        s.add(
            WebhookDelivery(
                id=delivery_id,
                subscription_id=sub_id,
                event_id=uuid.uuid4(),
                event_type="mset.referral.escalated",
                case_id=case_id,
                body=json.dumps({"type": "mset.referral.escalated"}),
                status="pending",
                attempts=0,
                next_attempt_at=now - timedelta(seconds=1),
                created_at=now,
            )
        )
        s.add(
            EmailMessage(
                id=email_id,
                event_id=uuid.uuid4(),
                inbox_item_id=item_id,
                recipient="managers@northshire.test",
                subject=f"High risk {hook}",
                body="A case needs you.",
                status="pending",
                attempts=0,
                next_attempt_at=now - timedelta(seconds=1),
                created_at=now,
            )
        )

    stop = threading.Event()
    webhooks = WebhookDispatcher(notif_store, settings, stop)
    mailer = Mailer(notif_store, settings, stop)
    relay = DisclosureRelay(notif_store, settings, stop)
    try:
        assert webhooks.tick() == 1 and mailer.tick() == 1
        assert len(webhook_receiver.at(hook)) == 1 and smtp_server.mailbox.find(hook)
        Inbox(notif_store).get(manager, item_id)
        assert relay.tick() == 3
        assert relay.tick() == 0  # each relayed once
        # A note relayed again (its answer lost) is still one entry in the ledger.
        with notif_store.session() as s:
            s.execute(update(DisclosureNote).values(sent_at=None))
        assert relay.tick() == 3
    finally:
        webhooks.client.close()
        relay.client.close()

    entries = {e.view.value: e for e in Ledger(intake.store).all(case_ids=[case_id])}
    assert len(Ledger(intake.store).all(case_ids=[case_id])) == 3
    webhook = entries["webhook"]
    assert (webhook.agency_id, webhook.recipient_kind, webhook.reported_by) == (
        partner.id,
        "webhook",
        "notifications",
    )
    assert webhook.recipient == f"webhook subscription {sub_id}"
    email = entries["email"]
    assert (email.recipient, email.role, email.agency_id) == (
        "managers@northshire.test",
        Role.manager,
        council.id,
    )
    read = entries["inbox_item"]
    assert (read.user_id, read.role, read.record_id) == (manager.user_id, Role.manager, item_id)
    assert {e.purpose for e in entries.values()} == {"case_work"}
