"""Meeting service API (Pre-MSET, MSET and extraordinary LMAPS panels) for partnership staff.
HTTP only: the work is in the job modules behind meetings.py, the rules in domain.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from mset_contract.cases import MsetReviewRequest, PreMsetDecisionRequest
from mset_contract.meeting import (
    AgendaPublic,
    AttendancePublic,
    AttendanceReport,
    AttendanceUpdate,
    DecisionCreate,
    DecisionKind,
    ItemDecisionCreate,
    ItemDecisionPublic,
    MeetingClose,
    MeetingCreate,
    MeetingPage,
    MeetingPublic,
    MeetingStatus,
    ScheduleList,
    ScheduleTrigger,
    ScheduleTriggered,
    attendance_example,
    meeting_create_example,
    mset_review_example,
    pre_mset_decision_example,
)
from mset_contract.reports import AttendanceAggregate
from mset_contract.types import LocalAuthorityCode, QueryInstant
from mset_contract.vocab import MeetingKind
from mset_platform.case_records import add_case_record_route
from mset_platform.cases_http import CASE_RESPONSES, install_case_error_handlers
from mset_platform.edge import (
    Caller,
    add_healthz,
    answer,
    answer_invalid_field,
    error_responses,
    invalid_request_response,
    read_credential,
    serve_main,
    service_app,
    unavailable_response,
)
from mset_platform.identity import Resolver, resolving, with_service_token
from mset_platform.paging import PageRequest, page_query
from mset_platform.temporal import connect
from services.meeting import minutes as minutes_doc
from services.meeting.agencies import (
    AgencyDirectory,
    DirectoryUnavailable,
    HttpAgencyDirectory,
    check_owners,
)
from services.meeting.calling import ScheduleDesk
from services.meeting.domain import (
    CasesUnavailable,
    Conflict,
    DecisionInvalid,
    ItemNotFound,
    MeetingNotFound,
    NotAllowed,
    RequestInvalid,
    ScheduleNotFound,
)
from services.meeting.entity_targets import (
    EntityTargets,
    EntityTargetsUnavailable,
    HttpEntityTargets,
    check_entity_targets,
)
from services.meeting.meetings import Meetings
from services.meeting.migrate import MIGRATIONS
from services.meeting.policy import CASE_RECORD
from services.meeting.schedules import TemporalSchedules
from services.meeting.settings import MeetingSettings
from services.meeting.store import AGENDA_ORDER, MEETING_ORDER, Store
from services.meeting.who import CaseRecords, HttpCaseRecords, RecordsUnavailable
from services.meeting.worker import build_meetings

log = logging.getLogger("mset.meeting")

MeetingId = Annotated[uuid.UUID, Path(description="The meeting's id.")]
Authority = Annotated[LocalAuthorityCode, Path(description="Local authority code.")]


def create_app(
    settings: MeetingSettings,
    resolver: Resolver | None = None,
    temporal_client: Client | None = None,
    directory: AgencyDirectory | None = None,
    records: CaseRecords | None = None,
    entity_targets: EntityTargets | None = None,
) -> FastAPI:
    """``resolver``, ``temporal_client``, ``directory``, ``records`` and ``entity_targets``
    may be given (tests); by default the referral service resolves callers, is the agency
    directory, says who each case is about and which entities an action may aim at."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(
            MIGRATIONS.open, settings.database_url, settings.auto_migrate
        )
        client = temporal_client or await connect(settings, lazy=True)
        token = settings.service_token.get_secret_value()
        own = None
        if directory is None:
            own = HttpAgencyDirectory(settings.referral_url, token)
        own_records = None
        if records is None:
            own_records = HttpCaseRecords(settings.referral_url, token)
        own_targets = None
        if entity_targets is None:
            own_targets = HttpEntityTargets(settings.referral_url)
        app.state.store = Store(engine)
        app.state.meetings = build_meetings(
            client, app.state.store, settings, records or own_records
        )
        app.state.schedules = ScheduleDesk(TemporalSchedules(client), settings.authorities)
        app.state.directory = directory or own
        app.state.entity_targets = entity_targets or own_targets
        try:
            async with resolving(resolver, settings) as resolve:
                # The MSET services call with the services' token: the referral service asks
                # for a case's record (subject access) and for the reports' aggregates.
                app.state.resolve = with_service_token(token, resolve)
                yield
        finally:
            if own is not None:
                await own.aclose()
            if own_records is not None:
                await own_records.aclose()
            if own_targets is not None:
                await own_targets.aclose()
            engine.dispose()

    app = service_app(
        title="MSET Flow — meetings",
        description="Pre-MSET and MSET panels and extraordinary LMAPS meetings: schedules, "
        "agendas, attendance, decisions and minutes. For partnership staff: authenticate with "
        "your staff token (`Authorization: Bearer ...`). The coordinator prepares meetings, "
        "the chair records decisions, panel members read.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    install_case_error_handlers(app)
    _install_domain_errors(app)
    add_case_record_route(
        app, lambda request, case_id: request.app.state.store.case_record(case_id), CASE_RECORD
    )

    errors = error_responses(401, 403, 422)
    not_found = error_responses(401, 403, 404, 422)
    conflict = error_responses(401, 403, 404, 409, 422)

    def meetings(request: Request) -> Meetings:
        m: Meetings = request.app.state.meetings
        return m

    def schedules(request: Request) -> ScheduleDesk:
        d: ScheduleDesk = request.app.state.schedules
        return d

    add_healthz(app, lambda request: request.app.state.store.engine)

    # --- meetings --------------------------------------------------------------------------

    @app.get("/v1/meetings", response_model=MeetingPage, responses=errors, tags=["meetings"])
    async def list_meetings(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(MEETING_ORDER)],
        local_authority: LocalAuthorityCode | None = None,
        kind: MeetingKind | None = None,
        status: MeetingStatus | None = None,
    ) -> MeetingPage:
        """Meetings, latest first, a page at a time (coordinator, chair, panel member)."""
        return await run_in_threadpool(
            meetings(request).list_meetings,
            caller,
            local_authority=local_authority,
            kind=kind,
            status=status,
            page=page,
        )

    @app.post(
        "/v1/meetings",
        status_code=201,
        response_model=MeetingPublic,
        responses={**errors, **error_responses(503)},
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
        responses=conflict,
        tags=["meetings"],
    )
    async def close_meeting(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        body: Annotated[
            MeetingClose | None,
            Body(
                openapi_examples={
                    "every item decided": {"value": {}},
                    "carry the undecided items over": {"value": {"carry_over": True}},
                }
            ),
        ] = None,
    ) -> MeetingPublic:
        """Close the meeting; its minutes become final. Only a coordinator or chair who
        serves the meeting's authority may (403 otherwise, with the reason). With undecided
        items, send `{"carry_over": true}` to carry them over to the next meeting of this
        kind and authority; without it the close is refused (409, saying how many)."""
        carry = body.carry_over if body else False
        return await run_in_threadpool(meetings(request).close, caller, meeting_id, carry)

    # --- agenda ----------------------------------------------------------------------------

    @app.get(
        "/v1/meetings/{meeting_id}/agenda",
        response_model=AgendaPublic,
        responses=not_found,
        tags=["agenda"],
    )
    async def get_agenda(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        page: Annotated[PageRequest, page_query(AGENDA_ORDER)],
    ) -> AgendaPublic:
        """The agenda, highest risk and longest waiting first, a page at a time, as your role
        may see it (coordinator and chair: everything; panel members: without free-text
        rationales and progress notes). Each case is named by who it is about (`who`: the
        partner's child reference, age, gender, legal status, area, the referring agency),
        read from the referral service now. Each read is recorded."""
        return await meetings(request).agenda(caller, meeting_id, page=page)

    @app.post(
        "/v1/meetings/{meeting_id}/agenda/refresh",
        response_model=AgendaPublic,
        responses={**conflict, **error_responses(503)},
        tags=["agenda"],
    )
    async def refresh_agenda(
        request: Request, caller: Caller, meeting_id: MeetingId
    ) -> AgendaPublic:
        """Draw the agenda up again from the cases as they are now (coordinator; only before
        the first decision). Answers its first page."""
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
        since: Annotated[
            QueryInstant | None,
            Query(description="Default: 12 months ago. Between 1900 and 2199; UTC if no zone."),
        ] = None,
        until: Annotated[
            QueryInstant | None,
            Query(description="Default: now. Between 1900 and 2199; UTC if no zone."),
        ] = None,
    ) -> AttendanceReport:
        """Attendance by agency at an authority's meetings (coordinator, analyst)."""
        return await run_in_threadpool(
            meetings(request).attendance_report, caller, local_authority, since, until
        )

    @app.get(
        "/v1/aggregates/attendance",
        response_model=AttendanceAggregate,
        responses=errors,
        tags=["attendance"],
    )
    async def attendance_aggregate(
        request: Request,
        caller: Caller,
        local_authority: LocalAuthorityCode,
        since: Annotated[QueryInstant, Query(description="Between 1900 and 2199; UTC if no zone.")],
        until: Annotated[QueryInstant, Query(description="Between 1900 and 2199; UTC if no zone.")],
    ) -> AttendanceAggregate:
        """Meetings held and each agency's attendance, as counts (MSET services only)."""
        return await run_in_threadpool(
            meetings(request).attendance_aggregate, caller, local_authority, since, until
        )

    # --- decisions -------------------------------------------------------------------------

    @app.post(
        "/v1/meetings/{meeting_id}/items/{item_id}/decision",
        response_model=ItemDecisionPublic,
        responses={**conflict, **CASE_RESPONSES},
        tags=["decisions"],
    )
    async def decide(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        item_id: uuid.UUID,
        body: Annotated[
            ItemDecisionCreate,
            Body(
                openapi_examples={
                    "Pre-MSET: meets criteria": {"value": pre_mset_decision_example()},
                    "MSET review with a plan": {"value": mset_review_example()},
                }
            ),
        ],
    ) -> ItemDecisionPublic:
        """Record the panel's decision on one agenda item (chair). It is sent to the case's
        workflow, which records it or refuses it whole (422, with its reason; 409 if the case
        has ended). An item is decided once: a second decision gets 409; the same request
        again returns the first answer. Each action's owner must be in the agency directory,
        and each person or place an action names one you may see, of the kind its target
        aims at."""
        await _check_references(request, body)
        return await meetings(request).decide(caller, meeting_id, item_id, body)

    @app.post(
        "/v1/meetings/{meeting_id}/cases/{referral_id}/decision",
        response_model=ItemDecisionPublic,
        responses={**conflict, **CASE_RESPONSES},
        tags=["decisions"],
    )
    async def decide_for_case(
        request: Request,
        caller: Caller,
        meeting_id: MeetingId,
        referral_id: Annotated[uuid.UUID, Path(description="The case (its referral id).")],
        body: Annotated[
            DecisionCreate,
            Body(
                openapi_examples={
                    "Pre-MSET: meets criteria": {
                        "value": {**pre_mset_decision_example(), "decision_id": "pre-mset-4"}
                    },
                    "MSET review with a plan": {
                        "value": {**mset_review_example(), "review_id": "mset-2026-11-item-2"}
                    },
                }
            ),
        ],
    ) -> ItemDecisionPublic:
        """Record the panel's decision on the case's agenda item, under your own decision id
        (`decision_id` or `review_id`) if you give one (chair). The referral API's
        `pre-mset-decision` and `mset-review` with a `meeting_id` come this way, so the
        meeting's record and minutes hold every decision taken in it. Otherwise as the
        item's decision route."""
        await _check_references(request, body)
        return await meetings(request).decide_for_case(caller, meeting_id, referral_id, body)

    # --- minutes ---------------------------------------------------------------------------

    @app.get(
        "/v1/meetings/{meeting_id}/minutes.md",
        response_class=Response,
        responses={**not_found, 200: {"content": {"text/markdown": {}}}},
        tags=["minutes"],
    )
    async def minutes_markdown(request: Request, caller: Caller, meeting_id: MeetingId) -> Response:
        """The minutes as Markdown: attendance and decisions, as your role may see them."""
        blocks = await minutes_doc.compose(
            meetings(request), request.app.state.directory, caller, meeting_id
        )
        body = minutes_doc.to_markdown(blocks)
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
        """The minutes as PDF (the same content as the Markdown), marked OFFICIAL-SENSITIVE
        on every page."""
        blocks = await minutes_doc.compose(
            meetings(request), request.app.state.directory, caller, meeting_id
        )
        body = minutes_doc.to_pdf(blocks, title=f"Minutes of meeting {meeting_id}")
        return Response(
            body, media_type="application/pdf", headers=_attachment(f"minutes-{meeting_id}.pdf")
        )

    # --- schedules -------------------------------------------------------------------------

    @app.get("/v1/schedules", response_model=ScheduleList, responses=errors, tags=["schedules"])
    async def list_schedules(request: Request, caller: Caller) -> ScheduleList:
        """The monthly meeting schedules of the partnership's authorities (coordinator)."""
        return await schedules(request).list_schedules(caller)

    @app.post(
        "/v1/schedules/{local_authority}/{kind}/trigger",
        status_code=202,
        response_model=ScheduleTriggered,
        responses={**not_found, **error_responses(503)},
        tags=["schedules"],
    )
    async def trigger_schedule(
        request: Request,
        caller: Caller,
        local_authority: Authority,
        kind: MeetingKind,
        body: Annotated[
            ScheduleTrigger | None,
            # The dated example is the model's own (made when the schema is asked for).
            Body(openapi_examples={"held now": {"value": {}}}),
        ] = None,
    ) -> ScheduleTriggered:
        """Call an authority's Pre-MSET or MSET meeting now (coordinator), held when you say
        (default: now): it is called and its agenda drawn up within seconds; list meetings
        to find it."""
        held_at = body.held_at if body else None
        return await schedules(request).trigger(caller, local_authority, kind, held_at)

    return app


_TAGS = {k.value for k in DecisionKind}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


async def _check_references(
    request: Request, body: PreMsetDecisionRequest | MsetReviewRequest
) -> None:
    """What a decision names in the referral service's records, checked before anything is
    sent: each action's owner is in the agency directory, and each person or place an action
    aims at is one the caller may aim at."""
    await check_owners(request.app.state.directory, body)
    await check_entity_targets(request.app.state.entity_targets, read_credential(request), body)


def _install_domain_errors(app: FastAPI) -> None:
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("temporal unavailable", exc_info=exc.__cause__ or exc)
        return unavailable_response(f"{exc}; nothing was recorded, please retry")

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        # A decision is a union tagged by its "kind": pydantic names the tag in each error's
        # location ("pre_mset.outcome"); the caller wrote "outcome", so that is the field.
        assert isinstance(exc, RequestValidationError)
        return invalid_request_response(
            [
                {**e, "loc": [p for n, p in enumerate(e["loc"]) if not (n == 1 and p in _TAGS)]}
                for e in exc.errors()
            ]
        )

    app.add_exception_handler(RequestValidationError, invalid_request)
    answer(app, 403, NotAllowed)
    answer(app, 404, MeetingNotFound, ItemNotFound, ScheduleNotFound)
    answer(app, 409, Conflict)
    answer_invalid_field(app, DecisionInvalid, what="decision")
    answer_invalid_field(app, RequestInvalid)
    app.add_exception_handler(CasesUnavailable, unavailable)
    app.add_exception_handler(DirectoryUnavailable, unavailable)
    app.add_exception_handler(RecordsUnavailable, unavailable)
    app.add_exception_handler(EntityTargetsUnavailable, unavailable)


def main() -> None:
    serve_main("meeting", MeetingSettings, create_app)


if __name__ == "__main__":
    main()
