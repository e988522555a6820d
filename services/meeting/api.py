"""Meeting service API (Pre-MSET, MSET and extraordinary LMAPS panels) for partnership staff.
HTTP only: the work is in meetings.py, the rules in domain.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import uvicorn
from fastapi import Body, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from mset_contract.auth import Introspector, Principal
from mset_contract.edge import (
    BodyLimit,
    ErrorBody,
    FieldError,
    RequireJson,
    Resolver,
    error_response,
    field_errors,
    install_error_handlers,
    principal_dependency,
)
from mset_contract.meeting import (
    SCHEDULED_KINDS,
    AgendaPublic,
    AttendancePublic,
    AttendanceReport,
    AttendanceUpdate,
    DecisionCreate,
    DecisionKind,
    ItemDecisionPublic,
    MeetingCreate,
    MeetingPage,
    MeetingPublic,
    MeetingStatus,
    SchedulePage,
    ScheduleTriggered,
    attendance_example,
    meeting_create_example,
    mset_review_example,
    pre_mset_decision_example,
)
from mset_contract.types import LocalAuthorityCode
from mset_contract.vocab import MeetingKind
from services.meeting.domain import (
    CasesUnavailable,
    Conflict,
    DecisionInvalid,
    DecisionRejected,
    ItemNotFound,
    MeetingNotFound,
    NotAllowed,
    Permission,
    ScheduleNotFound,
    require,
)
from services.meeting.meetings import Meetings
from services.meeting.migrate import upgrade
from services.meeting.schedules import TemporalSchedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import Store, make_engine
from services.meeting.worker import build_meetings

log = logging.getLogger("mset.meeting")

# Module level so FastAPI can resolve the annotation; the resolver lives on app.state.
current_principal = principal_dependency(lambda request: request.app.state.resolve)
Caller = Annotated[Principal, Depends(current_principal)]
MeetingId = Annotated[uuid.UUID, Path(description="The meeting's id.")]
Authority = Annotated[LocalAuthorityCode, Path(description="Local authority code.")]


def create_app(
    settings: MeetingSettings,
    resolver: Resolver | None = None,
    temporal_client: Client | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        # Lazy: the API starts (and answers /healthz) while Temporal is still coming up.
        client = temporal_client or await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            lazy=True,
        )
        introspector = None
        if resolver is None:
            introspector = Introspector(settings.referral_url)
            app.state.resolve = introspector.principal
        else:
            app.state.resolve = resolver
        app.state.store = Store(engine)
        app.state.meetings = build_meetings(client, app.state.store, settings)
        app.state.schedules = TemporalSchedules(client)
        yield
        if introspector is not None:
            await introspector.aclose()
        engine.dispose()

    app = FastAPI(
        title="MSET Flow — meetings",
        version="1",
        description="Pre-MSET and MSET panels and extraordinary LMAPS meetings: schedules, "
        "agendas, attendance, decisions and minutes. For partnership staff: authenticate with "
        "your staff token (`Authorization: Bearer ...`). The coordinator prepares meetings, "
        "the chair records decisions, panel members read.",
        lifespan=lifespan,
    )
    app.add_middleware(RequireJson)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    _install_domain_errors(app)

    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
    }
    not_found: dict[int | str, dict[str, Any]] = {**errors, 404: {"model": ErrorBody}}
    conflict: dict[int | str, dict[str, Any]] = {**not_found, 409: {"model": ErrorBody}}

    def meetings(request: Request) -> Meetings:
        m: Meetings = request.app.state.meetings
        return m

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        def ping() -> None:
            with request.app.state.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        await run_in_threadpool(ping)
        return {"status": "ok"}

    # --- meetings --------------------------------------------------------------------------

    @app.get("/v1/meetings", response_model=MeetingPage, responses=errors, tags=["meetings"])
    async def list_meetings(
        request: Request,
        caller: Caller,
        local_authority: LocalAuthorityCode | None = None,
        kind: MeetingKind | None = None,
        status: MeetingStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> MeetingPage:
        """Meetings, latest first (coordinator, chair, panel member)."""
        return await run_in_threadpool(
            meetings(request).list_meetings,
            caller,
            local_authority=local_authority,
            kind=kind,
            status=status,
            limit=limit,
        )

    @app.post(
        "/v1/meetings",
        status_code=201,
        response_model=MeetingPublic,
        responses={**errors, 503: {"model": ErrorBody}},
        tags=["meetings"],
    )
    async def call_meeting(
        request: Request,
        caller: Caller,
        body: Annotated[
            MeetingCreate,
            Body(openapi_examples={"extraordinary LMAPS": {"value": meeting_create_example()}}),
        ],
    ) -> MeetingPublic:
        """Call an extraordinary LMAPS meeting now (coordinator or chair). Its agenda is the
        authority's cases referred to LMAPS by an MSET review and not yet considered."""
        return await meetings(request).call_meeting(caller, body)

    @app.get(
        "/v1/meetings/{meeting_id}",
        response_model=MeetingPublic,
        responses=not_found,
        tags=["meetings"],
    )
    async def get_meeting(request: Request, caller: Caller, meeting_id: MeetingId) -> MeetingPublic:
        """The meeting, its status and attendance (coordinator, chair, panel member)."""
        return await run_in_threadpool(meetings(request).get, caller, meeting_id)

    @app.post(
        "/v1/meetings/{meeting_id}/close",
        response_model=MeetingPublic,
        responses=not_found,
        tags=["meetings"],
    )
    async def close_meeting(
        request: Request, caller: Caller, meeting_id: MeetingId
    ) -> MeetingPublic:
        """Close the meeting; its minutes become final (chair or coordinator)."""
        return await run_in_threadpool(meetings(request).close, caller, meeting_id)

    # --- agenda ----------------------------------------------------------------------------

    @app.get(
        "/v1/meetings/{meeting_id}/agenda",
        response_model=AgendaPublic,
        responses=not_found,
        tags=["agenda"],
    )
    async def get_agenda(request: Request, caller: Caller, meeting_id: MeetingId) -> AgendaPublic:
        """The agenda, highest risk and longest waiting first, as your role may see it
        (coordinator and chair: everything; panel members: without free-text rationales
        and progress notes). Each read is recorded."""
        return await run_in_threadpool(meetings(request).agenda, caller, meeting_id)

    @app.post(
        "/v1/meetings/{meeting_id}/agenda/refresh",
        response_model=AgendaPublic,
        responses={**conflict, 503: {"model": ErrorBody}},
        tags=["agenda"],
    )
    async def refresh_agenda(
        request: Request, caller: Caller, meeting_id: MeetingId
    ) -> AgendaPublic:
        """Draw the agenda up again from the cases as they are now (coordinator; only before
        the first decision)."""
        return await meetings(request).refresh_agenda(caller, meeting_id)

    # --- attendance ------------------------------------------------------------------------

    @app.put(
        "/v1/meetings/{meeting_id}/attendance",
        response_model=AttendancePublic,
        responses=conflict,
        tags=["attendance"],
    )
    async def set_attendance(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        body: Annotated[
            AttendanceUpdate, Body(openapi_examples={"panel": {"value": attendance_example()}})
        ],
    ) -> AttendancePublic:
        """Record who attended and who sent apologies, by agency and person, and the chair
        (coordinator). Replaces the list."""
        return await run_in_threadpool(meetings(request).set_attendance, caller, meeting_id, body)

    @app.get(
        "/v1/reports/attendance",
        response_model=AttendanceReport,
        responses=errors,
        tags=["attendance"],
    )
    async def attendance_report(
        request: Request,
        caller: Caller,
        local_authority: LocalAuthorityCode,
        since: Annotated[datetime | None, Query(description="Default: 12 months ago.")] = None,
        until: Annotated[datetime | None, Query(description="Default: now.")] = None,
    ) -> AttendanceReport:
        """Attendance by agency at an authority's meetings (coordinator, analyst)."""
        now = datetime.now(UTC)
        until_ = _aware(until) if until else now
        since_ = _aware(since) if since else until_ - timedelta(days=365)
        return await run_in_threadpool(
            meetings(request).attendance_report, caller, local_authority, since_, until_
        )

    # --- decisions -------------------------------------------------------------------------

    @app.post(
        "/v1/meetings/{meeting_id}/items/{item_id}/decision",
        response_model=ItemDecisionPublic,
        responses={**conflict, 503: {"model": ErrorBody}},
        tags=["decisions"],
    )
    async def decide(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        item_id: uuid.UUID,
        body: Annotated[
            DecisionCreate,
            Body(
                openapi_examples={
                    "Pre-MSET: meets criteria": {"value": pre_mset_decision_example()},
                    "MSET review with a plan": {"value": mset_review_example()},
                }
            ),
        ],
    ) -> ItemDecisionPublic:
        """Record the panel's decision on one agenda item (chair). It is sent to the case's
        workflow, which records it or refuses it whole (422, with its reason). An item is
        decided once: a second decision gets 409; the same request again returns the first
        answer."""
        return await meetings(request).decide(caller, meeting_id, item_id, body)

    # --- minutes ---------------------------------------------------------------------------

    @app.get(
        "/v1/meetings/{meeting_id}/minutes.md",
        response_class=Response,
        responses={**not_found, 200: {"content": {"text/markdown": {}}}},
        tags=["minutes"],
    )
    async def minutes_markdown(request: Request, caller: Caller, meeting_id: MeetingId) -> Response:
        """The minutes as Markdown: attendance and decisions, as your role may see them."""
        body = await run_in_threadpool(meetings(request).minutes_markdown, caller, meeting_id)
        return Response(
            body,
            media_type="text/markdown; charset=utf-8",
            headers=_attachment(f"minutes-{meeting_id}.md"),
        )

    @app.get(
        "/v1/meetings/{meeting_id}/minutes.pdf",
        response_class=Response,
        responses={**not_found, 200: {"content": {"application/pdf": {}}}},
        tags=["minutes"],
    )
    async def minutes_pdf(request: Request, caller: Caller, meeting_id: MeetingId) -> Response:
        """The minutes as PDF (the same content as the Markdown)."""
        body = await run_in_threadpool(meetings(request).minutes_pdf, caller, meeting_id)
        return Response(
            body, media_type="application/pdf", headers=_attachment(f"minutes-{meeting_id}.pdf")
        )

    # --- schedules -------------------------------------------------------------------------

    @app.get("/v1/schedules", response_model=SchedulePage, responses=errors, tags=["schedules"])
    async def list_schedules(request: Request, caller: Caller) -> SchedulePage:
        """The monthly meeting schedules of the partnership's authorities (coordinator)."""
        require(caller, Permission.run_schedules)
        schedules: TemporalSchedules = request.app.state.schedules
        found = []
        for la in settings.authorities:
            for kind in SCHEDULED_KINDS:
                try:
                    found.append(await schedules.describe(la, kind))
                except ScheduleNotFound:
                    continue  # the worker has not created it yet
        return SchedulePage(schedules=found)

    @app.post(
        "/v1/schedules/{local_authority}/{kind}/trigger",
        status_code=202,
        response_model=ScheduleTriggered,
        responses={**not_found, 503: {"model": ErrorBody}},
        tags=["schedules"],
    )
    async def trigger_schedule(
        request: Request, caller: Caller, local_authority: Authority, kind: MeetingKind
    ) -> ScheduleTriggered:
        """Fire an authority's Pre-MSET or MSET schedule now (coordinator): the meeting is
        called and its agenda drawn up within seconds; list meetings to find it."""
        require(caller, Permission.run_schedules)
        if kind not in SCHEDULED_KINDS:
            raise ScheduleNotFound(
                "LMAPS meetings have no schedule: call one with POST /v1/meetings"
            )
        schedules: TemporalSchedules = request.app.state.schedules
        schedule_id, at = await schedules.trigger(local_authority, kind)
        return ScheduleTriggered(
            schedule_id=schedule_id, local_authority=local_authority, kind=kind, triggered_at=at
        )

    return app


_TAGS = {k.value for k in DecisionKind}


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _install_domain_errors(app: FastAPI) -> None:
    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return error_response(403, str(exc))

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DecisionInvalid)
        return error_response(
            422,
            f"the decision is not valid: {exc.field}: {exc.reason}",
            [FieldError(field=exc.field, reason=exc.reason)],
        )

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        reason = str(exc)
        return error_response(
            422,
            f"the case's workflow refused the decision, nothing was recorded: {reason}",
            [FieldError(field="body", reason=reason)],
        )

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("temporal unavailable", exc_info=exc.__cause__ or exc)
        resp = error_response(503, f"{exc}; nothing was recorded, please retry")
        resp.headers["Retry-After"] = "5"
        return resp

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        # A decision is a union tagged by its "kind": pydantic names the tag in each error's
        # location ("pre_mset.outcome"); the caller wrote "outcome", so that is the field.
        assert isinstance(exc, RequestValidationError)
        untagged = [
            {**e, "loc": [p for n, p in enumerate(e["loc"]) if not (n == 1 and p in _TAGS)]}
            for e in exc.errors()
        ]
        errors = field_errors(untagged)
        detail = "the request is not valid: " + "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return error_response(422, detail, errors)

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(NotAllowed, forbidden)
    app.add_exception_handler(MeetingNotFound, not_found)
    app.add_exception_handler(ItemNotFound, not_found)
    app.add_exception_handler(ScheduleNotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(DecisionInvalid, invalid)
    app.add_exception_handler(DecisionRejected, rejected)
    app.add_exception_handler(CasesUnavailable, unavailable)


def main() -> None:
    settings = MeetingSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
