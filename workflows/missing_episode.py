"""MissingEpisodeWorkflow: a child reported missing, their return, and the 72-hour clock for a
Return Home Interview.

reported (police) → returned → RHI offered within the rules' deadline → outcome recorded
(completed / refused by the young person / refused by a parent or carer / not offered, why).

The deadline's length and who is told when it is missed come from the triage rules: at the
return the workflow asks the rules about the episode, sets a durable timer for the RHI check
the rules name, and asks again when it fires. Linked to an open case, each change is signalled
to the case, whose own evaluation (repeat missing, found in another authority, RHI missed)
escalates. With no open case this workflow publishes the escalations itself, and when the
repeat-missing rule fires it opens a referral for Pre-MSET consideration (a ReferralWorkflow
started as a child that outlives the episode) and links the episode to it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from mset_contract import events as ev
    from mset_contract.referral_workflow import (
        EpisodeFacts,
        EpisodeFactsInput,
        EpisodeStatus,
        MissingEpisodeSignal,
        MissingEpisodeState,
        MissingEpisodeSummary,
        OpenedForConsideration,
        OpenForConsiderationInput,
        RecordEpisodeInput,
        RecordEpisodeResult,
        ReturnInput,
        ReturnRecorded,
        RhiOutcomeInput,
        RhiRecorded,
        StartMissingEpisodeInput,
        escalation_key,
    )
    from mset_contract.temporal import (
        LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
        MISSING_EPISODE_RECORD_RETURN_UPDATE,
        MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
        MISSING_EPISODE_STATE_QUERY,
        MISSING_EPISODE_WORKFLOW,
        REFERRAL_EPISODE_FACTS_ACTIVITY,
        REFERRAL_MISSING_EPISODE_SIGNAL,
        REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY,
        REFERRAL_RECORD_EPISODE_ACTIVITY,
        REFERRAL_TASK_QUEUE,
        REFERRAL_WORKFLOW,
        STAGE_SEARCH_ATTRIBUTE,
        TRIAGE_EVALUATE_ACTIVITY,
        TRIAGE_TASK_QUEUE,
        missing_episode_workflow_id,
        referral_workflow_id,
    )
    from mset_contract.triage import (
        EscalationKind,
        MissingEpisodeFact,
        TriageInput,
        TriageResult,
    )
    from mset_contract.vocab import RhiOutcome, RiskLevel, Stage
    from workflows.publishing import EventOutbox

# Database and rules work: a dead worker's task is retried after this, not after 30 s.
TIMEOUT = timedelta(seconds=10)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# A return reported a little ahead of the server's clock is clock skew, not the future.
CLOCK_SKEW = timedelta(minutes=5)
# The episode's return and interview are recorded in the referral service for the reports
# (docs/decisions/0023); episodes that ran before replay without those two activities.
PATCH_EPISODE_RECORD = "episode-record"


class Refused(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="Rejected", non_retryable=True)


@workflow.defn(name=MISSING_EPISODE_WORKFLOW)
class MissingEpisodeWorkflow:
    # State is built from the input before any handler runs: an update or signal may arrive
    # in the workflow's very first activation, before ``run`` starts.
    @workflow.init
    def __init__(self, inp: StartMissingEpisodeInput) -> None:
        self._inp = inp
        self.e: MissingEpisodeState | None = MissingEpisodeState(
            episode_id=inp.episode_id,
            status=EpisodeStatus.missing,
            local_authority=inp.local_authority,
            reported_at=inp.reported_at,
            case_referral_id=inp.case_referral_id,
            reporting_agency_id=inp.reporting_agency_id,
        )
        self._outbox = EventOutbox(self._envelope)

    def _envelope(self) -> tuple[str, str, dict[str, Any]]:
        e, inp = self.e, self._inp
        assert e is not None and inp is not None
        e.events_emitted += 1
        return (
            missing_episode_workflow_id(e.episode_id),
            str(e.events_emitted),
            {
                "source": ev.SOURCE_MISSING_WORKFLOW,
                # The case the episode belongs to; with no open case, the episode itself.
                "subject": e.case_referral_id or e.episode_id,
                "referrer_agency_id": e.reporting_agency_id,
                "local_authority": e.local_authority,
            },
        )

    @workflow.run
    async def run(self, inp: StartMissingEpisodeInput) -> MissingEpisodeState:
        e = self.e
        assert e is not None
        self._outbox.episode_reported(e)
        await self._tell_case()

        await workflow.wait_condition(lambda: e.status != EpisodeStatus.missing)
        result = await self._evaluate()
        hours = result.timers.rhi_deadline_hours
        assert e.returned_at is not None
        e.rhi_due_at = e.returned_at + timedelta(hours=hours if hours is not None else 72)
        self._outbox.episode_returned(e)
        await self._tell_case()
        await self._record()

        # The RHI clock: a durable timer to the deadline, unless the outcome comes first.
        remaining = e.rhi_due_at - workflow.now()
        try:
            await workflow.wait_condition(
                lambda: e.rhi_offered_at is not None or e.status == EpisodeStatus.closed,
                timeout=max(remaining, timedelta(seconds=1)),
            )
        except TimeoutError:
            e.rhi_deadline_breached = True
            self._outbox.rhi_deadline_breached(e)
            await self._evaluate()  # the rules say who is told, and how urgently
        await workflow.wait_condition(lambda: e.status == EpisodeStatus.closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._record()
        await self._outbox.drain()
        return e

    async def _record(self) -> None:
        """Keep the referral service's record of this episode (what the reports count)
        current: at the return, and when the interview's outcome closes the episode. Both
        calls are in ``run``, so their order in history is fixed whatever the updates do."""
        if not workflow.patched(PATCH_EPISODE_RECORD):
            return
        e = self.e
        assert e is not None
        await workflow.execute_activity(
            REFERRAL_RECORD_EPISODE_ACTIVITY,
            RecordEpisodeInput(
                episode_id=e.episode_id,
                status=e.status,
                returned_at=e.returned_at,
                located_in_authority=e.located_in_authority,
                rhi_due_at=e.rhi_due_at,
                rhi_offered_at=e.rhi_offered_at,
                rhi_outcome=e.rhi_outcome,
                rhi_deadline_breached=e.rhi_deadline_breached,
                at=workflow.now(),
            ),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=RecordEpisodeResult,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )

    async def _evaluate(self) -> TriageResult:
        e = self.e
        assert e is not None
        now = workflow.now()
        facts = await workflow.execute_activity(
            REFERRAL_EPISODE_FACTS_ACTIVITY,
            EpisodeFactsInput(episode_id=e.episode_id, as_of=now),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=EpisodeFacts,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        episodes = [*facts.other_episodes, self._summary()]
        result = await workflow.execute_activity(
            TRIAGE_EVALUATE_ACTIVITY,
            TriageInput(
                as_of=now,
                local_authority=facts.local_authority,
                age_years=facts.age_years,
                turns_18_month=facts.turns_18(now),
                # No tool: the episode alone. The level rules see nothing to score.
                referrer_level=RiskLevel.low,
                referrer_rationale_given=True,
                missing_episodes=[
                    MissingEpisodeFact(
                        episode_ref=str(x.episode_id),
                        reported_at=x.reported_at,
                        returned_at=x.returned_at,
                        rhi_offered_at=x.rhi_offered_at,
                        located_in_authority=x.located_in_authority,
                    )
                    for x in episodes
                ],
            ),
            task_queue=TRIAGE_TASK_QUEUE,
            result_type=TriageResult,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        if e.case_referral_id is None and any(
            esc.kind == EscalationKind.repeat_missing for esc in result.escalations
        ):
            # The rules say this child should be considered: open a referral for the next
            # Pre-MSET, tell it every recent episode, and let it escalate from now on.
            await self._open_case(facts)
            return result
        if e.case_referral_id is None:
            # No open case to escalate through: this episode tells people itself.
            for esc in result.escalations:
                if (
                    esc.kind in EPISODE_ESCALATIONS
                    and escalation_key(esc) not in e.escalations_sent
                ):
                    e.escalations_sent.append(escalation_key(esc))
                    self._outbox.episode_escalated(e, esc, result)
        return result

    async def _open_case(self, facts: EpisodeFacts) -> None:
        e = self.e
        assert e is not None
        opened = await workflow.execute_activity(
            REFERRAL_OPEN_FOR_CONSIDERATION_ACTIVITY,
            OpenForConsiderationInput(episode_id=e.episode_id, at=workflow.now()),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=OpenedForConsideration,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        try:
            await workflow.start_child_workflow(
                REFERRAL_WORKFLOW,
                opened.start,
                id=opened.workflow_id,
                task_queue=workflow.info().task_queue,
                # The case lives on after this episode closes.
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(STAGE_SEARCH_ATTRIBUTE, Stage.submitted.value),
                        SearchAttributePair(LOCAL_AUTHORITY_SEARCH_ATTRIBUTE, e.local_authority),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            pass  # started by an earlier attempt of this step
        e.case_referral_id = opened.start.referral_id
        case = workflow.get_external_workflow_handle(opened.workflow_id)
        for other in facts.other_episodes:
            await case.signal(REFERRAL_MISSING_EPISODE_SIGNAL, MissingEpisodeSignal(episode=other))
        await self._tell_case()

    def _summary(self) -> MissingEpisodeSummary:
        e = self.e
        assert e is not None
        return MissingEpisodeSummary(
            episode_id=e.episode_id,
            reported_at=e.reported_at,
            returned_at=e.returned_at,
            rhi_offered_at=e.rhi_offered_at,
            rhi_outcome=e.rhi_outcome,
            located_in_authority=e.located_in_authority,
        )

    async def _tell_case(self) -> None:
        e = self.e
        assert e is not None
        if e.case_referral_id is None:
            return
        case = workflow.get_external_workflow_handle(referral_workflow_id(e.case_referral_id))
        try:
            await case.signal(
                REFERRAL_MISSING_EPISODE_SIGNAL, MissingEpisodeSignal(episode=self._summary())
            )
        except Exception:
            # The case closed meanwhile: from now on this episode escalates by itself.
            e.case_referral_id = None

    # --- updates --------------------------------------------------------------------------------

    @workflow.update(name=MISSING_EPISODE_RECORD_RETURN_UPDATE)
    async def record_return(self, r: ReturnInput) -> ReturnRecorded:
        e = self.e
        assert e is not None
        if e.status != EpisodeStatus.missing:
            # The same return again (a retry after a timeout): the first answer.
            await workflow.wait_condition(lambda: e.rhi_due_at is not None)
            assert e.rhi_due_at is not None
            return ReturnRecorded(status=EpisodeStatus.returned, rhi_due_at=e.rhi_due_at)
        e.returned_at = r.returned_at
        e.located_in_authority = r.located_in_authority
        e.status = EpisodeStatus.returned
        await workflow.wait_condition(lambda: e.rhi_due_at is not None)
        assert e.rhi_due_at is not None
        return ReturnRecorded(status=e.status, rhi_due_at=e.rhi_due_at)

    @record_return.validator
    def _check_return(self, r: ReturnInput) -> None:
        e = self.e
        if e is None:
            raise Refused("the episode is not ready yet: try again in a moment")
        if e.status != EpisodeStatus.missing:
            if (r.returned_at, r.located_in_authority) == (e.returned_at, e.located_in_authority):
                return  # the same return again: answered with the first answer
            when = e.returned_at.isoformat() if e.returned_at else "?"
            raise Refused(
                f"the child's return is recorded already (returned_at {when}, located in "
                f"{e.located_in_authority or 'the home authority'}): a different return "
                "cannot replace it"
            )
        if r.returned_at < e.reported_at:
            raise Refused("returned_at is before the child was reported missing")
        if r.returned_at > workflow.now() + CLOCK_SKEW:
            raise Refused("returned_at is in the future")

    @workflow.update(name=MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE)
    async def record_rhi_outcome(self, o: RhiOutcomeInput) -> RhiRecorded:
        e = self.e
        assert e is not None
        if e.status == EpisodeStatus.closed and e.rhi_outcome is not None:
            # The same outcome again (a retry after a timeout): the first answer.
            return RhiRecorded(status=e.status, outcome=e.rhi_outcome)
        e.rhi_outcome = o.outcome
        e.rhi_offered_at = o.offered_at
        e.status = EpisodeStatus.closed
        self._outbox.rhi_recorded(e)
        await self._tell_case()
        return RhiRecorded(status=e.status, outcome=o.outcome)

    @record_rhi_outcome.validator
    def _check_rhi(self, o: RhiOutcomeInput) -> None:
        e = self.e
        if e is None or e.status == EpisodeStatus.missing:
            raise Refused("a Return Home Interview follows the child's return: record it first")
        if e.status == EpisodeStatus.closed:
            if (o.outcome, o.offered_at) == (e.rhi_outcome, e.rhi_offered_at):
                return  # the same outcome again: answered with the first answer
            outcome = e.rhi_outcome.value if e.rhi_outcome else "?"
            raise Refused(
                f"the interview's outcome is recorded already ('{outcome}'): a different "
                "outcome cannot replace it"
            )
        if o.outcome == RhiOutcome.not_offered:
            if not o.reason_not_offered:
                raise Refused("say why the interview was not offered (reason_not_offered)")
            if o.offered_at is not None:
                raise Refused("an interview not offered has no offered_at")
        elif o.offered_at is None:
            raise Refused("offered_at is required: when was the interview offered?")
        elif e.returned_at is not None and o.offered_at < e.returned_at:
            raise Refused("offered_at is before the child returned")

    @workflow.query(name=MISSING_EPISODE_STATE_QUERY)
    def state(self) -> MissingEpisodeState | None:
        return self.e


# What an episode escalates by itself when the child has no open case.
EPISODE_ESCALATIONS = (
    EscalationKind.rhi_not_offered,
    EscalationKind.repeat_missing,
    EscalationKind.missing_in_other_authority,
)
