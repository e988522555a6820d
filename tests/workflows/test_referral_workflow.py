"""ReferralWorkflow on the time-skipping test server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mset_contract.referral_workflow import StartReferralInput
from mset_contract.vocab import RiskLevel, Stage
from workflows.referral import ReferralWorkflow


async def test_records_the_referral_and_waits_durably(
    time_skipping: WorkflowEnvironment, task_queue: str
) -> None:
    inp = StartReferralInput(
        referral_id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        local_authority="northshire",
        submitted_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        referrer_level=RiskLevel.high,
    )
    async with Worker(time_skipping.client, task_queue=task_queue, workflows=[ReferralWorkflow]):
        handle = await time_skipping.client.start_workflow(
            ReferralWorkflow.run, inp, id=f"referral-{inp.referral_id}", task_queue=task_queue
        )
        # A month passes with nothing happening: the case is still open and unchanged.
        await time_skipping.sleep(timedelta(days=31))
        state = await handle.query(ReferralWorkflow.state)
        assert state is not None
        assert state.stage == Stage.submitted
        assert state.referral_id == inp.referral_id
        assert state.referrer_level == RiskLevel.high
        assert state.local_authority == "northshire"
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.terminate("test over")
