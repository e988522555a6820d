"""Tables owned by the meeting service, and the queries on them.

Meetings, their agenda items (a snapshot of each case as the panel saw it, and the decision
recorded on it), attendance, the actions the panels agreed, LMAPS referrals and the
disclosure log (who was shown which meeting's papers). No other service reads these tables;
the cases themselves live in their Temporal workflows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


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


class Meeting(Base):
    __tablename__ = "meeting_meetings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20))
    called_at: Mapped[datetime] = mapped_column(UTCDateTime)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # What called it: the schedule's workflow id, or "called:<uuid>". Unique, so a retried
    # activity or a repeated schedule firing creates one meeting, not two.
    origin: Mapped[str] = mapped_column(String(200), unique=True)
    called_by_schedule: Mapped[bool] = mapped_column(Boolean)
    called_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    agenda_built_at: Mapped[datetime] = mapped_column(UTCDateTime)
    chair_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AgendaItem(Base):
    __tablename__ = "meeting_agenda_items"
    __table_args__ = (
        UniqueConstraint("meeting_id", "referral_id", name="uq_meeting_item_referral"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    position: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    risk_level: Mapped[str] = mapped_column(String(10))
    waiting_since: Mapped[datetime] = mapped_column(UTCDateTime)
    # The case as the panel saw it when the agenda was drawn up (CaseSummary as JSON).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    lmaps_referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # A decision in flight holds the item: claim_token is set by a conditional UPDATE before
    # the workflow is asked, so two chairs can never both send a decision for one item.
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # ItemDecisionPublic as JSON: what the workflow recorded.
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Attendee(Base):
    __tablename__ = "meeting_attendees"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    person_name: Mapped[str] = mapped_column(String(120))
    agency_name: Mapped[str] = mapped_column(String(120))
    agency_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    capacity: Mapped[str] = mapped_column(String(20))
    present: Mapped[bool] = mapped_column(Boolean)


class AgreedActionRow(Base):
    """An action a panel agreed; the case's workflow owns it and its due-date timer."""

    __tablename__ = "meeting_actions"
    __table_args__ = (UniqueConstraint("referral_id", "action_id", name="uq_meeting_action"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    action_id: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_agenda_items.id"))
    owner_agency_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    aim: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LmapsReferral(Base):
    """A case an MSET review referred to an extraordinary LMAPS meeting."""

    __tablename__ = "meeting_lmaps_referrals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    raised_meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"))
    # One per deciding item: a replayed decision cannot raise it twice.
    raised_item_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    reason: Mapped[str] = mapped_column(Text)
    raised_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    considered_meeting_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    considered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Disclosure(Base):
    """Who was shown a meeting's papers, when and why (DESIGN.md §1: sharing is recorded)."""

    __tablename__ = "meeting_disclosures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    role: Mapped[str] = mapped_column(String(40))
    what: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API and the worker (two processes) share the file safely;
            # foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s
