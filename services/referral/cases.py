"""The case desk: reading a case live from its workflow, and passing staff decisions to it.

The workflow is the system of record for where a case is; decisions go to it as updates,
and its validators decide whether they stand. A refused decision comes back as
``DecisionRejected`` with the workflow's reason and leaves nothing behind.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.cases import (
    ActionProgressRequest,
    ActionView,
    CaseView,
    ExitRequest,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.referral_workflow import (
    UPDATE_ACTION_PROGRESS,
    UPDATE_EXIT,
    UPDATE_MSET_REVIEW,
    UPDATE_PRE_MSET_DECISION,
    ActionProgressInput,
    ActionProgressRecorded,
    CaseExited,
    DecisionRecorded,
    ExitCaseInput,
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    ReferralState,
)
from mset_contract.vocab import RiskLevel, Role, Stage
from services.referral.domain import (
    DECIDING_ROLES,
    EXIT_ROLES,
    PROGRESS_ROLES,
    CaseUnavailable,
    ReferralNotFound,
)
from services.referral.intake import Intake
from services.referral.store import Referral

R = TypeVar("R", bound=BaseModel)


class CaseWorkflows(Protocol):
    async def state(self, workflow_id: str) -> ReferralState | None:
        """The case's state, or None when it cannot be asked (raise CaseUnavailable)."""

    async def update(self, workflow_id: str, name: str, arg: BaseModel, result: type[R]) -> R:
        """Send an update; raise DecisionRejected, CaseClosed or CaseUnavailable."""


class CaseDesk:
    def __init__(self, intake: Intake, workflows: CaseWorkflows) -> None:
        self.intake = intake
        self.workflows = workflows

    async def view(self, principal: Principal, referral_id: uuid.UUID) -> CaseView:
        row = await run_in_threadpool(self.intake.readable, principal, referral_id, "status")
        case = await run_in_threadpool(self.intake.case_row, row)
        try:
            state = await self.workflows.state(case.workflow_id)
        except CaseUnavailable:
            state = None
        return _view(row, case, state)

    async def _case_for(
        self, principal: Principal, referral_id: uuid.UUID, roles: tuple[Role, ...], purpose: str
    ) -> Referral:
        if not principal.has_role(*roles):
            raise ReferralNotFound(f"no referral {referral_id} on which you may do this")
        row = await run_in_threadpool(self.intake.readable, principal, referral_id, purpose)
        return await run_in_threadpool(self.intake.case_row, row)

    async def pre_mset(
        self, principal: Principal, referral_id: uuid.UUID, req: PreMsetDecisionRequest
    ) -> DecisionRecorded:
        case = await self._case_for(principal, referral_id, DECIDING_ROLES, "pre_mset_decision")
        arg = PreMsetDecisionInput(decided_by=_user(principal), **req.model_dump())
        return await self.workflows.update(
            case.workflow_id, UPDATE_PRE_MSET_DECISION, arg, DecisionRecorded
        )

    async def mset_review(
        self, principal: Principal, referral_id: uuid.UUID, req: MsetReviewRequest
    ) -> MsetReviewRecorded:
        case = await self._case_for(principal, referral_id, DECIDING_ROLES, "mset_review")
        arg = MsetReviewInput(decided_by=_user(principal), **_fields(req))
        return await self.workflows.update(
            case.workflow_id, UPDATE_MSET_REVIEW, arg, MsetReviewRecorded
        )

    async def action_progress(
        self,
        principal: Principal,
        referral_id: uuid.UUID,
        action_id: str,
        req: ActionProgressRequest,
    ) -> ActionProgressRecorded:
        if principal.has_role(*PROGRESS_ROLES):
            row = await run_in_threadpool(
                self.intake.readable, principal, referral_id, "action_progress"
            )
            case = await run_in_threadpool(self.intake.case_row, row)
        else:
            # Staff of the agency that owns the action report progress on it, whether or not
            # they may read the rest of the referral. Ownership is checked before anything is
            # disclosed, and a refusal looks like a missing action.
            refused = ReferralNotFound(f"no action {action_id} that you may update")
            if principal.kind != "user":
                raise refused
            row = await run_in_threadpool(self.intake.delivered, referral_id)
            case = await run_in_threadpool(self.intake.case_row, row)
            state = await self.workflows.state(case.workflow_id)
            actions = state.actions if state else []
            owner = next((a.owner_agency_id for a in actions if a.action_id == action_id), None)
            if owner != principal.agency_id:
                raise refused
            await run_in_threadpool(self.intake.disclose, principal, referral_id, "action_progress")
        arg = ActionProgressInput(action_id=action_id, by=_user(principal), **req.model_dump())
        return await self.workflows.update(
            case.workflow_id, UPDATE_ACTION_PROGRESS, arg, ActionProgressRecorded
        )

    async def exit(
        self, principal: Principal, referral_id: uuid.UUID, req: ExitRequest
    ) -> CaseExited:
        case = await self._case_for(principal, referral_id, EXIT_ROLES, "exit")
        arg = ExitCaseInput(decided_by=_user(principal), **req.model_dump())
        return await self.workflows.update(case.workflow_id, UPDATE_EXIT, arg, CaseExited)


def _user(principal: Principal) -> uuid.UUID:
    assert principal.user_id is not None  # role checks admit users only
    return principal.user_id


def _fields(model: BaseModel) -> dict[str, Any]:
    # Keep nested models as models (a dump would turn them into dicts and lose nothing, but
    # this avoids validating them twice).
    return {name: getattr(model, name) for name in type(model).model_fields}


def _view(row: Referral, case: Referral, state: ReferralState | None) -> CaseView:
    # What this referral itself says; the rest is the case's, live or last recorded.
    own: dict[str, Any] = {
        "referral_id": row.id,
        "case_id": case.id,
        "partner_reference": row.partner_reference,
        "submitted_at": row.submitted_at,
        "referrer_level": RiskLevel(row.referrer_level),
    }
    if state is None:
        return CaseView(
            **own,
            stage=Stage(case.stage),
            local_authority=case.local_authority,
            updated_at=case.updated_at,
            suggested_level=RiskLevel(case.suggested_level) if case.suggested_level else None,
            level=RiskLevel(case.level) if case.level else None,
            next_deadline=case.next_deadline,
            previous_referral_id=case.previous_referral_id,
            live=False,
        )
    return CaseView(
        **own,
        stage=state.stage,
        local_authority=state.local_authority,
        updated_at=max([case.updated_at, *(c.at for c in state.stages[-1:])]),
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
            if a.open
        ],
        next_deadline=state.next_deadline,
        previous_referral_id=state.previous_referral_id,
        exit_reason=state.exit.reason if state.exit else None,
        live=True,
    )
