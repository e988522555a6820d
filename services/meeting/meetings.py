"""The meeting service's work as one object, for the API and the activity. Each job is in its
own module: calling.py (calling, reading and closing meetings), agenda.py, attendance.py,
decisions.py; minutes.py renders them. Their queries are in store.py."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from mset_contract.types import DEFAULT_AUTHORITIES
from mset_platform.clock import Clock, utcnow
from services.meeting.agenda import Agendas
from services.meeting.attendance import Attendance
from services.meeting.calling import Calling
from services.meeting.decisions import Decisions
from services.meeting.domain import Cases
from services.meeting.store import Store
from services.meeting.who import CaseRecords


class Meetings:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        *,
        claim_ttl: timedelta = timedelta(minutes=2),
        clock: Clock = utcnow,
        authorities: Collection[str] = DEFAULT_AUTHORITIES,
        records: CaseRecords | None = None,
    ) -> None:
        self.agendas = Agendas(store, cases, clock, records)
        self.calling = Calling(
            store, self.agendas, clock, authorities=authorities, claim_ttl=claim_ttl
        )
        self.attendance = Attendance(store, clock)
        self.decisions = Decisions(store, cases, claim_ttl=claim_ttl, clock=clock)

        self.open_meeting = self.calling.open_meeting
        self.call_meeting = self.calling.call_meeting
        self.list_meetings = self.calling.list_meetings
        self.get = self.calling.get
        self.close = self.calling.close
        self.agenda = self.agendas.read
        self.refresh_agenda = self.agendas.refresh
        self.set_attendance = self.attendance.set_attendance
        self.attendance_report = self.attendance.attendance_report
        self.attendance_aggregate = self.attendance.attendance_aggregate
        self.decide = self.decisions.decide
        self.decide_for_case = self.decisions.decide_for_case
