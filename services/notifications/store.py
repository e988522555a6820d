"""Tables owned by the notifications service, and the queries on them.

Handled events (one row per consumer and event id, under a unique constraint: what makes a
redelivered event change nothing), the escalation inbox, partner webhook subscriptions with
their delivery ledger (a delivery per event and subscription, an attempt row per try), and
the e-mail outbox. Every table is prefixed ``notifications_`` and migrations keep their own
version table, so this service can share a database with others without touching theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from mset_contract.auth import Principal
from mset_contract.triage import AgencyDesignation
from mset_platform.db import SessionStore, UTCDateTime
from mset_platform.paging import Keyset, Paged, PageRequest
from services.notifications.domain import (
    AGENCY_DESIGNATIONS,
    AUTHORITY_DESIGNATIONS,
    rhi_provider_for,
)


class Base(DeclarativeBase):
    pass


# BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class HandledEvent(Base):
    __tablename__ = "notifications_handled_events"
    __table_args__ = (UniqueConstraint("consumer", "event_id", name="uq_notifications_handled"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(80))
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """Every event the publish activity was given, recorded before it is sent: the system of
    record the broker (which keeps records only in memory) is not. An event is *settled* once
    every consumer group has recorded it in the handled-events table; what is not settled
    when the broker loses its records is sent again from here (see outbox.py). Holds the
    CloudEvent exactly as published: ids, codes, levels and dates, no personal data."""

    __tablename__ = "notifications_outbox"
    __table_args__ = (Index("ix_notifications_outbox_unsettled", "settled_at", "seq"),)

    seq: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    event_type: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)  # CloudEvents JSON (to_structured_json)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutboxTopic(Base):
    """The id of the events topic as the relay last saw it: a different id means the broker
    lost the topic (and every record in it) and created it again."""

    __tablename__ = "notifications_outbox_topics"

    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    topic_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxItem(Base):
    """One escalation for one target (a role at an agency, or at agencies of a type)."""

    __tablename__ = "notifications_inbox_items"
    __table_args__ = (
        Index("ix_notifications_inbox_target", "target_role", "target_agency_id"),
        Index("ix_notifications_inbox_timer", "timer_started_at", "urgency"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # uuid5(event id, target)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    referrer_agency_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    local_authority: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    urgency: Mapped[str] = mapped_column(String(20))
    level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    rule: Mapped[str] = mapped_column(String(80))
    ruleset_version: Mapped[str] = mapped_column(String(20))
    fired_rules: Mapped[list[str]] = mapped_column(JSON)
    about: Mapped[str | None] = mapped_column(String(64), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The target as the event named it, and as resolved for routing (store.visible_to).
    # target_agency_type is no longer written: items made before routing by authority kept it.
    designation: Mapped[str] = mapped_column(String(40))
    agency_ref: Mapped[str | None] = mapped_column(String(40), nullable=True)
    target_role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    target_agency_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    target_agency_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    target_authority: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reescalation_of: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    line_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    actioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    actioned_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # Free text written by staff: it stays in this table, never in an event, log or metric.
    action_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The durable re-escalation timer (a Temporal workflow) was started for this item.
    timer_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reescalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The W3C trace context the item was written in (the inbox consumer's span): its
    # re-escalation workflow is started in that trace. Operations data, never shown.
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WebhookSubscription(Base):
    __tablename__ = "notifications_webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))  # active | parked | deleted
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # For the operator only: the subscriber's view never shows remote errors (webhooks.py).
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The signing secret, sealed (webhooks.seal_secret); None on a subscription made before
    # secrets were random, whose secret is derived from the signing key until rotated. The
    # previous secret still signs too until ``previous_secret_until``.
    secret_sealed: Mapped[str | None] = mapped_column(String(300), nullable=True)
    previous_secret_sealed: Mapped[str | None] = mapped_column(String(300), nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(Base):
    """The ledger: one event for one subscription, until delivered or given up."""

    __tablename__ = "notifications_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_notifications_delivery"),
        Index("ix_notifications_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications_webhook_subscriptions.id"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(80))
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    body: Mapped[str] = mapped_column(Text)  # the CloudEvent (no personal data by design)
    status: Mapped[str] = mapped_column(String(10))  # pending | held | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted when claimed
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The attempt holding the row, from its claim until its answer is recorded (see
    # Store.claim_next_delivery): still set after the lease, it was posted or not.
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The W3C trace context the delivery was written in (the webhook consumer's span): each
    # POST is a span of that trace. Operations data: never sent to the partner, never shown.
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "notifications_webhook_attempts"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications_webhook_deliveries.id"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class EmailMessage(Base):
    """The e-mail outbox: what was (or will be) sent, to whom, and how it went."""

    __tablename__ = "notifications_email_messages"
    __table_args__ = (Index("ix_notifications_email_due", "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # uuid5(event id, target)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    inbox_item_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted when claimed
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)  # as above
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DisclosureNote(Base):
    """A disclosure this service made (or is about to make), noted in the same service's
    database before it is made and relayed to the referral service's information-sharing
    ledger (services/notifications/disclosures.py); ``id`` is the report's id there."""

    __tablename__ = "notifications_disclosure_reports"
    __table_args__ = (Index("ix_notifications_disclosure_unsent", "sent_at", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # a DisclosureReport
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeadLetter(Base):
    """That a consumer group dead-lettered a message, and when: the ops dashboard counts
    them. The message itself stays on the dead-letter topic; no event or case id is kept
    here (and no reason: a validation error may quote a field's value)."""

    __tablename__ = "notifications_dead_letters"
    __table_args__ = (Index("ix_notifications_dead_letters_at", "dead_lettered_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    consumer_group: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str | None] = mapped_column(String(120), nullable=True)
    dead_lettered_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The lists' orders (mset_platform/paging.py): the inbox newest first; a partner's
# subscriptions oldest first; a subscription's deliveries newest first.
INBOX_ORDER = Keyset("inbox", (InboxItem.created_at, "desc"), (InboxItem.id, "asc"))
SUBSCRIPTION_ORDER = Keyset(
    "webhooks", (WebhookSubscription.created_at, "asc"), (WebhookSubscription.id, "asc")
)
DELIVERY_ORDER = Keyset(
    "webhook-deliveries", (WebhookDelivery.created_at, "desc"), (WebhookDelivery.id, "asc")
)


def _subscriptions_q(
    agency_id: uuid.UUID, include_deleted: bool = False
) -> Select[WebhookSubscription]:
    q = select(WebhookSubscription).where(WebhookSubscription.agency_id == agency_id)
    if not include_deleted:
        q = q.where(WebhookSubscription.status != "deleted")
    return q


def now_utc() -> datetime:
    return datetime.now(UTC)


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL form of domain.visible_to: the inbox items a staff user may see. Routing is
    decided here, when the inbox is read, from what identity says of the user now: a user
    who starts serving an authority sees its open items at once."""
    role = principal.role.value if principal.role else None
    agency_wide = [d.value for d in AGENCY_DESIGNATIONS]
    authority_wide = [d.value for d in AUTHORITY_DESIGNATIONS]
    return or_(InboxItem.target_role.is_(None), InboxItem.target_role == role) & or_(
        InboxItem.designation.in_(agency_wide)
        & (InboxItem.target_agency_id == principal.agency_id),
        InboxItem.designation.in_(authority_wide)
        & InboxItem.target_authority.in_(sorted(principal.authorities)),
        (InboxItem.designation == AgencyDesignation.rhi_provider.value)
        & InboxItem.target_authority.in_(sorted(rhi_provider_for(principal))),
    )


class Store(SessionStore):
    # Idempotency ---------------------------------------------------------------------------

    def handled(self, s: Session, consumer: str, event_id: uuid.UUID) -> bool:
        return (
            s.scalar(
                select(HandledEvent.id).where(
                    HandledEvent.consumer == consumer, HandledEvent.event_id == event_id
                )
            )
            is not None
        )

    def mark_handled(self, s: Session, consumer: str, event_id: uuid.UUID, event_type: str) -> None:
        s.add(
            HandledEvent(
                consumer=consumer, event_id=event_id, event_type=event_type, handled_at=now_utc()
            )
        )

    def mark_seen(self, consumer: str, events: Sequence[tuple[uuid.UUID, str]]) -> None:
        """Record that ``consumer`` is done with these events, whether it acted on them or
        had nothing to do: the outbox relay counts an event settled only when every group
        has it. Events already recorded (by the handler's own transaction) are left alone."""
        ids = {i for i, _ in events}
        if not ids:
            return
        for attempt in (1, 2):
            try:
                with self.session() as s:
                    have = set(
                        s.scalars(
                            select(HandledEvent.event_id).where(
                                HandledEvent.consumer == consumer, HandledEvent.event_id.in_(ids)
                            )
                        )
                    )
                    added: set[uuid.UUID] = set()
                    for event_id, event_type in events:
                        if event_id not in have and event_id not in added:
                            self.mark_handled(s, consumer, event_id, event_type)
                            added.add(event_id)
                return
            except IntegrityError:
                if attempt == 2:
                    raise  # a concurrent copy of this consumer recorded one meanwhile: once more

    # Outbox --------------------------------------------------------------------------------

    def record_outbox(self, events: Sequence[tuple[uuid.UUID, str, str]]) -> None:
        """Record (id, type, CloudEvents JSON) rows; an id already recorded (a retried
        activity) is left as it is."""
        if not events:
            return
        now = now_utc()
        rows = [
            {"event_id": i, "event_type": t, "body": b, "recorded_at": now} for i, t, b in events
        ]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.session() as s:
            s.execute(insert(OutboxEvent).values(rows).on_conflict_do_nothing())

    def mark_published(self, event_ids: Sequence[uuid.UUID]) -> None:
        with self.session() as s:
            s.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id.in_(event_ids))
                .values(published_at=now_utc())
            )

    def settle_outbox(self, consumers: Sequence[str], limit: int = 1000) -> int:
        """Mark settled the oldest unsettled events every consumer group has recorded."""
        if not consumers:
            return 0
        with self.session() as s:
            ids = list(
                s.scalars(
                    select(OutboxEvent.event_id)
                    .where(OutboxEvent.settled_at.is_(None))
                    .order_by(OutboxEvent.seq)
                    .limit(limit)
                )
            )
            if not ids:
                return 0
            done = list(
                s.scalars(
                    select(HandledEvent.event_id)
                    .where(HandledEvent.event_id.in_(ids), HandledEvent.consumer.in_(consumers))
                    .group_by(HandledEvent.event_id)
                    .having(func.count(func.distinct(HandledEvent.consumer)) == len(consumers))
                )
            )
            if done:
                s.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.event_id.in_(done))
                    .values(settled_at=now_utc())
                )
            return len(done)

    def unsettled_outbox(
        self, after_seq: int, limit: int, recorded_before: datetime | None = None
    ) -> Sequence[OutboxEvent]:
        """Unsettled events after ``after_seq``, oldest first; with ``recorded_before``, only
        those the broker never acknowledged and recorded before then."""
        q = select(OutboxEvent).where(OutboxEvent.settled_at.is_(None), OutboxEvent.seq > after_seq)
        if recorded_before is not None:
            q = q.where(
                OutboxEvent.published_at.is_(None), OutboxEvent.recorded_at < recorded_before
            )
        with self.session() as s:
            return s.scalars(q.order_by(OutboxEvent.seq).limit(limit)).all()

    def prune_outbox(self, settled_before: datetime) -> None:
        with self.session() as s:
            s.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.settled_at.is_not(None), OutboxEvent.settled_at < settled_before
                )
            )

    def outbox_topic_id(self, topic: str) -> str | None:
        with self.session() as s:
            row = s.get(OutboxTopic, topic)
            return row.topic_id if row else None

    def set_outbox_topic_id(self, topic: str, topic_id: str) -> None:
        with self.session() as s:
            row = s.get(OutboxTopic, topic, with_for_update=True)
            if row is None:
                s.add(OutboxTopic(topic=topic, topic_id=topic_id, seen_at=now_utc()))
            else:
                row.topic_id, row.seen_at = topic_id, now_utc()

    # Inbox ---------------------------------------------------------------------------------

    def inbox(
        self, s: Session, principal: Principal, state: str, page: PageRequest
    ) -> Paged[InboxItem]:
        q = select(InboxItem).where(visible_to(principal))
        if state == "open":
            q = q.where(InboxItem.actioned_at.is_(None))
        elif state == "unacknowledged":
            q = q.where(InboxItem.acknowledged_at.is_(None), InboxItem.actioned_at.is_(None))
        elif state == "actioned":
            q = q.where(InboxItem.actioned_at.is_not(None))
        return INBOX_ORDER.fetch(s, q, page)

    def inbox_item(
        self, s: Session, principal: Principal, item_id: uuid.UUID, lock: bool = False
    ) -> InboxItem | None:
        q = select(InboxItem).where(InboxItem.id == item_id, visible_to(principal))
        if lock:
            q = q.with_for_update()
        return s.scalar(q)

    def items_awaiting_timer(
        self, s: Session, urgencies: Sequence[str], limit: int
    ) -> list[tuple[uuid.UUID, str | None]]:
        """Urgent items, still unacknowledged, whose re-escalation timer is not started:
        (id, the trace context the item was written in)."""
        rows = s.execute(
            select(InboxItem.id, InboxItem.traceparent)
            .where(
                InboxItem.timer_started_at.is_(None),
                InboxItem.urgency.in_(urgencies),
                InboxItem.acknowledged_at.is_(None),
                InboxItem.actioned_at.is_(None),
            )
            .order_by(InboxItem.created_at)
            .limit(limit)
        )
        return [(item_id, traceparent) for item_id, traceparent in rows]

    def mark_timer_started(self, s: Session, item_id: uuid.UUID) -> None:
        s.execute(
            update(InboxItem)
            .where(InboxItem.id == item_id, InboxItem.timer_started_at.is_(None))
            .values(timer_started_at=now_utc())
        )

    # Webhooks ------------------------------------------------------------------------------

    def subscriptions_of(
        self, s: Session, agency_id: uuid.UUID, include_deleted: bool = False
    ) -> Sequence[WebhookSubscription]:
        return s.scalars(
            _subscriptions_q(agency_id, include_deleted).order_by(*SUBSCRIPTION_ORDER.order_by())
        ).all()

    def subscription_page(
        self, s: Session, agency_id: uuid.UUID, page: PageRequest
    ) -> Paged[WebhookSubscription]:
        return SUBSCRIPTION_ORDER.fetch(s, _subscriptions_q(agency_id), page)

    def recent_deliveries(
        self, s: Session, subscription_id: uuid.UUID, limit: int
    ) -> Sequence[WebhookDelivery]:
        return self.deliveries(s, subscription_id, PageRequest(limit=limit)).rows

    def deliveries(
        self, s: Session, subscription_id: uuid.UUID, page: PageRequest
    ) -> Paged[WebhookDelivery]:
        """A subscription's ledger, newest first."""
        q = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        return DELIVERY_ORDER.fetch(s, q, page)

    def attempts_of(
        self, s: Session, delivery_ids: Sequence[uuid.UUID]
    ) -> Sequence[WebhookAttempt]:
        if not delivery_ids:
            return []
        return s.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        ).all()

    # Outboxes (webhook deliveries, e-mail): one row claimed just before it is sent --------

    def claim_next_delivery(self, lease: timedelta) -> DeliveryClaim | None:
        """The next due delivery of an active subscription, claimed for ``lease`` by this
        caller just before it posts it (docs/decisions/0018): two dispatchers never post one
        delivery at once, and a dispatcher killed mid-post leaves this one delivery, and no
        other, in doubt. A delivery claimed before and never recorded is taken again once its
        lease is over, and its lost attempt is written in the ledger."""
        now = now_utc()
        with self.session() as s:
            rows = s.execute(
                select(WebhookDelivery, WebhookSubscription)
                .join(
                    WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id
                )
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                    WebhookSubscription.status == "active",
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(_CLAIM_CANDIDATES)
            ).all()
            for delivery, sub in rows:
                claim = _claim(s, WebhookDelivery, delivery, now, lease)
                if claim is None:
                    continue  # another dispatcher took it first
                token, attempt, in_doubt = claim
                if in_doubt:
                    s.add(
                        WebhookAttempt(
                            delivery_id=delivery.id,
                            attempt=attempt - 1,
                            at=now,
                            status_code=None,
                            error=IN_DOUBT,
                            duration_ms=0,
                        )
                    )
                return DeliveryClaim(delivery, sub, token, attempt, in_doubt)
        return None

    def claim_next_email(self, lease: timedelta) -> EmailClaim | None:
        """The next due e-mail, claimed as ``claim_next_delivery`` claims a delivery."""
        now = now_utc()
        with self.session() as s:
            rows = s.scalars(
                select(EmailMessage)
                .where(
                    EmailMessage.status == "pending",
                    EmailMessage.next_attempt_at <= now,
                    or_(EmailMessage.lease_until.is_(None), EmailMessage.lease_until < now),
                )
                .order_by(EmailMessage.next_attempt_at)
                .limit(_CLAIM_CANDIDATES)
            ).all()
            for msg in rows:
                claim = _claim(s, EmailMessage, msg, now, lease)
                if claim is not None:
                    token, attempt, in_doubt = claim
                    return EmailClaim(msg, token, attempt, in_doubt)
        return None

    # Metrics (services/notifications/metrics.py): counts by bounded labels only -------------

    def unacknowledged_items(self, s: Session) -> list[tuple[str, str, str, int]]:
        """(kind, urgency, local authority, inbox items neither acknowledged nor actioned)."""
        rows = s.execute(
            select(InboxItem.kind, InboxItem.urgency, InboxItem.local_authority, func.count())
            .where(InboxItem.acknowledged_at.is_(None), InboxItem.actioned_at.is_(None))
            .group_by(InboxItem.kind, InboxItem.urgency, InboxItem.local_authority)
        )
        return [(k, u, la, int(n)) for k, u, la, n in rows]

    def escalations_by_kind(self, s: Session, kinds: Sequence[str]) -> list[tuple[str, str, int]]:
        """(kind, local authority, escalations of ``kinds`` received): one per event, however
        many people its items went to."""
        rows = s.execute(
            select(
                InboxItem.kind, InboxItem.local_authority, func.count(InboxItem.event_id.distinct())
            )
            .where(InboxItem.kind.in_(list(kinds)))
            .group_by(InboxItem.kind, InboxItem.local_authority)
        )
        return [(k, la, int(n)) for k, la, n in rows]

    def unhandled_by_group(self, s: Session, groups: Sequence[str]) -> list[tuple[str, int]]:
        """(consumer group, events the broker acknowledged that the group has not handled)."""
        out = []
        for group in groups:
            handled = select(HandledEvent.id).where(
                HandledEvent.consumer == group, HandledEvent.event_id == OutboxEvent.event_id
            )
            n = s.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(
                    OutboxEvent.settled_at.is_(None),
                    OutboxEvent.published_at.is_not(None),
                    ~handled.exists(),
                )
            )
            out.append((group, int(n or 0)))
        return out

    def parked_subscriptions(self, s: Session) -> int:
        return int(
            s.scalar(
                select(func.count())
                .select_from(WebhookSubscription)
                .where(WebhookSubscription.status == "parked")
            )
            or 0
        )

    def record_dead_letter(self, consumer_group: str, event_type: str | None) -> None:
        with self.session() as s:
            s.add(
                DeadLetter(
                    id=uuid.uuid4(),
                    consumer_group=consumer_group,
                    event_type=event_type,
                    dead_lettered_at=now_utc(),
                )
            )

    def dead_letters_by_group(
        self, s: Session, since: datetime | None = None
    ) -> list[tuple[str, int]]:
        """(consumer group, messages it dead-lettered [since])."""
        q = select(DeadLetter.consumer_group, func.count()).group_by(DeadLetter.consumer_group)
        if since is not None:
            q = q.where(DeadLetter.dead_lettered_at >= since)
        return [(g, int(n)) for g, n in s.execute(q)]

    # Disclosures, relayed to the information-sharing ledger --------------------------------

    def note_disclosures(self, reports: Sequence[dict[str, Any]]) -> None:
        """Note disclosures (DisclosureReport bodies) to relay; one already noted under its
        report id is kept as it was (a delivery posted again is one disclosure)."""
        for body in reports:
            try:
                with self.session() as s:
                    if s.get(DisclosureNote, uuid.UUID(body["report_id"])) is None:
                        s.add(
                            DisclosureNote(
                                id=uuid.UUID(body["report_id"]), body=body, created_at=now_utc()
                            )
                        )
            except IntegrityError:
                continue  # noted meanwhile by another sender

    def unsent_disclosures(self, limit: int) -> list[DisclosureNote]:
        with self.session() as s:
            rows = list(
                s.scalars(
                    select(DisclosureNote)
                    .where(DisclosureNote.sent_at.is_(None))
                    .order_by(DisclosureNote.created_at, DisclosureNote.id)
                    .limit(limit)
                )
            )
            s.expunge_all()
            return rows

    def disclosures_sent(self, ids: Sequence[uuid.UUID]) -> None:
        with self.session() as s:
            s.execute(
                update(DisclosureNote)
                .where(DisclosureNote.id.in_(list(ids)))
                .values(sent_at=now_utc())
            )

    def email_case(self, inbox_item_id: uuid.UUID) -> InboxItem | None:
        with self.session() as s:
            item = s.get(InboxItem, inbox_item_id)
            if item is not None:
                s.expunge(item)
            return item

    # Subject access -----------------------------------------------------------------------

    def case_record(self, case_id: uuid.UUID) -> dict[str, Any]:
        """Everything this service holds about one case, for a subject access export (the
        referral service asks: ``GET /v1/cases/{id}/record``): the escalations in the inbox
        (with what staff noted), the webhook deliveries to partners and the e-mails sent."""
        with self.session() as s:
            items = list(
                s.scalars(
                    select(InboxItem)
                    .where(InboxItem.case_id == case_id)
                    .order_by(InboxItem.created_at, InboxItem.id)
                )
            )
            deliveries = s.execute(
                select(WebhookDelivery, WebhookSubscription.agency_id)
                .join(
                    WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id
                )
                .where(WebhookDelivery.case_id == case_id)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            ).all()
            emails = s.scalars(
                select(EmailMessage)
                .where(EmailMessage.inbox_item_id.in_([i.id for i in items]))
                .order_by(EmailMessage.created_at, EmailMessage.id)
            )

            def at(v: datetime | None) -> str | None:
                return v.isoformat() if v else None

            return {
                "inbox_items": [
                    {
                        "id": str(i.id),
                        "kind": i.kind,
                        "urgency": i.urgency,
                        "level": i.level,
                        "rule": i.rule,
                        "fired_rules": list(i.fired_rules),
                        "about": i.about,
                        "target_role": i.target_role,
                        "target_authority": i.target_authority,
                        "created_at": at(i.created_at),
                        "acknowledged_at": at(i.acknowledged_at),
                        "actioned_at": at(i.actioned_at),
                        "action_note": i.action_note,
                    }
                    for i in items
                ],
                "webhook_deliveries": [
                    {
                        "id": str(d.id),
                        "agency_id": str(agency_id),
                        "event_type": d.event_type,
                        "status": d.status,
                        "attempts": d.attempts,
                        "created_at": at(d.created_at),
                        "delivered_at": at(d.delivered_at),
                        "body": d.body,
                    }
                    for d, agency_id in deliveries
                ],
                "emails": [
                    {
                        "id": str(e.id),
                        "recipient": e.recipient,
                        "subject": e.subject,
                        "status": e.status,
                        "sent_at": at(e.sent_at),
                    }
                    for e in emails
                ],
            }


# A claim's outcome when its sender stopped (killed, or its lease ran out) before recording
# the answer: the receiver may or may not have the message.
IN_DOUBT = "no answer recorded: the sender stopped mid-send"

_CLAIM_CANDIDATES = 5  # rows read per claim, in case other dispatchers take the first


@dataclass(frozen=True)
class DeliveryClaim:
    delivery: WebhookDelivery  # as read before the claim (its body, ids, event type)
    subscription: WebhookSubscription
    token: uuid.UUID  # recording the answer needs it: a claim taken over records nothing
    attempt: int  # this attempt's number (attempts are counted when claimed)
    in_doubt: bool  # the previous attempt was claimed and never recorded: maybe sent


@dataclass(frozen=True)
class EmailClaim:
    message: EmailMessage
    token: uuid.UUID
    attempt: int
    in_doubt: bool


def _claim(
    s: Session,
    model: type[WebhookDelivery] | type[EmailMessage],
    row: WebhookDelivery | EmailMessage,
    now: datetime,
    lease: timedelta,
) -> tuple[uuid.UUID, int, bool] | None:
    """Claim ``row`` as it was read (compare-and-set on its claim and attempt count, so
    what this returns is true of the row claimed). None if it changed meanwhile."""
    token = uuid.uuid4()
    previous = row.claim_token
    same_claim = model.claim_token.is_(None) if previous is None else model.claim_token == previous
    got = s.execute(
        update(model)
        .where(
            model.id == row.id,
            model.status == "pending",
            model.next_attempt_at <= now,
            or_(model.lease_until.is_(None), model.lease_until < now),
            model.attempts == row.attempts,
            same_claim,
        )
        .values(lease_until=now + lease, claim_token=token, attempts=model.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(got, "rowcount", 0) != 1:
        return None
    return token, row.attempts + 1, previous is not None
