"""The cases, as their Temporal workflows hold them.

Services never read each other's tables: an agenda is drawn up from Temporal visibility (which
cases of an authority are at a panel's stages) and each case workflow's ``state`` query; a
decision is sent to the case's workflow as an update, which validates it and records it or
refuses it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, TypeVar
from uuid import UUID

from pydantic import TypeAdapter
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from mset_contract.referral_workflow import (
    QUERY_STATE,
    REFERRAL_WORKFLOW,
    UPDATE_MSET_REVIEW,
    UPDATE_PRE_MSET_DECISION,
    DecisionRecorded,
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    ReferralState,
)
from mset_contract.temporal import SA_LOCAL_AUTHORITY, SA_STAGE, referral_workflow_id
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import Stage
from services.meeting.domain import CasesUnavailable, DecisionRejected

_AUTHORITY = TypeAdapter(LocalAuthorityCode)
R = TypeVar("R")


class Cases(Protocol):
    async def at_stages(self, local_authority: str, stages: Sequence[Stage]) -> list[ReferralState]:
        """The open cases of an authority at the given stages."""

    async def state(self, referral_id: UUID) -> ReferralState:
        """One case's current state."""

    async def record_pre_mset(
        self, referral_id: UUID, inp: PreMsetDecisionInput, update_id: str
    ) -> DecisionRecorded: ...

    async def record_review(
        self, referral_id: UUID, inp: MsetReviewInput, update_id: str
    ) -> MsetReviewRecorded: ...


def visibility_query(local_authority: str, stages: Sequence[Stage]) -> str:
    # The authority code is validated against its pattern (lower-case letters, digits and
    # '-') before it is put in a query string, so it cannot change the query's meaning.
    code = _AUTHORITY.validate_python(local_authority)
    in_list = ", ".join(f"'{Stage(s).value}'" for s in stages)
    return (
        f"WorkflowType = '{REFERRAL_WORKFLOW}' AND ExecutionStatus = 'Running' "
        f"AND {SA_LOCAL_AUTHORITY.name} = '{code}' AND {SA_STAGE.name} IN ({in_list})"
    )


def _reason(exc: BaseException) -> str:
    """The workflow's own words for why it refused (an update validator's message)."""
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else exc
    if isinstance(cause, ApplicationError | FailureError) and cause.message:
        return cause.message
    return str(cause) or "the case's workflow refused the decision"


class TemporalCases:
    def __init__(
        self, client: Client, *, concurrency: int = 8, update_timeout: float = 30.0
    ) -> None:
        self.client = client
        self._concurrency = concurrency
        self._timeout = timedelta(seconds=update_timeout)

    async def at_stages(self, local_authority: str, stages: Sequence[Stage]) -> list[ReferralState]:
        query = visibility_query(local_authority, stages)
        try:
            ids = [w.id async for w in self.client.list_workflows(query)]
        except RPCError as exc:
            raise CasesUnavailable("the case list could not be read from Temporal") from exc
        gate = asyncio.Semaphore(self._concurrency)

        async def one(workflow_id: str) -> ReferralState | None:
            async with gate:
                try:
                    return await self._query(workflow_id)
                except (RPCError, WorkflowQueryFailedError):
                    return None  # closed between the list and the query: not awaiting a panel

        states = await asyncio.gather(*(one(i) for i in ids))
        # Visibility lags a little behind the workflows: the state itself has the last word.
        wanted = {Stage(s) for s in stages}
        return [s for s in states if s is not None and s.stage in wanted]

    async def _query(self, workflow_id: str) -> ReferralState:
        handle = self.client.get_workflow_handle(workflow_id)
        state: ReferralState | None = await handle.query(
            QUERY_STATE, result_type=ReferralState, rpc_timeout=self._timeout
        )
        if state is None:
            raise WorkflowQueryFailedError("the case has no state yet")
        return state

    async def state(self, referral_id: UUID) -> ReferralState:
        try:
            return await self._query(referral_workflow_id(referral_id))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise DecisionRejected("there is no case workflow for this referral") from exc
            raise CasesUnavailable("the case could not be read from Temporal") from exc
        except WorkflowQueryFailedError as exc:
            raise CasesUnavailable(f"the case could not be read: {exc}") from exc

    async def record_pre_mset(
        self, referral_id: UUID, inp: PreMsetDecisionInput, update_id: str
    ) -> DecisionRecorded:
        return await self._update(
            referral_id, UPDATE_PRE_MSET_DECISION, inp, update_id, DecisionRecorded
        )

    async def record_review(
        self, referral_id: UUID, inp: MsetReviewInput, update_id: str
    ) -> MsetReviewRecorded:
        return await self._update(
            referral_id, UPDATE_MSET_REVIEW, inp, update_id, MsetReviewRecorded
        )

    async def _update(
        self,
        referral_id: UUID,
        name: str,
        inp: object,
        update_id: str,
        result_type: type[R],
    ) -> R:
        handle = self.client.get_workflow_handle(referral_workflow_id(referral_id))
        try:
            # The update id is the agenda item's: Temporal answers a repeated update with
            # the first one's outcome, and the workflow deduplicates by decision id as well.
            result = await handle.execute_update(
                name, inp, id=update_id, result_type=result_type, rpc_timeout=self._timeout
            )
            assert isinstance(result, result_type)
            return result
        except WorkflowUpdateFailedError as exc:
            raise DecisionRejected(_reason(exc)) from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise CasesUnavailable("the case's workflow did not answer in time") from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise DecisionRejected(
                    "the case is no longer open (its workflow has finished)"
                ) from exc
            raise CasesUnavailable("Temporal could not be reached") from exc
