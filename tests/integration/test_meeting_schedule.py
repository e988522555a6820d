"""Meeting schedules on the real Temporal dev server (the time-skipping server has no
Schedules): the monthly calendar per authority and kind, and a schedule firing by itself
calls the meeting with its agenda."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

from mset_contract.temporal import meeting_schedule_id
from mset_contract.vocab import MeetingKind, Stage
from mset_platform.paging import every_item
from services.meeting.schedules import ensure_schedules, meeting_schedule, upsert_schedule
from tests.integration.meeting_fixtures import (
    HIGH,
    Panel,
    meeting_settings,
    panel_fixture,  # noqa: F401 - the `panel` fixture
)
from tests.support.wait import poll


async def test_each_authority_has_a_monthly_schedule_per_kind(
    panel: Panel, database_url: str, task_queue: str
) -> None:
    london = ZoneInfo("Europe/London")
    settings = meeting_settings(
        database_url,
        panel.intake,
        panel.local_authority,
        pre_mset_day=3,
        pre_mset_hour=10,
        mset_day=17,
        mset_hour=14,
    )
    # Idempotent: the worker runs this at every start; the second run updates in place.
    for _ in range(2):
        ids = await ensure_schedules(panel.client, settings, task_queue=task_queue)
    assert ids == [
        meeting_schedule_id(panel.local_authority, MeetingKind.pre_mset),
        meeting_schedule_id(panel.local_authority, MeetingKind.mset),
    ]
    async with panel.http("coordinator") as http:
        resp = await http.get("/v1/schedules")
    assert resp.status_code == 200, resp.text
    listed = {s["kind"]: s for s in resp.json()["schedules"]}
    for kind, (day, hour) in {"pre_mset": (3, 10), "mset": (17, 14)}.items():
        runs = [datetime.fromisoformat(t).astimezone(london) for t in listed[kind]["next_runs"]]
        assert len(runs) == 3 and not listed[kind]["paused"]
        assert {(r.day, r.hour, r.minute) for r in runs} == {(day, hour, 0)}
        assert len({r.month for r in runs}) == 3  # monthly
    async with panel.http("chair") as http:
        assert (await http.get("/v1/schedules")).status_code == 403


async def test_a_schedule_fires_and_the_meeting_exists_with_its_agenda(
    panel: Panel, task_queue: str
) -> None:
    case = await panel.case(HIGH)
    await panel.visible((Stage.awaiting_pre_mset,), 1)
    # The same schedule as the monthly one, with a calendar firing once, soon. A schedule does
    # not fire for a time that passed before it was made, so the lead is several seconds: the
    # upsert must reach the server first, however busy the machine.
    at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    spec = ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                year=[ScheduleRange(at.year)],
                month=[ScheduleRange(at.month)],
                day_of_month=[ScheduleRange(at.day)],
                hour=[ScheduleRange(at.hour)],
                minute=[ScheduleRange(at.minute)],
                second=[ScheduleRange(at.second)],
            )
        ],
        time_zone_name="UTC",
    )
    schedule_id = f"{meeting_schedule_id(panel.local_authority, MeetingKind.pre_mset)}-soon"
    await upsert_schedule(
        panel.client,
        schedule_id,
        meeting_schedule(
            panel.local_authority, MeetingKind.pre_mset, spec, notice_days=7, task_queue=task_queue
        ),
    )
    try:
        async with panel.http("member") as http:

            async def listed() -> list[dict[str, object]]:
                params = [("local_authority", panel.local_authority)]
                return await every_item(http, "/v1/meetings", params)

            meetings = await poll(listed, bool, what="the schedule's meeting")
        [meeting] = meetings
        assert meeting["kind"] == "pre_mset" and meeting["called_by_schedule"] is True
        called = datetime.fromisoformat(str(meeting["called_at"]))
        # Called at the calendar's time: the meeting workflow's first task, after the
        # schedule's start, may wait behind a busy worker, never run before it.
        assert at - timedelta(seconds=1) <= called < at + timedelta(seconds=30)
        agenda = await panel.agenda(str(meeting["meeting_id"]), "member")
        assert [i["referral_id"] for i in agenda["items"]] == [case.id.removeprefix("referral-")]
    finally:
        await panel.client.get_schedule_handle(schedule_id).delete()
