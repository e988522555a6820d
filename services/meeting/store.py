"""Tables owned by the meeting service, and the queries on them.

Meetings, their agenda items (a snapshot of each case as the panel saw it, and the decision
recorded on it), attendance, the actions the panels agreed, LMAPS referrals and the
disclosure log (who was shown which meeting's papers). No other service reads these tables;
the cases themselves live in their Temporal workflows.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CursorResult,
    ForeignKey,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mset_contract.auth import Principal
from mset_contract.meeting import (
    AgendaItemPublic,
    AgendaReason,
    AttendancePublic,
    Capacity,
    CaseSummary,
    ItemDecisionPublic,
    MeetingPublic,
    MeetingStatus,
    MeetingSummary,
    OpenMeetingResult,
)
from mset_contract.meeting import Attendee as AttendeeModel
from mset_contract.vocab import MeetingKind, RiskLevel
from mset_platform.db import SessionStore, UTCDateTime
from mset_platform.paging import Keyset, Paged, PageRequest
from services.meeting.domain import (
    AgendaEntry,
    DecisionInFlight,
    ItemNotFound,
    LmapsRequest,
    MeetingClosed,
    MeetingNotFound,
    must_be_scheduled,
    undecided_refusal,
)


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
    # The id the case holds this item's decision under, fixed by the first claim (the item's
    # own id, or the id a chair gave through the referral API) so that every retry asks the
    # case about the same decision.
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Undecided when its meeting closed with carry_over: carried then, to the next meeting of
    # the kind and authority (carried_to_meeting_id, set once that meeting has it).
    carried_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    carried_to_meeting_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # On the meeting it was carried to: the item it continues.
    carried_from_item_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


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
    """Who was shown a meeting's papers, when and why (sharing is recorded:
    docs/architecture.md §1)."""

    __tablename__ = "meeting_disclosures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meeting_meetings.id"), index=True)
    agency_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    role: Mapped[str] = mapped_column(String(40))
    what: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# The lists' orders (mset_platform/paging.py): meetings latest held first; an agenda in its
# own order (highest risk, then longest waiting: the position it was drawn up with).
MEETING_ORDER = Keyset("meetings", (Meeting.held_at, "desc"), (Meeting.id, "asc"))
AGENDA_ORDER = Keyset("agenda", (AgendaItem.position, "asc"), (AgendaItem.id, "asc"))


def _rows(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


_NO_SYNC = {"synchronize_session": False}


class Store(SessionStore):
    """The meeting tables' engine and sessions, and the queries on them: one transaction per
    method. Writing transactions take the meeting row first, so they lock in one order."""

    # --- meetings --------------------------------------------------------------------------

    def by_origin(self, origin: str) -> OpenMeetingResult | None:
        """The meeting a schedule firing (or a call) already created, if any."""
        with self.session() as s:
            m = s.scalar(select(Meeting).where(Meeting.origin == origin))
            if m is None:
                return None
            n = s.scalar(select(func.count()).where(AgendaItem.meeting_id == m.id))
            return OpenMeetingResult(meeting_id=m.id, items=int(n or 0), created=False)

    def insert_meeting(
        self,
        *,
        kind: MeetingKind,
        local_authority: str,
        called_at: datetime,
        held_at: datetime,
        origin: str,
        called_by: uuid.UUID | None,
        entries: Sequence[AgendaEntry],
        now: datetime,
    ) -> OpenMeetingResult:
        """A new scheduled meeting with its agenda; the existing one if its origin is taken."""
        meeting_id = uuid.uuid4()
        try:
            with self.session() as s:
                s.add(
                    Meeting(
                        id=meeting_id,
                        kind=kind.value,
                        local_authority=local_authority,
                        status=MeetingStatus.scheduled.value,
                        called_at=called_at,
                        held_at=held_at,
                        origin=origin,
                        called_by_schedule=called_by is None,
                        called_by=called_by,
                        agenda_built_at=now,
                    )
                )
                s.flush()
                for position, entry in enumerate(entries, start=1):
                    s.add(_new_item(meeting_id, position, entry))
                s.flush()
                _take_carried(s, meeting_id, kind, local_authority)
        except IntegrityError:
            # A concurrent run of the same firing won the unique origin: answer with it.
            existing = self.by_origin(origin)
            if existing is None:
                raise
            return existing
        with self.session() as s:
            n = s.scalar(select(func.count()).where(AgendaItem.meeting_id == meeting_id))
        return OpenMeetingResult(meeting_id=meeting_id, items=int(n or 0), created=True)

    def meeting(self, meeting_id: uuid.UUID) -> Meeting:
        with self.session() as s:
            return _meeting(s, meeting_id)

    def meeting_page(
        self,
        *,
        local_authority: str | None,
        kind: MeetingKind | None,
        status: MeetingStatus | None,
        page: PageRequest,
        authorities: Collection[str] | None = None,
    ) -> Paged[MeetingSummary]:
        """Meetings, latest first, with their item and decision counts (of ``authorities``
        only, where given)."""
        q = select(Meeting)
        if authorities is not None:
            q = q.where(Meeting.local_authority.in_(list(authorities)))
        if local_authority is not None:
            q = q.where(Meeting.local_authority == local_authority)
        if kind is not None:
            q = q.where(Meeting.kind == kind.value)
        if status is not None:
            q = q.where(Meeting.status == status.value)
        with self.session() as s:
            got = MEETING_ORDER.fetch(s, q, page)
            counts = _item_counts(s, [m.id for m in got.rows])
            return Paged(
                [_summary(m, *counts.get(m.id, (0, 0, 0))) for m in got.rows], got.next_cursor
            )

    def meeting_public(self, meeting_id: uuid.UUID) -> MeetingPublic:
        """The meeting with its counts and attendance."""
        with self.session() as s:
            m = _meeting(s, meeting_id)
            counts = _item_counts(s, [m.id]).get(m.id, (0, 0, 0))
            return MeetingPublic(**_summary(m, *counts).model_dump(), attendance=_attendance(s, m))

    def close(
        self, meeting_id: uuid.UUID, at: datetime, *, carry_over: bool, stale_before: datetime
    ) -> None:
        """Close the meeting unless it is closed already. Undecided items are refused
        (``UndecidedItems``) unless ``carry_over``: then each is carried to the next meeting
        of the kind and authority that is called and not started, or waits for the next one
        called. A decision being recorded (a claim younger than ``stale_before``) holds the
        close off (``DecisionInFlight``)."""
        with self.session() as s:
            # The meeting row first, as every writer takes it: a decision cannot claim an item
            # between the count below and the close.
            closing = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.closed.value)
                .values(status=MeetingStatus.closed.value, closed_at=at)
                .execution_options(**_NO_SYNC)
            )
            m = _meeting(s, meeting_id)
            if _rows(closing) == 0:
                return  # closed already: closing twice is harmless
            items = list(s.scalars(_items_q(meeting_id)))
            undecided = [i for i in items if i.decided_at is None]
            busy = [
                i
                for i in undecided
                if i.claim_token is not None and i.claimed_at and i.claimed_at >= stale_before
            ]
            if busy:
                raise DecisionInFlight(
                    f"a decision on item {busy[0].position} is being recorded right now: "
                    "close the meeting once it is"
                )
            if undecided and not carry_over:
                raise undecided_refusal(
                    len(undecided), len(items), MeetingKind(m.kind), m.local_authority
                )
            for i in undecided:
                i.carried_at = at
                i.claim_token = None
            s.flush()
            following = s.scalar(
                select(Meeting)
                .where(
                    Meeting.kind == m.kind,
                    Meeting.local_authority == m.local_authority,
                    Meeting.status == MeetingStatus.scheduled.value,
                    Meeting.id != m.id,
                    Meeting.held_at >= m.held_at,
                )
                .order_by(Meeting.held_at, Meeting.id)
                .limit(1)
            )
            if undecided and following is not None:
                _take_carried(s, following.id, MeetingKind(m.kind), m.local_authority)

    # --- agenda ----------------------------------------------------------------------------

    def open_lmaps_requests(self, local_authority: str) -> list[LmapsRequest]:
        """The authority's LMAPS referrals no meeting has considered yet, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(LmapsReferral)
                .where(
                    LmapsReferral.local_authority == local_authority,
                    LmapsReferral.considered_at.is_(None),
                )
                .order_by(LmapsReferral.raised_at)
            )
            return [LmapsRequest(r.id, r.referral_id, r.reason, r.raised_at) for r in rows]

    def disclose_agenda(
        self,
        principal: Principal,
        meeting_id: uuid.UUID,
        what: str,
        at: datetime,
        page: PageRequest | None = None,
    ) -> tuple[Meeting, Paged[AgendaItemPublic]]:
        """The meeting and a page of its agenda items in full (every item when ``page`` is
        None); that they were shown to this principal is recorded in the same transaction."""
        with self.session() as s:
            m = _meeting(s, meeting_id)
            items = _items(s, m.id, page)
            s.add(
                Disclosure(
                    meeting_id=m.id,
                    agency_id=principal.agency_id,
                    user_id=principal.user_id,
                    role=principal.role.value if principal.role else "none",
                    what=what,
                    at=at,
                )
            )
            return m, items

    def replace_items(
        self, meeting_id: uuid.UUID, entries: Sequence[AgendaEntry], now: datetime
    ) -> None:
        """Redraw a scheduled meeting's agenda: a case keeps its item id, undecided items of
        cases no longer wanted go."""
        with self.session() as s:
            fixed = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status == MeetingStatus.scheduled.value)
                .values(agenda_built_at=now)
                .execution_options(**_NO_SYNC)
            )
            if _rows(fixed) == 0:
                must_be_scheduled(MeetingStatus(_meeting(s, meeting_id).status))
            existing = {i.referral_id: i for i in s.scalars(_items_q(meeting_id))}
            wanted = set()
            for position, entry in enumerate(entries, start=1):
                wanted.add(entry.referral_id)
                row = existing.get(entry.referral_id)
                if row is None:
                    s.add(_new_item(meeting_id, position, entry))
                    continue
                # Same item id for the same case, so links to it stay valid.
                fresh = _new_item(meeting_id, position, entry)
                for attr in ("position", "reasons", "risk_level", "waiting_since", "snapshot"):
                    setattr(row, attr, getattr(fresh, attr))
                row.lmaps_referral_id = entry.lmaps_referral_id
                if row.carried_from_item_id is not None:
                    row.reasons = _with_carried(row.reasons)
            # A carried item stays until it is decided (or carried again), drawn or not.
            left = [i for rid, i in existing.items() if rid not in wanted]
            kept = [i for i in left if i.carried_from_item_id is not None]
            for position, row in enumerate(kept, start=len(entries) + 1):
                row.position = position
            gone = [i.id for i in left if i.carried_from_item_id is None]
            if gone:
                s.execute(
                    delete(AgendaItem)
                    .where(AgendaItem.id.in_(gone), AgendaItem.decided_at.is_(None))
                    .execution_options(**_NO_SYNC)
                )

    # --- attendance ------------------------------------------------------------------------

    def replace_attendance(
        self,
        meeting_id: uuid.UUID,
        attendees: Sequence[AttendeeModel],
        chair_name: str | None,
    ) -> AttendancePublic:
        """Replace an open meeting's attendance list and chair."""
        with self.session() as s:
            open_ = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.closed.value)
                .values(chair_name=chair_name)
                .execution_options(**_NO_SYNC)
            )
            m = _meeting(s, meeting_id)
            if _rows(open_) == 0:
                raise MeetingClosed("the meeting is closed: its attendance is final")
            s.execute(
                delete(Attendee)
                .where(Attendee.meeting_id == meeting_id)
                .execution_options(**_NO_SYNC)
            )
            for position, a in enumerate(attendees, start=1):
                s.add(
                    Attendee(
                        meeting_id=meeting_id,
                        position=position,
                        person_name=a.person_name,
                        agency_name=a.agency_name,
                        agency_id=a.agency_id,
                        capacity=a.capacity.value,
                        present=a.present,
                    )
                )
            s.flush()
            return _attendance(s, m)

    def attendance_between(
        self, local_authority: str, since: datetime, until: datetime
    ) -> tuple[list[uuid.UUID], list[tuple[str, uuid.UUID, bool]]]:
        """The authority's meetings held in [since, until), and each attendee's (agency,
        meeting, present) at them."""
        with self.session() as s:
            meeting_ids = list(
                s.scalars(
                    select(Meeting.id).where(
                        Meeting.local_authority == local_authority,
                        Meeting.held_at >= since,
                        Meeting.held_at < until,
                    )
                )
            )
            rows = s.execute(
                select(Attendee.agency_name, Attendee.meeting_id, Attendee.present).where(
                    Attendee.meeting_id.in_(meeting_ids)
                )
            ).all()
        return meeting_ids, [(agency, mid, present) for agency, mid, present in rows]

    # --- decisions -------------------------------------------------------------------------

    def meeting_item(self, meeting_id: uuid.UUID, item_id: uuid.UUID) -> tuple[Meeting, AgendaItem]:
        with self.session() as s:
            m = _meeting(s, meeting_id)
            item = s.get(AgendaItem, item_id)
            if item is None or item.meeting_id != meeting_id:
                raise ItemNotFound(f"meeting {meeting_id} has no agenda item {item_id}")
            return m, item

    def item_for_case(self, meeting_id: uuid.UUID, referral_id: uuid.UUID) -> uuid.UUID:
        """The meeting's agenda item for this case."""
        with self.session() as s:
            _meeting(s, meeting_id)
            item_id = s.scalar(
                select(AgendaItem.id).where(
                    AgendaItem.meeting_id == meeting_id, AgendaItem.referral_id == referral_id
                )
            )
            if item_id is None:
                raise ItemNotFound(
                    f"case {referral_id} is not on the agenda of meeting {meeting_id}"
                )
            return item_id

    def claim_item(
        self,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        user_id: uuid.UUID,
        token: str,
        now: datetime,
        stale_before: datetime,
        decision_id: str | None = None,
    ) -> tuple[int, str] | None:
        """Take the item for this decision; the attempt number and the decision id the case
        holds it under (fixed by the first claim: ``decision_id``, else the item's id), or None
        if it is taken (a claim older than ``stale_before`` counts as abandoned)."""
        with self.session() as s:
            # The meeting row first (refresh does the same): one lock order, no deadlock.
            # The first decision starts the meeting, which fixes its agenda.
            started = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.closed.value)
                .values(
                    status=case(
                        (
                            Meeting.status == MeetingStatus.scheduled.value,
                            MeetingStatus.in_progress.value,
                        ),
                        else_=Meeting.status,
                    )
                )
                .execution_options(**_NO_SYNC)
            )
            if _rows(started) == 0:
                raise MeetingClosed("the meeting is closed: no more decisions can be recorded")
            claimed = s.execute(
                update(AgendaItem)
                .where(
                    AgendaItem.id == item_id,
                    AgendaItem.decided_at.is_(None),
                    or_(
                        AgendaItem.claim_token.is_(None),
                        AgendaItem.claimed_at < stale_before,
                    ),
                )
                .values(
                    claim_token=token,
                    claimed_by=user_id,
                    claimed_at=now,
                    attempts=AgendaItem.attempts + 1,
                    decision_id=func.coalesce(AgendaItem.decision_id, decision_id or str(item_id)),
                )
                .execution_options(**_NO_SYNC)
            )
            if _rows(claimed) == 0:
                return None
            row = s.execute(
                select(AgendaItem.attempts, AgendaItem.decision_id).where(AgendaItem.id == item_id)
            ).one()
            return int(row[0]), str(row[1])

    def release_item(self, item_id: uuid.UUID, token: str) -> None:
        """Free the item if this claim still holds it."""
        with self.session() as s:
            s.execute(
                update(AgendaItem)
                .where(AgendaItem.id == item_id, AgendaItem.claim_token == token)
                .values(claim_token=None, claimed_by=None, claimed_at=None)
                .execution_options(**_NO_SYNC)
            )

    def record_decision(
        self,
        m: Meeting,
        item: AgendaItem,
        token: str,
        decision: ItemDecisionPublic,
        digest: str,
    ) -> bool:
        """Write the decision on the item this claim holds, with its agreed actions and any
        LMAPS referral it raised or considered. False if the claim was lost meanwhile."""
        with self.session() as s:
            done = s.execute(
                update(AgendaItem)
                .where(AgendaItem.id == item.id, AgendaItem.claim_token == token)
                .values(
                    decided_at=decision.decided_at,
                    decided_by=decision.decided_by,
                    request_hash=digest,
                    decision=decision.model_dump(mode="json"),
                    claim_token=None,
                )
                .execution_options(**_NO_SYNC)
            )
            if _rows(done) == 0:
                return False
            for a in decision.actions:
                s.add(
                    AgreedActionRow(
                        action_id=a.action_id,
                        referral_id=item.referral_id,
                        meeting_id=m.id,
                        item_id=item.id,
                        owner_agency_id=a.owner_agency_id,
                        due_at=a.due_at,
                        aim=a.aim.value,
                        target=a.target.value,
                        description=a.description or "",
                        created_at=decision.decided_at,
                    )
                )
            if decision.lmaps_referral_id and decision.lmaps_reason:
                s.add(
                    LmapsReferral(
                        id=decision.lmaps_referral_id,
                        referral_id=item.referral_id,
                        local_authority=m.local_authority,
                        raised_meeting_id=m.id,
                        raised_item_id=item.id,
                        reason=decision.lmaps_reason,
                        raised_by=decision.decided_by,
                        raised_at=decision.decided_at,
                    )
                )
            if item.lmaps_referral_id is not None:
                s.execute(
                    update(LmapsReferral)
                    .where(
                        LmapsReferral.id == item.lmaps_referral_id,
                        LmapsReferral.considered_at.is_(None),
                    )
                    .values(considered_meeting_id=m.id, considered_at=decision.decided_at)
                    .execution_options(**_NO_SYNC)
                )
            return True

    # Subject access -----------------------------------------------------------------------

    def case_record(self, case_id: uuid.UUID) -> dict[str, Any]:
        """Everything this service holds about one case, for a subject access export (the
        referral service asks: ``GET /v1/cases/{id}/record``): its agenda items in every
        meeting (as the panel saw the case, and what it decided), the actions agreed, and
        its LMAPS referrals. Oldest first."""
        with self.session() as s:
            items = s.execute(
                select(AgendaItem, Meeting)
                .join(Meeting, Meeting.id == AgendaItem.meeting_id)
                .where(AgendaItem.referral_id == case_id)
                .order_by(Meeting.held_at, AgendaItem.id)
            ).all()
            actions = s.scalars(
                select(AgreedActionRow)
                .where(AgreedActionRow.referral_id == case_id)
                .order_by(AgreedActionRow.created_at, AgreedActionRow.action_id)
            )
            lmaps = s.scalars(
                select(LmapsReferral)
                .where(LmapsReferral.referral_id == case_id)
                .order_by(LmapsReferral.raised_at)
            )
            return {
                "agenda_items": [
                    {
                        "item_id": str(i.id),
                        "meeting_id": str(m.id),
                        "meeting_kind": m.kind,
                        "local_authority": m.local_authority,
                        "held_at": m.held_at.isoformat(),
                        "reasons": list(i.reasons),
                        "risk_level": i.risk_level,
                        "case_as_shown": i.snapshot,
                        "decision": i.decision,
                        "decided_at": i.decided_at.isoformat() if i.decided_at else None,
                        "decided_by": str(i.decided_by) if i.decided_by else None,
                        "carried_at": i.carried_at.isoformat() if i.carried_at else None,
                    }
                    for i, m in items
                ],
                "actions": [
                    {
                        "action_id": a.action_id,
                        "meeting_id": str(a.meeting_id),
                        "owner_agency_id": str(a.owner_agency_id),
                        "due_at": a.due_at.isoformat(),
                        "aim": a.aim,
                        "target": a.target,
                        "description": a.description,
                        "created_at": a.created_at.isoformat(),
                    }
                    for a in actions
                ],
                "lmaps_referrals": [
                    {
                        "id": str(r.id),
                        "raised_meeting_id": str(r.raised_meeting_id),
                        "reason": r.reason,
                        "raised_by": str(r.raised_by),
                        "raised_at": r.raised_at.isoformat(),
                        "considered_meeting_id": (
                            str(r.considered_meeting_id) if r.considered_meeting_id else None
                        ),
                    }
                    for r in lmaps
                ],
            }


# --- rows and models -----------------------------------------------------------------------


def _new_item(meeting_id: uuid.UUID, position: int, entry: AgendaEntry) -> AgendaItem:
    return AgendaItem(
        id=uuid.uuid4(),
        meeting_id=meeting_id,
        referral_id=entry.referral_id,
        position=position,
        reasons=[r.value for r in entry.reasons],
        risk_level=entry.risk_level.value,
        waiting_since=entry.waiting_since,
        snapshot=entry.case.model_dump(mode="json"),
        lmaps_referral_id=entry.lmaps_referral_id,
        attempts=0,
    )


def _with_carried(reasons: list[str]) -> list[str]:
    carried = AgendaReason.carried_over.value
    return reasons if carried in reasons else [*reasons, carried]


def _take_carried(
    s: Session, meeting_id: uuid.UUID, kind: MeetingKind, local_authority: str
) -> None:
    """Give the meeting the items carried over from closed meetings of its kind and authority
    that no meeting has taken yet: a case already on its agenda gains the reason
    ``carried_over``; any other comes as it was carried, after the drawn items."""
    pending = list(
        s.scalars(
            select(AgendaItem)
            .join(Meeting, Meeting.id == AgendaItem.meeting_id)
            .where(
                Meeting.kind == kind.value,
                Meeting.local_authority == local_authority,
                Meeting.id != meeting_id,
                AgendaItem.carried_at.is_not(None),
                AgendaItem.carried_to_meeting_id.is_(None),
            )
            .order_by(AgendaItem.carried_at, AgendaItem.position)
        )
    )
    if not pending:
        return
    here = {i.referral_id: i for i in s.scalars(_items_q(meeting_id))}
    position = max((i.position for i in here.values()), default=0)
    for old in pending:
        # Conditional: of two meetings called at once, one takes each carried item.
        taken = s.execute(
            update(AgendaItem)
            .where(AgendaItem.id == old.id, AgendaItem.carried_to_meeting_id.is_(None))
            .values(carried_to_meeting_id=meeting_id)
            .execution_options(**_NO_SYNC)
        )
        if _rows(taken) == 0:
            continue
        row = here.get(old.referral_id)
        if row is None:
            position += 1
            row = AgendaItem(
                id=uuid.uuid4(),
                meeting_id=meeting_id,
                referral_id=old.referral_id,
                position=position,
                reasons=list(old.reasons),
                risk_level=old.risk_level,
                waiting_since=old.waiting_since,
                snapshot=old.snapshot,
                lmaps_referral_id=old.lmaps_referral_id,
                attempts=0,
            )
            s.add(row)
            here[old.referral_id] = row
        if row.decided_at is None:
            row.carried_from_item_id = old.id
            row.reasons = _with_carried(row.reasons)


def _meeting(s: Session, meeting_id: uuid.UUID) -> Meeting:
    m = s.get(Meeting, meeting_id)
    if m is None:
        raise MeetingNotFound(f"no meeting {meeting_id}")
    return m


def _items_q(meeting_id: uuid.UUID) -> Select[AgendaItem]:
    return select(AgendaItem).where(AgendaItem.meeting_id == meeting_id)


def _items(s: Session, meeting_id: uuid.UUID, page: PageRequest | None) -> Paged[AgendaItemPublic]:
    q = _items_q(meeting_id)
    if page is None:
        got = Paged(list(s.scalars(q.order_by(*AGENDA_ORDER.order_by()))), None)
    else:
        got = AGENDA_ORDER.fetch(s, q, page)
    rows = got.rows
    lmaps_ids = [r.lmaps_referral_id for r in rows if r.lmaps_referral_id]
    reasons = (
        dict(
            s.execute(
                select(LmapsReferral.id, LmapsReferral.reason).where(
                    LmapsReferral.id.in_(lmaps_ids)
                )
            ).all()
        )
        if lmaps_ids
        else {}
    )
    items = [
        AgendaItemPublic(
            item_id=r.id,
            position=r.position,
            referral_id=r.referral_id,
            reasons=[AgendaReason(x) for x in r.reasons],
            risk_level=RiskLevel(r.risk_level),
            waiting_since=r.waiting_since,
            case=CaseSummary.model_validate(r.snapshot),
            lmaps_reason=reasons.get(r.lmaps_referral_id) if r.lmaps_referral_id else None,
            decision=ItemDecisionPublic.model_validate(r.decision) if r.decision else None,
            carried_over_at=r.carried_at,
            carried_to_meeting_id=r.carried_to_meeting_id,
        )
        for r in rows
    ]
    return Paged(items, got.next_cursor)


def _item_counts(s: Session, meeting_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int, int]]:
    if not meeting_ids:
        return {}
    rows = s.execute(
        select(
            AgendaItem.meeting_id,
            func.count(),
            func.count(AgendaItem.decided_at),
            func.count(AgendaItem.carried_at),
        )
        .where(AgendaItem.meeting_id.in_(meeting_ids))
        .group_by(AgendaItem.meeting_id)
    ).all()
    return {mid: (int(n), int(d), int(c)) for mid, n, d, c in rows}


def _summary(m: Meeting, items: int, decided: int, carried: int = 0) -> MeetingSummary:
    return MeetingSummary(
        meeting_id=m.id,
        kind=MeetingKind(m.kind),
        local_authority=m.local_authority,
        status=MeetingStatus(m.status),
        called_at=m.called_at,
        held_at=m.held_at,
        called_by_schedule=m.called_by_schedule,
        chair_name=m.chair_name,
        items=items,
        decided=decided,
        carried_over=carried,
    )


def _attendance(s: Session, m: Meeting) -> AttendancePublic:
    rows = list(
        s.scalars(select(Attendee).where(Attendee.meeting_id == m.id).order_by(Attendee.position))
    )
    attendees = [
        AttendeeModel(
            person_name=r.person_name,
            agency_name=r.agency_name,
            agency_id=r.agency_id,
            capacity=Capacity(r.capacity),
            present=r.present,
        )
        for r in rows
    ]
    present = sorted({a.agency_name for a in attendees if a.present})
    apologies = sorted({a.agency_name for a in attendees if not a.present} - set(present))
    return AttendancePublic(
        meeting_id=m.id,
        chair_name=m.chair_name,
        attendees=attendees,
        agencies_present=present,
        agencies_sent_apologies=apologies,
    )
