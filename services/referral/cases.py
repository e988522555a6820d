"""The case desk: a case's status from the read model, and staff decisions passed to its
workflow.

The workflow is the system of record for where a case is, and records each change it makes
in this service's read model; every status read is served from there, so a read never waits
behind the workflows' backlog (docs/decisions/0022). Decisions go to the workflow as updates,
and its validators decide whether they stand. A refused decision comes back as
``DecisionRefused`` with the workflow's reason and leaves nothing behind (the case client,
``mset_platform.cases``, says so; its errors' HTTP statuses are in ``cases_http``).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.cases import (
    ActionProgressRequest,
    ActionView,
    CasePage,
    CaseView,
    ExitRequest,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.ledger import DisclosurePurpose, DisclosureView
from mset_contract.meeting import ItemDecisionPublic
from mset_contract.referral_workflow import (
    ActionProgressInput,
    ActionProgressRecorded,
    ExitCaseInput,
    ExitResult,
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionResult,
    ReferralState,
    update_input,
)
from mset_contract.vocab import ExitReason, RiskLevel, Stage
from mset_platform.access import Rule
from mset_platform.cases import CaseClient
from mset_platform.paging import FIRST_PAGE, PageRequest
from services.referral.agencies import Directory
from services.referral.domain import (
    CLOSED_STAGES,
    ReferralNotFound,
    RequestInvalid,
    check_owners,
)
from services.referral.entity_desk import EntityDesk
from services.referral.intake import Intake
from services.referral.ledger import Disclosed, to
from services.referral.meetings import MeetingsUnavailable
from services.referral.policy import (
    ACTION_PROGRESS,
    CASES_LIST,
    EXIT,
    MSET_REVIEW,
    PRE_MSET_DECIDE,
    check,
    require,
)
from services.referral.store import Referral, cases_at_stage, recorded_state


class MeetingDecisions(Protocol):
    """The meeting service, for decisions taken in a meeting (``services.referral.meetings``)."""

    async def decide(
        self,
        credential_headers: dict[str, str],
        meeting_id: uuid.UUID,
        case_id: uuid.UUID,
        body: PreMsetDecisionRequest | MsetReviewRequest,
    ) -> ItemDecisionPublic: ...


class CaseDesk:
    def __init__(
        self,
        intake: Intake,
        cases: CaseClient,
        directory: Directory,
        meetings: MeetingDecisions | None = None,
    ) -> None:
        self.intake = intake
        self.cases = cases
        self.directory = directory
        # Decisions with a meeting_id go to the meeting's record (services.referral.meetings).
        self.meetings = meetings
        # Actions aimed at a person or place name an entity the chair may see (ADR 0030).
        self.entities: EntityDesk | None = None

    async def view(self, principal: Principal, referral_id: uuid.UUID) -> CaseView:
        row = await run_in_threadpool(self.intake.readable, principal, referral_id, "status")
        case = await run_in_threadpool(self.intake.case_row, row)
        # The read model, never the workflow: a query would wait behind the workflow's tasks.
        # A closed case is final there too: the workflow recorded its last state (stage, exit
        # reason, no open actions) before it answered the decision that closed it.
        return _view(row, case, recorded_state(case))

    async def at_stage(
        self,
        principal: Principal,
        stage: Stage,
        local_authority: str | None,
        page: PageRequest = FIRST_PAGE,
    ) -> CasePage:
        """The cases at ``stage`` of the authorities the caller serves (and the cases that have
        told one of them), or of the one of them named, the one submitted longest ago first:
        from the read model, a page at a time, never a workflow per row. Each case listed is
        recorded in the ledger as disclosed to the caller."""
        require(principal, CASES_LIST)
        served = principal.authorities if principal.kind == "user" else ()
        if local_authority is not None:
            served = tuple(a for a in served if a == local_authority)
        return await run_in_threadpool(self._at_stage, principal, stage, served, page)

    def _at_stage(
        self, principal: Principal, stage: Stage, served: tuple[str, ...], page: PageRequest
    ) -> CasePage:
        with self.intake.store.session() as s:
            got = cases_at_stage(s, page, stage, served, served)
        items = [_view(row, row, recorded_state(row)) for row in got.rows]
        self.intake.ledger.record(
            Disclosed(
                case_id=v.case_id,
                record="referral",
                record_id=v.referral_id,
                view=DisclosureView.case_status,
                purpose=DisclosurePurpose.case_work,
                **to(principal),
            )
            for v in items
        )
        return CasePage(items=items, next_cursor=got.next_cursor)

    async def _case_for(
        self, principal: Principal, referral_id: uuid.UUID, rule: Rule, purpose: str
    ) -> Referral:
        row = await run_in_threadpool(self.intake.readable, principal, referral_id, purpose, rule)
        return await run_in_threadpool(self.intake.case_row, row)

    async def pre_mset(
        self,
        principal: Principal,
        referral_id: uuid.UUID,
        req: PreMsetDecisionRequest,
        credential_headers: dict[str, str] | None = None,
    ) -> PreMsetDecisionResult:
        case = await self._case_for(principal, referral_id, PRE_MSET_DECIDE, "pre_mset_decision")
        if req.meeting_id is not None:
            d = await self._in_meeting(req.meeting_id, case.id, req, credential_headers)
            return PreMsetDecisionResult(
                decision_id=d.decision_id or str(d.item_id), stage=d.stage_after, level=d.level
            )
        arg = update_input(PreMsetDecisionInput, req, decided_by=_user(principal))
        return await self.cases.record_pre_mset(case.id, arg)

    async def mset_review(
        self,
        principal: Principal,
        referral_id: uuid.UUID,
        req: MsetReviewRequest,
        credential_headers: dict[str, str] | None = None,
    ) -> MsetReviewRecorded:
        if req.review_id is None:
            raise RequestInvalid(
                "review_id",
                "required field is missing: your id for this review, so that a "
                "retry records it once",
            )
        if req.raise_lmaps is not None and req.meeting_id is None:
            raise RequestInvalid(
                "raise_lmaps",
                "an LMAPS referral is raised by an MSET meeting's review, which keeps it: "
                "give the meeting_id of the meeting that reviewed",
            )
        case = await self._case_for(principal, referral_id, MSET_REVIEW, "mset_review")
        owners = {a.owner_agency_id for a in req.actions}
        check_owners(req.actions, await run_in_threadpool(self.directory.unknown, owners))
        if self.entities is not None and any(a.entity_id for a in req.actions):
            await run_in_threadpool(self.entities.check_actions, principal, req.actions)
        if req.meeting_id is not None:
            d = await self._in_meeting(req.meeting_id, case.id, req, credential_headers)
            assert d.next_review_due is not None  # a review always sets the next one
            return MsetReviewRecorded(
                review_id=d.decision_id or str(d.item_id),
                stage=d.stage_after,
                level=d.level,
                action_ids=[a.action_id for a in d.actions],
                next_review_due=d.next_review_due,
            )
        arg = update_input(MsetReviewInput, req, decided_by=_user(principal))
        return await self.cases.record_review(case.id, arg)

    async def _in_meeting(
        self,
        meeting_id: uuid.UUID,
        case_id: uuid.UUID,
        req: PreMsetDecisionRequest | MsetReviewRequest,
        credential_headers: dict[str, str] | None,
    ) -> ItemDecisionPublic:
        """A decision taken in a meeting: recorded through the meeting's record (its one way
        in), which sends it to the case, so the meeting's minutes hold it."""
        if self.meetings is None or credential_headers is None:
            raise MeetingsUnavailable("the meeting service is not configured for this API")
        return await self.meetings.decide(credential_headers, meeting_id, case_id, req)

    async def action_progress(
        self,
        principal: Principal,
        referral_id: uuid.UUID,
        action_id: str,
        req: ActionProgressRequest,
    ) -> ActionProgressRecorded:
        # The agency that owns the action reports progress on it, by its system or its
        # staff, whether or not it may read the rest of the case (the access policy). A
        # caller who may not see the case, or this action of it, gets the one answer a
        # referral that does not exist gets, whatever it asked for.
        not_found = f"no referral {referral_id} with an action {action_id} that you may update"
        try:
            row = await run_in_threadpool(self.intake.delivered, referral_id)
        except ReferralNotFound:
            raise ReferralNotFound(not_found) from None
        case = await run_in_threadpool(self.intake.case_row, row)
        # The action, from the read model: an action is recorded there before the review
        # that agreed it is answered, and its owner never changes.
        recorded = recorded_state(case)
        actions = recorded.actions if recorded else []
        action = next((a for a in actions if a.action_id == action_id), None)
        owner = action.owner_agency_id if action else None
        facts = await run_in_threadpool(self.intake.case_facts, row, owner)
        check(principal, ACTION_PROGRESS, facts, not_found)
        if action is None:
            # Checked after the access rule, so a caller who may not see the case learns
            # nothing from the answer; one who may is told the action is not there.
            raise ReferralNotFound(not_found)
        await run_in_threadpool(self.intake.disclose, principal, referral_id, "action_progress")
        # A partner system has no user: the agency itself is who reported.
        by = principal.user_id if principal.kind == "user" else principal.agency_id
        arg = update_input(ActionProgressInput, req, action_id=action_id, by=by)
        return await self.cases.record_action_progress(case.id, arg)

    async def exit(
        self, principal: Principal, referral_id: uuid.UUID, req: ExitRequest
    ) -> ExitResult:
        case = await self._case_for(principal, referral_id, EXIT, "exit")
        arg = update_input(ExitCaseInput, req, decided_by=_user(principal))
        return await self.cases.exit(case.id, arg)


def _user(principal: Principal) -> uuid.UUID:
    assert principal.user_id is not None  # role checks admit users only
    return principal.user_id


def _view(row: Referral, case: Referral, state: ReferralState | None) -> CaseView:
    # What this referral itself says; the rest is the case's, as its workflow last recorded.
    own: dict[str, Any] = {
        "referral_id": row.id,
        "case_id": case.id,
        "partner_reference": row.partner_reference,
        "submitted_at": row.submitted_at,
        "referrer_level": RiskLevel(row.referrer_level),
        # The record's time (the workflow's clock when it made it), kept with the record.
        "updated_at": case.updated_at,
        "as_of": case.updated_at,
        "sequence": case.record_seq or 0,
    }
    if state is None:
        # Not recorded by a workflow that sends its state (just submitted, or recorded before
        # the read model kept it): the columns it did record.
        return CaseView(
            **own,
            stage=Stage(case.stage),
            local_authority=case.local_authority,
            suggested_level=RiskLevel(case.suggested_level) if case.suggested_level else None,
            level=RiskLevel(case.level) if case.level else None,
            next_deadline=case.next_deadline,
            previous_referral_id=case.previous_referral_id,
            exit_reason=ExitReason(case.exit_reason) if case.exit_reason else None,
        )
    return CaseView(
        **own,
        stage=state.stage,
        local_authority=state.local_authority,
        suggested_level=state.triage.suggested_level if state.triage else None,
        level=state.level,
        open_actions=[
            ActionView(
                action_id=a.action_id,
                owner_agency_id=a.owner_agency_id,
                due_at=a.due_at,
                aim=a.aim,
                target=a.target,
                status="open",
            )
            for a in state.actions
            # A closed case has none, whatever an older exit left on its actions.
            if a.open and state.stage.value not in CLOSED_STAGES
        ],
        next_deadline=state.next_deadline,
        previous_referral_id=state.previous_referral_id,
        exit_reason=state.exit.reason if state.exit else None,
    )
