"""Activities the meeting service hosts on its own task queue."""

from __future__ import annotations

from temporalio import activity

from mset_contract.meeting import MEETING_OPEN_ACTIVITY, OpenMeetingInput, OpenMeetingResult
from services.meeting.meetings import Meetings


class MeetingActivities:
    def __init__(self, meetings: Meetings) -> None:
        self.meetings = meetings

    # Async: drawing up the agenda queries the case workflows through the Temporal client;
    # the database work inside runs in a thread. Failures are retried by Temporal, and the
    # meeting's unique origin makes a retry find the meeting rather than create another.
    @activity.defn(name=MEETING_OPEN_ACTIVITY)
    async def open_meeting(self, inp: OpenMeetingInput) -> OpenMeetingResult:
        return await self.meetings.open_meeting(inp)
