"""ReferralWorkflow: the system of record for where a case is, from submission to exit.

submitted → triaged → awaiting Pre-MSET → (not met: advice given, closed
                                           | more information: back to the referrer, deadline
                                           | meets criteria → awaiting MSET → active plan) → exited

Every wait is a durable timer, a signal or an update; nothing polls. *When* to wake, *who* is
told and *how urgently* is the rules' business: after each triage the workflow sets a timer
for the earliest check the rules asked for (``next_checks``), and at that moment asks the
triage service again which escalation applies. Each plan action has its own timers (a
reminder before it is due, the overdue point after it), sized by the rules' ``timers``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# The sandbox re-imports this module on every run; the contract models are pure pydantic
# with no side effects at import, so they are passed through rather than re-imported.
with workflow.unsafe.imports_passed_through():
    from mset_contract.referral_workflow import (
        BIRTHDAY_KINDS,
        ActionProgress,
        ActionProgressInput,
        ActionProgressRecorded,
        CaseAction,
        ExitCaseInput,
        ExitRecord,
        ExitResult,
        MissingEpisodeSignal,
        MsetReviewInput,
        MsetReviewRecord,
        MsetReviewRecorded,
        PreMsetDecisionInput,
        PreMsetDecisionRecord,
        PreMsetDecisionResult,
        ReassessedSignal,
        RecordAuthorityToldInput,
        RecordAuthorityToldResult,
        RecordStageInput,
        RecordStageResult,
        ReferralState,
        SentEscalation,
        StageChange,
        StartReferralInput,
        TriageFacts,
        TriageFactsInput,
        TriageSummary,
        triage_input,
    )
    from mset_contract.temporal import (
        LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
        NEXT_DEADLINE_SEARCH_ATTRIBUTE,
        REFERRAL_DECISION_CONFLICT_ERROR,
        REFERRAL_EXIT_CASE_UPDATE,
        REFERRAL_MISSING_EPISODE_SIGNAL,
        REFERRAL_REASSESSED_SIGNAL,
        REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
        REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY,
        REFERRAL_RECORD_MSET_REVIEW_UPDATE,
        REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
        REFERRAL_RECORD_STAGE_ACTIVITY,
        REFERRAL_STATE_QUERY,
        REFERRAL_TASK_QUEUE,
        REFERRAL_TRIAGE_FACTS_ACTIVITY,
        REFERRAL_WORKFLOW,
        RISK_LEVEL_SEARCH_ATTRIBUTE,
        STAGE_SEARCH_ATTRIBUTE,
        TRIAGE_EVALUATE_ACTIVITY,
        TRIAGE_TASK_QUEUE,
    )
    from mset_contract.triage import (
        AgencyDesignation,
        Escalation,
        EscalationKind,
        TriageInput,
        TriageResult,
    )
    from mset_contract.vocab import ExitReason, PreMsetOutcome, RiskLevel, Stage

    # Pure (hashlib, json): the same hashes the services keep for retried submissions.
    from mset_platform.idempotency import differing_hashes, field_hashes
    from workflows.publishing import EventOutbox, referral_envelope

CLOSED = (Stage.exited, Stage.closed_advice_given)
TRIAGING = (Stage.submitted, Stage.triaged)
REVIEW_INTERVAL = timedelta(days=30)  # "cases are re-reviewed monthly" (docs/architecture.md §1)
# Above this many history events a run hands over to a fresh one (continue-as-new). A run's
# history therefore stays below roughly this bound plus the events of one step.
DEFAULT_HISTORY_LIMIT = 1000
# Bounds on what the state keeps, so it (and the continue-as-new payload) stays small.
KEEP_REVIEWS = 12
KEEP_STAGES = 40
KEEP_ESCALATION_KEYS = 300
KEEP_EPISODES = 50
KEEP_CLOSED_ACTIONS = 40

# Sized to the work (a few database rows, the rules in memory), not to the worst wait: a
# worker that dies holding the task is noticed after this, and the retry goes to another.
# No schedule-to-start bound: a task waits for a worker however long the queue is.
RECORD_TIMEOUT = timedelta(seconds=10)
TRIAGE_TIMEOUT = timedelta(seconds=10)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# Patches (``workflow.patched``): open cases recorded before a change replay the old way.
# A missing episode re-triages a case but no longer undoes a "more information" decision
# (docs/stage-transitions.md).
PATCH_EPISODE_KEEPS_STAGE = "missing-episode-keeps-stage"
# An exit closes or carries each open action, as it says (recorded on the action).
PATCH_EXIT_ACCOUNTS_FOR_ACTIONS = "exit-accounts-for-actions"
# Status reads come from the read model (docs/decisions/0022): every change a read shows is
# recorded, not only a move between stages (a re-triage, a timer's new deadline, progress).
PATCH_READ_MODEL_CURRENT = "read-model-current"
# An escalation telling another authority about the case is recorded with the referral
# service, which then lets that authority's staff see the case (docs/access.md).
PATCH_RECORD_AUTHORITIES_TOLD = "record-authorities-told"
# A decision sent again under its id with another body is refused (docs/decisions/0019). The
# validators refuse it before anything is recorded; a handler refuses it too when two came in
# one activation (both passed their validators before either was recorded), where it used to
# answer with the first result: a case that ran that way replays as it ran.
PATCH_DECISION_CONFLICT = "decision-id-conflict"


class Rejected(ApplicationError):
    """A decision the case cannot take now; the update is refused before it is recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="Rejected", non_retryable=True)


class Conflict(ApplicationError):
    """A decision id recorded before with another body; the fields that differ are the
    details (names only, never values)."""

    def __init__(self, id_field: str, fields: list[str]) -> None:
        super().__init__(
            f"this {id_field} was recorded with a different decision ({', '.join(fields)} "
            f"differ): send it again as first sent, or give a new decision a new {id_field}",
            *fields,
            type=REFERRAL_DECISION_CONFLICT_ERROR,
            non_retryable=True,
        )


def _fingerprint(inp: PreMsetDecisionInput | MsetReviewInput, id_field: str) -> dict[str, str]:
    """The decision as the caller sent it, field by field, hashed: without its id and without
    who sent it (a retry by another chair of the same decision is the same decision)."""
    doc = inp.model_dump(mode="json", exclude={id_field, "decided_by"})
    # An action aimed at no entity hashes as it did before actions could name one, so a
    # review recorded then and sent again now is still the same review.
    for a in doc.get("actions") or ():
        if a.get("entity_id") is None:
            a.pop("entity_id", None)
    return field_hashes(doc)


def _check_same(
    recorded: dict[str, str] | None,
    inp: PreMsetDecisionInput | MsetReviewInput,
    id_field: str,
) -> None:
    """Refuse a decision sent again under its id with another body (one recorded before its
    fingerprint was kept is taken as the same)."""
    if recorded is None:
        return
    differ = differing_hashes(recorded, _fingerprint(inp, id_field))
    if differ:
        raise Conflict(id_field, differ)


@workflow.defn(name=REFERRAL_WORKFLOW)
class ReferralWorkflow:
    # State is built from the input before any handler runs: a signal (a missing episode, a
    # reassessment) may arrive in the workflow's very first activation, before ``run`` starts.
    @workflow.init
    def __init__(self, inp: StartReferralInput) -> None:
        self._inp: StartReferralInput | None = inp
        if inp.carried is not None:
            self.s: ReferralState | None = inp.carried
            self.s.runs += 1
            if self.s.escalations_sent and not self.s.escalations:
                # A run handed over by a version that kept the keys alone: read them once,
                # here, where they are made. (State only: no command changes, so replay holds.)
                self.s.escalations = [SentEscalation.from_key(k) for k in self.s.escalations_sent]
        else:
            self.s = ReferralState(
                referral_id=inp.referral_id,
                agency_id=inp.agency_id,
                local_authority=inp.local_authority,
                stage=Stage.submitted,
                submitted_at=inp.submitted_at,
                referrer_level=inp.referrer_level,
                previous_referral_id=inp.previous_referral_id,
                assessment_id=inp.referral_id,
                last_assessed_at=inp.submitted_at,
                stages=[StageChange(stage=Stage.submitted, at=inp.submitted_at)],
            )
        self._wake = False
        self._fallback_assessment: Any = None
        self._retriage = False
        # A new tool arrived (not merely a missing episode): the information a "more
        # information" decision asked for.
        self._new_information = False
        self._last: TriageResult | None = None
        self._lock = asyncio.Lock()
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._outbox = EventOutbox(referral_envelope(lambda: self.s))
        # What the read model last received from this run (``_shown``): a change is recorded
        # when what a status read shows differs. A carried run starts from what the run
        # before it recorded, which recorded every change it made.
        self._recorded: Any = _shown(inp.carried) if inp.carried is not None else None

    # --- the run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: StartReferralInput) -> ReferralState:
        if inp.carried is None:
            await self._evaluate()
            await self._move(Stage.triaged)
            await self._move(Stage.awaiting_pre_mset)
        else:
            # A fresh run knows none of the rules' checks yet: ask again, so its timers (and
            # each action's reminder and overdue points) are set. Escalations already sent are
            # in the carried keys and are not sent again.
            await self._evaluate()
            await self._record_if_changed()
        s = self.s
        assert s is not None
        for action in s.actions:
            if action.open:
                self._follow(action.action_id)

        while s.stage not in CLOSED:
            if self._retriage:
                self._retriage = False
                new_information, self._new_information = self._new_information, False
                await self._evaluate(announce=True)
                # Only the referrer's new tool answers the panel's request; a missing episode
                # re-triages and escalates but leaves the decision (and its deadline) alone.
                if s.stage == Stage.more_information_requested and (
                    new_information or not workflow.patched(PATCH_EPISODE_KEEPS_STAGE)
                ):
                    await self._move(Stage.awaiting_pre_mset)
                await self._record_if_changed()
            due = self._next_wake()
            timeout = max(due - workflow.now(), timedelta(seconds=1)) if due else None
            self._wake = False
            try:
                await workflow.wait_condition(
                    lambda: self._wake or self._retriage or s.stage in CLOSED, timeout=timeout
                )
            except TimeoutError:
                await self._timer_fired()
                await self._record_if_changed()
            if s.stage not in CLOSED and self._should_continue_as_new():
                await self._continue_as_new()

        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._outbox.drain()
        return s

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = (self._inp.history_limit if self._inp else None) or DEFAULT_HISTORY_LIMIT
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit

    async def _continue_as_new(self) -> None:
        assert self.s is not None and self._inp is not None
        # Let running updates finish and every event reach the broker before handing over:
        # the new run starts from this state and must not lose or repeat anything.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._outbox.drain()
        workflow.continue_as_new(
            StartReferralInput(
                referral_id=self.s.referral_id,
                agency_id=self.s.agency_id,
                local_authority=self.s.local_authority,
                submitted_at=self.s.submitted_at,
                referrer_level=self.s.referrer_level,
                previous_referral_id=self.s.previous_referral_id,
                history_limit=self._inp.history_limit,
                carried=self.s,
            )
        )

    # --- timers -----------------------------------------------------------------------------

    def _next_wake(self, shown: bool = False) -> datetime | None:
        """The earliest moment anything falls due that is not an action's own timer.
        ``shown``: for the search attribute, which leaves out checks dated from the child's
        birthday (they would give away the date of birth)."""
        assert self.s is not None
        times: list[datetime] = []
        if self._last is not None:
            times += [
                c.at
                for c in self._last.next_checks
                if c.kind not in (EscalationKind.action_due_soon, EscalationKind.action_overdue)
                and not (shown and c.kind in BIRTHDAY_KINDS)
            ]
        if self.s.stage == Stage.more_information_requested and self.s.pre_mset:
            if self.s.pre_mset.information_due_at:
                times.append(self.s.pre_mset.information_due_at)
        return min(times) if times else None

    async def _timer_fired(self) -> None:
        s = self.s
        assert s is not None
        pre = s.pre_mset
        if (
            s.stage == Stage.more_information_requested
            and pre is not None
            and pre.information_due_at is not None
            and workflow.now() >= pre.information_due_at
        ):
            # The referrer did not send more information in time: the panel considers the
            # case again with what it has, rather than letting it drift.
            await self._move(Stage.awaiting_pre_mset)
        await self._evaluate()

    def _follow(self, action_id: str) -> None:
        if action_id not in self._followers:
            self._followers[action_id] = asyncio.create_task(self._follow_action(action_id))

    async def _follow_action(self, action_id: str) -> None:
        """An action's own durable timers: a reminder before it is due, then the overdue
        point; at each the rules say who is told."""
        action = self._action(action_id)
        timers = self._last.timers if self._last else None
        before = timedelta(hours=(timers.action_reminder_hours_before_due or 0) if timers else 0)
        grace = timedelta(hours=(timers.action_overdue_grace_hours or 0) if timers else 0)
        for at in (action.due_at - before, action.due_at + grace):
            delay = at - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: not action.open or self._closed(), timeout=delay
                    )
                except TimeoutError:
                    pass
            if not action.open or self._closed():
                return
            await self._evaluate()
            await self._record_if_changed()

    # --- triage and escalation ----------------------------------------------------------------

    async def _evaluate(self, announce: bool = False) -> TriageResult:
        """Ask the rules about the case as it is now; publish escalations not yet sent.
        ``announce``: publish the result too (a new assessment), not just its escalations."""
        async with self._lock:  # one evaluation at a time: timers and handlers may overlap
            s = self.s
            assert s is not None and s.assessment_id is not None
            now = workflow.now()
            try:
                facts = await self._facts(s.assessment_id, now)
            except ActivityError as err:
                cause = err.cause
                gone = isinstance(cause, ApplicationError) and cause.type == "NotFound"
                if not gone or self._fallback_assessment is None:
                    raise
                # The new tool was withdrawn (its intake did not complete): the case goes on
                # with the tool it had rather than failing.
                s.assessment_id, self._fallback_assessment = self._fallback_assessment, None
                facts = await self._facts(s.assessment_id, now)
            result = await workflow.execute_activity(
                TRIAGE_EVALUATE_ACTIVITY,
                self._triage_input(facts, now),
                task_queue=TRIAGE_TASK_QUEUE,
                result_type=TriageResult,
                start_to_close_timeout=TRIAGE_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            first = s.triage is None
            if first and self._inp is not None and self._inp.carried is None:
                self._outbox.referral_submitted(s, self._inp.agency_type, facts.catalogue_version)
            self._last = result
            s.triage = TriageSummary.of(result)
            s.referrer_level = facts.referrer_level
            s.last_assessed_at = facts.assessed_at
            if first or announce:
                self._outbox.referral_triaged(s, result)
            told: dict[str, Escalation] = {}  # another authority told now, and by what
            for esc in result.escalations:
                if self._escalate(esc, result):
                    for t in esc.notify:
                        if t.agency is AgencyDesignation.other_authority and t.agency_ref:
                            told.setdefault(t.agency_ref, esc)
            if told and workflow.patched(PATCH_RECORD_AUTHORITIES_TOLD):
                for authority, esc in told.items():
                    await self._record_authority_told(authority, esc)
            self._refresh_search_attributes()
            return result

    async def _facts(self, assessment_id: Any, now: datetime) -> TriageFacts:
        return await workflow.execute_activity(
            REFERRAL_TRIAGE_FACTS_ACTIVITY,
            TriageFactsInput(assessment_id=assessment_id, as_of=now),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=TriageFacts,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    def _escalate(self, esc: Escalation, result: TriageResult) -> bool:
        """Publish the escalation unless it was sent already; True if it is sent now."""
        s = self.s
        assert s is not None
        sent = SentEscalation.of(esc)
        if sent.key in s.escalations_sent:
            return False
        s.escalations_sent = [*s.escalations_sent, sent.key][-KEEP_ESCALATION_KEYS:]
        s.escalations = [*s.escalations, sent][-KEEP_ESCALATION_KEYS:]
        self._outbox.escalated(s, esc, result)
        return True

    async def _record_authority_told(self, authority: str, esc: Escalation) -> None:
        """The authority is told (its staff get the item): the referral service records it,
        and from then on they may see the case. Recorded in the same workflow step that
        sends the escalation; the record is idempotent, the first telling stands."""
        s = self.s
        assert s is not None
        await workflow.execute_activity(
            REFERRAL_RECORD_AUTHORITY_TOLD_ACTIVITY,
            RecordAuthorityToldInput(
                case_id=s.referral_id,
                local_authority=authority,
                reason=esc.kind,
                subject=esc.subject,
                at=workflow.now(),
            ),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=RecordAuthorityToldResult,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    def _triage_input(self, facts: TriageFacts, now: datetime) -> TriageInput:
        assert self.s is not None
        return triage_input(facts, self.s, now)

    # --- stage keeping ------------------------------------------------------------------------

    async def _move(self, stage: Stage, by: Any = None) -> None:
        s = self.s
        assert s is not None
        if s.stage == stage:
            return
        previous, s.stage = s.stage, stage
        s.stages = [*s.stages, StageChange(stage=stage, at=workflow.now(), by=by)][-KEEP_STAGES:]
        self._refresh_search_attributes()
        self._outbox.stage_changed(s, previous)
        await self._record_read_model()

    def _refresh_search_attributes(self) -> None:
        s = self.s
        assert s is not None
        deadlines = [a.due_at for a in s.actions if a.open]
        nxt = self._next_wake(shown=True)
        if nxt is not None:
            deadlines.append(nxt)
        s.next_deadline = min(deadlines) if deadlines and s.stage not in CLOSED else None
        level = s.level or (s.triage.level if s.triage else s.referrer_level)
        # Ids, codes, levels and a date only: never anything about the child.
        workflow.upsert_search_attributes(
            [
                STAGE_SEARCH_ATTRIBUTE.value_set(s.stage.value),
                RISK_LEVEL_SEARCH_ATTRIBUTE.value_set(level.value),
                LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.value_set(s.local_authority),
                NEXT_DEADLINE_SEARCH_ATTRIBUTE.value_set(s.next_deadline)
                if s.next_deadline
                else NEXT_DEADLINE_SEARCH_ATTRIBUTE.value_unset(),
            ]
        )

    def _closed(self) -> bool:
        return self.s is not None and self.s.stage in CLOSED

    def _action(self, action_id: str) -> CaseAction:
        assert self.s is not None
        for a in self.s.actions:
            if a.action_id == action_id:
                return a
        raise Rejected(f"no action {action_id!r} on this case")

    # --- Pre-MSET ------------------------------------------------------------------------------

    @workflow.update(name=REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE)
    async def record_pre_mset_decision(self, d: PreMsetDecisionInput) -> PreMsetDecisionResult:
        s = self.s
        assert s is not None
        if d.decision_id and s.pre_mset and s.pre_mset.decision_id == d.decision_id:
            if s.pre_mset.fingerprint is not None and workflow.patched(PATCH_DECISION_CONFLICT):
                _check_same(s.pre_mset.fingerprint, d, "decision_id")
            return PreMsetDecisionResult(
                decision_id=d.decision_id, stage=s.stage, level=s.pre_mset.level
            )
        now = workflow.now()
        record = PreMsetDecisionRecord(
            decision_id=d.decision_id or str(workflow.uuid4()),
            outcome=d.outcome,
            level=d.level,
            rationale=d.rationale,
            decided_by=d.decided_by,
            meeting_id=d.meeting_id,
            decided_at=now,
            information_due_at=(
                now + timedelta(days=d.information_due_days)
                if d.outcome == PreMsetOutcome.more_information
                else None
            ),
            fingerprint=_fingerprint(d, "decision_id"),
        )
        s.pre_mset = record
        self._outbox.pre_mset_decided(s, record)
        if d.outcome == PreMsetOutcome.meets_criteria:
            s.level = d.level
            await self._move(Stage.awaiting_mset, d.decided_by)
        elif d.outcome == PreMsetOutcome.not_met:
            s.level = d.level
            await self._move(Stage.closed_advice_given, d.decided_by)
        else:
            await self._move(Stage.more_information_requested, d.decided_by)
        self._wake = True
        return PreMsetDecisionResult(decision_id=record.decision_id, stage=s.stage, level=d.level)

    @record_pre_mset_decision.validator
    def _check_pre_mset(self, d: PreMsetDecisionInput) -> None:
        s = self._require_state()
        if d.decision_id and s.pre_mset and s.pre_mset.decision_id == d.decision_id:
            _check_same(s.pre_mset.fingerprint, d, "decision_id")
            return  # the same decision again: answered with the first result
        if s.stage != Stage.awaiting_pre_mset:
            raise Rejected(
                f"the case is at stage '{s.stage.value}': a Pre-MSET decision can only be "
                "recorded while it awaits Pre-MSET"
            )
        if d.outcome == PreMsetOutcome.not_met and not d.rationale:
            raise Rejected("a rationale is required when the criteria are not met")
        # A low case never goes to MSET, whatever the rationale: say so first.
        if d.outcome == PreMsetOutcome.meets_criteria and d.level == RiskLevel.low:
            raise Rejected(
                "MSET considers medium and high risk cases: record 'not_met' with advice "
                "to the case holder, or agree a higher level"
            )
        suggested = s.triage.suggested_level if s.triage else None
        if suggested is not None and d.level.rank < suggested.rank and not d.rationale:
            raise Rejected(
                f"the level '{d.level.value}' is below the suggested '{suggested.value}': "
                "a rationale is required"
            )

    # --- MSET review ---------------------------------------------------------------------------

    @workflow.update(name=REFERRAL_RECORD_MSET_REVIEW_UPDATE)
    async def record_mset_review(self, r: MsetReviewInput) -> MsetReviewRecorded:
        s = self.s
        assert s is not None
        if r.review_id:
            for done in s.reviews:
                if done.review_id == r.review_id:
                    if done.fingerprint is not None and workflow.patched(PATCH_DECISION_CONFLICT):
                        _check_same(done.fingerprint, r, "review_id")
                    return MsetReviewRecorded(
                        review_id=done.review_id,
                        stage=s.stage,
                        level=done.level,
                        action_ids=done.action_ids,
                        next_review_due=s.next_review_due or done.decided_at + REVIEW_INTERVAL,
                    )
        now = workflow.now()
        review_id = r.review_id or str(workflow.uuid4())
        new_actions = [
            CaseAction(
                action_id=str(workflow.uuid4()),
                owner_agency_id=a.owner_agency_id,
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                description=a.description,
                created_at=now,
                review_id=review_id,
                entity_id=a.entity_id,
            )
            for a in r.actions
        ]
        record = MsetReviewRecord(
            review_id=review_id,
            level=r.level,
            rationale=r.rationale,
            decided_by=r.decided_by,
            meeting_id=r.meeting_id,
            decided_at=now,
            action_ids=[a.action_id for a in new_actions],
            fingerprint=_fingerprint(r, "review_id"),
        )
        s.reviews = [*s.reviews, record][-KEEP_REVIEWS:]
        s.reviews_total += 1
        s.level = r.level
        s.next_review_due = now + REVIEW_INTERVAL
        s.actions = _bounded_actions([*s.actions, *new_actions])
        self._outbox.mset_reviewed(s, record)
        for a in new_actions:
            self._outbox.action_assigned(s, a)
            self._follow(a.action_id)
        if s.stage == Stage.active_plan:
            self._refresh_search_attributes()
            await self._record_read_model()
        else:
            await self._move(Stage.active_plan, r.decided_by)
        self._wake = True
        return MsetReviewRecorded(
            review_id=review_id,
            stage=s.stage,
            level=r.level,
            action_ids=record.action_ids,
            next_review_due=s.next_review_due,
        )

    @record_mset_review.validator
    def _check_mset_review(self, r: MsetReviewInput) -> None:
        s = self._require_state()
        for done in s.reviews:
            if r.review_id and done.review_id == r.review_id:
                _check_same(done.fingerprint, r, "review_id")
                return  # the same review again: answered with the first result
        if s.stage not in (Stage.awaiting_mset, Stage.active_plan):
            raise Rejected(
                f"the case is at stage '{s.stage.value}': MSET reviews cases that met the "
                "Pre-MSET criteria"
            )
        current = s.level
        if current is not None and r.level != current and not r.rationale:
            raise Rejected(
                f"the level changes from '{current.value}' to '{r.level.value}': "
                "a rationale is required"
            )
        now = workflow.now()
        for n, a in enumerate(r.actions):
            if a.due_at <= now:
                raise Rejected(f"actions.{n}.due_at: the due date must be in the future")

    # --- actions -------------------------------------------------------------------------------

    @workflow.update(name=REFERRAL_RECORD_ACTION_PROGRESS_UPDATE)
    async def record_action_progress(self, p: ActionProgressInput) -> ActionProgressRecorded:
        s = self.s
        assert s is not None
        action = self._action(p.action_id)
        now = workflow.now()
        action.progress = [
            *action.progress[-19:],
            ActionProgress(at=now, by=p.by, note=p.note, completed=p.completed),
        ]
        if p.completed:
            action.completed_at = now
            self._outbox.action_completed(s, action)
            s.actions = _bounded_actions(s.actions)
            self._refresh_search_attributes()
            await self._record_read_model()
        else:
            # The note shows on the papers and in the owner's list of its actions.
            await self._record_if_changed()
        self._wake = True
        return ActionProgressRecorded(
            action_id=action.action_id,
            completed=not action.open,
            open_actions=sum(1 for a in s.actions if a.open),
        )

    @record_action_progress.validator
    def _check_action_progress(self, p: ActionProgressInput) -> None:
        s = self._require_state()
        if s.stage != Stage.active_plan:
            raise Rejected(f"the case is at stage '{s.stage.value}': it has no active plan")
        action = self._action(p.action_id)
        if not action.open:
            raise Rejected(f"action {p.action_id} was completed already")

    # --- exit ----------------------------------------------------------------------------------

    @workflow.update(name=REFERRAL_EXIT_CASE_UPDATE)
    async def exit_case(self, e: ExitCaseInput) -> ExitResult:
        s = self.s
        assert s is not None
        now = workflow.now()
        if workflow.patched(PATCH_EXIT_ACCOUNTS_FOR_ACTIONS):
            # Every open action ends with the case, as the exit said (the validator made sure
            # each is accounted for): closed, or carried on by the case holder outside MSET.
            said = {x.action_id: x.disposition for x in e.actions}
            for action in s.actions:
                if action.open and action.action_id in said:
                    action.disposition = said[action.action_id]
                    action.ended_at = now
        s.exit = ExitRecord(
            reason=e.reason, detail=e.detail, decided_by=e.decided_by, exited_at=now
        )
        self._outbox.case_exited(s, s.exit)
        await self._move(Stage.exited, e.decided_by)
        return ExitResult(stage=s.stage, reason=e.reason, exited_at=now)

    @exit_case.validator
    def _check_exit(self, e: ExitCaseInput) -> None:
        s = self._require_state()
        if s.stage in CLOSED:
            raise Rejected(f"the case is closed already (stage '{s.stage.value}')")
        if e.reason == ExitReason.other and not e.detail:
            raise Rejected("an exit for an 'other' reason needs its detail")
        open_ids = [a.action_id for a in s.actions if a.open]
        said = [x.action_id for x in e.actions]
        if len(set(said)) != len(said):
            raise Rejected("actions: each action may be named once")
        unknown = [i for i in said if i not in open_ids]
        if unknown:
            raise Rejected(f"actions: not an open action of this case: {', '.join(unknown)}")
        unaccounted = [i for i in open_ids if i not in said]
        if unaccounted:
            raise Rejected(
                f"open actions not accounted for: {', '.join(unaccounted)}; say for each "
                "whether it is 'closed' or 'carried' on by the case holder (actions)"
            )

    # --- signals and queries --------------------------------------------------------------------

    @workflow.signal(name=REFERRAL_REASSESSED_SIGNAL)
    def reassessed(self, sig: ReassessedSignal) -> None:
        s = self.s
        if s is None or s.stage in CLOSED:
            return
        self._fallback_assessment = s.assessment_id
        s.assessment_id = sig.assessment_id
        s.last_assessed_at = sig.assessed_at
        s.referrer_level = sig.referrer_level
        self._new_information = True
        self._retriage = True

    @workflow.signal(name=REFERRAL_MISSING_EPISODE_SIGNAL)
    def missing_episode(self, sig: MissingEpisodeSignal) -> None:
        s = self.s
        if s is None or s.stage in CLOSED:
            return
        others = [e for e in s.missing_episodes if e.episode_id != sig.episode.episode_id]
        merged = sorted([*others, sig.episode], key=lambda e: e.reported_at)
        s.missing_episodes = merged[-KEEP_EPISODES:]
        self._retriage = True

    @workflow.query(name=REFERRAL_STATE_QUERY)
    def state(self) -> ReferralState | None:
        return self.s

    def _require_state(self) -> ReferralState:
        # Submitted and triaged are passed through in the run's first step: a decision taken
        # then (an exit, say) would be overtaken by the move to awaiting Pre-MSET.
        if self.s is None or self.s.triage is None or self.s.stage in TRIAGING:
            raise Rejected("the case is still being triaged: try again in a moment")
        return self.s

    async def _record_if_changed(self) -> None:
        """Record the case if what a status read shows has changed since the last record."""
        if not workflow.patched(PATCH_READ_MODEL_CURRENT):
            return  # a case recorded before reads came from the read model replays as it ran
        assert self.s is not None
        if _shown(self.s) != self._recorded:
            await self._record_read_model()

    async def _record_read_model(self) -> None:
        s = self.s
        assert s is not None
        # Numbered when made: records of one case may be in flight together (an update's and
        # a timer's), and the read model keeps the latest-made, whichever arrives last.
        s.record_seq += 1
        snapshot = s.read_model_snapshot()
        self._recorded = _shown(s)
        await workflow.execute_activity(
            REFERRAL_RECORD_STAGE_ACTIVITY,
            RecordStageInput(
                referral_id=s.referral_id,
                stage=s.stage,
                level=s.level,
                suggested_level=s.triage.suggested_level if s.triage else None,
                next_deadline=s.next_deadline,
                open_actions=sum(1 for a in s.actions if a.open),
                exit_reason=s.exit.reason if s.exit else None,
                at=workflow.now(),
                seq=s.record_seq,
                state=snapshot,
            ),
            task_queue=REFERRAL_TASK_QUEUE,
            result_type=RecordStageResult,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )


def _shown(s: ReferralState) -> Any:
    """What status reads show of the state: all of it but the workflow's bookkeeping (the
    record and event counters, the escalation keys, the time of a triage that found nothing
    new, the runs)."""
    return s.read_model_snapshot().model_dump(
        exclude={
            "record_seq": True,
            "events_emitted": True,
            "runs": True,
            "triage": {"as_of"},
        }
    )


def _bounded_actions(actions: list[CaseAction]) -> list[CaseAction]:
    """Every open action, and only the latest completed ones (the rest are in the history
    and the published events)."""
    open_ = [a for a in actions if a.open]
    done = sorted((a for a in actions if not a.open), key=lambda a: a.completed_at or a.due_at)
    return [*open_, *done[-KEEP_CLOSED_ACTIONS:]]
