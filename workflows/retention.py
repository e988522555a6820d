"""RetentionSweepWorkflow: erase, from every store, the records of each child whose time has
come under the retention policy (docs/retention.md, ADR 0024).

Started daily by the retention schedule (a Temporal Schedule: no cron, no thread). It asks
the referral service, which alone holds the child's date of birth, whose records are due,
then for each child:

1. ``referral.retention_begin``: the erasure's record is made (or found again), and the
   records are checked to be still due (a referral may have arrived since the list);
2. each other service erases what it holds under the child's ids, through its own activity on
   its own queue (services never touch each other's tables, ADR 0014): the meeting service
   (agenda items, agreed actions, LMAPS referrals), the notifications service (inbox items,
   their re-escalation timers' executions, e-mails, webhook deliveries and attempts, handled
   events, the outbox); each step's counts go onto the record at once;
3. ``referral.retention_finish``: the referral service deletes the case and episode workflow
   executions from Temporal, then its own rows, and closes the record, in one transaction.

The referral rows go last because they are what makes the child's records due: a sweep that
dies half-way finds the child again next time and repeats every step, each of which is
idempotent (an erased row, an execution already deleted, are not errors).

One child's failure does not hold the others up: its activities are retried a few times,
then it is left for the next day's run.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from mset_contract.retention import (
        BeginErasureInput,
        DueInput,
        DueResult,
        EraseInput,
        EraseResult,
        ErasureRef,
        FinishErasureInput,
        FinishErasureResult,
        RecordProgressInput,
        RetentionSubject,
        RetentionSweepInput,
        RetentionSweepResult,
    )
    from mset_contract.temporal import (
        MEETING_RETENTION_ERASE_ACTIVITY,
        NOTIFICATIONS_RETENTION_ERASE_ACTIVITY,
        REFERRAL_RETENTION_BEGIN_ACTIVITY,
        REFERRAL_RETENTION_DUE_ACTIVITY,
        REFERRAL_RETENTION_FINISH_ACTIVITY,
        REFERRAL_RETENTION_PROGRESS_ACTIVITY,
        RETENTION_SWEEP_WORKFLOW,
    )

# A child's step is tried this many times in one run, then left for the next run.
STEP_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1))
STEP_TIMEOUT = timedelta(minutes=5)


@workflow.defn(name=RETENTION_SWEEP_WORKFLOW)
class RetentionSweepWorkflow:
    @workflow.run
    async def run(self, inp: RetentionSweepInput) -> RetentionSweepResult:
        due: DueResult = await workflow.execute_activity(
            REFERRAL_RETENTION_DUE_ACTIVITY,
            DueInput(limit=inp.batch),
            result_type=DueResult,
            task_queue=inp.referral_task_queue,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        result = RetentionSweepResult()
        for subject in due.subjects:
            try:
                record_id = await self._erase(inp, subject)
            except ActivityError:
                # Logged by the SDK with the failure; the child stays due for the next run.
                result.failed += 1
                continue
            if record_id is not None:
                result.erased += 1
                result.record_ids.append(record_id)
        if len(due.subjects) == inp.batch and result.failed < len(due.subjects):
            # A full batch: there may be more. A fresh run takes the next (erased children
            # are no longer listed), with a short history.
            workflow.continue_as_new(inp)
        return result

    async def _erase(self, inp: RetentionSweepInput, subject: RetentionSubject) -> UUID | None:
        ref: ErasureRef = await workflow.execute_activity(
            REFERRAL_RETENTION_BEGIN_ACTIVITY,
            BeginErasureInput(subject=subject, sweep_id=workflow.info().workflow_id),
            result_type=ErasureRef,
            task_queue=inp.referral_task_queue,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        if not ref.still_due:
            return None
        others = (
            (MEETING_RETENTION_ERASE_ACTIVITY, inp.meeting_task_queue),
            (NOTIFICATIONS_RETENTION_ERASE_ACTIVITY, inp.notifications_task_queue),
        )
        for activity_name, queue in others:
            erased: EraseResult = await workflow.execute_activity(
                activity_name,
                EraseInput(subject_ids=subject.subject_ids),
                result_type=EraseResult,
                task_queue=queue,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            await workflow.execute_activity(
                REFERRAL_RETENTION_PROGRESS_ACTIVITY,
                RecordProgressInput(record_id=ref.record_id, counts=erased.counts),
                task_queue=inp.referral_task_queue,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
        await workflow.execute_activity(
            REFERRAL_RETENTION_FINISH_ACTIVITY,
            FinishErasureInput(record_id=ref.record_id, subject=subject),
            result_type=FinishErasureResult,
            task_queue=inp.referral_task_queue,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        return ref.record_id
