"""The one way to a case's workflow, for every service: start, ask, signal and update
``ReferralWorkflow`` and ``MissingEpisodeWorkflow`` by name, and answer with the cases' own
errors instead of Temporal's.

- ``DecisionRefused``: the case refused the update (its validator, or its handler); it carries
  the workflow's reason, and nothing was recorded.
- ``DecisionConflict``: the decision's id (``decision_id``, ``review_id``) was recorded
  before with another body; it names the fields that differ, and nothing was recorded.
- ``CaseClosed``: the case's workflow has finished (or is gone, although it existed).
- ``CaseUnreachable``: Temporal could not be reached, or did not answer in time. An update
  that timed out may still be recorded later: the workflows answer the same decision id once;
  a start or signal that timed out may have reached its case, so the caller keeps what it
  sent for the retry (a start uses a fixed workflow id, a retried one joins the first).

Which HTTP status each is, is written once, in ``mset_platform.cases_http``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel, TypeAdapter
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from mset_contract.referral_workflow import (
    ActionProgressInput,
    ActionProgressRecorded,
    ExitCaseInput,
    ExitResult,
    MissingEpisodeState,
    MsetReviewInput,
    MsetReviewRecorded,
    PreMsetDecisionInput,
    PreMsetDecisionResult,
    ReassessedSignal,
    ReferralState,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
    StartReferralInput,
)
from mset_contract.temporal import (
    LOCAL_AUTHORITY_SEARCH_ATTRIBUTE,
    MISSING_EPISODE_RECORD_RETURN_UPDATE,
    MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
    MISSING_EPISODE_STATE_QUERY,
    MISSING_EPISODE_WORKFLOW,
    REFERRAL_DECISION_CONFLICT_ERROR,
    REFERRAL_EXIT_CASE_UPDATE,
    REFERRAL_REASSESSED_SIGNAL,
    REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
    REFERRAL_RECORD_MSET_REVIEW_UPDATE,
    REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
    REFERRAL_STATE_QUERY,
    REFERRAL_WORKFLOW,
    STAGE_SEARCH_ATTRIBUTE,
    WORKFLOWS_TASK_QUEUE,
    missing_episode_workflow_id,
    referral_workflow_id,
)
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import Stage

R = TypeVar("R", bound=BaseModel)
_AUTHORITY = TypeAdapter(LocalAuthorityCode)


class CaseError(Exception):
    """A case's workflow did not take the request."""


class DecisionRefused(CaseError):
    """The case refused the update (its validator said why); nothing was recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DecisionConflict(CaseError):
    """The decision's id was recorded before with another body (``fields`` differ); nothing
    was recorded. The same body again gets the first answer."""

    def __init__(self, reason: str, fields: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


class CaseClosed(CaseError):
    """The case's workflow has finished: it takes no more decisions, reports or tools."""


class CaseUnreachable(CaseError):
    """Temporal could not be reached, or the case did not answer in time; retry."""


def visibility_query(local_authority: str, stages: Sequence[Stage]) -> str:
    """Running referral cases of an authority at the given stages (Temporal visibility)."""
    # The authority code is validated against its pattern (lower-case letters, digits and
    # '-') before it is put in a query string, so it cannot change the query's meaning.
    code = _AUTHORITY.validate_python(local_authority)
    in_list = ", ".join(f"'{Stage(s).value}'" for s in stages)
    return (
        f"WorkflowType = '{REFERRAL_WORKFLOW}' AND ExecutionStatus = 'Running' "
        f"AND {LOCAL_AUTHORITY_SEARCH_ATTRIBUTE.name} = '{code}' "
        f"AND {STAGE_SEARCH_ATTRIBUTE.name} IN ({in_list})"
    )


def _reason(exc: WorkflowUpdateFailedError) -> str:
    """The workflow's own words for why it refused (an update validator's message)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError | FailureError) and cause.message:
        return cause.message
    return str(cause) or "the case's workflow refused the request"


@contextmanager
def _case_errors() -> Iterator[None]:
    """Temporal's answers, as the cases' errors."""
    try:
        yield
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == REFERRAL_DECISION_CONFLICT_ERROR:
            fields = [str(f) for f in cause.details] if cause.details else []
            raise DecisionConflict(_reason(exc), fields) from exc
        raise DecisionRefused(_reason(exc)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise CaseUnreachable("the case did not answer in time; please retry") from exc
    except WorkflowQueryFailedError as exc:
        raise CaseUnreachable(f"the case could not be asked just now ({exc}); retry") from exc
    except RPCError as exc:
        # A finished workflow answers NOT_FOUND ("workflow execution already completed"),
        # as does one that is gone; a query or update that waited too long answers another
        # status (CANCELLED "Timeout expired", DEADLINE_EXCEEDED).
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise CaseClosed("the case has ended: it takes no more decisions") from exc
        raise CaseUnreachable("the case could not be reached just now; please retry") from exc
    except RuntimeError as exc:
        # A lazy client connects on its first call, and says so with a RuntimeError.
        if not str(exc).startswith("Failed client connect"):
            raise
        raise CaseUnreachable("the case could not be reached just now; please retry") from exc
    except TimeoutError as exc:
        # ``_within``'s bound on the whole call ran out.
        raise CaseUnreachable("the case did not answer in time; please retry") from exc


@asynccontextmanager
async def _within(limit: timedelta) -> AsyncIterator[None]:
    """A bound on a whole call, not one RPC attempt: ``rpc_timeout`` bounds each attempt,
    but the client retries a server that refuses connections for several seconds more, and a
    lazy client's first connection (``get_system_info``) ignores it, waiting 30 s on a
    server that does not answer. A caller told "503, retry" in ``limit`` can act on it; one
    left hanging cannot."""
    async with asyncio.timeout(limit.total_seconds()):
        yield


class CaseClient:
    """Cases by id: a referral case is ``referral-<case id>``, a missing episode
    ``missing-<episode id>``. Queries wait ``query_timeout``, updates ``update_timeout``,
    starts and signals ``start_timeout`` (the whole call: see ``_within``)."""

    def __init__(
        self,
        client: Client,
        *,
        update_timeout: timedelta = timedelta(seconds=10),
        query_timeout: timedelta = timedelta(seconds=3),
        start_timeout: timedelta = timedelta(seconds=10),
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.update_timeout = update_timeout
        self.query_timeout = query_timeout
        self.start_timeout = start_timeout
        self.concurrency = concurrency

    # --- starting --------------------------------------------------------------------------

    async def start_referral(self, inp: StartReferralInput) -> None:
        """Start the case's workflow; succeed quietly if it exists or existed."""
        await self._start(
            REFERRAL_WORKFLOW,
            inp,
            referral_workflow_id(inp.referral_id),
            [
                SearchAttributePair(STAGE_SEARCH_ATTRIBUTE, Stage.submitted.value),
                SearchAttributePair(LOCAL_AUTHORITY_SEARCH_ATTRIBUTE, inp.local_authority),
            ],
        )

    async def start_episode(self, inp: StartMissingEpisodeInput) -> None:
        """Start the missing episode's workflow; succeed quietly if it exists or existed."""
        await self._start(
            MISSING_EPISODE_WORKFLOW,
            inp,
            missing_episode_workflow_id(inp.episode_id),
            [SearchAttributePair(LOCAL_AUTHORITY_SEARCH_ATTRIBUTE, inp.local_authority)],
        )

    async def _start(
        self,
        workflow: str,
        inp: BaseModel,
        workflow_id: str,
        attrs: list[SearchAttributePair[str]],
    ) -> None:
        with _case_errors():
            try:
                async with _within(self.start_timeout):
                    await self.client.start_workflow(
                        workflow,
                        inp,
                        id=workflow_id,
                        task_queue=WORKFLOWS_TASK_QUEUE,
                        # A retried start (same row) joins the running workflow, never a second.
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        search_attributes=TypedSearchAttributes(attrs),
                        rpc_timeout=self.start_timeout,
                    )
            except WorkflowAlreadyStartedError:
                return  # it ran before and finished: that workflow is this row's

    # --- asking ----------------------------------------------------------------------------

    async def state(self, case_id: UUID) -> ReferralState:
        return await self._query(referral_workflow_id(case_id), REFERRAL_STATE_QUERY, ReferralState)

    async def episode_state(self, episode_id: UUID) -> MissingEpisodeState:
        return await self._query(
            missing_episode_workflow_id(episode_id),
            MISSING_EPISODE_STATE_QUERY,
            MissingEpisodeState,
        )

    async def _query(self, workflow_id: str, query: str, result: type[R]) -> R:
        with _case_errors():
            state: R | None = await self.client.get_workflow_handle(workflow_id).query(
                query, result_type=result, rpc_timeout=self.query_timeout
            )
        if state is None:
            raise CaseUnreachable("the case has no state yet; please retry")
        return state

    async def at_stages(self, local_authority: str, stages: Sequence[Stage]) -> list[ReferralState]:
        """The running cases of an authority at the given stages, each as it is now."""
        query = visibility_query(local_authority, stages)
        with _case_errors():
            ids = [w.id async for w in self.client.list_workflows(query)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(workflow_id: str) -> ReferralState | None:
            async with gate:
                try:
                    return await self._query(workflow_id, REFERRAL_STATE_QUERY, ReferralState)
                except CaseError:
                    return None  # closed between the list and the query: not awaiting a panel

        states = await asyncio.gather(*(one(i) for i in ids))
        # Visibility lags a little behind the workflows: the state itself has the last word.
        wanted = {Stage(s) for s in stages}
        return [s for s in states if s is not None and s.stage in wanted]

    # --- telling ---------------------------------------------------------------------------

    async def reassess(self, case_id: UUID, signal: ReassessedSignal) -> None:
        """Give an open case its new tool; ``CaseClosed`` if it has ended."""
        handle = self.client.get_workflow_handle(referral_workflow_id(case_id))
        with _case_errors():
            async with _within(self.start_timeout):
                await handle.signal(
                    REFERRAL_REASSESSED_SIGNAL, signal, rpc_timeout=self.start_timeout
                )

    # --- deciding --------------------------------------------------------------------------
    # ``update_id``: Temporal answers a repeated update id with the first one's outcome.

    async def record_pre_mset(
        self, case_id: UUID, inp: PreMsetDecisionInput, update_id: str | None = None
    ) -> PreMsetDecisionResult:
        return await self._update(
            referral_workflow_id(case_id),
            REFERRAL_RECORD_PRE_MSET_DECISION_UPDATE,
            inp,
            PreMsetDecisionResult,
            update_id,
        )

    async def record_review(
        self, case_id: UUID, inp: MsetReviewInput, update_id: str | None = None
    ) -> MsetReviewRecorded:
        return await self._update(
            referral_workflow_id(case_id),
            REFERRAL_RECORD_MSET_REVIEW_UPDATE,
            inp,
            MsetReviewRecorded,
            update_id,
        )

    async def record_action_progress(
        self, case_id: UUID, inp: ActionProgressInput
    ) -> ActionProgressRecorded:
        return await self._update(
            referral_workflow_id(case_id),
            REFERRAL_RECORD_ACTION_PROGRESS_UPDATE,
            inp,
            ActionProgressRecorded,
        )

    async def exit(self, case_id: UUID, inp: ExitCaseInput) -> ExitResult:
        return await self._update(
            referral_workflow_id(case_id), REFERRAL_EXIT_CASE_UPDATE, inp, ExitResult
        )

    async def record_return(self, episode_id: UUID, inp: ReturnInput) -> ReturnRecorded:
        return await self._update(
            missing_episode_workflow_id(episode_id),
            MISSING_EPISODE_RECORD_RETURN_UPDATE,
            inp,
            ReturnRecorded,
        )

    async def record_rhi(self, episode_id: UUID, inp: RhiOutcomeInput) -> RhiRecorded:
        return await self._update(
            missing_episode_workflow_id(episode_id),
            MISSING_EPISODE_RECORD_RHI_OUTCOME_UPDATE,
            inp,
            RhiRecorded,
        )

    async def _update(
        self,
        workflow_id: str,
        name: str,
        inp: BaseModel,
        result: type[R],
        update_id: str | None = None,
    ) -> R:
        handle = self.client.get_workflow_handle(workflow_id)
        with _case_errors():
            return await handle.execute_update(
                name, inp, id=update_id, result_type=result, rpc_timeout=self.update_timeout
            )
