"""Attendance: who came to a meeting, and who sent apologies, by agency and person; the
attendance report by agency across an authority's meetings; and the same counts as the
aggregate the referral service's board reports fold in (``GET /v1/aggregates/attendance``,
for the MSET services only: docs/decisions/0023)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mset_contract.auth import Principal
from mset_contract.meeting import (
    AgencyAttendance,
    AttendancePublic,
    AttendanceReport,
    AttendanceUpdate,
)
from mset_contract.reports import AgencyAttendanceCount, AttendanceAggregate
from services.meeting.domain import NotAllowed, Permission, require, require_in
from services.meeting.store import Store

# The report's period when the caller names no start.
REPORT_PERIOD = timedelta(days=365)


class Attendance:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def set_attendance(
        self, principal: Principal, meeting_id: uuid.UUID, body: AttendanceUpdate
    ) -> AttendancePublic:
        require(principal, Permission.prepare)
        m = self.store.meeting(meeting_id)
        require_in(principal, Permission.prepare, meeting_id, m.local_authority)
        chair = next((a for a in body.attendees if a.capacity.value == "chair"), None)
        return self.store.replace_attendance(
            meeting_id, body.attendees, chair.person_name if chair else None
        )

    def attendance_report(
        self,
        principal: Principal,
        local_authority: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AttendanceReport:
        """Attendance by agency at the authority's meetings held in [since, until): by
        default the twelve months to now. A time without a zone is read as UTC."""
        require(principal, Permission.attendance_report)
        until = _aware(until) if until else self.clock()
        since = _aware(since) if since else until - REPORT_PERIOD
        total, present, apologised = self._counts(local_authority, since, until)
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

    def attendance_aggregate(
        self, principal: Principal, local_authority: str, since: datetime, until: datetime
    ) -> AttendanceAggregate:
        """Meetings held by the authority in [since, until), and each agency's attendance at
        them, as counts: for the MSET services (the referral service's board reports)."""
        if principal.kind != "service":
            raise NotAllowed("attendance aggregates are read by the MSET services")
        since, until = _aware(since), _aware(until)
        total, present, apologised = self._counts(local_authority, since, until)
        return AttendanceAggregate(
            local_authority=local_authority,
            since=since,
            until=until,
            meetings=total,
            agencies=[
                AgencyAttendanceCount(
                    agency_name=name,
                    attended=len(present[name]),
                    sent_apologies=len(apologised[name] - present[name]),
                )
                for name in sorted(set(present) | set(apologised))
            ],
        )

    def _counts(
        self, local_authority: str, since: datetime, until: datetime
    ) -> tuple[int, dict[str, set[uuid.UUID]], dict[str, set[uuid.UUID]]]:
        meeting_ids, rows = self.store.attendance_between(local_authority, since, until)
        present: dict[str, set[uuid.UUID]] = defaultdict(set)
        apologised: dict[str, set[uuid.UUID]] = defaultdict(set)
        for agency, mid, was_present in rows:
            (present if was_present else apologised)[agency].add(mid)
        return len(meeting_ids), present, apologised


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
