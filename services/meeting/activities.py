"""Activities the meeting service hosts on its own task queue."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity

from mset_contract.meeting import OpenMeetingInput, OpenMeetingResult
from mset_contract.temporal import MEETING_OPEN_MEETING_ACTIVITY
from services.meeting.meetings import Meetings


class MeetingActivities:
    def __init__(self, meetings: Meetings) -> None:
        self.meetings = meetings

    # Async: drawing up the agenda queries the case workflows through the Temporal client;
    # the database work inside runs in a thread. Failures are retried by Temporal, and the
    # meeting's unique origin makes a retry find the meeting rather than create another.
    @activity.defn(name=MEETING_OPEN_MEETING_ACTIVITY)
    async def open_meeting(self, inp: OpenMeetingInput) -> OpenMeetingResult:
        # Heartbeats say "this worker is alive": if it dies mid-draw they stop, and the draw
        # is retried after the heartbeat timeout rather than the whole start-to-close.
        beat = asyncio.create_task(_heartbeat_every(1.0))
        try:
            return await self.meetings.open_meeting(inp)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


async def _heartbeat_every(seconds: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(seconds)
