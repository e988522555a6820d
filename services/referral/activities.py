"""Activities the referral service hosts on its own task queue (record keeping)."""

from __future__ import annotations

from sqlalchemy import update
from temporalio import activity

from mset_contract.referral_workflow import RecordStageInput, RecordStageResult
from mset_contract.temporal import REFERRAL_RECORD_STAGE_ACTIVITY
from services.referral.store import Referral, Store


class ReferralActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Sync activity (run in the worker's thread pool): SQLAlchemy here is synchronous.
    @activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
    def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        with self.store.session() as s:
            # Only move forward in time: a retried, older update never overwrites a newer one.
            result = s.execute(
                update(Referral)
                .where(Referral.id == inp.referral_id, Referral.updated_at <= inp.at)
                .values(
                    stage=inp.stage.value,
                    suggested_level=inp.suggested_level.value if inp.suggested_level else None,
                    next_deadline=inp.next_deadline,
                    updated_at=inp.at,
                )
            )
        return RecordStageResult(updated=bool(getattr(result, "rowcount", 0)))
