"""A decision whose answer was lost is never recorded twice or half-recorded: the meeting
service against SQLite and PostgreSQL, with the cases replaced by a stand-in that behaves as
ReferralWorkflow does (same decision id, same answer) and can lose an answer on the way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mset_contract.auth import Principal
from mset_contract.cases import PreMsetDecisionRequest
from mset_contract.meeting import OpenMeetingInput
from mset_contract.referral_workflow import (
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionRecord,
    PreMsetDecisionResult,
    ReferralState,
    StageChange,
)
from mset_contract.vocab import AgencyType, MeetingKind, PreMsetOutcome, RiskLevel, Role, Stage
from mset_platform.cases import CaseUnreachable, DecisionRefused
from mset_platform.db import make_engine
from services.meeting.domain import (
    ItemAlreadyDecided,
    ItemBeingDecided,
)
from services.meeting.meetings import Meetings
from services.meeting.migrate import upgrade
from services.meeting.store import AgendaItem, Store

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


class StandInCases:
    """One case awaiting Pre-MSET; records a decision as the workflow would."""

    def __init__(self) -> None:
        self.case = ReferralState(
            referral_id=uuid.uuid4(),
            agency_id=uuid.uuid4(),
            local_authority="northshire",
            stage=Stage.awaiting_pre_mset,
            submitted_at=T0 - timedelta(days=3),
            referrer_level=RiskLevel.medium,
            stages=[StageChange(stage=Stage.awaiting_pre_mset, at=T0 - timedelta(days=3))],
        )
        self.updates: list[str] = []
        self.lose_next_answer = False

    async def at_stages(self, local_authority: str, stages: Sequence[Stage]) -> list[ReferralState]:
        return [self.case] if self.case.stage in stages else []

    async def state(self, referral_id: uuid.UUID) -> ReferralState:
        return self.case

    async def record_pre_mset(
        self, referral_id: uuid.UUID, inp: PreMsetDecisionInput, update_id: str
    ) -> PreMsetDecisionResult:
        self.updates.append(update_id)
        pre = self.case.pre_mset
        assert inp.decision_id is not None
        if pre is not None and pre.decision_id == inp.decision_id:
            return PreMsetDecisionResult(
                decision_id=pre.decision_id, stage=self.case.stage, level=pre.level
            )
        if self.case.stage != Stage.awaiting_pre_mset:
            raise DecisionRefused(f"the case is at stage '{self.case.stage.value}'")
        self.case.pre_mset = PreMsetDecisionRecord(
            decision_id=inp.decision_id,
            outcome=inp.outcome,
            level=inp.level,
            rationale=inp.rationale,
            decided_by=inp.decided_by,
            meeting_id=inp.meeting_id,
            decided_at=T0,
        )
        self.case.stage = Stage.awaiting_mset
        if self.lose_next_answer:  # recorded in the case, but the answer never arrives
            self.lose_next_answer = False
            raise CaseUnreachable("the case's workflow did not answer in time")
        return PreMsetDecisionResult(
            decision_id=inp.decision_id, stage=self.case.stage, level=inp.level
        )

    async def record_review(
        self, referral_id: uuid.UUID, inp: MsetReviewInput, update_id: str
    ) -> MsetReviewRecorded:
        raise AssertionError("not used here")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def chair(name: str) -> Principal:
    return Principal(
        kind="user",
        agency_id=uuid.uuid4(),
        agency_name="Northshire Police",
        agency_type=AgencyType.police,
        user_id=uuid.uuid4(),
        user_name=name,
        role=Role.chair,
        authorities=("northshire",),  # the meetings' authority: a chair decides in its meetings
    )


MEETS = PreMsetDecisionRequest(
    kind="pre_mset", outcome=PreMsetOutcome.meets_criteria, level=RiskLevel.high
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


async def meeting_with_one_item(
    store: Store,
) -> tuple[Meetings, StandInCases, Clock, uuid.UUID, uuid.UUID]:
    cases, clock = StandInCases(), Clock()
    meetings = Meetings(store, cases, claim_ttl=timedelta(minutes=2), clock=clock)
    opened = await meetings.open_meeting(
        OpenMeetingInput(
            local_authority="northshire",
            kind=MeetingKind.pre_mset,
            called_at=T0,
            held_at=T0 + timedelta(days=7),
            origin=f"test-{uuid.uuid4()}",
        )
    )
    with store.session() as s:
        [item_id] = s.scalars(
            select(AgendaItem.id).where(AgendaItem.meeting_id == opened.meeting_id)
        ).all()
    return meetings, cases, clock, opened.meeting_id, item_id


async def test_a_lost_answer_is_read_back_from_the_case_not_sent_twice(store: Store) -> None:
    meetings, cases, _, meeting_id, item_id = await meeting_with_one_item(store)
    sam = chair("DI Sam Okafor")
    cases.lose_next_answer = True

    with pytest.raises(CaseUnreachable):
        await meetings.decide(sam, meeting_id, item_id, MEETS)
    # The case has it; this service has not recorded it yet, and the item is free again.
    assert cases.case.stage == Stage.awaiting_mset
    assert (await meetings.agenda(sam, meeting_id)).items[0].decision is None

    decided = await meetings.decide(sam, meeting_id, item_id, MEETS)

    assert decided.stage_after == Stage.awaiting_mset and decided.level == RiskLevel.high
    assert len(cases.updates) == 1  # the retry asked the case, it did not send again
    assert (await meetings.agenda(sam, meeting_id)).items[0].decision == decided


async def test_another_chair_after_a_lost_answer_is_told_it_was_decided(store: Store) -> None:
    meetings, cases, _, meeting_id, item_id = await meeting_with_one_item(store)
    sam, robin = chair("DI Sam Okafor"), chair("DI Robin Hale")
    cases.lose_next_answer = True
    with pytest.raises(CaseUnreachable):
        await meetings.decide(sam, meeting_id, item_id, MEETS)

    other = MEETS.model_copy(update={"level": RiskLevel.medium})
    with pytest.raises(ItemAlreadyDecided):
        await meetings.decide(robin, meeting_id, item_id, other)

    # What is recorded here is what the case holds: Sam's decision, not Robin's.
    recorded = (await meetings.agenda(sam, meeting_id)).items[0].decision
    assert recorded is not None and recorded.decided_by == sam.user_id
    assert recorded.level == RiskLevel.high
    assert len(cases.updates) == 1


async def test_a_crashed_claim_holds_the_item_only_until_it_goes_stale(store: Store) -> None:
    meetings, cases, clock, meeting_id, item_id = await meeting_with_one_item(store)
    sam, robin = chair("DI Sam Okafor"), chair("DI Robin Hale")
    # Sam's request took the item and then its process died before asking the case.
    assert robin.user_id is not None and sam.user_id is not None
    meetings.decisions.claim(meeting_id, item_id, sam.user_id, str(uuid.uuid4()), clock.now)

    with pytest.raises(ItemBeingDecided):
        await meetings.decide(robin, meeting_id, item_id, MEETS)
    clock.now += timedelta(minutes=3)
    decided = await meetings.decide(robin, meeting_id, item_id, MEETS)

    assert decided.decided_by == robin.user_id
    assert cases.case.pre_mset is not None and cases.case.pre_mset.decided_by == robin.user_id


async def test_opening_the_same_firing_twice_calls_one_meeting(store: Store) -> None:
    cases = StandInCases()
    meetings = Meetings(store, cases, clock=Clock())
    inp = OpenMeetingInput(
        local_authority="northshire",
        kind=MeetingKind.pre_mset,
        called_at=T0,
        held_at=T0 + timedelta(days=7),
        origin="meeting-cycle-northshire-pre_mset-2026-11-20T10:00:00Z",
    )
    first = await meetings.open_meeting(inp)
    again = await meetings.open_meeting(inp)
    assert first.created and not again.created
    assert again.meeting_id == first.meeting_id and again.items == first.items == 1
