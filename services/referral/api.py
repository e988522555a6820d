"""Referral intake API for partner systems. HTTP only: the work is in intake.py/identity.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mset_contract.agencies import AgencyPage, AgencyPublic
from mset_contract.auth import IntrospectRequest, IntrospectResult, Principal
from mset_contract.cases import (
    ActionProgressRequest,
    CasePage,
    CaseView,
    ExitRequest,
    MsetReviewCreate,
    OwnedActionPage,
    PreMsetDecisionRequest,
)
from mset_contract.catalogue import (
    CURRENT_CATALOGUE_VERSION,
    IndicatorCatalogue,
    UnknownCatalogueVersion,
    load_catalogue,
)
from mset_contract.episodes import EpisodeListStatus, ReturnedEpisodePage
from mset_contract.operations import CaseAggregates
from mset_contract.papers import CaseWhoPage, PanelPapers
from mset_contract.referral import (
    MissingEpisodeAccepted,
    MissingReportCreate,
    ReferralAccepted,
    ReferralCreate,
    ReturnCreate,
    RhiOutcomeCreate,
    referral_examples,
)
from mset_contract.referral_workflow import (
    ActionProgressRecorded,
    ExitResult,
    MissingEpisodeState,
    MsetReviewRecorded,
    PreMsetDecisionResult,
    ReturnRecorded,
    RhiRecorded,
)
from mset_contract.report_publication import PublishedReport
from mset_contract.reports import Report, ReportName
from mset_contract.types import LocalAuthorityCode, QueryInstant
from mset_contract.vocab import AgencyType, Stage
from mset_platform.cases import CaseClient
from mset_platform.cases_http import CASE_RESPONSES, install_case_error_handlers
from mset_platform.edge import (
    Caller,
    ErrorBody,
    FieldError,
    add_healthz,
    answer,
    answer_invalid_field,
    error_response,
    error_responses,
    read_credential,
    serve_main,
    service_app,
    unavailable_response,
)
from mset_platform.identity import CALLER_ADDRESS, AuthenticationThrottled, with_service_token
from mset_platform.paging import PageRequest, page_query
from mset_platform.temporal import connect
from services.referral.actions import ActionDesk, ActionStatus
from services.referral.agencies import Directory
from services.referral.cases import CaseDesk
from services.referral.child_identity import IdentityStore
from services.referral.child_links import ChildLinks
from services.referral.child_links_api import add_child_link_routes, install_child_link_errors
from services.referral.domain import (
    IdempotencyKeyReused,
    NotAnOwner,
    NotAPartnerSystem,
    NotAService,
    NotPermitted,
    NotStaff,
    ReferralNotFound,
    RequestInvalid,
    SubmissionConflict,
    UnknownCase,
    WorkflowUnavailable,
)
from services.referral.entities import EntityStore
from services.referral.entity_api import add_entity_routes, install_entity_errors
from services.referral.entity_desk import EntityDesk, PatternDesk
from services.referral.episode_records import RETURNED_ORDER
from services.referral.identity import Identity, Throttle
from services.referral.intake import Intake
from services.referral.ledger_api import ShownToQuery, add_ledger_routes, install_ledger_errors
from services.referral.meetings import HttpMeetings, MeetingRefused, MeetingsUnavailable
from services.referral.metrics import referral_gauges
from services.referral.migrate import MIGRATIONS
from services.referral.missing import MissingDesk
from services.referral.operations import CaseCounts
from services.referral.papers import HttpRules, PapersDesk
from services.referral.policy import INTROSPECT, require
from services.referral.report_routes import add_board_pack_route, report_response
from services.referral.report_store import ReportStore
from services.referral.reports import MeetingAggregates, ReportQuery, ReportsDesk
from services.referral.settings import ReferralSettings
from services.referral.store import AGENCY_ORDER, CASE_ORDER, PLAN_CASE_ORDER, Store
from services.referral.subject import HttpCaseRecordSource, SubjectAccess

log = logging.getLogger("mset.referral")


def desk(request: Request) -> CaseDesk:
    d: CaseDesk = request.app.state.desk
    return d


def missing(request: Request) -> MissingDesk:
    m: MissingDesk = request.app.state.missing
    return m


def create_app(settings: ReferralSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(
            MIGRATIONS.open, settings.database_url, settings.auto_migrate
        )
        store = Store(engine)
        client = await connect(settings, lazy=True)
        app.state.store = store
        app.state.identity = Identity(
            store,
            staff_token_ttl=settings.staff_token_ttl,
            throttle=Throttle(settings.auth_failure_limit, settings.auth_failure_window),
        )
        timeout = timedelta(seconds=settings.decision_timeout_seconds)
        cases = CaseClient(
            client,
            update_timeout=timeout,
            start_timeout=timedelta(seconds=settings.start_timeout_seconds),
        )
        identities = IdentityStore(settings.identity_cipher(), settings.identity_index())
        # People and places of concern are sealed under the identity keyring and indexed
        # with its blind-index key (ADR 0030).
        entities = EntityStore(settings.identity_cipher(), settings.identity_index())
        app.state.intake = Intake(
            store,
            cases,
            authorities=settings.authorities,
            identities=identities,
            entities=entities,
        )
        app.state.child_links = ChildLinks(app.state.intake, identities)
        app.state.entities = EntityDesk(app.state.intake, entities)
        app.state.patterns = PatternDesk(app.state.entities)
        app.state.directory = Directory(store)
        app.state.desk = CaseDesk(app.state.intake, cases, app.state.directory)
        app.state.actions = ActionDesk(app.state.intake)
        app.state.missing = MissingDesk(store, cases, authorities=settings.authorities)
        rules = HttpRules(settings.triage_url, settings.service_token.get_secret_value())
        app.state.papers = PapersDesk(app.state.intake, rules)
        app.state.papers.patterns = app.state.patterns
        meetings = HttpMeetings(settings.meeting_url)
        app.state.desk.meetings = meetings
        app.state.desk.entities = app.state.entities
        token = settings.service_token.get_secret_value()
        held = [
            HttpCaseRecordSource("meeting", settings.meeting_url, token),
            HttpCaseRecordSource("notifications", settings.notifications_url, token),
        ]
        app.state.subject = SubjectAccess(
            store, app.state.intake.ledger, cases, held, identities=identities
        )
        aggregates = MeetingAggregates(
            settings.meeting_url, settings.service_token.get_secret_value()
        )
        app.state.reports = ReportsDesk(
            ReportStore(store),
            aggregates,
            settings.authorities,
            rhi_target_percent=settings.rhi_target_percent,
        )
        app.state.operations = CaseCounts(store, client, settings.temporal_namespace)
        gauges = referral_gauges(store).register(app.state.metrics)
        try:
            yield
        finally:
            app.state.metrics.unregister(gauges)
            await meetings.aclose()
            for source in held:
                await source.aclose()
            await aggregates.aclose()
            await rules.aclose()
            engine.dispose()

    app = service_app(
        title="MSET Flow — referral intake",
        description="Partner systems submit the MSET Risk Assessment Tool and follow its "
        "progress. Authenticate with your agency's API key in the `X-API-Key` header.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    install_case_error_handlers(app)
    _install_domain_errors(app)
    install_ledger_errors(app)
    add_ledger_routes(app)
    install_child_link_errors(app)
    add_child_link_routes(app)
    install_entity_errors(app)
    add_entity_routes(app)

    async def resolve(credential: str) -> Principal | None:
        identity: Identity = app.state.identity
        return await run_in_threadpool(identity.authenticate, credential, CALLER_ADDRESS.get())

    # The other MSET services call with the shared service token (the agency directory, and
    # introspection); introspection answers for agencies' keys and staff tokens only.
    app.state.resolve = with_service_token(settings.service_token.get_secret_value(), resolve)
    errors = error_responses(401, 422)
    case_errors = {**error_responses(401, 403, 404, 422), **CASE_RESPONSES}

    add_healthz(app, lambda request: request.app.state.store.engine)

    @app.post(
        "/v1/referrals",
        status_code=202,
        response_model=ReferralAccepted,
        responses={**errors, **error_responses(403, 409, 503)},
        tags=["referrals"],
    )
    async def submit_referral(
        request: Request,
        caller: Caller,
        tool: Annotated[
            ReferralCreate,
            Body(
                openapi_examples={
                    name: {
                        "summary": f"a Risk Assessment Tool the rules triage as {name}",
                        "value": value,
                    }
                    for name, value in referral_examples().items()
                }
            ),
        ],
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
        ] = None,
    ) -> ReferralAccepted:
        """Submit a completed Risk Assessment Tool. Retries are safe: the same
        Idempotency-Key, or the same partner_reference, returns the first answer."""
        return await request.app.state.intake.submit(caller, tool, idempotency_key)

    @app.get(
        "/v1/referrals",
        response_model=CasePage,
        responses=error_responses(401, 403, 422),
        tags=["cases"],
    )
    async def list_cases(
        request: Request,
        caller: Caller,
        stage: Annotated[Stage, Query(description="The stage the cases are at.")],
        page: Annotated[PageRequest, page_query(CASE_ORDER)],
        local_authority: Annotated[
            LocalAuthorityCode | None,
            Query(description="Only this authority's (one you serve)."),
        ] = None,
    ) -> CasePage:
        """The cases at a stage (those awaiting Pre-MSET, say), the one submitted longest ago
        first, a page at a time: the authorities you serve (coordinator, chair)."""
        return await desk(request).at_stage(caller, stage, local_authority, page)

    @app.get(
        "/v1/referrals/{referral_id}",
        response_model=CaseView,
        responses={**errors, 404: {"model": ErrorBody}},
        tags=["referrals"],
    )
    async def get_referral(request: Request, caller: Caller, referral_id: uuid.UUID) -> CaseView:
        """The case's stage, level, open actions and next deadline."""
        return await desk(request).view(caller, referral_id)

    @app.get(
        "/v1/referrals/{referral_id}/papers",
        response_model=PanelPapers,
        responses={**errors, 404: {"model": ErrorBody}},
        tags=["cases"],
    )
    async def panel_papers(request: Request, caller: Caller, referral_id: uuid.UUID) -> PanelPapers:
        """The case's papers for the panel: who, why (indicators, the rules' reasons, the
        referrer's judgement, people and places of concern) and its history, as your role
        may see them (coordinator and chair: everything; panel members: without rationales
        and notes). Each read is recorded."""
        papers: PapersDesk = request.app.state.papers
        return await papers.papers(caller, referral_id)

    @app.get(
        "/v1/cases/who",
        response_model=CaseWhoPage,
        responses=error_responses(401, 403, 422),
        tags=["cases"],
    )
    async def cases_who(
        request: Request,
        caller: Caller,
        id: Annotated[
            list[uuid.UUID],
            Query(min_length=1, max_length=100, description="Case ids (up to 100)."),
        ],
        shown: Annotated[ShownToQuery, Depends()],
    ) -> CaseWhoPage:
        """Who each case is about, as its papers say (the MSET services' token: the meeting
        service names the cases on its agendas and minutes by it, and says whom it shows
        them to: `for_agency`, `for_user`, `for_role`, `view`, `meeting_id`). Each case is an
        entry in the information-sharing ledger, to that reader."""
        papers: PapersDesk = request.app.state.papers
        return await papers.who(caller, id, shown.shown())

    @app.post(
        "/v1/referrals/{referral_id}/pre-mset-decision",
        response_model=PreMsetDecisionResult,
        responses=case_errors,
        tags=["cases"],
    )
    async def pre_mset_decision(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: PreMsetDecisionRequest
    ) -> PreMsetDecisionResult:
        """The Pre-MSET panel's decision (chair). The case checks it before it is recorded.
        With the `meeting_id` of the meeting that decided, it is recorded through that
        meeting (on the case's agenda item), so its minutes list it."""
        return await desk(request).pre_mset(caller, referral_id, body, _credential(request))

    @app.post(
        "/v1/referrals/{referral_id}/mset-review",
        response_model=MsetReviewRecorded,
        responses=case_errors,
        tags=["cases"],
    )
    async def mset_review(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: MsetReviewCreate
    ) -> MsetReviewRecorded:
        """The MSET group's review (chair): the agreed level and the plan's actions. With the
        `meeting_id` of the meeting that reviewed, it is recorded through that meeting (on
        the case's agenda item, 422 naming `meeting_id` if there is none), so its minutes
        list it and its actions; an LMAPS referral (`raise_lmaps`) needs the meeting."""
        return await desk(request).mset_review(caller, referral_id, body, _credential(request))

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
        """Progress on an action, or its completion: the owning agency (its system's API key,
        or its staff), or the coordinator or chair."""
        return await desk(request).action_progress(caller, referral_id, action_id, body)

    @app.get(
        "/v1/actions",
        response_model=OwnedActionPage,
        responses=error_responses(401, 403, 422),
        tags=["cases"],
    )
    async def owned_actions(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(PLAN_CASE_ORDER)],
        status: ActionStatus = "open",
    ) -> OwnedActionPage:
        """The actions your agency owns, case by case (its system's API key, or its staff).
        Report progress on one with its case's `/actions/{action_id}/progress`."""
        actions: ActionDesk = request.app.state.actions
        return await actions.owned(caller, page=page, status=status)

    @app.post(
        "/v1/referrals/{referral_id}/exit",
        response_model=ExitResult,
        responses=case_errors,
        tags=["cases"],
    )
    async def exit_case(
        request: Request, caller: Caller, referral_id: uuid.UUID, body: ExitRequest
    ) -> ExitResult:
        """The child leaves MSET, with a reason (chair or coordinator)."""
        return await desk(request).exit(caller, referral_id, body)

    @app.post(
        "/v1/missing-episodes",
        status_code=202,
        response_model=MissingEpisodeAccepted,
        responses={**errors, **error_responses(403, 409, 503)},
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
        "/v1/missing-episodes",
        response_model=ReturnedEpisodePage,
        responses=error_responses(401, 403, 422),
        tags=["missing episodes"],
    )
    async def returned_episodes(
        request: Request,
        caller: Caller,
        status: EpisodeListStatus,
        page: Annotated[PageRequest, page_query(RETURNED_ORDER)],
    ) -> ReturnedEpisodePage:
        """Returned children awaiting their Return Home Interview, the one due soonest first
        (`status=returned`): a provider's commissioning authorities, a coordinator's own."""
        return await missing(request).returned(caller, page)

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

    @app.get(
        "/v1/agencies",
        response_model=AgencyPage,
        responses=error_responses(401, 403, 422),
        tags=["agencies"],
    )
    async def list_agencies(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(AGENCY_ORDER)],
        agency_id: Annotated[
            list[uuid.UUID] | None,
            Query(alias="id", description="Only these agencies (repeat; at most 100)."),
        ] = None,
        type: AgencyType | None = None,
        local_authority: LocalAuthorityCode | None = None,
    ) -> AgencyPage:
        """The partnership's agencies by name, with type and authorities, to choose an
        action's owner from (staff, and the MSET services)."""
        directory: Directory = request.app.state.directory
        return await run_in_threadpool(
            lambda: directory.page(
                caller,
                at=page,
                ids=agency_id or [],
                type_=type,
                local_authority=local_authority,
            )
        )

    @app.get(
        "/v1/agencies/{agency_id}",
        response_model=AgencyPublic,
        responses=error_responses(401, 403, 404, 422),
        tags=["agencies"],
    )
    async def get_agency(request: Request, caller: Caller, agency_id: uuid.UUID) -> AgencyPublic:
        """One agency (staff, and the MSET services)."""
        directory: Directory = request.app.state.directory
        found = await run_in_threadpool(directory.one, caller, agency_id)
        if found is None:
            raise ReferralNotFound(f"no agency {agency_id}")
        return found

    @app.get(
        "/v1/catalogue",
        response_model=IndicatorCatalogue,
        responses=error_responses(404),
        tags=["referrals"],
    )
    async def catalogue(
        version: Annotated[
            str,
            Query(max_length=16, description="A catalogue version; the current one if omitted."),
        ] = CURRENT_CATALOGUE_VERSION,
    ) -> IndicatorCatalogue:
        """The indicator catalogue: the codes a Risk Assessment Tool may use."""
        return load_catalogue(version)

    add_board_pack_route(app, settings.suppression_threshold)

    @app.get(
        "/v1/reports/{name}",
        response_model=Report | PublishedReport,
        responses={
            **error_responses(401, 403, 422, 503),
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "image/svg+xml": {"schema": {"type": "string"}},
                }
            },
        },
        tags=["reports"],
    )
    async def report(
        request: Request,
        caller: Caller,
        name: ReportName,
        authority: Annotated[
            LocalAuthorityCode | None, Query(description="One local authority; or region.")
        ] = None,
        region: Annotated[
            str | None,
            Query(
                max_length=16,
                description="'all': every authority of the partnership.",
                # The one value (the desk's check names it when another is sent).
                json_schema_extra={"enum": ["all"]},
            ),
        ] = None,
        since: Annotated[
            QueryInstant | None,
            Query(description="Default: 12 months before until. UTC if no zone."),
        ] = None,
        until: Annotated[
            QueryInstant | None, Query(description="Default: now (exclusive). UTC if no zone.")
        ] = None,
        format: Annotated[
            Literal["json", "csv", "svg"] | None,
            Query(
                description="json, csv or svg (each table's chart beside it); otherwise as "
                "the Accept header says (text/csv, image/svg+xml)."
            ),
        ] = None,
        suppress: Annotated[
            bool, Query(description="For publication: small counts shown as [c].")
        ] = False,
    ) -> Report | PublishedReport | Response:
        """A board report, as counts (analyst, manager, coordinator): JSON, CSV or SVG."""
        reports: ReportsDesk = request.app.state.reports
        made = await reports.report(caller, name, ReportQuery(authority, region, since, until))
        return report_response(
            made, format, request.headers.get("accept", ""), suppress,
            settings.suppression_threshold,
        )  # fmt: skip

    @app.get(
        "/v1/aggregates/cases",
        response_model=CaseAggregates,
        responses=error_responses(401, 403),
        tags=["operations"],
    )
    async def case_aggregates(request: Request, caller: Caller) -> CaseAggregates:
        """Counts for operations (the ops role): open cases by stage and authority, next
        deadlines due within 7 days and passed, workflows failed in the last 7 days."""
        counts: CaseCounts = request.app.state.operations
        return await counts.aggregates(caller)

    @app.post(
        "/v1/auth/introspect",
        response_model=IntrospectResult,
        responses=error_responses(401, 403, 422, 429),
        tags=["auth"],
    )
    async def introspect(
        request: Request,
        caller: Caller,
        body: Annotated[
            IntrospectRequest,
            Body(openapi_examples={"token": {"value": {"credential": "msetu_..."}}}),
        ],
    ) -> IntrospectResult:
        """Who a credential belongs to: for the other MSET services only (the service
        token). A throttled source is answered ``retry_after``, with nothing checked."""
        require(caller, INTROSPECT, NotAService)
        identity: Identity = app.state.identity
        # Failures are counted under the address the asking service saw; a service that
        # does not say has them counted together, apart from any real address.
        source = body.source or "unknown"
        try:
            principal = await run_in_threadpool(identity.authenticate, body.credential, source)
        except AuthenticationThrottled as exc:
            return IntrospectResult(active=False, retry_after=exc.retry_after)
        return IntrospectResult(active=principal is not None, principal=principal)

    return app


def _credential(request: Request) -> dict[str, str]:
    """The caller's own credential, for a decision passed on to the meeting service (which
    decides, as for any caller, whether this chair may decide there)."""
    return {"Authorization": f"Bearer {read_credential(request) or ''}"}


def _install_domain_errors(app: FastAPI) -> None:
    # A key or reference used before for another body: 409, as payment APIs answer it.
    async def key_reused(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            409, str(exc), [FieldError(field="header.idempotency-key", reason=str(exc))]
        )

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SubmissionConflict)
        reason = "differs from the first submission under this key or reference"
        return error_response(
            409, str(exc), [FieldError(field=f, reason=reason) for f in exc.fields]
        )

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("workflow start failed", exc_info=exc.__cause__ or exc)
        return unavailable_response(str(exc))

    async def unknown_case(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            422, str(exc), [FieldError(field="case_referral_id", reason="no open MSET case")]
        )

    answer_invalid_field(app, RequestInvalid)
    app.add_exception_handler(UnknownCase, unknown_case)
    answer(app, 404, ReferralNotFound, UnknownCatalogueVersion)
    app.add_exception_handler(IdempotencyKeyReused, key_reused)
    app.add_exception_handler(SubmissionConflict, conflict)

    async def meeting_refused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MeetingRefused)
        return error_response(exc.status, exc.body.detail, exc.body.errors)

    answer(app, 403, NotAPartnerSystem, NotStaff, NotAnOwner, NotAService, NotPermitted)
    app.add_exception_handler(WorkflowUnavailable, unavailable)
    app.add_exception_handler(MeetingRefused, meeting_refused)
    app.add_exception_handler(MeetingsUnavailable, unavailable)


def main() -> None:
    serve_main("referral", ReferralSettings, create_app)


if __name__ == "__main__":
    main()
