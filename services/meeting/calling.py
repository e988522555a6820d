"""Calling meetings: the schedules' monthly Pre-MSET and MSET meetings (opened by their
activity, or fired now by the coordinator), extraordinary LMAPS meetings called by staff,
and the meetings themselves: listed, read and closed."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from mset_contract.auth import Principal
from mset_contract.meeting import (
    SCHEDULED_KINDS,
    MeetingCreate,
    MeetingPage,
    MeetingPublic,
    MeetingStatus,
    OpenMeetingInput,
    OpenMeetingResult,
    ScheduleList,
    ScheduleTriggered,
)
from mset_contract.vocab import MeetingKind
from mset_platform.paging import FIRST_PAGE, PageRequest
from mset_platform.settings import authority_refusal
from services.meeting.agenda import Agendas
from services.meeting.domain import (
    Permission,
    RequestInvalid,
    ScheduleNotFound,
    require,
    require_authority,
    require_in,
)
from services.meeting.schedules import TemporalSchedules
from services.meeting.store import Store

log = logging.getLogger("mset.meeting")


class Calling:
    def __init__(
        self,
        store: Store,
        agendas: Agendas,
        clock: Callable[[], datetime],
        *,
        authorities: Collection[str],
        claim_ttl: timedelta,
    ) -> None:
        self.store = store
        self.agendas = agendas
        self.clock = clock
        self.authorities = frozenset(authorities)
        self.claim_ttl = claim_ttl

    async def open_meeting(self, inp: OpenMeetingInput) -> OpenMeetingResult:
        """Create a scheduled meeting with its agenda (the schedule's activity). Idempotent
        by origin: the activity retried, or run again, finds the meeting it created."""
        existing = await asyncio.to_thread(self.store.by_origin, inp.origin)
        if existing is not None:
            return existing
        now = self.clock()
        entries = await self.agendas.scheduled_entries(
            inp.kind, inp.local_authority, as_of=now, held_at=inp.held_at
        )
        result = await asyncio.to_thread(
            self.store.insert_meeting,
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
        refusal = authority_refusal(body.local_authority, self.authorities)
        if refusal:
            raise RequestInvalid("local_authority", refusal)
        require_authority(principal, Permission.call_meeting, body.local_authority)
        now = self.clock()
        entries = await self.agendas.lmaps_entries(body.local_authority, now)
        result = await asyncio.to_thread(
            self.store.insert_meeting,
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

    def list_meetings(
        self,
        principal: Principal,
        *,
        local_authority: str | None = None,
        kind: MeetingKind | None = None,
        status: MeetingStatus | None = None,
        page: PageRequest = FIRST_PAGE,
    ) -> MeetingPage:
        require(principal, Permission.read)
        # The meetings of the authorities the caller serves (domain.require_in), no others.
        got = self.store.meeting_page(
            local_authority=local_authority,
            kind=kind,
            status=status,
            page=page,
            authorities=principal.authorities,
        )
        return MeetingPage(items=got.rows, next_cursor=got.next_cursor)

    def get(self, principal: Principal, meeting_id: uuid.UUID) -> MeetingPublic:
        self.seen(principal, Permission.read, meeting_id)
        return self.store.meeting_public(meeting_id)

    def seen(self, principal: Principal, permission: Permission, meeting_id: uuid.UUID) -> None:
        """The role may, and the meeting is of an authority the caller serves (else the 404
        of a meeting that does not exist)."""
        require(principal, permission)  # 403 by role before the meeting is looked up
        require_in(
            principal, permission, meeting_id, self.store.meeting(meeting_id).local_authority
        )

    def close(
        self, principal: Principal, meeting_id: uuid.UUID, carry_over: bool = False
    ) -> MeetingPublic:
        """Close the meeting (its own authority's coordinator or chair): its minutes become
        final. Undecided items need ``carry_over``, which carries them to the next meeting
        of the kind and authority. Closing twice is harmless."""
        self.seen(principal, Permission.close, meeting_id)
        now = self.clock()
        self.store.close(meeting_id, now, carry_over=carry_over, stale_before=now - self.claim_ttl)
        return self.get(principal, meeting_id)


class ScheduleDesk:
    """The coordinator's view of the monthly schedules: list them, or fire one now (the
    meeting is then opened by the schedule's activity, as on its day)."""

    def __init__(self, schedules: TemporalSchedules, authorities: Sequence[str]) -> None:
        self.schedules = schedules
        self.authorities = authorities

    async def list_schedules(self, principal: Principal) -> ScheduleList:
        require(principal, Permission.run_schedules)
        found = []
        for la in self.authorities:
            for kind in SCHEDULED_KINDS:
                try:
                    found.append(await self.schedules.describe(la, kind))
                except ScheduleNotFound:
                    continue  # the worker has not created it yet
        return ScheduleList(schedules=found)

    async def trigger(
        self,
        principal: Principal,
        local_authority: str,
        kind: MeetingKind,
        held_at: datetime | None = None,
    ) -> ScheduleTriggered:
        require(principal, Permission.run_schedules)
        if local_authority in self.authorities:  # any other has no schedule: 404 below
            require_authority(principal, Permission.run_schedules, local_authority)
        if kind not in SCHEDULED_KINDS:
            raise ScheduleNotFound(
                "LMAPS meetings have no schedule: call one with POST /v1/meetings"
            )
        fired = await self.schedules.trigger(local_authority, kind, held_at)
        return ScheduleTriggered(
            schedule_id=fired.schedule_id,
            local_authority=local_authority,
            kind=kind,
            triggered_at=fired.at,
            held_at=fired.held_at,
            workflow_id=fired.workflow_id,
        )
