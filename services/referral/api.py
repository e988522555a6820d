"""Referral intake API for partner systems. HTTP only: the work is in intake.py/identity.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import Body, Depends, FastAPI, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from mset_contract.auth import IntrospectRequest, IntrospectResult, Principal
from mset_contract.cases import (
    ActionProgressRequest,
    CaseView,
    ExitRequest,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.catalogue import IndicatorCatalogue, load_catalogue
from mset_contract.edge import (
    BodyLimit,
    ErrorBody,
    FieldError,
    RequireJson,
    error_response,
    install_error_handlers,
    principal_dependency,
)
from mset_contract.referral import (
    MissingEpisodeAccepted,
    MissingReportCreate,
    ReferralAccepted,
    ReferralCreate,
    ReturnCreate,
    RhiOutcomeCreate,
    referral_example,
)
from mset_contract.referral_workflow import (
    MISSING_EPISODE_WORKFLOW,
    QUERY_STATE,
    REFERRAL_WORKFLOW,
    SIGNAL_REASSESSED,
    ActionProgressRecorded,
    CaseExited,
    DecisionRecorded,
    MissingEpisodeState,
    MsetReviewRecorded,
    ReassessedSignal,
    ReferralState,
    ReturnInput,
    ReturnRecorded,
    RhiOutcomeInput,
    RhiRecorded,
    StartMissingEpisodeInput,
    StartReferralInput,
)
from mset_contract.temporal import SA_LOCAL_AUTHORITY, SA_STAGE, WORKFLOWS_TASK_QUEUE
from mset_contract.vocab import Stage
from services.referral.cases import CaseDesk
from services.referral.domain import (
    CaseClosed,
    CaseUnavailable,
    DecisionRejected,
    IdempotencyKeyReused,
    NotAPartnerSystem,
    ReferralNotFound,
    UnknownCase,
    WorkflowUnavailable,
)
from services.referral.identity import Identity
from services.referral.intake import Intake
from services.referral.migrate import upgrade
from services.referral.missing import MissingDesk
from services.referral.settings import ReferralSettings
from services.referral.store import Store, make_engine

log = logging.getLogger("mset.referral")
RPC_TIMEOUT = timedelta(seconds=10)
QUERY_TIMEOUT = timedelta(seconds=3)
R = TypeVar("R", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)


def desk(request: Request) -> CaseDesk:
    d: CaseDesk = request.app.state.desk
    return d


def missing(request: Request) -> MissingDesk:
    m: MissingDesk = request.app.state.missing
    return m


# Module level so FastAPI can resolve the annotation; the resolver lives on app.state.
current_principal = principal_dependency(lambda request: request.app.state.resolve)
Caller = Annotated[Principal, Depends(current_principal)]


class TemporalCases:
    """Starts, signals, asks and updates case workflows; turns Temporal's errors into the
    referral domain's."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def _start(
        self, workflow: str, inp: BaseModel, workflow_id: str, attrs: list[Any]
    ) -> None:
        try:
            await self.client.start_workflow(
                workflow,
                inp,
                id=workflow_id,
                task_queue=WORKFLOWS_TASK_QUEUE,
                # A retried start (same row) joins the running workflow, never a second.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(attrs),
                rpc_timeout=RPC_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return  # it ran before and finished: that workflow is this row's

    async def _query(self, workflow_id: str, result: type[S]) -> S | None:
        try:
            state: S | None = await self.client.get_workflow_handle(workflow_id).query(
                QUERY_STATE, result_type=result, rpc_timeout=QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError) as exc:
            raise CaseUnavailable("the workflow could not be asked just now") from exc
        return state

    async def start_referral(self, workflow_id: str, inp: StartReferralInput) -> None:
        await self._start(
            REFERRAL_WORKFLOW,
            inp,
            workflow_id,
            [
                SearchAttributePair(SA_STAGE, Stage.submitted.value),
                SearchAttributePair(SA_LOCAL_AUTHORITY, inp.local_authority),
            ],
        )

    async def start_episode(self, workflow_id: str, inp: StartMissingEpisodeInput) -> None:
        await self._start(
            MISSING_EPISODE_WORKFLOW,
            inp,
            workflow_id,
            [SearchAttributePair(SA_LOCAL_AUTHORITY, inp.local_authority)],
        )

    async def reassess(self, workflow_id: str, signal: ReassessedSignal) -> None:
        try:
            await self.client.get_workflow_handle(workflow_id).signal(
                SIGNAL_REASSESSED, signal, rpc_timeout=RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise CaseClosed("the case has ended") from exc
            raise

    async def state(self, workflow_id: str) -> ReferralState | None:
        return await self._query(workflow_id, ReferralState)

    async def episode_state(self, workflow_id: str) -> MissingEpisodeState | None:
        return await self._query(workflow_id, MissingEpisodeState)

    async def episode_update(
        self, workflow_id: str, name: str, arg: ReturnInput | RhiOutcomeInput, result: type
    ) -> object:
        return await self.update(workflow_id, name, arg, result)

    async def update(self, workflow_id: str, name: str, arg: BaseModel, result: type[R]) -> R:
        try:
            return await self.client.get_workflow_handle(workflow_id).execute_update(
                name, arg, result_type=result, rpc_timeout=RPC_TIMEOUT
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise DecisionRejected(reason) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise CaseClosed("the case has ended: it takes no more decisions") from exc
            raise CaseUnavailable("the case could not be reached just now; retry") from exc


def create_app(settings: ReferralSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        store = Store(engine)
        # Lazy: the API starts (and answers /healthz) while Temporal is still coming up.
        client = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            lazy=True,
        )
        app.state.store = store
        app.state.identity = Identity(store)
        cases = TemporalCases(client)
        app.state.intake = Intake(store, cases)
        app.state.desk = CaseDesk(app.state.intake, cases)
        app.state.missing = MissingDesk(store, cases)
        yield
        engine.dispose()

    app = FastAPI(
        title="MSET Flow — referral intake",
        version="1",
        description="Partner systems submit the MSET Risk Assessment Tool and follow its "
        "progress. Authenticate with your agency's API key in the `X-API-Key` header.",
        lifespan=lifespan,
    )
    app.add_middleware(RequireJson)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    _install_domain_errors(app)

    async def resolve(credential: str) -> Principal | None:
        return await run_in_threadpool(app.state.identity.resolve, credential)

    app.state.resolve = resolve
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
    }

    case_errors: dict[int | str, dict[str, Any]] = {
        **errors,
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
        503: {"model": ErrorBody},
    }

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        def ping() -> None:
            with request.app.state.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        await run_in_threadpool(ping)
        return {"status": "ok"}

    @app.post(
        "/v1/referrals",
        status_code=202,
        response_model=ReferralAccepted,
        responses={**errors, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        tags=["referrals"],
    )
    async def submit_referral(
        request: Request,
        caller: Caller,
        tool: Annotated[
            ReferralCreate, Body(openapi_examples={"medium risk": {"value": referral_example()}})
        ],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
        ] = None,
    ) -> ReferralAccepted:
        """Submit a completed Risk Assessment Tool. Retries are safe: the same
        Idempotency-Key, or the same partner_reference, returns the first answer."""
        return await request.app.state.intake.submit(caller, tool, idempotency_key)

    @app.get(
        "/v1/referrals/{referral_id}",
        response_model=CaseView,
        responses={**errors, 404: {"model": ErrorBody}},
        tags=["referrals"],
    )
    async def get_referral(request: Request, caller: Caller, referral_id: uuid.UUID) -> CaseView:
        """The case's stage, level, open actions and next deadline."""
        return await desk(request).view(caller, referral_id)

    @app.post(
        "/v1/referrals/{referral_id}/pre-mset-decision",
        response_model=DecisionRecorded,
        responses=case_errors,
        tags=["cases"],
    )
    async def pre_mset_decision(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: PreMsetDecisionRequest
    ) -> DecisionRecorded:
        """The Pre-MSET panel's decision (chair). The case checks it before it is recorded."""
        return await desk(request).pre_mset(caller, referral_id, body)

    @app.post(
        "/v1/referrals/{referral_id}/mset-review",
        response_model=MsetReviewRecorded,
        responses=case_errors,
        tags=["cases"],
    )
    async def mset_review(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: MsetReviewRequest
    ) -> MsetReviewRecorded:
        """The MSET group's review (chair): the agreed level and the plan's actions."""
        return await desk(request).mset_review(caller, referral_id, body)

    @app.post(
        "/v1/referrals/{referral_id}/actions/{action_id}/progress",
        response_model=ActionProgressRecorded,
        responses=case_errors,
        tags=["cases"],
    )
    async def action_progress(
        request: Request,
        caller: Caller,
        referral_id: uuid.UUID,
        action_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")],
        body: ActionProgressRequest,
    ) -> ActionProgressRecorded:
        """Progress on an action, or its completion (the owning agency, or the coordinator)."""
        return await desk(request).action_progress(caller, referral_id, action_id, body)

    @app.post(
        "/v1/referrals/{referral_id}/exit",
        response_model=CaseExited,
        responses=case_errors,
        tags=["cases"],
    )
    async def exit_case(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: ExitRequest
    ) -> CaseExited:
        """The child leaves MSET, with a reason (chair or coordinator)."""
        return await desk(request).exit(caller, referral_id, body)

    @app.post(
        "/v1/missing-episodes",
        status_code=202,
        response_model=MissingEpisodeAccepted,
        responses={**errors, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        tags=["missing episodes"],
    )
    async def report_missing(
        request: Request,
        caller: Caller,
        body: MissingReportCreate,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
        ] = None,
    ) -> MissingEpisodeAccepted:
        """Police report a child missing. Retries are safe (Idempotency-Key or reference)."""
        return await missing(request).report(caller, body, idempotency_key)

    @app.post(
        "/v1/missing-episodes/{episode_id}/return",
        response_model=ReturnRecorded,
        responses=case_errors,
        tags=["missing episodes"],
    )
    async def record_return(
        request: Request, caller: Caller, episode_id: uuid.UUID, body: ReturnCreate
    ) -> ReturnRecorded:
        """The child returned: the Return Home Interview clock starts (reporting agency)."""
        return await missing(request).record_return(caller, episode_id, body)

    @app.post(
        "/v1/missing-episodes/{episode_id}/rhi",
        response_model=RhiRecorded,
        responses=case_errors,
        tags=["missing episodes"],
    )
    async def record_rhi(
        request: Request, caller: Caller, episode_id: uuid.UUID, body: RhiOutcomeCreate
    ) -> RhiRecorded:
        """The Return Home Interview's outcome (the RHI provider, or the coordinator)."""
        return await missing(request).record_rhi(caller, episode_id, body)

    @app.get(
        "/v1/missing-episodes/{episode_id}",
        response_model=MissingEpisodeState,
        responses=case_errors,
        tags=["missing episodes"],
    )
    async def get_missing(
        request: Request, caller: Caller, episode_id: uuid.UUID
    ) -> MissingEpisodeState:
        """Where the episode is: returned, the RHI deadline, whether it was met."""
        return await missing(request).view(caller, episode_id)

    @app.get("/v1/catalogue", response_model=IndicatorCatalogue, tags=["referrals"])
    async def catalogue() -> IndicatorCatalogue:
        """The indicator catalogue: the codes a Risk Assessment Tool may use."""
        return load_catalogue()

    @app.post("/v1/auth/introspect", response_model=IntrospectResult, tags=["auth"])
    async def introspect(
        request: Request,
        body: Annotated[
            IntrospectRequest,
            Body(openapi_examples={"token": {"value": {"credential": "msetu_..."}}}),
        ],
    ) -> IntrospectResult:
        """Who a credential belongs to (used by the other MSET services)."""
        principal = await resolve(body.credential)
        return IntrospectResult(active=principal is not None, principal=principal)

    return app


def _install_domain_errors(app: FastAPI) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc))

    async def key_reused(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            422, str(exc), [FieldError(field="header.idempotency-key", reason=str(exc))]
        )

    async def not_partner(_: Request, exc: Exception) -> JSONResponse:
        return error_response(403, str(exc))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("workflow start failed", exc_info=exc.__cause__ or exc)
        resp = error_response(503, str(exc))
        resp.headers["Retry-After"] = "5"
        return resp

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            422,
            f"the case refused the decision: {exc}",
            [FieldError(field="body", reason=str(exc))],
        )

    async def unknown_case(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            422, str(exc), [FieldError(field="case_referral_id", reason="no open MSET case")]
        )

    async def closed(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    async def case_unavailable(_: Request, exc: Exception) -> JSONResponse:
        resp = error_response(503, str(exc))
        resp.headers["Retry-After"] = "5"
        return resp

    app.add_exception_handler(DecisionRejected, rejected)
    app.add_exception_handler(CaseClosed, closed)
    app.add_exception_handler(UnknownCase, unknown_case)
    app.add_exception_handler(CaseUnavailable, case_unavailable)
    app.add_exception_handler(ReferralNotFound, not_found)
    app.add_exception_handler(IdempotencyKeyReused, key_reused)
    app.add_exception_handler(NotAPartnerSystem, not_partner)
    app.add_exception_handler(WorkflowUnavailable, unavailable)


def main() -> None:
    settings = ReferralSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
