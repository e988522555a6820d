"""The referral service's part of the retention sweep (workflows/retention.py): whose
records are due, the record of each erasure, and erasing the child's referrals, missing
episodes and their workflow executions. The logic and queries are in ``retention.py``."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client

from mset_contract.retention import (
    BeginErasureInput,
    DueInput,
    DueResult,
    ErasureRef,
    FinishErasureInput,
    FinishErasureResult,
    RecordProgressInput,
)
from mset_contract.temporal import (
    REFERRAL_RETENTION_BEGIN_ACTIVITY,
    REFERRAL_RETENTION_DUE_ACTIVITY,
    REFERRAL_RETENTION_FINISH_ACTIVITY,
    REFERRAL_RETENTION_PROGRESS_ACTIVITY,
    missing_episode_workflow_id,
    referral_workflow_id,
)
from mset_platform.clock import Clock, utcnow
from mset_platform.retention import delete_executions
from mset_platform.settings import RetentionSettings
from services.referral.retention import RetentionStore
from services.referral.store import Store


class RetentionActivities:
    """``policy``: the retention settings (the referral service's own); ``clock``: the time
    a record's due date is compared with (tests set it)."""

    def __init__(
        self, store: Store, client: Client, policy: RetentionSettings, clock: Clock = utcnow
    ) -> None:
        self.retention = RetentionStore(store)
        self.client = client
        self.policy = policy
        self.clock = clock

    # Sync activities run in the worker's thread pool (SQLAlchemy here is synchronous).
    @activity.defn(name=REFERRAL_RETENTION_DUE_ACTIVITY)
    def due(self, inp: DueInput) -> DueResult:
        return DueResult(subjects=self.retention.due(self.policy, self.clock(), inp.limit))

    @activity.defn(name=REFERRAL_RETENTION_BEGIN_ACTIVITY)
    def begin(self, inp: BeginErasureInput) -> ErasureRef:
        record_id, still_due = self.retention.begin(
            inp.subject, self.policy, inp.sweep_id, self.clock()
        )
        return ErasureRef(record_id=record_id, still_due=still_due)

    @activity.defn(name=REFERRAL_RETENTION_PROGRESS_ACTIVITY)
    def progress(self, inp: RecordProgressInput) -> None:
        self.retention.add_counts(inp.record_id, inp.counts)

    # Async: it calls Temporal; the database work runs in a thread.
    @activity.defn(name=REFERRAL_RETENTION_FINISH_ACTIVITY)
    async def finish(self, inp: FinishErasureInput) -> FinishErasureResult:
        subject = inp.subject
        executions = await delete_executions(
            self.client,
            [
                *(referral_workflow_id(i) for i in subject.referral_ids),
                *(missing_episode_workflow_id(i) for i in subject.episode_ids),
            ],
        )
        # On the record before the rows go: a crash between the two keeps the count.
        await asyncio.to_thread(
            self.retention.add_counts, inp.record_id, {"temporal.case_executions": executions}
        )
        counts = await asyncio.to_thread(self.retention.erase, inp.record_id, subject, self.clock())
        return FinishErasureResult(counts=counts)
