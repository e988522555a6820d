"""Actions as their owning agency meets them: the list of the actions it owns, read from the
cases' records in the read model (the workflows record each plan as it changes), each
disclosure recorded.

The read model says which cases have a plan and whose actions each holds; no workflow is
asked, so the list never waits behind the workflows' backlog (docs/decisions/0022). A page
walks cases in id order and stops at a case boundary.
"""

from __future__ import annotations

from typing import Literal

from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.cases import OwnedAction, OwnedActionPage
from mset_contract.referral_workflow import CaseAction
from mset_contract.vocab import Stage
from mset_platform.paging import FIRST_PAGE, Paged, PageRequest
from services.referral.domain import NotAnOwner
from services.referral.intake import Intake
from services.referral.policy import ACTIONS_LIST, require
from services.referral.store import PLAN_CASE_ORDER, Referral, recorded_state

# The stages at which a case holds a plan.
PLAN_STAGES = (Stage.active_plan.value,)
ActionStatus = Literal["open", "completed", "all"]


class ActionDesk:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def owned(
        self,
        principal: Principal,
        *,
        page: PageRequest = FIRST_PAGE,
        status: ActionStatus = "open",
    ) -> OwnedActionPage:
        require(principal, ACTIONS_LIST, NotAnOwner)
        out: list[OwnedAction] = []
        after = page.after  # the last case looked at
        while True:
            got = await run_in_threadpool(self._cases, PageRequest(after, page.limit))
            states = [recorded_state(r) for r in got.rows]
            for n, (row, state) in enumerate(zip(got.rows, states, strict=True)):
                mine = [
                    _owned(row, a)
                    for a in (state.actions if state else [])
                    if a.owner_agency_id == principal.agency_id and _wanted(a, status)
                ]
                if mine and out and len(out) + len(mine) > page.limit:
                    assert after is not None  # out holds a case's actions
                    return OwnedActionPage(items=out, next_cursor=PLAN_CASE_ORDER.encode(after))
                if mine:
                    await run_in_threadpool(
                        self.intake.disclose, principal, row.id, "owned_actions"
                    )
                out.extend(mine)
                after = (row.id,)
                if len(out) >= page.limit:
                    last = got.next_cursor is None and n == len(got.rows) - 1
                    more = None if last else PLAN_CASE_ORDER.encode(after)
                    return OwnedActionPage(items=out, next_cursor=more)
            if got.next_cursor is None:
                return OwnedActionPage(items=out, next_cursor=None)

    def _cases(self, page: PageRequest) -> Paged[Referral]:
        with self.intake.store.session() as s:
            return self.intake.store.plan_cases(s, PLAN_STAGES, page)


def _wanted(a: CaseAction, status: ActionStatus) -> bool:
    return status == "all" or (status == "open") == a.open


def _owned(row: Referral, a: CaseAction) -> OwnedAction:
    return OwnedAction(
        action_id=a.action_id,
        case_id=row.id,
        local_authority=row.local_authority,
        owner_agency_id=a.owner_agency_id,
        due_at=a.due_at,
        aim=a.aim,
        target=a.target,
        description=a.description,
        created_at=a.created_at,
        status="open" if a.open else "completed",
        completed_at=a.completed_at,
        last_progress_at=a.progress[-1].at if a.progress else None,
    )
