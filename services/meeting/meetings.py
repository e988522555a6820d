"""Meetings: calling them, their agendas, attendance, decisions and minutes.

A decision is never half-recorded. The agenda item is claimed first, by a conditional UPDATE
(one chair wins; another gets 409). Then the case's workflow is asked to record it as an
update; if the workflow refuses, the claim is released and nothing is kept. Only when the
workflow has recorded it is the decision written here. If the answer is lost (timeout,
crash), the next attempt asks the case whether it already holds this decision id before
sending again, and the workflow itself treats the same decision id twice as one decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mset_contract.auth import Principal
from mset_contract.meeting import (
    AgencyAttendance,
    AgendaItemPublic,
    AgendaPublic,
    AgendaReason,
    AgreedAction,
    AttendancePublic,
    AttendanceReport,
    AttendanceUpdate,
    Capacity,
    CaseSummary,
    ItemDecisionPublic,
    MeetingCreate,
    MeetingPage,
    MeetingPublic,
    MeetingStatus,
    MeetingSummary,
    MsetReviewCreate,
    OpenMeetingInput,
    OpenMeetingResult,
    PreMsetDecisionCreate,
)
from mset_contract.meeting import (
    Attendee as AttendeeModel,
)
from mset_contract.referral_workflow import (
    MsetReviewInput,
    NewAction,
    PreMsetDecisionInput,
    ReferralState,
)
from mset_contract.vocab import MeetingKind, RiskLevel
from services.meeting import minutes as minutes_doc
from services.meeting.cases import Cases
from services.meeting.domain import (
    DECISION_KIND_FOR,
    PANEL_STAGES,
    AgendaEntry,
    AgendaFixed,
    DecisionOutcome,
    DecisionRejected,
    ItemAlreadyDecided,
    ItemBeingDecided,
    ItemNotFound,
    LmapsRequest,
    MeetingClosed,
    MeetingNotFound,
    Permission,
    check_decision,
    draw_up,
    item_for,
    lmaps_entry,
    ordered,
    recorded_in_state,
    require,
)
from services.meeting.store import (
    AgendaItem,
    AgreedActionRow,
    Attendee,
    Disclosure,
    LmapsReferral,
    Meeting,
    Store,
)

log = logging.getLogger("mset.meeting")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _rows(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


_NO_SYNC = {"synchronize_session": False}


def request_hash(body: PreMsetDecisionCreate | MsetReviewCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Meetings:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        *,
        claim_ttl: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.cases = cases
        self.claim_ttl = claim_ttl
        self.clock = clock

    # --- calling meetings ------------------------------------------------------------------

    async def open_meeting(self, inp: OpenMeetingInput) -> OpenMeetingResult:
        """Create a scheduled meeting with its agenda (the schedule's activity). Idempotent
        by origin: the activity retried, or run again, finds the meeting it created."""
        existing = await asyncio.to_thread(self._by_origin, inp.origin)
        if existing is not None:
            return existing
        now = self.clock()
        states = await self.cases.at_stages(inp.local_authority, PANEL_STAGES[inp.kind])
        entries = draw_up(inp.kind, states, as_of=now, held_at=inp.held_at)
        result = await asyncio.to_thread(
            self._insert_meeting,
            kind=inp.kind,
            local_authority=inp.local_authority,
            called_at=inp.called_at,
            held_at=inp.held_at,
            origin=inp.origin,
            called_by=None,
            entries=entries,
            now=now,
        )
        log.info(
            "meeting %s called: %s %s, %d items",
            result.meeting_id,
            inp.kind.value,
            inp.local_authority,
            result.items,
        )
        return result

    async def call_meeting(self, principal: Principal, body: MeetingCreate) -> MeetingPublic:
        """Call an extraordinary LMAPS meeting: its agenda is the authority's open LMAPS
        referrals."""
        require(principal, Permission.call_meeting)
        now = self.clock()
        entries = await self._lmaps_entries(body.local_authority, now)
        result = await asyncio.to_thread(
            self._insert_meeting,
            kind=body.kind,
            local_authority=body.local_authority,
            called_at=now,
            held_at=body.held_at,
            origin=f"called:{uuid.uuid4()}",
            called_by=principal.user_id,
            entries=entries,
            now=now,
        )
        return await asyncio.to_thread(self.get, principal, result.meeting_id)

    async def _lmaps_entries(self, local_authority: str, now: datetime) -> list[AgendaEntry]:
        requests = await asyncio.to_thread(self._open_lmaps_requests, local_authority)
        entries = []
        for r in requests:
            try:
                state = await self.cases.state(r.referral_id)
            except DecisionRejected:
                continue  # the case has gone: nothing for the meeting to consider
            if state.stage in PANEL_STAGES[MeetingKind.lmaps]:
                entries.append(lmaps_entry(r, state, as_of=now))
        return ordered(entries)

    def _by_origin(self, origin: str) -> OpenMeetingResult | None:
        with self.store.session() as s:
            m = s.scalar(select(Meeting).where(Meeting.origin == origin))
            if m is None:
                return None
            n = s.scalar(select(func.count()).where(AgendaItem.meeting_id == m.id))
            return OpenMeetingResult(meeting_id=m.id, items=int(n or 0), created=False)

    def _open_lmaps_requests(self, local_authority: str) -> list[LmapsRequest]:
        with self.store.session() as s:
            rows = s.scalars(
                select(LmapsReferral)
                .where(
                    LmapsReferral.local_authority == local_authority,
                    LmapsReferral.considered_at.is_(None),
                )
                .order_by(LmapsReferral.raised_at)
            )
            return [LmapsRequest(r.id, r.referral_id, r.reason, r.raised_at) for r in rows]

    def _insert_meeting(
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
        meeting_id = uuid.uuid4()
        try:
            with self.store.session() as s:
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
        except IntegrityError:
            # A concurrent run of the same firing won the unique origin: answer with it.
            existing = self._by_origin(origin)
            if existing is None:
                raise
            return existing
        return OpenMeetingResult(meeting_id=meeting_id, items=len(entries), created=True)

    # --- reading ---------------------------------------------------------------------------

    def list_meetings(
        self,
        principal: Principal,
        *,
        local_authority: str | None = None,
        kind: MeetingKind | None = None,
        status: MeetingStatus | None = None,
        limit: int = 50,
    ) -> MeetingPage:
        require(principal, Permission.read)
        q = select(Meeting).order_by(Meeting.held_at.desc(), Meeting.id).limit(limit)
        if local_authority is not None:
            q = q.where(Meeting.local_authority == local_authority)
        if kind is not None:
            q = q.where(Meeting.kind == kind.value)
        if status is not None:
            q = q.where(Meeting.status == status.value)
        with self.store.session() as s:
            meetings = list(s.scalars(q))
            counts = _item_counts(s, [m.id for m in meetings])
            return MeetingPage(meetings=[_summary(m, *counts.get(m.id, (0, 0))) for m in meetings])

    def get(self, principal: Principal, meeting_id: uuid.UUID) -> MeetingPublic:
        require(principal, Permission.read)
        with self.store.session() as s:
            m = _meeting(s, meeting_id)
            items, decided = _item_counts(s, [m.id]).get(m.id, (0, 0))
            return MeetingPublic(
                **_summary(m, items, decided).model_dump(), attendance=_attendance(s, m)
            )

    def agenda(
        self, principal: Principal, meeting_id: uuid.UUID, purpose: str = "agenda"
    ) -> AgendaPublic:
        """The agenda as the caller's role may see it; the disclosure is recorded."""
        role = require(principal, Permission.read)
        with self.store.session() as s:
            m = _meeting(s, meeting_id)
            items = [item_for(role, i) for i in _items(s, m.id)]
            _disclose(s, principal, m.id, purpose, self.clock())
            return AgendaPublic(
                meeting_id=m.id,
                kind=MeetingKind(m.kind),
                local_authority=m.local_authority,
                status=MeetingStatus(m.status),
                held_at=m.held_at,
                built_at=m.agenda_built_at,
                items=items,
            )

    # --- preparing -------------------------------------------------------------------------

    async def refresh_agenda(self, principal: Principal, meeting_id: uuid.UUID) -> AgendaPublic:
        """Draw the agenda up again from the cases as they are now (before any decision)."""
        require(principal, Permission.prepare)
        m = await asyncio.to_thread(self._meeting_row, meeting_id)
        _must_be_scheduled(m)
        now = self.clock()
        kind = MeetingKind(m.kind)
        if kind is MeetingKind.lmaps:
            entries = await self._lmaps_entries(m.local_authority, now)
        else:
            states = await self.cases.at_stages(m.local_authority, PANEL_STAGES[kind])
            entries = draw_up(kind, states, as_of=now, held_at=m.held_at)
        await asyncio.to_thread(self._replace_items, meeting_id, entries, now)
        return await asyncio.to_thread(self.agenda, principal, meeting_id)

    def _meeting_row(self, meeting_id: uuid.UUID) -> Meeting:
        with self.store.session() as s:
            return _meeting(s, meeting_id)

    def _replace_items(
        self, meeting_id: uuid.UUID, entries: Sequence[AgendaEntry], now: datetime
    ) -> None:
        with self.store.session() as s:
            # The meeting row first, in every writing transaction, so they lock in one order.
            fixed = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status == MeetingStatus.scheduled.value)
                .values(agenda_built_at=now)
                .execution_options(**_NO_SYNC)
            )
            if _rows(fixed) == 0:
                _must_be_scheduled(_meeting(s, meeting_id))
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
            gone = [i.id for rid, i in existing.items() if rid not in wanted]
            if gone:
                s.execute(
                    delete(AgendaItem)
                    .where(AgendaItem.id.in_(gone), AgendaItem.decided_at.is_(None))
                    .execution_options(**_NO_SYNC)
                )

    def set_attendance(
        self, principal: Principal, meeting_id: uuid.UUID, body: AttendanceUpdate
    ) -> AttendancePublic:
        require(principal, Permission.prepare)
        chair = next((a for a in body.attendees if a.capacity.value == "chair"), None)
        with self.store.session() as s:
            open_ = s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.closed.value)
                .values(chair_name=chair.person_name if chair else None)
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
            for position, a in enumerate(body.attendees, start=1):
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

    def close(self, principal: Principal, meeting_id: uuid.UUID) -> MeetingPublic:
        """Close the meeting: its minutes become final. Closing twice is harmless."""
        require(principal, Permission.close)
        with self.store.session() as s:
            s.execute(
                update(Meeting)
                .where(Meeting.id == meeting_id, Meeting.status != MeetingStatus.closed.value)
                .values(status=MeetingStatus.closed.value, closed_at=self.clock())
                .execution_options(**_NO_SYNC)
            )
            _meeting(s, meeting_id)
        return self.get(principal, meeting_id)

    # --- deciding --------------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        body: PreMsetDecisionCreate | MsetReviewCreate,
    ) -> ItemDecisionPublic:
        require(principal, Permission.decide)
        assert principal.user_id is not None  # a role implies a user
        now = self.clock()
        digest = request_hash(body)
        m, item = await asyncio.to_thread(self._meeting_item, meeting_id, item_id)
        kind = MeetingKind(m.kind)
        check_decision(kind, body, now)
        if item.decided_at is not None:
            return _replay_or_conflict(item, principal, digest)
        token = str(uuid.uuid4())
        attempt = await asyncio.to_thread(
            self._claim, meeting_id, item_id, principal.user_id, token, now
        )
        if attempt is None:
            _, item = await asyncio.to_thread(self._meeting_item, meeting_id, item_id)
            if item.decided_at is not None:
                return _replay_or_conflict(item, principal, digest)
            raise ItemBeingDecided(
                "another chair's decision on this item is being recorded now; reload the "
                "agenda to see it"
            )
        try:
            outcome, decided_by = await self._send(
                kind, m.id, item, body, principal.user_id, attempt
            )
        except BaseException:
            # Refused, or no answer: nothing is recorded here and the item is free again.
            await asyncio.to_thread(self._release, item_id, token)
            raise
        lmaps_reason = (
            body.raise_lmaps.reason
            if isinstance(body, MsetReviewCreate) and body.raise_lmaps
            else None
        )
        decision = ItemDecisionPublic(
            item_id=item.id,
            kind=DECISION_KIND_FOR[kind],
            decided_at=now,
            decided_by=decided_by,
            decided_by_name=principal.user_name if decided_by == principal.user_id else None,
            outcome=outcome.outcome,
            level=outcome.level,
            rationale=outcome.rationale,
            stage_after=outcome.stage_after,
            actions=outcome.actions,
            next_review_due=outcome.next_review_due,
            lmaps_referral_id=uuid.uuid4() if lmaps_reason else None,
            lmaps_reason=lmaps_reason,
        )
        await asyncio.to_thread(self._record, m, item, token, decision, digest)
        log.info("decision recorded: meeting %s item %s", m.id, item.id)
        if decided_by != principal.user_id:
            # An earlier attempt by another chair had reached the case: theirs stands.
            raise ItemAlreadyDecided("this item was already decided by another chair")
        return decision

    async def _send(
        self,
        kind: MeetingKind,
        meeting_id: uuid.UUID,
        item: AgendaItem,
        body: PreMsetDecisionCreate | MsetReviewCreate,
        user_id: uuid.UUID,
        attempt: int,
    ) -> tuple[DecisionOutcome, uuid.UUID]:
        decision_id = str(item.id)
        if attempt > 1:
            # An earlier attempt may have reached the case and lost its answer.
            state = await self.cases.state(item.referral_id)
            prior = recorded_in_state(state, DECISION_KIND_FOR[kind], decision_id)
            if prior is not None:
                return prior, _decided_by(state, decision_id) or user_id
        update_id = f"meeting-item-{decision_id}-{attempt}"
        if isinstance(body, PreMsetDecisionCreate):
            got = await self.cases.record_pre_mset(
                item.referral_id,
                PreMsetDecisionInput(
                    outcome=body.outcome,
                    level=body.level,
                    rationale=body.rationale,
                    decided_by=user_id,
                    meeting_id=meeting_id,
                    information_due_days=body.information_due_days,
                    decision_id=decision_id,
                ),
                update_id,
            )
            return DecisionOutcome(
                stage_after=got.stage,
                level=got.level,
                outcome=body.outcome,
                rationale=body.rationale,
            ), user_id
        review = await self.cases.record_review(
            item.referral_id,
            MsetReviewInput(
                level=body.level,
                rationale=body.rationale,
                actions=[NewAction(**a.model_dump()) for a in body.actions],
                decided_by=user_id,
                meeting_id=meeting_id,
                review_id=decision_id,
            ),
            update_id,
        )
        if len(review.action_ids) == len(body.actions):
            actions = [
                AgreedAction(action_id=aid, **a.model_dump())
                for aid, a in zip(review.action_ids, body.actions, strict=True)
            ]
        else:  # not one id per action as sent: read what the case holds
            state = await self.cases.state(item.referral_id)
            held = recorded_in_state(state, DECISION_KIND_FOR[kind], decision_id)
            actions = held.actions if held else []
        return DecisionOutcome(
            stage_after=review.stage,
            level=review.level,
            rationale=body.rationale,
            actions=actions,
            next_review_due=review.next_review_due,
        ), user_id

    def _meeting_item(
        self, meeting_id: uuid.UUID, item_id: uuid.UUID
    ) -> tuple[Meeting, AgendaItem]:
        with self.store.session() as s:
            m = _meeting(s, meeting_id)
            item = s.get(AgendaItem, item_id)
            if item is None or item.meeting_id != meeting_id:
                raise ItemNotFound(f"meeting {meeting_id} has no agenda item {item_id}")
            return m, item

    def _claim(
        self,
        meeting_id: uuid.UUID,
        item_id: uuid.UUID,
        user_id: uuid.UUID,
        token: str,
        now: datetime,
    ) -> int | None:
        """Take the item for this decision; the attempt number, or None if it is taken."""
        with self.store.session() as s:
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
                        AgendaItem.claimed_at < now - self.claim_ttl,
                    ),
                )
                .values(
                    claim_token=token,
                    claimed_by=user_id,
                    claimed_at=now,
                    attempts=AgendaItem.attempts + 1,
                )
                .execution_options(**_NO_SYNC)
            )
            if _rows(claimed) == 0:
                return None
            return s.scalar(select(AgendaItem.attempts).where(AgendaItem.id == item_id))

    def _release(self, item_id: uuid.UUID, token: str) -> None:
        with self.store.session() as s:
            s.execute(
                update(AgendaItem)
                .where(AgendaItem.id == item_id, AgendaItem.claim_token == token)
                .values(claim_token=None, claimed_by=None, claimed_at=None)
                .execution_options(**_NO_SYNC)
            )

    def _record(
        self,
        m: Meeting,
        item: AgendaItem,
        token: str,
        decision: ItemDecisionPublic,
        digest: str,
    ) -> None:
        with self.store.session() as s:
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
                # This attempt's claim went stale and another took over; that attempt reads
                # the decision back from the case and records it.
                log.warning("claim lost before recording: item %s", item.id)
                return
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

    # --- minutes and reports ---------------------------------------------------------------

    def minutes(self, principal: Principal, meeting_id: uuid.UUID) -> list[minutes_doc.Block]:
        meeting = self.get(principal, meeting_id)
        agenda = self.agenda(principal, meeting_id, purpose="minutes")
        role = require(principal, Permission.read)
        return minutes_doc.minutes_blocks(
            meeting, agenda.items, role=role, generated_at=self.clock()
        )

    def minutes_markdown(self, principal: Principal, meeting_id: uuid.UUID) -> str:
        return minutes_doc.to_markdown(self.minutes(principal, meeting_id))

    def minutes_pdf(self, principal: Principal, meeting_id: uuid.UUID) -> bytes:
        blocks = self.minutes(principal, meeting_id)
        return minutes_doc.to_pdf(blocks, title=f"Minutes of meeting {meeting_id}")

    def attendance_report(
        self, principal: Principal, local_authority: str, since: datetime, until: datetime
    ) -> AttendanceReport:
        """Attendance by agency at the authority's meetings held in [since, until)."""
        require(principal, Permission.attendance_report)
        with self.store.session() as s:
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
        present: dict[str, set[uuid.UUID]] = defaultdict(set)
        apologised: dict[str, set[uuid.UUID]] = defaultdict(set)
        for agency, mid, was_present in rows:
            (present if was_present else apologised)[agency].add(mid)
        total = len(meeting_ids)
        agencies = [
            AgencyAttendance(
                agency_name=name,
                attended=len(present[name]),
                sent_apologies=len(apologised[name] - present[name]),
                meetings=total,
                attendance_rate=round(len(present[name]) / total, 3) if total else 0.0,
            )
            for name in sorted(set(present) | set(apologised))
        ]
        return AttendanceReport(
            local_authority=local_authority,
            since=since,
            until=until,
            meetings=total,
            agencies=agencies,
        )


# --- helpers -------------------------------------------------------------------------------


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


def _meeting(s: Session, meeting_id: uuid.UUID) -> Meeting:
    m = s.get(Meeting, meeting_id)
    if m is None:
        raise MeetingNotFound(f"no meeting {meeting_id}")
    return m


def _must_be_scheduled(m: Meeting) -> None:
    if m.status == MeetingStatus.closed.value:
        raise MeetingClosed("the meeting is closed")
    if m.status != MeetingStatus.scheduled.value:
        raise AgendaFixed("decisions have been recorded: the agenda can no longer be redrawn")


def _items_q(meeting_id: uuid.UUID) -> Any:
    return (
        select(AgendaItem)
        .where(AgendaItem.meeting_id == meeting_id)
        .order_by(AgendaItem.position, AgendaItem.id)
    )


def _items(s: Session, meeting_id: uuid.UUID) -> list[AgendaItemPublic]:
    rows = list(s.scalars(_items_q(meeting_id)))
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
    return [
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
        )
        for r in rows
    ]


def _item_counts(s: Session, meeting_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    if not meeting_ids:
        return {}
    rows = s.execute(
        select(
            AgendaItem.meeting_id,
            func.count(),
            func.count(AgendaItem.decided_at),
        )
        .where(AgendaItem.meeting_id.in_(meeting_ids))
        .group_by(AgendaItem.meeting_id)
    ).all()
    return {mid: (int(n), int(d)) for mid, n, d in rows}


def _summary(m: Meeting, items: int, decided: int) -> MeetingSummary:
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


def _disclose(
    s: Session, principal: Principal, meeting_id: uuid.UUID, what: str, at: datetime
) -> None:
    s.add(
        Disclosure(
            meeting_id=meeting_id,
            agency_id=principal.agency_id,
            user_id=principal.user_id,
            role=principal.role.value if principal.role else "none",
            what=what,
            at=at,
        )
    )


def _replay_or_conflict(item: AgendaItem, principal: Principal, digest: str) -> ItemDecisionPublic:
    """The same chair sending the same decision again (a retried request) gets the recorded
    answer; anything else on a decided item is a conflict."""
    assert item.decision is not None and item.decided_at is not None
    recorded = ItemDecisionPublic.model_validate(item.decision)
    if item.decided_by == principal.user_id and item.request_hash == digest:
        return recorded
    by = recorded.decided_by_name or "another chair"
    raise ItemAlreadyDecided(
        f"this item was already decided by {by} at {item.decided_at.isoformat()}; "
        "a decision is recorded once"
    )


def _decided_by(state: ReferralState, decision_id: str) -> uuid.UUID | None:
    if state.pre_mset is not None and state.pre_mset.decision_id == decision_id:
        return state.pre_mset.decided_by
    review = next((r for r in state.reviews if r.review_id == decision_id), None)
    return review.decided_by if review else None
