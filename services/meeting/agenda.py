"""Agendas: drawn up from the cases a panel considers, read as the caller's role may see them
(each read recorded), and redrawn before the meeting's first decision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

from mset_contract.auth import Principal
from mset_contract.ledger import DisclosureView, ShownTo
from mset_contract.meeting import AgendaPublic, MeetingStatus
from mset_contract.vocab import MeetingKind
from mset_platform.cases import CaseClosed
from mset_platform.paging import FIRST_PAGE, PageRequest
from services.meeting.domain import (
    PANEL_STAGES,
    AgendaEntry,
    Cases,
    Permission,
    draw_up,
    item_for,
    lmaps_entry,
    must_be_scheduled,
    ordered,
    require,
    require_in,
)
from services.meeting.store import Store
from services.meeting.who import CaseRecords


class Agendas:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        clock: Callable[[], datetime],
        records: CaseRecords | None = None,
    ) -> None:
        self.store = store
        self.cases = cases
        self.clock = clock
        # Who the cases are about (the referral service); None where no agenda is shown.
        self.records = records

    async def scheduled_entries(
        self, kind: MeetingKind, local_authority: str, *, as_of: datetime, held_at: datetime
    ) -> list[AgendaEntry]:
        """A Pre-MSET or MSET agenda: the authority's cases due at that panel."""
        states = await self.cases.at_stages(local_authority, PANEL_STAGES[kind])
        return draw_up(kind, states, as_of=as_of, held_at=held_at)

    async def lmaps_entries(self, local_authority: str, as_of: datetime) -> list[AgendaEntry]:
        """An LMAPS agenda: the authority's open LMAPS referrals whose cases are still at a
        stage the panel considers."""
        requests = await asyncio.to_thread(self.store.open_lmaps_requests, local_authority)
        entries = []
        for r in requests:
            try:
                state = await self.cases.state(r.referral_id)
            except CaseClosed:
                continue  # the case has ended: nothing for the meeting to consider
            if state.stage in PANEL_STAGES[MeetingKind.lmaps]:
                entries.append(lmaps_entry(r, state, as_of=as_of))
        return ordered(entries)

    async def read(
        self,
        principal: Principal,
        meeting_id: uuid.UUID,
        purpose: str = "agenda",
        *,
        page: PageRequest | None = None,
    ) -> AgendaPublic:
        """The agenda as the caller's role may see it, a page of it or (``page`` None, for
        the minutes) all of it, each case named by who it is about (asked of the referral
        service now, never stored); the disclosure is recorded."""
        require(principal, Permission.read)
        m = await asyncio.to_thread(self.store.meeting, meeting_id)
        role = require_in(principal, Permission.read, meeting_id, m.local_authority)
        m, items = await asyncio.to_thread(
            self.store.disclose_agenda, principal, meeting_id, purpose, self.clock(), page
        )
        rows = items.rows
        if self.records is not None and rows:
            shown = ShownTo(
                agency_id=principal.agency_id,
                user_id=principal.user_id,
                role=principal.role,
                view=DisclosureView.minutes if purpose == "minutes" else DisclosureView.agenda,
                meeting_id=m.id,
            )
            who = await self.records.who({i.referral_id for i in rows}, shown)
            rows = [i.model_copy(update={"who": who.get(i.referral_id)}) for i in rows]
        return AgendaPublic(
            meeting_id=m.id,
            kind=MeetingKind(m.kind),
            local_authority=m.local_authority,
            status=MeetingStatus(m.status),
            held_at=m.held_at,
            built_at=m.agenda_built_at,
            items=[item_for(role, i) for i in rows],
            next_cursor=items.next_cursor,
        )

    async def refresh(self, principal: Principal, meeting_id: uuid.UUID) -> AgendaPublic:
        """Draw the agenda up again from the cases as they are now (before any decision);
        answers its first page."""
        require(principal, Permission.prepare)
        m = await asyncio.to_thread(self.store.meeting, meeting_id)
        require_in(principal, Permission.prepare, meeting_id, m.local_authority)
        must_be_scheduled(MeetingStatus(m.status))
        now = self.clock()
        kind = MeetingKind(m.kind)
        if kind is MeetingKind.lmaps:
            entries = await self.lmaps_entries(m.local_authority, now)
        else:
            entries = await self.scheduled_entries(
                kind, m.local_authority, as_of=now, held_at=m.held_at
            )
        await asyncio.to_thread(self.store.replace_items, meeting_id, entries, now)
        return await self.read(principal, meeting_id, page=FIRST_PAGE)
