"""This service's disclosures of a child's record, for the referral service's information-
sharing ledger (ADR 0023): each webhook delivery (to the partner agency), each e-mail (to a
role's mailbox) and each inbox read (to the member of staff).

Each is noted in this service's own table **before** it is made (the same rule as the ledger's:
nothing is shared unrecorded), under a report id that makes a second attempt the same
disclosure (a delivery's id, an e-mail's id), and the relay posts the notes to the referral
service (``POST /v1/disclosures``, the services' token) until it has them. The referral service
records a report id once, so a note posted twice (an answer lost) is one entry.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import httpx

from mset_contract.auth import Principal
from mset_contract.ledger import (
    DisclosurePurpose,
    DisclosureReport,
    DisclosureReports,
    DisclosureView,
)
from mset_contract.vocab import Role
from services.notifications.polling import PollingLoop
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    EmailMessage,
    InboxItem,
    Store,
    WebhookDelivery,
    WebhookSubscription,
    now_utc,
)

log = logging.getLogger("mset.notifications.disclosures")

BATCH = 100


def _body(report: DisclosureReport) -> dict[str, Any]:
    return report.model_dump(mode="json")


def webhook_disclosed(delivery: WebhookDelivery, sub: WebhookSubscription) -> dict[str, Any]:
    """An event posted to a partner agency's webhook: one disclosure per delivery."""
    return _body(
        DisclosureReport(
            report_id=delivery.id,
            case_id=delivery.case_id,
            record="event",
            record_id=delivery.event_id,
            view=DisclosureView.webhook,
            recipient_kind="webhook",
            agency_id=sub.agency_id,
            recipient=f"webhook subscription {sub.id}",
            purpose=DisclosurePurpose.case_work,
            at=now_utc(),
        )
    )


def email_disclosed(message: EmailMessage, item: InboxItem) -> dict[str, Any]:
    """An escalation e-mailed to a role's mailbox: one disclosure per message."""
    return _body(
        DisclosureReport(
            report_id=message.id,
            case_id=item.case_id,
            record="inbox_item",
            record_id=item.id,
            view=DisclosureView.email,
            recipient_kind="mailbox",
            agency_id=item.target_agency_id,
            role=Role(item.target_role) if item.target_role else None,
            recipient=message.recipient,
            purpose=DisclosurePurpose.case_work,
            at=now_utc(),
        )
    )


def inbox_disclosed(principal: Principal, items: list[InboxItem]) -> list[dict[str, Any]]:
    """Escalations shown to a member of staff in the inbox: one disclosure per item shown."""
    return [
        _body(
            DisclosureReport(
                report_id=uuid.uuid4(),
                case_id=item.case_id,
                record="inbox_item",
                record_id=item.id,
                view=DisclosureView.inbox_item,
                recipient_kind="user",
                agency_id=principal.agency_id,
                user_id=principal.user_id,
                role=principal.role,
                purpose=DisclosurePurpose.case_work,
                at=now_utc(),
            )
        )
        for item in items
    ]


class DisclosureRelay(PollingLoop):
    """Posts noted disclosures to the referral service's ledger, on its own thread."""

    name = "disclosure-relay"

    def __init__(
        self,
        store: Store,
        settings: NotificationsSettings,
        stop: threading.Event,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(stop, settings.disclosure_relay_seconds)
        self.store = store
        self.s = settings
        self.client = httpx.Client(
            base_url=settings.referral_url,
            timeout=10.0,
            transport=transport,
            headers={"Authorization": f"Bearer {settings.service_token.get_secret_value()}"},
        )

    def close(self) -> None:
        self.client.close()

    def tick(self) -> int:
        """Relay one batch; how many the ledger now has."""
        notes = self.store.unsent_disclosures(BATCH)
        if not notes:
            return 0
        reports = DisclosureReports(
            reporter="notifications",
            entries=[DisclosureReport.model_validate(n.body) for n in notes],
        )
        try:
            resp = self.client.post("/v1/disclosures", json=reports.model_dump(mode="json"))
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            # Kept, and sent again: the ledger records each report id once.
            log.warning("the ledger could not be told of %d disclosures: %s", len(notes), exc)
            return 0
        self.store.disclosures_sent([n.id for n in notes])
        return len(notes)
