"""Tables owned by the notifications service, and the queries on them.

Handled events (one row per consumer and event id, under a unique constraint: what makes a
redelivered event change nothing), the escalation inbox, partner webhook subscriptions with
their delivery ledger (a delivery per event and subscription, an attempt row per try), and
the e-mail outbox. Every table is prefixed ``notifications_`` and migrations keep their own
version table, so this service can share a database with others without touching theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    create_engine,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from mset_contract.auth import Principal


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    # The target as the event named it, and as resolved for visibility.
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
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


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
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


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
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API and the worker (two processes) share the file safely.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def now_utc() -> datetime:
    return datetime.now(UTC)


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL form of domain.visible_to: the inbox items a staff user may see."""
    role = principal.role.value if principal.role else None
    return (
        or_(InboxItem.target_role.is_(None), InboxItem.target_role == role)
        & or_(
            InboxItem.target_agency_id.is_(None), InboxItem.target_agency_id == principal.agency_id
        )
        & or_(
            InboxItem.target_agency_type.is_(None),
            InboxItem.target_agency_type == principal.agency_type.value,
        )
    )


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

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

    # Inbox ---------------------------------------------------------------------------------

    def inbox(
        self, s: Session, principal: Principal, state: str, limit: int
    ) -> Sequence[InboxItem]:
        q = select(InboxItem).where(visible_to(principal))
        if state == "open":
            q = q.where(InboxItem.actioned_at.is_(None))
        elif state == "unacknowledged":
            q = q.where(InboxItem.acknowledged_at.is_(None), InboxItem.actioned_at.is_(None))
        elif state == "actioned":
            q = q.where(InboxItem.actioned_at.is_not(None))
        return s.scalars(q.order_by(InboxItem.created_at.desc(), InboxItem.id).limit(limit)).all()

    def inbox_item(
        self, s: Session, principal: Principal, item_id: uuid.UUID, lock: bool = False
    ) -> InboxItem | None:
        q = select(InboxItem).where(InboxItem.id == item_id, visible_to(principal))
        if lock:
            q = q.with_for_update()
        return s.scalar(q)

    def items_awaiting_timer(
        self, s: Session, urgencies: Sequence[str], limit: int
    ) -> Sequence[uuid.UUID]:
        """Urgent items, still unacknowledged, whose re-escalation timer is not started."""
        return s.scalars(
            select(InboxItem.id)
            .where(
                InboxItem.timer_started_at.is_(None),
                InboxItem.urgency.in_(urgencies),
                InboxItem.acknowledged_at.is_(None),
                InboxItem.actioned_at.is_(None),
            )
            .order_by(InboxItem.created_at)
            .limit(limit)
        ).all()

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
        q = select(WebhookSubscription).where(WebhookSubscription.agency_id == agency_id)
        if not include_deleted:
            q = q.where(WebhookSubscription.status != "deleted")
        return s.scalars(q.order_by(WebhookSubscription.created_at)).all()

    def recent_deliveries(
        self, s: Session, subscription_id: uuid.UUID, limit: int
    ) -> Sequence[WebhookDelivery]:
        return s.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.created_at.desc())
            .limit(limit)
        ).all()

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

    # Outboxes (webhook deliveries, e-mail): claim due work with a lease --------------------

    def claim_due_deliveries(
        self, limit: int, lease: timedelta
    ) -> list[tuple[WebhookDelivery, WebhookSubscription]]:
        """Due deliveries of active subscriptions, each leased to this caller: two dispatchers
        (two worker processes) never post the same delivery at once."""
        now = now_utc()
        claimed: list[tuple[WebhookDelivery, WebhookSubscription]] = []
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
                .limit(limit)
            ).all()
            for delivery, sub in rows:
                got = s.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery.id,
                        or_(
                            WebhookDelivery.lease_until.is_(None),
                            WebhookDelivery.lease_until < now,
                        ),
                    )
                    .values(lease_until=now + lease)
                )
                if getattr(got, "rowcount", 0) == 1:
                    claimed.append((delivery, sub))
        return claimed

    def claim_due_emails(self, limit: int, lease: timedelta) -> list[EmailMessage]:
        now = now_utc()
        claimed: list[EmailMessage] = []
        with self.session() as s:
            rows = s.scalars(
                select(EmailMessage)
                .where(
                    EmailMessage.status == "pending",
                    EmailMessage.next_attempt_at <= now,
                    or_(EmailMessage.lease_until.is_(None), EmailMessage.lease_until < now),
                )
                .order_by(EmailMessage.next_attempt_at)
                .limit(limit)
            ).all()
            for msg in rows:
                got = s.execute(
                    update(EmailMessage)
                    .where(
                        EmailMessage.id == msg.id,
                        or_(EmailMessage.lease_until.is_(None), EmailMessage.lease_until < now),
                    )
                    .values(lease_until=now + lease)
                )
                if getattr(got, "rowcount", 0) == 1:
                    claimed.append(msg)
        return claimed
