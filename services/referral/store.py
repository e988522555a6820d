"""Tables owned by the referral service, and the queries on them.

Identity (agencies, API keys, users, tokens), referrals with their submitted tool, and the
disclosure log (who was shown which referral, when: docs/architecture.md §1, "recorded:
what was shared, with whom and why"). No other service reads these tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mset_contract.referral_workflow import ReferralState
from mset_contract.vocab import Stage
from mset_platform.db import SessionStore, UTCDateTime
from mset_platform.paging import Keyset, Paged, PageRequest
from services.referral.domain import CLOSED_STAGES, IdempotencyKeyReused


class Base(DeclarativeBase):
    pass


class Agency(Base):
    __tablename__ = "referral_agencies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    # The local authority the agency belongs to, where one (a council's services, a local
    # provider); regional agencies (a police force) may leave it empty.
    local_authority: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RhiCommission(Base):
    """An authority commissions an agency to offer its Return Home Interviews: the agency's
    managers hear of that authority's missed RHI deadlines."""

    __tablename__ = "referral_rhi_commissions"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_agencies.id"), primary_key=True
    )
    local_authority: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
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
    # Set by `mset user disable`: none of the user's tokens is accepted from then on.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserAuthority(Base):
    """A local authority a staff user serves (a user may serve several). Authority-level
    escalations (the chair or coordinator of authority X) are routed by these rows."""

    __tablename__ = "referral_user_authorities"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_users.id"), primary_key=True)
    local_authority: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserToken(Base):
    __tablename__ = "referral_user_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Staff tokens expire (ReferralSettings.staff_token_ttl_hours when issued); None only for
    # a row no migration has reached, and refused like an expired one.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthFailure(Base):
    """A failed authentication attempt from a source address: the throttle counts these over
    a window (services/referral/identity.py). Kept in the database so every replica counts
    the same attempts; rows older than the window are deleted as new ones are written."""

    __tablename__ = "referral_auth_failures"
    __table_args__ = (Index("ix_referral_auth_failures_source_at", "source", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


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
    # SHA-256 of the canonical body (mset_platform/idempotency.py): a retry under the same key
    # or reference with another body is refused. Null on rows from before it was recorded.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agency_child_ref: Mapped[str] = mapped_column(String(64), index=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    referrer_level: Mapped[str] = mapped_column(String(10))
    suggested_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    open_actions: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the case exits: the view of a closed case is read from here, final.
    exit_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    next_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The read model every status read is served from (docs/decisions/0022): the case's state
    # as its workflow last recorded it (``ReferralState.read_model_snapshot``, which holds the
    # panels' rationales and notes: it leaves this service only to an authorised caller), and
    # that record's number. None until the case's first record by a workflow that sends it.
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    record_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
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
    # The facts the board reports count, kept in columns so a report is a GROUP BY
    # (services/referral/report_facts.py, docs/decisions/0025): the tool's, set when the
    # referral is recorded (the band of the child's age at referral, never the date of
    # birth)...
    report_gender: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report_age_band: Mapped[str | None] = mapped_column(String(20), nullable=True)
    report_ethnicity: Mapped[str | None] = mapped_column(String(120), nullable=True)
    report_legal_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report_area: Mapped[str | None] = mapped_column(String(120), nullable=True)
    report_exploitation: Mapped[str] = mapped_column(String(400), default="")
    # ...and the case's, set with the read model each time its workflow records its state.
    pre_mset_outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pre_mset_level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    pre_mset_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pre_mset_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mset_days: Mapped[int | None] = mapped_column(Integer, nullable=True)


# The reports' ways into the referrals: by authority and the date a report's period is of,
# each carrying the columns its reports count, so on PostgreSQL a report reads the index
# alone, not the rows (wide with their tool and read model).
REFERRED_REPORT_COLUMNS = (
    "case_referral_id",
    "workflow_started",
    "agency_id",
    "origin",
    "referrer_level",
    "suggested_level",
    "record_seq",
    "report_gender",
    "report_age_band",
    "report_legal_status",
    "report_ethnicity",
    "report_area",
    "report_exploitation",
    "pre_mset_outcome",
    "pre_mset_level",
    "pre_mset_days",
)
EXITED_REPORT_COLUMNS = ("case_referral_id", "workflow_started", "exit_reason", "mset_days")
# The actions report's way to the cases recorded in its period.
UPDATED_REPORT_COLUMNS = ("id", "case_referral_id", "workflow_started")
Index(
    "ix_referral_referrals_la_submitted",
    Referral.local_authority,
    Referral.submitted_at,
    postgresql_include=list(REFERRED_REPORT_COLUMNS),
)
Index(
    "ix_referral_referrals_la_updated",
    Referral.local_authority,
    Referral.updated_at,
    postgresql_include=list(UPDATED_REPORT_COLUMNS),
)
Index(
    "ix_referral_referrals_la_exited",
    Referral.local_authority,
    Referral.exited_at,
    postgresql_include=list(EXITED_REPORT_COLUMNS),
)


class CaseActionFact(Base):
    """Each action of a case's plan as the case's read model holds it, for the reports:
    dates and codes (never the description), rewritten with the read model."""

    __tablename__ = "referral_case_actions"

    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_agency_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    aim: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at_exit: Mapped[bool] = mapped_column(Boolean, default=False)


def recorded_state(case: Referral) -> ReferralState | None:
    """The case's state as its workflow last recorded it (the read model), if it has."""
    if case.state is None:
        return None
    return ReferralState.model_validate(case.state)


class MissingEpisode(Base):
    __tablename__ = "referral_missing_episodes"
    __table_args__ = (
        UniqueConstraint("agency_id", "partner_reference", name="uq_missing_partner_ref"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_agencies.id"), index=True)
    partner_reference: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    local_authority: Mapped[str] = mapped_column(String(40), index=True)
    agency_child_ref: Mapped[str] = mapped_column(String(64), index=True)
    case_referral_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    workflow_started: Mapped[bool] = mapped_column(Boolean, default=False)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the police reported (may hold circumstances in free text): stays in this table.
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The return and interview as the episode's record holds them (episode_records.py),
    # copied here when it is written so the reports count one table, not a join.
    report_returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    report_rhi_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    report_rhi_outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)


# The reports' ways into the episodes: by authority and the date reported or returned, with
# what they count.
EPISODE_REPORT_COLUMNS = (
    "workflow_started",
    "agency_child_ref",
    "agency_id",
    "report_returned_at",
)
RETURN_REPORT_COLUMNS = (
    "workflow_started",
    "reported_at",
    "report_rhi_offered_at",
    "report_rhi_outcome",
)
Index(
    "ix_referral_missing_la_reported",
    MissingEpisode.local_authority,
    MissingEpisode.reported_at,
    postgresql_include=list(EPISODE_REPORT_COLUMNS),
)
Index(
    "ix_referral_missing_la_returned",
    MissingEpisode.local_authority,
    MissingEpisode.report_returned_at,
    postgresql_include=list(RETURN_REPORT_COLUMNS),
)


# A partner's submission: recorded before its workflow starts, found again by the agency's
# Idempotency-Key or partner reference when it is retried.
Submission = TypeVar("Submission", Referral, MissingEpisode)


class LedgerEntry(Base):
    """One disclosure of a child's record: what, with whom, why, on what basis, when
    (services/referral/ledger.py, ADR 0023). Append-only: a trigger refuses UPDATE and DELETE
    (migration 0006), and each entry's hash covers the one before it."""

    __tablename__ = "referral_ledger"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The child's case (its first referral); null for the DPO's reads across children.
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    record: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    view: Mapped[str] = mapped_column(String(40))
    fields: Mapped[list[str]] = mapped_column(JSON)
    recipient_kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    agency_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    recipient: Mapped[str | None] = mapped_column(String(300), nullable=True)
    purpose: Mapped[str] = mapped_column(String(40))
    lawful_basis: Mapped[str] = mapped_column(String(40))
    reported_by: Mapped[str] = mapped_column(String(20))
    # Another service's id for the disclosure it reported: a retried report is one entry.
    report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, unique=True)
    # The chain: unique, so two appends racing for the same predecessor cannot both stand.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuthorityTold(Base):
    """A local authority other than the case's own that has been told about the case: the
    case sent the escalation for that authority's coordinators (``missing_in_other_authority``:
    the child was found there while missing). From then on the staff who serve that authority
    see the case as its own authority's staff do (docs/access.md, "cross-boundary cases").
    Recorded once per authority; the first telling stands."""

    __tablename__ = "referral_authorities_told"

    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referral_referrals.id"), primary_key=True
    )
    local_authority: Mapped[str] = mapped_column(String(40), primary_key=True)
    # What it was told about (the escalation's kind and its subject, an episode ref): no
    # personal data.
    reason: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str | None] = mapped_column(String(80), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# The lists' orders (mset_platform/paging.py): the agency directory by name; the cases an
# agency's actions are looked for in, by id (the actions list walks them and stops at a case).
AGENCY_ORDER = Keyset("agencies", (Agency.name, "asc"), (Agency.id, "asc"))
PLAN_CASE_ORDER = Keyset("actions", (Referral.id, "asc"))
# The cases at a stage (a coordinator preparing a panel): the one submitted longest ago first.
CASE_ORDER = Keyset("cases", (Referral.submitted_at, "asc"), (Referral.id, "asc"))
# The ledger in the order it was written (the hash chain's).
LEDGER_ORDER = Keyset("disclosures", (LedgerEntry.seq, "asc"))


def _rows(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class Store(SessionStore):
    # Identity -----------------------------------------------------------------------------

    def agency_by_name(self, s: Session, name: str) -> Agency | None:
        return s.scalar(select(Agency).where(Agency.name == name))

    def agencies(
        self,
        s: Session,
        *,
        page: PageRequest,
        ids: Collection[uuid.UUID] = (),
        type_: str | None = None,
        local_authority: str | None = None,
    ) -> Paged[Agency]:
        """Agencies in name order, a page at a time; only ``ids`` when given."""
        q = select(Agency)
        if ids:
            q = q.where(Agency.id.in_(list(ids)))
        if type_ is not None:
            q = q.where(Agency.type == type_)
        if local_authority is not None:
            q = q.where(Agency.local_authority == local_authority)
        return AGENCY_ORDER.fetch(s, q, page)

    def known_agencies(self, s: Session, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        return set(s.scalars(select(Agency.id).where(Agency.id.in_(list(ids)))))

    def commissions_of(
        self, s: Session, agency_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        out: dict[uuid.UUID, list[str]] = {}
        if not agency_ids:
            return out
        rows = s.execute(
            select(RhiCommission.agency_id, RhiCommission.local_authority)
            .where(RhiCommission.agency_id.in_(list(agency_ids)))
            .order_by(RhiCommission.local_authority)
        )
        for agency_id, la in rows:
            out.setdefault(agency_id, []).append(la)
        return out

    def user_by_name(self, s: Session, agency_id: uuid.UUID, name: str) -> User | None:
        """The first user of that name at the agency (names are not unique: for tools)."""
        return s.scalar(
            select(User)
            .where(User.agency_id == agency_id, User.name == name)
            .order_by(User.created_at)
            .limit(1)
        )

    def user_authorities(self, s: Session, user_id: uuid.UUID) -> list[str]:
        return list(
            s.scalars(
                select(UserAuthority.local_authority)
                .where(UserAuthority.user_id == user_id)
                .order_by(UserAuthority.local_authority)
            )
        )

    def rhi_commissions(self, s: Session, agency_id: uuid.UUID) -> list[str]:
        return list(
            s.scalars(
                select(RhiCommission.local_authority)
                .where(RhiCommission.agency_id == agency_id)
                .order_by(RhiCommission.local_authority)
            )
        )

    def principal_rows(
        self, s: Session, credential_hash: str, now: datetime
    ) -> tuple[Agency, User | None] | None:
        """The agency (and user) a credential belongs to, if it is live: not revoked, and for
        a staff token neither expired nor of a disabled user."""
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
            .where(
                UserToken.token_hash == credential_hash,
                UserToken.revoked_at.is_(None),
                UserToken.expires_at > now,
                User.disabled_at.is_(None),
            )
        ).first()
        if urow:
            return urow[1], urow[0]
        return None

    def api_keys(self, s: Session, agency_id: uuid.UUID) -> list[ApiKey]:
        return list(
            s.scalars(
                select(ApiKey)
                .where(ApiKey.agency_id == agency_id)
                .order_by(ApiKey.created_at, ApiKey.id)
            )
        )

    def user_tokens(self, s: Session, user_id: uuid.UUID) -> list[UserToken]:
        return list(
            s.scalars(
                select(UserToken)
                .where(UserToken.user_id == user_id)
                .order_by(UserToken.created_at, UserToken.id)
            )
        )

    def revoke_api_keys(
        self, s: Session, now: datetime, *, agency_id: uuid.UUID, keep: uuid.UUID | None = None
    ) -> int:
        """Revoke every live key of the agency but ``keep``; how many were revoked."""
        q = update(ApiKey).where(ApiKey.agency_id == agency_id, ApiKey.revoked_at.is_(None))
        if keep is not None:
            q = q.where(ApiKey.id != keep)
        return _rows(s.execute(q.values(revoked_at=now)))

    def revoke_user_tokens(
        self, s: Session, now: datetime, *, user_id: uuid.UUID, keep: uuid.UUID | None = None
    ) -> int:
        """Revoke every live token of the user but ``keep``; how many were revoked."""
        q = update(UserToken).where(UserToken.user_id == user_id, UserToken.revoked_at.is_(None))
        if keep is not None:
            q = q.where(UserToken.id != keep)
        return _rows(s.execute(q.values(revoked_at=now)))

    # Failed authentication attempts (the throttle) ------------------------------------------

    def auth_failures_since(
        self, s: Session, source: str, since: datetime
    ) -> tuple[int, datetime | None]:
        """How many failures ``source`` had since ``since``, and the oldest of them."""
        count, oldest = s.execute(
            select(func.count(), func.min(AuthFailure.at)).where(
                AuthFailure.source == source, AuthFailure.at > since
            )
        ).one()
        return int(count), oldest

    def record_auth_failure(self, s: Session, source: str, now: datetime, forget: datetime) -> None:
        """One more failure from ``source``; failures older than ``forget`` are let go."""
        s.execute(delete(AuthFailure).where(AuthFailure.at <= forget))
        s.add(AuthFailure(source=source, at=now))

    # Partner submissions: referrals and missing-episode reports ---------------------------

    def by_partner_ref(
        self, s: Session, model: type[Submission], agency_id: uuid.UUID, partner_reference: str
    ) -> Submission | None:
        return s.scalar(
            select(model).where(
                model.agency_id == agency_id, model.partner_reference == partner_reference
            )
        )

    def by_idempotency_key(
        self, s: Session, model: type[Submission], agency_id: uuid.UUID, key: str
    ) -> Submission | None:
        return s.scalar(
            select(model).where(model.agency_id == agency_id, model.idempotency_key == key)
        )

    def earlier_submission(
        self,
        s: Session,
        model: type[Submission],
        agency_id: uuid.UUID,
        partner_reference: str,
        idempotency_key: str | None,
        *,
        key_reused: str,
    ) -> Submission | None:
        """The agency's earlier submission this one retries: the one with its Idempotency-Key,
        else the one with its partner reference. A key already used for another partner
        reference is refused with ``key_reused`` (``{earlier}``: that reference)."""
        if idempotency_key is not None:
            by_key = self.by_idempotency_key(s, model, agency_id, idempotency_key)
            if by_key is not None:
                if by_key.partner_reference != partner_reference:
                    raise IdempotencyKeyReused(key_reused.format(earlier=by_key.partner_reference))
                return by_key
        return self.by_partner_ref(s, model, agency_id, partner_reference)

    def mark_started(self, model: type[Submission], row_id: uuid.UUID) -> None:
        """The submission's workflow has it: it is delivered."""
        with self.session() as s:
            s.execute(update(model).where(model.id == row_id).values(workflow_started=True))

    # Referrals ----------------------------------------------------------------------------

    def replace_case_actions(
        self, s: Session, case_id: uuid.UUID, rows: list[dict[str, Any]]
    ) -> None:
        """The case's actions for the reports, as its newest recorded state holds them."""
        s.execute(delete(CaseActionFact).where(CaseActionFact.case_id == case_id))
        if rows:
            s.execute(insert(CaseActionFact), rows)

    def make_re_referral(self, referral_id: uuid.UUID, previous_referral_id: uuid.UUID) -> None:
        """A reassessment whose case has closed opens a new case, linked to that one."""
        with self.session() as s:
            s.execute(
                update(Referral)
                .where(Referral.id == referral_id)
                .values(
                    case_referral_id=None,
                    previous_referral_id=previous_referral_id,
                    stage=Stage.submitted.value,
                )
            )

    def authorities_told(self, s: Session, case_id: uuid.UUID) -> frozenset[str]:
        """The authorities other than the case's own that have been told about it."""
        rows = s.scalars(
            select(AuthorityTold.local_authority).where(AuthorityTold.case_id == case_id)
        )
        return frozenset(rows)

    def record_authority_told(
        self,
        case_id: uuid.UUID,
        local_authority: str,
        reason: str,
        subject: str | None,
        at: datetime,
    ) -> bool:
        """Record that ``local_authority`` was told about the case; False if it already was
        (a retried activity, or a second telling: the first stands)."""
        with self.session() as s:
            if s.get(AuthorityTold, (case_id, local_authority)) is not None:
                return False
        try:
            with self.session() as s:
                s.add(
                    AuthorityTold(
                        case_id=case_id,
                        local_authority=local_authority,
                        reason=reason,
                        subject=subject,
                        at=at,
                    )
                )
        except IntegrityError:
            return False  # a concurrent retry recorded it first
        return True

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

    def latest_tools(
        self, s: Session, case_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, Referral]:
        """Each case's latest delivered tool: its latest reassessment, else the referral that
        opened it (the case's own row, for a case opened from missing-person reports)."""
        rows = s.scalars(
            select(Referral)
            .where(
                Referral.workflow_started.is_(True),
                or_(
                    Referral.id.in_(list(case_ids)) & Referral.case_referral_id.is_(None),
                    Referral.case_referral_id.in_(list(case_ids)) & (Referral.origin == "tool"),
                ),
            )
            .order_by(Referral.submitted_at)
        )
        latest: dict[uuid.UUID, Referral] = {}
        for r in rows:  # oldest first: the latest of each case wins
            latest[r.case_referral_id or r.id] = r
        return latest

    def plan_cases(self, s: Session, stages: Collection[str], page: PageRequest) -> Paged[Referral]:
        """Cases (case-opening referrals) at ``stages``, by id, a page at a time."""
        q = select(Referral).where(
            Referral.case_referral_id.is_(None),
            Referral.workflow_started.is_(True),
            Referral.stage.in_(list(stages)),
        )
        return PLAN_CASE_ORDER.fetch(s, q, page)

    # Metrics (services/referral/metrics.py): counts by bounded labels only ------------------

    def _open_cases(self) -> ColumnElement[bool]:
        return and_(
            Referral.case_referral_id.is_(None),
            Referral.workflow_started.is_(True),
            Referral.stage.not_in(CLOSED_STAGES),
        )

    def open_cases_by_stage(self, s: Session) -> list[tuple[str, str, int]]:
        """(stage, local authority, open cases)."""
        rows = s.execute(
            select(Referral.stage, Referral.local_authority, func.count())
            .where(self._open_cases())
            .group_by(Referral.stage, Referral.local_authority)
        )
        return [(stage, la, int(n)) for stage, la, n in rows]

    def deadlines_by_authority(
        self, s: Session, after: datetime | None, before: datetime
    ) -> list[tuple[str, int]]:
        """(local authority, open cases whose next deadline is in [after, before))."""
        cond = [self._open_cases(), Referral.next_deadline < before]
        if after is not None:
            cond.append(Referral.next_deadline >= after)
        rows = s.execute(
            select(Referral.local_authority, func.count())
            .where(*cond)
            .group_by(Referral.local_authority)
        )
        return [(la, int(n)) for la, n in rows]

    def referral_by_idempotency_key(
        self, s: Session, agency_id: uuid.UUID, key: str
    ) -> Referral | None:
        return s.scalar(
            select(Referral).where(Referral.agency_id == agency_id, Referral.idempotency_key == key)
        )

    # Subject access: everything held about one child ------------------------------------

    def child_referrals(
        self, s: Session, agency_id: uuid.UUID, agency_child_ref: str, local_authority: str | None
    ) -> list[Referral]:
        """Every delivered referral the agency made about the child (its reference, in the
        authority when given), with the reassessments of their cases, oldest first."""
        q = select(Referral).where(
            Referral.agency_id == agency_id,
            Referral.agency_child_ref == agency_child_ref,
            Referral.workflow_started.is_(True),
        )
        if local_authority is not None:
            q = q.where(Referral.local_authority == local_authority)
        own = list(s.scalars(q))
        cases = {r.case_referral_id or r.id for r in own}
        more = s.scalars(
            select(Referral).where(
                or_(Referral.id.in_(cases), Referral.case_referral_id.in_(cases)),
                Referral.workflow_started.is_(True),
            )
        )
        found = {r.id: r for r in [*own, *more]}
        return sorted(found.values(), key=lambda r: (r.submitted_at, str(r.id)))

    def case_episodes(
        self,
        s: Session,
        case_ids: Collection[uuid.UUID],
        agency_id: uuid.UUID,
        agency_child_ref: str,
        local_authority: str | None,
    ) -> list[MissingEpisode]:
        """The missing episodes linked to the child's cases, or reported under the same
        agency, reference and authority."""
        same_child = and_(
            MissingEpisode.agency_id == agency_id,
            MissingEpisode.agency_child_ref == agency_child_ref,
            *(
                [MissingEpisode.local_authority == local_authority]
                if local_authority is not None
                else []
            ),
        )
        cond = or_(MissingEpisode.case_referral_id.in_(list(case_ids)), same_child)
        return list(
            s.scalars(
                select(MissingEpisode)
                .where(cond, MissingEpisode.workflow_started.is_(True))
                .order_by(MissingEpisode.reported_at)
            )
        )


def cases_at_stage(
    s: Session,
    page: PageRequest,
    stage: Stage,
    authorities: Collection[str],
    told_to: Collection[str] = (),
) -> Paged[Referral]:
    """One page of the cases at ``stage`` of ``authorities`` (and of those that have told an
    authority in ``told_to`` about them), from the read model's columns on each case's first
    referral: never a workflow asked per row. A reassessment's own row is not a case."""
    where: list[ColumnElement[bool]] = [Referral.local_authority.in_(list(authorities))]
    if told_to:
        told = select(AuthorityTold.case_id).where(AuthorityTold.local_authority.in_(list(told_to)))
        where.append(Referral.id.in_(told))
    q = select(Referral).where(
        Referral.stage == stage.value,
        Referral.case_referral_id.is_(None),
        Referral.workflow_started.is_(True),
        or_(*where),
    )
    return CASE_ORDER.fetch(s, q, page)
