"""Record workflow histories of the current code for the replay test.

    .venv/bin/python -m tests.support.record_histories

Runs representative cases on the time-skipping test server (real rules engine) and saves
each history to ``tests/workflows/histories/``, its payloads encrypted with the test tier's
fixed key (``tests/support/codec.py``), which the replay test holds. Re-record only when a
workflow version is released; the replay test then proves later code still replays these
(use ``workflow.patched`` for any change that would not).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from mset_contract.cases import NewAction
from mset_contract.referral_workflow import (
    ActionProgressInput,
    ActionProgressRecorded,
    ExitCaseInput,
    ExitResult,
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionResult,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
)
from mset_contract.temporal import (
    MISSING_EPISODE_RECORD_RETURN_UPDATE,
    MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
    REFERRAL_EXIT_CASE_UPDATE,
    REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
    REFERRAL_RECORD_MSET_REVIEW_UPDATE,
    REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
    missing_episode_workflow_id,
)
from mset_contract.vocab import (
    ActionAim,
    ActionTarget,
    ExitReason,
    PreMsetOutcome,
    RhiOutcome,
    RiskLevel,
    Stage,
)
from tests.support.case_world import CaseWorld, case_world, triage_engine
from tests.support.codec import DATA_CONVERTER
from tests.support.temporal import register_search_attributes
from tests.support.wait import outcome, poll, settled, skip
from workflows.missing_episode import MissingEpisodeWorkflow
from workflows.referral import ReferralWorkflow

OUT = Path(__file__).resolve().parents[1] / "workflows" / "histories"
BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "temporal-test-server"
CHAIR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
POLICE = uuid.UUID("00000000-0000-4000-8000-0000000000a2")


async def _await_stage(handle: WorkflowHandle[ReferralWorkflow, object], stage: Stage) -> None:
    await poll(
        lambda: handle.query(ReferralWorkflow.state),
        lambda s: s is not None and s.stage == stage,
        what=f"stage {stage}",
    )


async def full_lifecycle(world: CaseWorld, env: WorkflowEnvironment) -> str:
    handle = await world.start_case()
    await _await_stage(handle, Stage.awaiting_pre_mset)
    await handle.execute_update(
        REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
        PreMsetDecisionInput(
            outcome=PreMsetOutcome.meets_criteria, level=RiskLevel.medium, decided_by=CHAIR
        ),
        result_type=PreMsetDecisionResult,
    )
    now = await env.get_current_time()
    review = await handle.execute_update(
        REFERRAL_RECORD_MSET_REVIEW_UPDATE,
        MsetReviewInput(
            level=RiskLevel.medium,
            decided_by=CHAIR,
            actions=[
                NewAction(
                    owner_agency_id=POLICE,
                    due_at=now + timedelta(days=10),
                    aim=ActionAim.reduce,
                    target=ActionTarget.perpetrator,
                    description="Disruption visit.",
                )
            ],
        ),
        result_type=MsetReviewRecorded,
    )
    await skip(env, timedelta(days=11))  # the reminder and the overdue escalation fire
    await settled(handle)
    await handle.execute_update(
        REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
        ActionProgressInput(action_id=review.action_ids[0], note="Done.", completed=True, by=CHAIR),
        result_type=ActionProgressRecorded,
    )
    await handle.execute_update(
        REFERRAL_EXIT_CASE_UPDATE,
        ExitCaseInput(reason=ExitReason.sufficiently_safe, decided_by=CHAIR),
        result_type=ExitResult,
    )
    await outcome(env, handle)
    return handle.id


async def not_met(world: CaseWorld, env: WorkflowEnvironment) -> str:
    handle = await world.start_case()
    await _await_stage(handle, Stage.awaiting_pre_mset)
    await handle.execute_update(
        REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
        PreMsetDecisionInput(
            outcome=PreMsetOutcome.not_met,
            level=RiskLevel.low,
            rationale="Advice to the case holder.",
            decided_by=CHAIR,
        ),
        result_type=PreMsetDecisionResult,
    )
    await outcome(env, handle)
    return handle.id


async def missing_breach(world: CaseWorld, env: WorkflowEnvironment) -> str:
    episode_id = uuid.uuid4()
    now = await env.get_current_time()
    handle = await world.client.start_workflow(
        MissingEpisodeWorkflow.run,
        StartMissingEpisodeInput(
            episode_id=episode_id,
            reporting_agency_id=POLICE,
            local_authority="northshire",
            reported_at=now - timedelta(hours=3),
        ),
        id=missing_episode_workflow_id(episode_id),
        task_queue=world.task_queue,
    )
    await handle.execute_update(
        MISSING_EPISODE_RECORD_RETURN_UPDATE,
        ReturnInput(returned_at=now),
        result_type=ReturnRecorded,
    )
    await skip(env, timedelta(hours=73))
    await settled(handle)
    await handle.execute_update(
        MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
        RhiOutcomeInput(
            outcome=RhiOutcome.refused_by_parent_carer,
            offered_at=now + timedelta(hours=75),
            by=CHAIR,
        ),
        result_type=RhiRecorded,
    )
    await outcome(env, handle)
    return handle.id


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN), data_converter=DATA_CONVERTER
    )
    try:
        await register_search_attributes(env.client)
        OUT.mkdir(parents=True, exist_ok=True)
        async with case_world(env, "record-histories") as world:
            for name, scenario in (
                ("referral-full-lifecycle", full_lifecycle),
                ("referral-not-met", not_met),
                ("missing-episode-rhi-breach", missing_breach),
            ):
                wid = await scenario(world, env)
                history = await world.client.get_workflow_handle(wid).fetch_history()
                (OUT / f"v1-{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
    finally:
        await env.shutdown()
        triage_engine().close()  # release the rules engine before the interpreter exits


if __name__ == "__main__":
    asyncio.run(main())
