"""Activities the referral service hosts on its own task queue (record keeping).

They turn the stored Risk Assessment Tool into facts the rules need — age instead of the
date of birth, indicator codes instead of free text — so the child's details never enter a
workflow's history, and keep the service's read model of each case current.
"""

from __future__ import annotations

from sqlalchemy import update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from mset_contract.referral import MissingReportCreate, ReferralCreate
from mset_contract.referral_workflow import (
    REFERRAL_EPISODE_FACTS_ACTIVITY,
    REFERRAL_TRIAGE_FACTS_ACTIVITY,
    EpisodeFacts,
    EpisodeFactsInput,
    MissingEpisodeSummary,
    RecordStageInput,
    RecordStageResult,
    TriageFacts,
    TriageFactsInput,
)
from mset_contract.temporal import REFERRAL_RECORD_STAGE_ACTIVITY
from mset_contract.types import age_on, birthday, today_uk
from services.referral.store import MissingEpisode, Referral, Store


class ReferralActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Sync activities (run in the worker's thread pool): SQLAlchemy here is synchronous.
    @activity.defn(name=REFERRAL_TRIAGE_FACTS_ACTIVITY)
    def triage_facts(self, inp: TriageFactsInput) -> TriageFacts:
        with self.store.session() as s:
            row = s.get(Referral, inp.assessment_id)
            if row is None:
                raise ApplicationError(
                    f"no assessment {inp.assessment_id}", type="NotFound", non_retryable=True
                )
            # "stored": the tool was valid when accepted; the child may have turned 18 since.
            tool = ReferralCreate.model_validate(row.tool, context={"stored": True})
            assessed_at = row.submitted_at
        on = today_uk(inp.as_of)
        dob = tool.child.date_of_birth
        return TriageFacts(
            local_authority=tool.child.local_authority,
            catalogue_version=tool.catalogue_version,
            age_years=age_on(dob, on),
            days_until_18=(birthday(dob, 18) - on).days,
            referrer_level=tool.referrer_judgement.level,
            referrer_rationale_given=bool(tool.referrer_judgement.rationale.strip()),
            indicators=tool.resolved_indicators(),
            exploitation_types=tool.exploitation_types,
            assessed_at=assessed_at,
        )

    @activity.defn(name=REFERRAL_EPISODE_FACTS_ACTIVITY)
    def episode_facts(self, inp: EpisodeFactsInput) -> EpisodeFacts:
        with self.store.session() as s:
            row = s.get(MissingEpisode, inp.episode_id)
            if row is None:
                raise ApplicationError(
                    f"no missing episode {inp.episode_id}", type="NotFound", non_retryable=True
                )
            report = MissingReportCreate.model_validate(row.report, context={"stored": True})
            others = [
                MissingEpisodeSummary(episode_id=o.id, reported_at=o.reported_at)
                for o in self.store.child_episodes(
                    s, row.agency_id, row.agency_child_ref, row.local_authority
                )
                if o.id != row.id
            ]
        on = today_uk(inp.as_of)
        dob = report.child.date_of_birth
        return EpisodeFacts(
            local_authority=row.local_authority,
            age_years=age_on(dob, on),
            days_until_18=(birthday(dob, 18) - on).days,
            other_episodes=others,
        )

    @activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
    def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        with self.store.session() as s:
            # Only move forward in time: a retried, older update never overwrites a newer one.
            result = s.execute(
                update(Referral)
                .where(Referral.id == inp.referral_id, Referral.updated_at <= inp.at)
                .values(
                    stage=inp.stage.value,
                    level=inp.level.value if inp.level else None,
                    suggested_level=inp.suggested_level.value if inp.suggested_level else None,
                    next_deadline=inp.next_deadline,
                    open_actions=inp.open_actions,
                    updated_at=inp.at,
                )
            )
        return RecordStageResult(updated=bool(getattr(result, "rowcount", 0)))
