"""Tables owned by the referral service, and the queries on them.

Identity (agencies, API keys, users, tokens), referrals with their submitted tool, and the
disclosure log (who was shown which referral, when: DESIGN.md §1, "recorded: what was
shared, with whom and why"). No other service reads these tables.
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
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    create_engine,
    event,
    select,
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


class Agency(Base):
    __tablename__ = "referral_agencies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "referral_api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_agencies.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class User(Base):
    __tablename__ = "referral_users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(40))
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_agencies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserToken(Base):
    __tablename__ = "referral_user_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Referral(Base):
    __tablename__ = "referral_referrals"
    __table_args__ = (
        # These two constraints are what make submission idempotent under concurrency.
        UniqueConstraint("agency_id", "partner_reference", name="uq_referral_partner_ref"),
        UniqueConstraint("agency_id", "idempotency_key", name="uq_referral_idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_agencies.id"), index=True)
    partner_reference: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    agency_child_ref: Mapped[str] = mapped_column(String(64), index=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    referrer_level: Mapped[str] = mapped_column(String(10))
    suggested_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    open_actions: Mapped[int] = mapped_column(Integer, default=0)
    next_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A reassessment of an open case points at the case's first referral; a re-referral of a
    # closed case points at the previous case. Both link a child's history.
    case_referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    previous_referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    # False until Temporal confirmed the workflow: a row that stays False after a failed
    # start is completed by the partner's retry (same key), never left as an orphan.
    workflow_started: Mapped[bool] = mapped_column(Boolean, default=False)
    # "tool": a partner's Risk Assessment Tool; "missing_episodes": opened for Pre-MSET
    # consideration because the repeat-missing rule fired for a child with no open case.
    origin: Mapped[str] = mapped_column(String(20), default="tool")
    # The submitted tool as validated. Holds the child's details: it never leaves this service
    # except to an authorised caller of the API.
    tool: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MissingEpisode(Base):
    __tablename__ = "referral_missing_episodes"
    __table_args__ = (
        UniqueConstraint("agency_id", "partner_reference", name="uq_missing_partner_ref"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_agencies.id"), index=True)
    partner_reference: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    agency_child_ref: Mapped[str] = mapped_column(String(64), index=True)
    case_referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    workflow_started: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the police reported (may hold circumstances in free text): stays in this table.
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Disclosure(Base):
    __tablename__ = "referral_disclosures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_referrals.id"), index=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    purpose: Mapped[str] = mapped_column(String(80))
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

    # Identity -----------------------------------------------------------------------------

    def agency_by_name(self, s: Session, name: str) -> Agency | None:
        return s.scalar(select(Agency).where(Agency.name == name))

    def principal_rows(self, s: Session, credential_hash: str) -> tuple[Agency, User | None] | None:
        row = s.execute(
            select(Agency)
            .join(ApiKey, ApiKey.agency_id == Agency.id)
            .where(ApiKey.key_hash == credential_hash, ApiKey.revoked_at.is_(None))
        ).first()
        if row:
            return row[0], None
        urow = s.execute(
            select(User, Agency)
            .join(UserToken, UserToken.user_id == User.id)
            .join(Agency, Agency.id == User.agency_id)
            .where(UserToken.token_hash == credential_hash, UserToken.revoked_at.is_(None))
        ).first()
        if urow:
            return urow[1], urow[0]
        return None

    # Referrals ----------------------------------------------------------------------------

    def referral_by_partner_ref(
        self, s: Session, agency_id: uuid.UUID, partner_reference: str
    ) -> Referral | None:
        return s.scalar(
            select(Referral).where(
                Referral.agency_id == agency_id, Referral.partner_reference == partner_reference
            )
        )

    def open_case_for_child(
        self, s: Session, agency_id: uuid.UUID, agency_child_ref: str, local_authority: str
    ) -> Referral | None:
        """The child's latest case from this agency (a case-opening referral), if any."""
        return s.scalar(
            select(Referral)
            .where(
                Referral.agency_id == agency_id,
                Referral.agency_child_ref == agency_child_ref,
                Referral.local_authority == local_authority,
                Referral.case_referral_id.is_(None),
                Referral.workflow_started.is_(True),
            )
            .order_by(Referral.submitted_at.desc())
            .limit(1)
        )

    def episode_by_partner_ref(
        self, s: Session, agency_id: uuid.UUID, partner_reference: str
    ) -> MissingEpisode | None:
        return s.scalar(
            select(MissingEpisode).where(
                MissingEpisode.agency_id == agency_id,
                MissingEpisode.partner_reference == partner_reference,
            )
        )

    def episode_by_idempotency_key(
        self, s: Session, agency_id: uuid.UUID, key: str
    ) -> MissingEpisode | None:
        return s.scalar(
            select(MissingEpisode).where(
                MissingEpisode.agency_id == agency_id, MissingEpisode.idempotency_key == key
            )
        )

    def child_episodes(
        self, s: Session, agency_id: uuid.UUID, agency_child_ref: str, local_authority: str
    ) -> list[MissingEpisode]:
        return list(
            s.scalars(
                select(MissingEpisode)
                .where(
                    MissingEpisode.agency_id == agency_id,
                    MissingEpisode.agency_child_ref == agency_child_ref,
                    MissingEpisode.local_authority == local_authority,
                    MissingEpisode.workflow_started.is_(True),
                )
                .order_by(MissingEpisode.reported_at.desc())
                .limit(100)
            )
        )

    def referral_by_idempotency_key(
        self, s: Session, agency_id: uuid.UUID, key: str
    ) -> Referral | None:
        return s.scalar(
            select(Referral).where(Referral.agency_id == agency_id, Referral.idempotency_key == key)
        )
