"""The notifications service's part of the retention sweep (workflows/retention.py, ADR
0024): erase what it holds about a child whose records have fallen due, by the child's ids
(case ids, and episode ids for episodes with no case: an event's subject is one of them).

What goes: the inbox items about the child and their re-escalation timers' workflow
executions, the e-mails sent for them, the webhook deliveries of the child's events and
their attempts (the delivery ledger), the child's events still in the outbox, and the
consumers' record of having handled those events. Subscriptions, and the outbox's topic
ids, are about partners and the broker, not a child, and stay. Idempotent: a repeated erasure
finds nothing and reports 0.

Events carry no personal data (ADR 0002), but an event's id is derived from its case's
workflow id (``mset_contract.events.event_id``), and the consumers' handled-event rows keep
it: those rows are found by recomputing the ids of the workflows' numbered steps.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Collection

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from mset_contract.events.catalogue import event_id
from mset_contract.retention import Counts, EraseInput, EraseResult
from mset_contract.temporal import (
    NOTIFICATIONS_RETENTION_ERASE_ACTIVITY,
    inbox_reescalation_workflow_id,
    missing_episode_workflow_id,
    referral_workflow_id,
)
from mset_platform.retention import delete_executions
from services.notifications.store import (
    DeadLetter,
    DisclosureNote,
    EmailMessage,
    HandledEvent,
    InboxItem,
    OutboxEvent,
    OutboxTopic,
    Store,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

# Every table of the notifications service: erased by child, or why it holds nothing of a
# child's (a unit test compares these with the service's tables).
ERASED_TABLES = {
    InboxItem.__tablename__: "escalations about the child, with notes on acting on them",
    EmailMessage.__tablename__: "e-mails sent for those escalations",
    WebhookDelivery.__tablename__: "the child's events as delivered to partners",
    WebhookAttempt.__tablename__: "each attempt at those deliveries",
    OutboxEvent.__tablename__: "the child's events waiting to be published",
    HandledEvent.__tablename__: "which consumer handled which of the child's events",
}
KEPT_TABLES = {
    WebhookSubscription.__tablename__: "partners' webhook subscriptions",
    OutboxTopic.__tablename__: "the broker topic's id",
    # The same entries the referral service's ledger keeps (ADR 0023), waiting to be relayed
    # there: a case's random id, the recipient, the view and fields, never the child.
    DisclosureNote.__tablename__: "disclosures noted for the information-sharing "
    "ledger, which keeps them as the record that the sharing happened",
    # A consumer group, an event type and a time: no case, event or child.
    DeadLetter.__tablename__: "that a message was dead-lettered (group, type, when)",
}

# A case's workflow numbers its events 1, 2, 3, … (workflows/publishing.py): the handled
# events are looked for until this many numbers in a row are not found.
STEP_GAP = 20
STEP_LIMIT = 100_000


def _n(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def _step_event_ids(s: Session, workflow_id: str) -> list[uuid.UUID]:
    """The ids of the events ``workflow_id``'s numbered steps published that a consumer
    handled, found by recomputing them."""
    found: list[uuid.UUID] = []
    misses, step = 0, 1
    while misses < STEP_GAP and step < STEP_LIMIT:
        batch = [(n, event_id(workflow_id, str(n))) for n in range(step, step + STEP_GAP)]
        wanted = [eid for _, eid in batch]
        seen = set(
            s.scalars(select(HandledEvent.event_id).where(HandledEvent.event_id.in_(wanted)))
        )
        for _, eid in batch:
            if eid in seen:
                found.append(eid)
                misses = 0
            else:
                misses += 1
        step += STEP_GAP
    return found


def erase_rows(store: Store, subject_ids: Collection[uuid.UUID]) -> Counts:
    """Delete the child's rows; return how many of each kind."""
    ids = list(subject_ids)
    if not ids:
        return {}
    with store.session() as s:
        items = list(
            s.execute(select(InboxItem.id, InboxItem.event_id).where(InboxItem.case_id.in_(ids)))
        )
        item_ids = [i for i, _ in items]
        deliveries = list(
            s.execute(
                select(WebhookDelivery.id, WebhookDelivery.event_id).where(
                    WebhookDelivery.case_id.in_(ids)
                )
            )
        )
        delivery_ids = [d for d, _ in deliveries]
        # The outbox keeps each event as CloudEvents JSON: its subject is the case's id.
        outbox: list[tuple[int, uuid.UUID]] = []
        for i in ids:
            for seq, eid, body in s.execute(
                select(OutboxEvent.seq, OutboxEvent.event_id, OutboxEvent.body).where(
                    OutboxEvent.body.contains(str(i))
                )
            ):
                if str(json.loads(body).get("subject")) in {str(x) for x in ids}:
                    outbox.append((seq, eid))
        events = {e for _, e in items} | {e for _, e in deliveries} | {e for _, e in outbox}
        workflow_ids = [referral_workflow_id(i) for i in ids] + [
            missing_episode_workflow_id(i) for i in ids
        ]
        for wid in workflow_ids:
            events.update(_step_event_ids(s, wid))
        events.update(event_id(inbox_reescalation_workflow_id(i), "reescalate") for i in item_ids)
        counts = {
            "notifications.email_messages": _n(
                s.execute(
                    delete(EmailMessage).where(
                        or_(
                            EmailMessage.inbox_item_id.in_(item_ids),
                            EmailMessage.event_id.in_(list(events)),
                        )
                    )
                )
            ),
            "notifications.inbox_items": _n(
                s.execute(delete(InboxItem).where(InboxItem.id.in_(item_ids)))
            ),
            "notifications.webhook_attempts": _n(
                s.execute(
                    delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                )
            ),
            "notifications.webhook_deliveries": _n(
                s.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)))
            ),
            "notifications.outbox_events": _n(
                s.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_([q for q, _ in outbox])))
            ),
            "notifications.handled_events": _n(
                s.execute(delete(HandledEvent).where(HandledEvent.event_id.in_(list(events))))
            ),
        }
    return counts


class NotificationsRetentionActivities:
    def __init__(self, store: Store, client: Client) -> None:
        self.store = store
        self.client = client

    @activity.defn(name=NOTIFICATIONS_RETENTION_ERASE_ACTIVITY)
    async def erase(self, inp: EraseInput) -> EraseResult:
        # The timers' executions first: a timer that fired meanwhile would look for its item.
        # Their ids come from the items, so a retry after the rows are gone would not find
        # them: the rows are read (not deleted) first, the executions deleted, then the rows.
        workflow_ids = await asyncio.to_thread(self._timer_workflow_ids, inp.subject_ids)
        executions = await delete_executions(self.client, workflow_ids)
        counts = await asyncio.to_thread(erase_rows, self.store, inp.subject_ids)
        return EraseResult(counts={**counts, "temporal.reescalation_executions": executions})

    def _timer_workflow_ids(self, subject_ids: Collection[uuid.UUID]) -> list[str]:
        with self.store.session() as s:
            items = s.scalars(select(InboxItem.id).where(InboxItem.case_id.in_(list(subject_ids))))
            return [inbox_reescalation_workflow_id(i) for i in items]
