"""MissingEpisodeWorkflow on the time-skipping server, with the real rules engine: the
72-hour Return Home Interview clock, who is told when it is missed, and the link to a case."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from mset_contract.referral_workflow import (
    EpisodeFacts,
    EpisodeStatus,
    MissingEpisodeState,
    MissingEpisodeSummary,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
)
from mset_contract.temporal import (
    MISSING_EPISODE_RECORD_RETURN_UPDATE,
    MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
    missing_episode_workflow_id,
)
from mset_contract.vocab import RhiOutcome, Stage
from tests.support.case_world import CaseActivities, CaseWorld, case_world, facts_for
from tests.support.wait import eventually, outcome, poll, settled, skip, terminate_settled
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow

POLICE = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
PROVIDER = uuid.UUID("00000000-0000-4000-8000-0000000000b3")


@pytest.fixture
async def world(
    time_skipping: WorkflowEnvironment, task_queue: str, case_activities: CaseActivities
) -> AsyncIterator[CaseWorld]:
    async with case_world(time_skipping, task_queue, case_activities) as w:
        yield w


async def report(
    world: CaseWorld, reported_at: datetime, case: uuid.UUID | None = None
) -> WorkflowHandle[Any, Any]:
    episode_id = uuid.uuid4()
    world.started.append(missing_episode_workflow_id(episode_id))
    return await world.client.start_workflow(
        MissingEpisodeWorkflow.run,
        StartMissingEpisodeInput(
            episode_id=episode_id,
            reporting_agency_id=POLICE,
            local_authority="northshire",
            reported_at=reported_at,
            case_referral_id=case,
        ),
        id=missing_episode_workflow_id(episode_id),
        task_queue=world.task_queue,
    )


async def returned(
    handle: WorkflowHandle[Any, Any], at: datetime, located: str | None = None
) -> ReturnRecorded:
    return await handle.execute_update(
        MISSING_EPISODE_RECORD_RETURN_UPDATE,
        ReturnInput(returned_at=at, located_in_authority=located),
        result_type=ReturnRecorded,
    )


async def rhi(handle: WorkflowHandle[Any, Any], inp: RhiOutcomeInput) -> RhiRecorded:
    return await handle.execute_update(
        MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE, inp, result_type=RhiRecorded
    )


async def test_rhi_not_offered_in_72_hours_escalates_to_the_provider_manager(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=6))
    back = await returned(handle, now)
    assert back.rhi_due_at == now + timedelta(hours=72)  # the rules' deadline
    await skip(time_skipping, timedelta(hours=73))
    await eventually(lambda: "rhi_not_offered" in world.escalations())
    escalation = next(e for e in world.events if e.get("kind") == "rhi_not_offered")
    assert {(t["role"], t["agency"]) for t in escalation["notify"]} >= {("manager", "rhi_provider")}
    assert "mset.missing_episode.rhi_deadline_breached" in world.event_types()
    state = await handle.query(MissingEpisodeWorkflow.state)
    assert state is not None and state.rhi_deadline_breached
    # The outcome can still be recorded late; the breach stays on the record.
    await rhi(
        handle,
        RhiOutcomeInput(
            outcome=RhiOutcome.completed, offered_at=now + timedelta(hours=80), by=PROVIDER
        ),
    )
    final = await outcome(world.env, handle)
    assert final.status == EpisodeStatus.closed and final.rhi_deadline_breached


async def test_the_same_return_again_gets_the_first_answer_and_another_is_refused(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=6))
    first = await returned(handle, now - timedelta(minutes=5), located="eastmoor")
    again = await returned(handle, now - timedelta(minutes=5), located="eastmoor")
    assert again == first
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await returned(handle, now - timedelta(minutes=1))
    assert "recorded already" in str(info.value.cause)
    state = await handle.query(MissingEpisodeWorkflow.state)
    assert state is not None and state.returned_at == now - timedelta(minutes=5)
    await settled(handle)
    assert world.event_types().count("mset.missing_episode.returned") == 1


async def test_rhi_offered_in_time_means_no_breach(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=6))
    await returned(handle, now)
    done = await rhi(
        handle,
        RhiOutcomeInput(
            outcome=RhiOutcome.refused_by_young_person,
            offered_at=now + timedelta(minutes=1),
            by=PROVIDER,
        ),
    )
    assert done.status == EpisodeStatus.closed
    final: MissingEpisodeState = await outcome(world.env, handle)
    assert not final.rhi_deadline_breached
    assert "rhi_not_offered" not in world.escalations()
    assert "mset.missing_episode.rhi_recorded" in world.event_types()
    assert "mset.missing_episode.rhi_deadline_breached" not in world.event_types()


async def test_invalid_records_are_refused(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=6))
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await rhi(
            handle, RhiOutcomeInput(outcome=RhiOutcome.completed, offered_at=now, by=PROVIDER)
        )
    assert "record it first" in str(early.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await returned(handle, now - timedelta(hours=8))  # before the report
    await returned(handle, now)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await rhi(handle, RhiOutcomeInput(outcome=RhiOutcome.not_offered, by=PROVIDER))
    assert "reason_not_offered" in str(info.value.cause)
    state = await handle.query(MissingEpisodeWorkflow.state)
    assert state is not None and state.rhi_outcome is None
    await terminate_settled(handle)


async def test_found_in_another_authority_tells_that_authority(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=5))
    await returned(handle, now, located="eastmoor")
    await eventually(lambda: "missing_in_other_authority" in world.escalations())
    other = next(e for e in world.events if e.get("kind") == "missing_in_other_authority")
    assert any(t["agency_ref"] == "eastmoor" for t in other["notify"])
    assert "repeat_missing" not in world.escalations()
    await terminate_settled(handle)


async def test_repeat_missing_without_a_case_opens_a_referral_for_pre_mset(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=5))
    episode_id = uuid.UUID(handle.id.removeprefix("missing-"))
    earlier = [
        MissingEpisodeSummary(episode_id=uuid.uuid4(), reported_at=now - timedelta(days=d))
        for d in (20, 45)
    ]
    world.episodes[episode_id] = EpisodeFacts(
        local_authority="northshire",
        age_years=14,
        turns_18_month=date(2030, 3, 1),
        other_episodes=earlier,
    )
    await returned(handle, now)
    await eventually(lambda: episode_id in world.opened)
    case = world.client.get_workflow_handle(f"referral-{world.opened[episode_id]}")
    state = await poll(
        lambda: case.query(ReferralWorkflow.state),
        lambda s: (
            s is not None and s.stage == Stage.awaiting_pre_mset and len(s.missing_episodes) == 3
        ),
        what="the opened case holds the three episodes",
    )
    assert state is not None and state.stage == Stage.awaiting_pre_mset
    assert {e.episode_id for e in state.missing_episodes} == {
        episode_id,
        *(x.episode_id for x in earlier),
    }
    episode = await handle.query(MissingEpisodeWorkflow.state)
    assert episode is not None and episode.case_referral_id == world.opened[episode_id]
    # The case, not the episode, escalates repeat missing: once.
    await eventually(lambda: "repeat_missing" in world.escalations())
    await settled(case)
    assert world.escalations().count("repeat_missing") == 1
    await terminate_settled(handle)
    await terminate_settled(case)


async def test_an_episode_counts_toward_the_childs_open_case(
    world: CaseWorld, time_skipping: WorkflowEnvironment
) -> None:
    case = await world.start_case(facts_for())
    await poll(
        lambda: case.query(ReferralWorkflow.state),
        lambda s: s is not None and s.stage == Stage.awaiting_pre_mset,
        what="case awaiting Pre-MSET",
    )
    case_id = uuid.UUID(case.id.removeprefix("referral-"))
    now = await time_skipping.get_current_time()
    handle = await report(world, now - timedelta(hours=4), case=case_id)
    await returned(handle, now)

    async def case_knows() -> bool:
        s = await case.query(ReferralWorkflow.state)
        return s is not None and any(e.returned_at == now for e in s.missing_episodes)

    await eventually(case_knows, what="the case knows of the return")
    # Past the deadline the case (not the episode) escalates, once.
    await skip(time_skipping, timedelta(hours=73))
    await eventually(lambda: "rhi_not_offered" in world.escalations())
    await settled(case)
    assert world.escalations().count("rhi_not_offered") == 1
    breach = next(e for e in world.events if e.get("kind") == "rhi_not_offered")
    assert breach["subject"] == str(case_id)
    await terminate_settled(handle)
    await terminate_settled(case)
