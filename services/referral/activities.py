"""Activities the referral service hosts on its own task queue (record keeping).

They turn the stored Risk Assessment Tool into facts the rules need — age instead of the
date of birth, indicator codes instead of free text — so the child's details never enter a
workflow's history, and keep the service's read model of each case current.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from mset_contract.catalogue import CURRENT_CATALOGUE_VERSION, load_catalogue
from mset_contract.referral import (
    MissingChild,
    MissingReportCreate,
    ReferralCreate,
    ResolvedIndicator,
)
from mset_contract.referral_workflow import (
    EpisodeFacts,
    EpisodeFactsInput,
    MissingEpisodeSummary,
    OpenedForConsideration,
    OpenForConsiderationInput,
    RecordAuthorityToldInput,
    RecordAuthorityToldResult,
    RecordStageInput,
    RecordStageResult,
    StartReferralInput,
    TriageFacts,
    TriageFactsInput,
)
from mset_contract.temporal import (
    REFERRAL_EPISODE_FACTS_ACTIVITY,
    REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY,
    REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY,
    REFERRAL_RECORD_STAGE_ACTIVITY,
    REFERRAL_TRIAGE_FACTS_ACTIVITY,
    referral_workflow_id,
)
from mset_contract.types import age_in_month, today_uk, turns_18_month
from mset_contract.vocab import AgencyType, Recency, RiskLevel, Stage
from services.referral.domain import CLOSED_STAGES
from services.referral.entities import EntityStore
from services.referral.report_facts import action_rows, state_columns, tool_columns
from services.referral.store import Agency, MissingEpisode, Referral, Store


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
            if not row.workflow_started:
                # The case has this tool, so it is delivered, even if intake never heard back
                # from the start or signal (it timed out, having reached Temporal) and the
                # partner does not retry: a case is never hidden behind an undelivered row.
                row.workflow_started = True
            if row.origin == ORIGIN_MISSING:
                return _facts_from_episodes(row, inp)
            # "stored": the tool was valid when accepted; the child may have turned 18 since.
            tool = ReferralCreate.model_validate(row.tool, context={"stored": True})
            assessed_at = row.submitted_at
        on = today_uk(inp.as_of)
        dob = tool.child.date_of_birth
        return TriageFacts(
            local_authority=tool.child.local_authority,
            catalogue_version=tool.catalogue_version,
            # The month the child turns 18, never the day (see mset_contract.types).
            age_years=age_in_month(turns_18_month(dob), on),
            turns_18_month=turns_18_month(dob),
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
            # The month the child turns 18, never the day (see mset_contract.types).
            age_years=age_in_month(turns_18_month(dob), on),
            turns_18_month=turns_18_month(dob),
            other_episodes=others,
        )

    @activity.defn(name=REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY)
    def open_for_consideration(self, inp: OpenForConsiderationInput) -> OpenedForConsideration:
        """Open a referral for Pre-MSET consideration from a child's missing episodes.

        Idempotent: the referral's partner reference is derived from the episode, so a retried
        activity finds the row it made. The row is marked delivered here because the calling
        workflow starts the case durably once this returns.
        """
        with self.store.session() as s:
            episode = s.get(MissingEpisode, inp.episode_id)
            if episode is None:
                raise ApplicationError(
                    f"no missing episode {inp.episode_id}", type="NotFound", non_retryable=True
                )
            agency = s.get(Agency, episode.agency_id)
            assert agency is not None
            ref = f"MISSING-{episode.id}"
            row = self.store.by_partner_ref(s, Referral, episode.agency_id, ref)
            if row is None:
                # Another of the child's episodes may have opened a case already: one child,
                # one open case.
                case = self.store.open_case_for_child(
                    s, episode.agency_id, episode.agency_child_ref, episode.local_authority
                )
                if case is not None and case.stage not in CLOSED_STAGES:
                    row = case
            if row is None:
                report = MissingReportCreate.model_validate(
                    episode.report, context={"stored": True}
                )
                tool = {
                    "origin": ORIGIN_MISSING,
                    "episode_id": str(episode.id),
                    "child": report.child.model_dump(mode="json"),
                }
                row = Referral(
                    id=uuid.uuid4(),
                    agency_id=episode.agency_id,
                    partner_reference=ref,
                    agency_child_ref=episode.agency_child_ref,
                    local_authority=episode.local_authority,
                    stage=Stage.submitted.value,
                    referrer_level=RiskLevel.medium.value,
                    workflow_started=True,
                    origin=ORIGIN_MISSING,
                    tool=tool,
                    submitted_at=inp.at,
                    updated_at=inp.at,
                    **tool_columns(tool, ORIGIN_MISSING, inp.at),
                )
                row.workflow_id = referral_workflow_id(row.id)
                s.add(row)
            start = StartReferralInput(
                referral_id=row.id,
                agency_id=row.agency_id,
                agency_type=AgencyType(agency.type),
                local_authority=row.local_authority,
                submitted_at=row.submitted_at,
                referrer_level=RiskLevel(row.referrer_level),
            )
            return OpenedForConsideration(start=start, workflow_id=row.workflow_id)

    @activity.defn(name=REFERRAL_RECORD_STAGE_ACTIVITY)
    def record_stage(self, inp: RecordStageInput) -> RecordStageResult:
        """Write the case's state to the read model every status read is served from."""
        values: dict[str, Any] = {
            "stage": inp.stage.value,
            "level": inp.level.value if inp.level else None,
            "suggested_level": inp.suggested_level.value if inp.suggested_level else None,
            "next_deadline": inp.next_deadline,
            "open_actions": inp.open_actions,
            "exit_reason": inp.exit_reason.value if inp.exit_reason else None,
            "updated_at": inp.at,
        }
        # Only move forward: a retried, older record never overwrites a newer one. Records
        # may be in flight together (an update's and a timer's), so they are ordered by the
        # number the workflow gave each, not by when they arrive; an older workflow's record
        # without a number is ordered by its time, and leaves the state alone.
        newer: ColumnElement[bool]
        state = inp.state.model_dump(mode="json") if inp.state is not None else None
        if inp.seq is not None and state is not None:
            values["state"] = state
            values["record_seq"] = inp.seq
            newer = or_(Referral.record_seq.is_(None), Referral.record_seq < inp.seq)
        else:
            state = None
            newer = and_(Referral.record_seq.is_(None), Referral.updated_at <= inp.at)
        with self.store.session() as s:
            if state is not None:
                # The reports' columns move with the read model (report_facts.py).
                submitted_at = s.scalar(
                    select(Referral.submitted_at).where(Referral.id == inp.referral_id)
                )
                if submitted_at is not None:
                    values.update(state_columns(state, submitted_at))
            result = s.execute(
                update(Referral).where(Referral.id == inp.referral_id, newer).values(**values)
            )
            updated = bool(getattr(result, "rowcount", 0))
            if updated and inp.state is not None:
                # Actions aimed at a person or place show on the entity (ADR 0030).
                EntityStore.record_actions(s, inp.referral_id, inp.state)
            if updated and state is not None:
                # In the update's transaction, under its row lock: the actions counted are
                # always those of the state recorded.
                self.store.replace_case_actions(
                    s, inp.referral_id, action_rows(inp.referral_id, state)
                )
        return RecordStageResult(updated=updated)

    @activity.defn(name=REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY)
    def record_authority_told(self, inp: RecordAuthorityToldInput) -> RecordAuthorityToldResult:
        recorded = self.store.record_authority_told(
            inp.case_id, inp.local_authority, inp.reason.value, inp.subject, inp.at
        )
        return RecordAuthorityToldResult(recorded=recorded)


ORIGIN_MISSING = "missing_episodes"
REPEAT_MISSING_CODE = "MIS-03"  # "Repeat missing episodes (three or more in 90 days)"


def _facts_from_episodes(row: Referral, inp: TriageFactsInput) -> TriageFacts:
    """A referral opened from missing episodes has no tool: the rules see the child's age and
    the repeat-missing indicator; the episodes themselves come from the case's own record."""
    child = MissingChild.model_validate(row.tool["child"], context={"stored": True})
    on = today_uk(inp.as_of)
    indicator = load_catalogue(CURRENT_CATALOGUE_VERSION).get(REPEAT_MISSING_CODE)
    assert indicator is not None
    return TriageFacts(
        local_authority=row.local_authority,
        catalogue_version=CURRENT_CATALOGUE_VERSION,
        age_years=age_in_month(turns_18_month(child.date_of_birth), on),
        turns_18_month=turns_18_month(child.date_of_birth),
        referrer_level=RiskLevel(row.referrer_level),
        # The rule that opened it is its rationale.
        referrer_rationale_given=True,
        indicators=[
            ResolvedIndicator(
                code=indicator.code,
                area=indicator.area,
                kind=indicator.kind,
                recency=Recency.current,
            )
        ],
        exploitation_types=[],
        assessed_at=row.submitted_at,
    )
