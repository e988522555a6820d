"""The staff portal: server-rendered pages (GOV.UK Frontend, MoJ Frontend) over the MSET
services' APIs. HTTP only: what a page shows comes from ``backend.py`` (the services, with
the signed-in person's own credential), what the portal decides for itself from
``domain.py`` and ``timeline.py``, sessions and signing in from ``sessions.py``.

Every page works without JavaScript: forms post and redirect (post/redirect/get), lists
page through links, filters are GET forms. GOV.UK Frontend's script only adds conveniences
(focusing the error summary, the mobile menu).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mset_contract.auth import Principal
from mset_contract.cases import (
    CaseView,
    MsetReviewCreate,
    MsetReviewRequest,
    PreMsetDecisionRequest,
)
from mset_contract.meeting import MeetingKind, MeetingPublic
from mset_contract.papers import PanelPapers
from mset_contract.referral import RhiOutcomeCreate
from mset_contract.vocab import PreMsetOutcome, RiskLevel, Stage
from mset_platform.edge import BodyLimit, FieldError, add_healthz, caller_address, serve_main
from mset_platform.identity import (
    CALLER_ADDRESS,
    AuthenticationThrottled,
    IdentityUnavailable,
    Introspector,
)
from mset_platform.metrics import install_metrics
from services.notifications.schemas import ActionedCreate
from services.portal import attendance, dashboards, domain, plan
from services.portal.backend import (
    Backend,
    Conflict,
    Invalid,
    NotFound,
    Refused,
    ServiceAnswer,
    SignedOut,
    Unavailable,
)
from services.portal.domain import Section
from services.portal.sessions import (
    Clock,
    IdleExpired,
    MemorySessionStore,
    Session,
    SessionStore,
    SignInMethod,
    SignInRefused,
    TokenSignIn,
    utc_now,
)
from services.portal.settings import PortalSettings
from services.portal.timeline import case_timeline

log = logging.getLogger("mset.portal")

HERE = Path(__file__).resolve().parent
COOKIE = "mset_portal_session"
LONDON = ZoneInfo("Europe/London")
INBOX_STATES = {
    "open": "Open (not yet actioned)",
    "unacknowledged": "Not yet acknowledged",
    "actioned": "Actioned",
    "all": "All",
}
# A page's script, styles, fonts and images come from the portal itself; nothing is framed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


# --- what a request may be answered with, before its page ---------------------------------


class SignInNeeded(Exception):
    """No signed-in session: to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str, notice: str | None = None) -> None:
        self.next_path = next_path
        self.notice = notice


class NotForYourRole(Exception):
    """The portal's own table (domain.SECTION_ROLES) says this role never uses the page."""


class BadForm(Exception):
    """A form came without this session's CSRF token (another site's, or an old page's)."""


# --- presentation helpers (Jinja filters) --------------------------------------------------


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(LONDON)
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{local:%p}".replace("AM", "am").replace(
        "PM", "pm"
    )


def level_name(value: RiskLevel | str | None) -> str:
    return domain.LEVEL_NAMES[RiskLevel(value)] if value else "Not agreed yet"


def level_tag(value: RiskLevel | str | None) -> str:
    return domain.LEVEL_TAGS[RiskLevel(value)] if value else "govuk-tag--grey"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        words=domain.words,
        kind=lambda k: domain.MEETING_KINDS.get(str(k), domain.words(str(k))),
        stage=lambda st: domain.STAGE_NAMES.get(str(st), domain.words(str(st))),
        level=level_name,
        level_tag=level_tag,
        urgency_tag=lambda u: domain.URGENCY_TAGS.get(u, "govuk-tag--grey"),
        outcome=lambda o: domain.OUTCOME_NAMES[PreMsetOutcome(o)],
        rhi_outcome=lambda o: domain.RHI_OUTCOME_NAMES.get(o, domain.words(str(o))),
    )
    env.globals.update(role_names=domain.ROLE_NAMES)
    return env


class SecurityHeaders:
    """Every answer: its own content security policy, no sniffing, no framing, no referrer
    to other sites; pages hold children's data, so no page is stored by the browser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(("/assets/", "/static/"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _assets(settings: PortalSettings) -> tuple[StaticFiles, StaticFiles, StaticFiles]:
    """GOV.UK Frontend's and MoJ Frontend's built files, as npm installed them. Their
    stylesheets ask for fonts and images under /assets/, so that one path looks in both
    packages' asset folders."""
    govuk = settings.assets_dir / "govuk-frontend" / "dist" / "govuk"
    moj = settings.assets_dir / "@ministryofjustice" / "frontend" / "moj"
    missing = [p for p in (govuk, moj) if not p.is_dir()]
    if missing:
        raise RuntimeError(
            f"the portal's front-end packages are missing ({missing[0]}): run `make install` "
            "(npm ci in services/portal)"
        )
    assets = StaticFiles(directory=govuk / "assets")
    assets.all_directories.append(moj / "assets")
    return assets, StaticFiles(directory=govuk), StaticFiles(directory=moj)


# --- the app -------------------------------------------------------------------------------


def create_app(
    settings: PortalSettings,
    *,
    sessions: SessionStore | None = None,
    sign_in: SignInMethod | None = None,
    backend: Backend | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """The portal. Tests may pass their own session store, sign-in method or backend."""
    from datetime import timedelta

    store: SessionStore = sessions or MemorySessionStore(
        idle=timedelta(minutes=settings.session_idle_minutes), clock=clock
    )
    owned: list[Callable[[], Awaitable[None]]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The referral service's introspection and the services' clients, unless given.
        if app.state.sign_in is None:
            introspector = Introspector(
                settings.referral_url,
                settings.service_token.get_secret_value(),
                ttl_seconds=settings.introspect_ttl_seconds,
            )
            owned.append(introspector.aclose)
            app.state.sign_in = TokenSignIn(introspector)
        if app.state.backend is None:
            made = Backend(
                settings.referral_url,
                settings.meeting_url,
                settings.notifications_url,
                settings.service_timeout_seconds,
            )
            owned.append(made.aclose)
            app.state.backend = made
        try:
            yield
        finally:
            for close in owned:
                await close()

    app = FastAPI(
        title="MSET Flow — staff portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sign_in = sign_in
    app.state.backend = backend
    templates = Jinja2Templates(env=_environment())
    assets, govuk, moj = _assets(settings)
    app.mount("/assets", assets, name="assets")
    app.mount("/static/govuk", govuk, name="govuk")
    app.mount("/static/moj", moj, name="moj")
    app.mount("/static/portal", StaticFiles(directory=HERE / "static"), name="portal")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    install_metrics(app)
    add_healthz(app)
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="/healthz,/livez,/metrics,/assets,/static",
        exclude_spans=["receive", "send"],
    )

    # --- sessions --------------------------------------------------------------------------

    def set_cookie(response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
            path="/",
        )

    def anonymous(request: Request) -> Session:
        """The request's session, signed in or not; a new anonymous one when it has none."""
        sid = request.cookies.get(COOKIE)
        found: Session | None = None
        notice = None
        if sid:
            try:
                found = (
                    store.find_or_expired(sid)
                    if isinstance(store, MemorySessionStore)
                    else store.find(sid)
                )
            except IdleExpired:
                notice = (
                    f"You were signed out because you did nothing for "
                    f"{settings.session_idle_minutes} minutes. Sign in again to carry on."
                )
        session = found or store.start(notice=notice)
        request.state.session = session
        return session

    def signed_in(request: Request, section: Section) -> tuple[Session, str, Principal]:
        session = anonymous(request)
        if not session.signed_in:
            # Back to the page asked for, its query too (an agenda item's form names its
            # case there).
            query = request.url.query
            raise SignInNeeded(request.url.path + (f"?{query}" if query else ""), session.notice)
        assert session.credential is not None and session.principal is not None
        if not domain.may_use(session.principal.role, section):
            raise NotForYourRole(section.value)
        return session, session.credential, session.principal

    async def posted(request: Request, session: Session) -> dict[str, str]:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not session.csrf_ok(fields.get("csrf_token")):
            raise BadForm()
        return fields

    def flash(session: Session, message: str) -> None:
        store.save(replace(session, flash=message))

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session: Session | None = getattr(request.state, "session", None)
        principal = session.principal if session else None
        message = session.flash if session else None
        if session and (message or session.notice) and session.signed_in:
            store.save(replace(session, flash=None, notice=None))
        response = templates.TemplateResponse(
            request,
            template,
            {
                "principal": principal,
                "navigation": domain.navigation(principal.role if principal else None),
                "csrf_token": session.csrf if session else "",
                "flash": message,
                "path": request.url.path,
                **context,
            },
            status_code=status,
        )
        if session:
            set_cookie(response, session)
        return response

    def redirect(request: Request, to: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303)
        session: Session | None = getattr(request.state, "session", None)
        if session:
            set_cookie(response, session)
        return response

    def back(request: Request) -> Backend:
        b: Backend = request.app.state.backend
        return b

    # --- what the services' answers look like to a person ----------------------------------

    async def _sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        target = exc.next_path if exc.next_path.startswith("/") else "/"
        going = f"?next={quote(target, safe='/')}" if target != "/" else ""
        return redirect(request, "/sign-in" + going)

    async def _refused(request: Request, exc: Exception) -> Response:
        reason = exc.detail if isinstance(exc, ServiceAnswer) else None
        return render(request, "403.html", status=403, reason=reason)

    async def _not_found(request: Request, exc: Exception) -> Response:
        return render(request, "404.html", status=404)

    async def _unavailable(request: Request, exc: Exception) -> Response:
        log.warning("a service did not answer: %s", exc)
        return render(request, "503.html", status=503)

    async def _signed_out(request: Request, exc: Exception) -> Response:
        # The credential was revoked or has expired since sign-in: the session is over.
        session: Session | None = getattr(request.state, "session", None)
        if session:
            store.end(session.id)
        request.state.session = store.start(
            notice="Your sign-in is no longer valid. Sign in again to carry on."
        )
        return redirect(request, "/sign-in")

    async def _bad_form(request: Request, exc: Exception) -> Response:
        return render(request, "400.html", status=400)

    app.add_exception_handler(SignInNeeded, _sign_in_needed)
    app.add_exception_handler(NotForYourRole, _refused)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(IdentityUnavailable, _unavailable)
    app.add_exception_handler(SignedOut, _signed_out)
    app.add_exception_handler(BadForm, _bad_form)

    # --- signing in and out ----------------------------------------------------------------

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/") -> Response:
        session = anonymous(request)
        if session.signed_in:
            return redirect(request, "/")
        return render(request, "sign_in.html", next=_local(next), notice=session.notice)

    @app.post("/sign-in", response_class=HTMLResponse)
    async def sign_in_post(request: Request) -> Response:
        session = anonymous(request)
        form = await posted(request, session)
        target = _local(form.get("next", "/"))
        method: SignInMethod = request.app.state.sign_in
        # Failed sign-ins are counted (and throttled) by the referral service under the
        # address the person signs in from.
        address = CALLER_ADDRESS.set(caller_address(request))
        try:
            who = await method.sign_in(form)
        except SignInRefused as exc:
            errors = {exc.field: exc.reason}
            return render(request, "sign_in.html", status=422, next=target, errors=errors)
        except AuthenticationThrottled as exc:
            page = render(
                request, "sign_in.html", status=429, next=target, errors={"token": str(exc)}
            )
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        finally:
            CALLER_ADDRESS.reset(address)
        # A new id once signed in: an id planted before sign-in is worth nothing after it.
        store.end(session.id)
        fresh = store.start()
        fresh = replace(fresh, credential=who.credential, principal=who.principal)
        store.save(fresh)
        request.state.session = fresh
        log.info("signed in", extra={"role": str(who.principal.role)})
        return redirect(request, target)

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        session = anonymous(request)
        await posted(request, session)
        store.end(session.id)
        request.state.session = store.start(notice="You have signed out.")
        return redirect(request, "/sign-in")

    # --- my work ---------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        _, credential, principal = signed_in(request, Section.home)
        inbox = None
        if domain.may_use(principal.role, Section.inbox):
            inbox = await back(request).inbox(credential, "unacknowledged", None, 5)
        meetings = None
        if domain.may_use(principal.role, Section.meetings):
            meetings = await back(request).meetings(credential, None, 5, status="scheduled")
        return render(
            request,
            "home.html",
            inbox=inbox,
            meetings=meetings,
            may_find_case=domain.may_use(principal.role, Section.cases),
        )

    # --- the inbox -------------------------------------------------------------------------

    @app.get("/inbox", response_class=HTMLResponse)
    async def inbox(request: Request, state: str = "open", cursor: str | None = None) -> Response:
        _, credential, _ = signed_in(request, Section.inbox)
        if state not in INBOX_STATES:
            state = "open"
        page = await back(request).inbox(credential, state, cursor, settings.page_size)  # type: ignore[arg-type]
        return render(
            request, "inbox.html", page=page, state=state, states=INBOX_STATES, cursor=cursor
        )

    @app.get("/inbox/{item_id}", response_class=HTMLResponse)
    async def inbox_item(request: Request, item_id: uuid.UUID) -> Response:
        _, credential, _ = signed_in(request, Section.inbox)
        item = await back(request).inbox_item(credential, item_id)
        return render(request, "inbox_item.html", item=item, errors={}, note="")

    @app.post("/inbox/{item_id}/acknowledge")
    async def acknowledge(request: Request, item_id: uuid.UUID) -> Response:
        session, credential, _ = signed_in(request, Section.inbox)
        await posted(request, session)
        await back(request).acknowledge(credential, item_id)
        flash(session, "You have acknowledged this escalation.")
        return redirect(request, f"/inbox/{item_id}")

    @app.post("/inbox/{item_id}/actioned", response_class=HTMLResponse)
    async def actioned(request: Request, item_id: uuid.UUID) -> Response:
        session, credential, _ = signed_in(request, Section.inbox)
        form = await posted(request, session)
        note = form.get("note", "")
        errors: dict[str, str] = {}
        try:
            await back(request).actioned(credential, item_id, ActionedCreate(note=note))
        except ValidationError:
            errors["note"] = "Enter what was done"
        except (Invalid, Conflict) as exc:
            errors["note"] = _reason(exc)
        if errors:
            item = await back(request).inbox_item(credential, item_id)
            return render(
                request, "inbox_item.html", status=422, item=item, errors=errors, note=note
            )
        flash(session, "You have marked this escalation as actioned.")
        return redirect(request, f"/inbox/{item_id}")

    # --- operations and reports: counts only (dashboards.py) -------------------------------

    @app.get("/ops", response_class=HTMLResponse)
    async def ops(request: Request) -> Response:
        """The ops dashboard: the referral and notifications services' counts, side by side
        (asked at the same time), linking into the Temporal UI."""
        _, credential, _ = signed_in(request, Section.ops)
        cases, notes = await asyncio.gather(
            back(request).case_aggregates(credential),
            back(request).operation_aggregates(credential),
        )
        view = dashboards.ops_view(cases, notes, settings.temporal_ui_url)
        return render(request, "ops.html", view=view)

    @app.get("/reports", response_class=HTMLResponse)
    async def reports(request: Request) -> Response:
        signed_in(request, Section.reports)
        chosen, errors = _report_filters(request, settings.authorities)
        return render(
            request,
            "reports.html",
            status=422 if errors else 200,
            names=dashboards.REPORT_NAMES,
            chosen=chosen,
            errors=errors,
            authorities=settings.authorities,
            query=_report_query_string(chosen),
        )

    @app.get("/reports/board-pack.pdf")
    async def board_pack(request: Request) -> Response:
        """The board pack, streamed through from the referral service as it sends it."""
        _, credential, _ = signed_in(request, Section.reports)
        chosen, errors = _report_filters(request, settings.authorities)
        if errors:
            return redirect(request, "/reports?" + _report_query_string(chosen))
        got = await back(request).board_pack(credential, _report_params(chosen))
        name = 'attachment; filename="board-pack.pdf"'
        return StreamingResponse(
            got.chunks,
            media_type=got.kind,
            headers={"Content-Disposition": got.disposition or name},
        )

    @app.get("/reports/{name}", response_class=HTMLResponse)
    async def report(request: Request, name: str) -> Response:
        """One report: each table with the service's chart of it beside it (the JSON and the
        SVG asked at the same time)."""
        _, credential, _ = signed_in(request, Section.reports)
        if name not in dashboards.REPORT_NAMES:
            raise NotFound(404, _body("no such report"))
        chosen, errors = _report_filters(request, settings.authorities)
        view = None
        if not errors:
            params = _report_params(chosen)
            made, svg = await asyncio.gather(
                back(request).report(credential, name, params),
                back(request).report_svg(credential, name, params),
            )
            view = dashboards.report_view(made, svg)
        return render(
            request,
            "report.html",
            status=422 if errors else 200,
            name=name,
            names=dashboards.REPORT_NAMES,
            view=view,
            chosen=chosen,
            errors=errors,
            authorities=settings.authorities,
            query=_report_query_string(chosen),
        )

    # --- cases -----------------------------------------------------------------------------

    @app.get("/cases", response_class=HTMLResponse)
    async def find_case(request: Request, referral_id: str = "") -> Response:
        signed_in(request, Section.cases)
        if not referral_id:
            return render(request, "find_case.html", errors={}, referral_id="")
        try:
            found = uuid.UUID(referral_id.strip())
        except ValueError:
            errors = {
                "referral_id": "Enter a referral id, like 3f1c2b9e-5d6a-4c1e-9f0a-2b7d8e6c4a10"
            }
            return render(
                request, "find_case.html", status=422, errors=errors, referral_id=referral_id
            )
        return redirect(request, f"/cases/{found}")

    async def _papers(
        request: Request, credential: str, referral_id: uuid.UUID
    ) -> PanelPapers | None:
        """The case's papers where the role may read them (coordinator, chair, panel
        member); a manager or provider sees the case's summary only."""
        try:
            return await back(request).papers(credential, referral_id)
        except Refused:
            return None

    @app.get("/cases/{referral_id}", response_class=HTMLResponse)
    async def case(request: Request, referral_id: uuid.UUID) -> Response:
        _, credential, principal = signed_in(request, Section.cases)
        view = await back(request).case(credential, referral_id)
        papers = await _papers(request, credential, referral_id)
        return render(
            request,
            "case.html",
            view=view,
            papers=papers,
            timeline=case_timeline(view, papers),
            may_decide=domain.may_use(principal.role, Section.decide)
            and view.stage == "awaiting_pre_mset",
            may_review=domain.may_use(principal.role, Section.decide)
            and view.stage in {"awaiting_mset", "active_plan"},
        )

    @app.get("/cases/{referral_id}/pre-mset-decision", response_class=HTMLResponse)
    async def decision_form(request: Request, referral_id: uuid.UUID) -> Response:
        _, credential, _ = signed_in(request, Section.decide)
        view = await back(request).case(credential, referral_id)
        values = {"level": (view.suggested_level or view.referrer_level).value}
        return render(
            request,
            "decision.html",
            view=view,
            values=values,
            errors={},
            decision_id=plan.decision_id_for(str(referral_id), view.sequence),
        )

    @app.post("/cases/{referral_id}/pre-mset-decision", response_class=HTMLResponse)
    async def decide(request: Request, referral_id: uuid.UUID) -> Response:
        session, credential, _ = signed_in(request, Section.decide)
        form = await posted(request, session)
        values = {k: form.get(k, "") for k in ("outcome", "level", "rationale")}
        errors: dict[str, str] = {}
        decision: PreMsetDecisionRequest | None = None
        try:
            decision = PreMsetDecisionRequest(
                outcome=values["outcome"] or None,
                level=values["level"] or None,
                rationale=values["rationale"].strip() or None,
                decision_id=form.get("decision_id") or None,
            )
        except ValidationError as exc:
            errors = _decision_errors(exc)
        if decision is not None:
            try:
                await back(request).pre_mset_decision(credential, referral_id, decision)
            except Conflict as exc:
                # Its id is the case's state as the form was shown: another chair decided
                # on that state first, differently.
                errors = {
                    "outcome": "Another chair recorded a different decision on this case "
                    "first (" + _differing(exc) + "): read the case as it is now"
                }
            except Invalid as exc:
                errors = _refusal_errors(exc)
        if errors:
            view = await back(request).case(credential, referral_id)
            return render(
                request,
                "decision.html",
                status=422,
                view=view,
                values=values,
                errors=errors,
                decision_id=form.get("decision_id", ""),
            )
        flash(session, "The Pre-MSET decision is recorded.")
        return redirect(request, f"/cases/{referral_id}")

    # --- the MSET review and its plan (chair) ------------------------------------------------

    async def _plan_page(
        request: Request,
        credential: str,
        view: CaseView,
        form: plan.PlanForm,
        status: int = 200,
        **where: Any,
    ) -> Response:
        """The review and plan form (``mset_review.html``), for a case (``review_id``) or
        for an MSET meeting's agenda item (``meeting``, ``action``, ``back_to``)."""
        agencies = await back(request).agencies(credential)
        return render(
            request,
            "mset_review.html",
            status=status,
            view=view,
            values=form.values,
            rows=form.rows,
            errors=form.errors,
            agencies=agencies,
            aims=plan.AIM_NAMES,
            targets=plan.TARGET_NAMES,
            **where,
        )

    def _blank_plan(view: CaseView) -> plan.PlanForm:
        level = view.level or view.suggested_level or view.referrer_level
        return plan.PlanForm(
            {"level": level.value, "rationale": ""}, plan.action_rows({}, 1), None, {}
        )

    async def _send_plan(
        fields: dict[str, str],
        review_id: str | None,
        send: Callable[[MsetReviewRequest], Awaitable[object]],
        conflict: Callable[[Conflict], str],
    ) -> tuple[plan.PlanForm, bool]:
        """A posted plan form, sent with ``send`` unless it is only adding a row or has
        errors of its own: the form (with the service's refusals beside their fields, and a
        conflict beside the level) and whether it was only adding a row."""
        adding = "add_action" in fields
        form = plan.read_plan(fields, review_id, adding=adding)
        if adding:
            return replace(form, errors={}, review=None), True
        if form.review is None:
            return form, False
        try:
            await send(form.review)
        except Conflict as exc:
            return replace(form, review=None, errors={"level": conflict(exc)}), False
        except Invalid as exc:
            refusals = [(e.field, e.reason) for e in exc.errors] or [("body", exc.detail)]
            return plan.refused(form, refusals), False
        return form, False

    @app.get("/cases/{referral_id}/mset-review", response_class=HTMLResponse)
    async def plan_form(request: Request, referral_id: uuid.UUID) -> Response:
        _, credential, _ = signed_in(request, Section.decide)
        view = await back(request).case(credential, referral_id)
        review_id = plan.decision_id_for(str(referral_id), view.sequence)
        return await _plan_page(request, credential, view, _blank_plan(view), review_id=review_id)

    @app.post("/cases/{referral_id}/mset-review", response_class=HTMLResponse)
    async def record_plan(request: Request, referral_id: uuid.UUID) -> Response:
        """The MSET review and its plan, over the referral API's review route. "Add another
        action" shows the form again with a row more; the case's refusals stand beside the
        field each concerns; another chair's different review of the same state is shown as
        such (the review id is the state's: ``plan.decision_id_for``)."""
        session, credential, _ = signed_in(request, Section.decide)
        fields = await posted(request, session)
        review_id = fields.get("review_id", "")

        async def send(review: MsetReviewRequest) -> None:
            assert isinstance(review, MsetReviewCreate)  # read_plan was given its review id
            await back(request).mset_review(credential, referral_id, review)

        def conflict(exc: Conflict) -> str:
            return (
                "Another chair recorded a different review of this case first ("
                + _differing(exc)
                + "): read the case as it is now, then record yours again if it still stands"
            )

        form, adding = await _send_plan(fields, review_id, send, conflict)
        if adding or form.errors:
            view = await back(request).case(credential, referral_id)
            status = 200 if adding else 422
            return await _plan_page(request, credential, view, form, status, review_id=review_id)
        flash(session, "The MSET review and its plan are recorded.")
        return redirect(request, f"/cases/{referral_id}")

    # --- returned children: the Return Home Interview ----------------------------------------

    @app.get("/returned", response_class=HTMLResponse)
    async def returned(request: Request, cursor: str | None = None) -> Response:
        _, credential, _ = signed_in(request, Section.returned)
        page = await back(request).returned(credential, cursor, settings.page_size)
        now = clock()
        clocks = {e.episode_id: domain.rhi_clock(e.rhi_due_at, now) for e in page.items}
        return render(request, "returned.html", page=page, clocks=clocks, cursor=cursor)

    async def _rhi_page(
        request: Request,
        credential: str,
        episode_id: uuid.UUID,
        values: dict[str, str],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        episode = await back(request).episode(credential, episode_id)
        if episode.status != "returned" or episode.rhi_due_at is None:
            # Still missing (no return recorded), or its interview is recorded already.
            flash_text = (
                "This child's interview is recorded already."
                if episode.status == "closed"
                else "This child's return is not recorded yet."
            )
            flash(request.state.session, flash_text)
            return redirect(request, "/returned")
        return render(
            request,
            "rhi.html",
            status=status,
            episode=episode,
            clock=domain.rhi_clock(episode.rhi_due_at, clock()),
            values=values,
            errors=errors,
            outcomes=domain.RHI_OUTCOME_NAMES,
        )

    @app.get("/returned/{episode_id}", response_class=HTMLResponse)
    async def rhi_form(request: Request, episode_id: uuid.UUID) -> Response:
        _, credential, _ = signed_in(request, Section.returned)
        return await _rhi_page(request, credential, episode_id, {}, {})

    @app.post("/returned/{episode_id}", response_class=HTMLResponse)
    async def record_rhi(request: Request, episode_id: uuid.UUID) -> Response:
        session, credential, _ = signed_in(request, Section.returned)
        form = await posted(request, session)
        fields = ("outcome", "offered_day", "offered_month", "offered_year", "offered_time")
        values = {k: form.get(k, "").strip() for k in (*fields, "reason_not_offered")}
        errors = _rhi_form_errors(values)
        outcome: RhiOutcomeCreate | None = None
        if not errors:
            try:
                outcome = RhiOutcomeCreate(
                    outcome=values["outcome"],
                    offered_at=_offered_at(values),
                    reason_not_offered=values["reason_not_offered"] or None,
                )
            except ValidationError as exc:
                errors = _rhi_validation_errors(exc)
        if outcome is not None:
            try:
                await back(request).record_rhi(credential, episode_id, outcome)
            except (Invalid, Conflict) as exc:
                for e in exc.errors or []:
                    errors.setdefault(domain.rhi_refusal_field(e.reason), _rhi_words(e.reason))
                errors = errors or {"outcome": _rhi_words(exc.detail)}
        if errors:
            return await _rhi_page(request, credential, episode_id, values, errors, status=422)
        flash(session, "The Return Home Interview's outcome is recorded.")
        return redirect(request, "/returned")

    # --- meetings --------------------------------------------------------------------------

    @app.get("/meetings", response_class=HTMLResponse)
    async def meetings(request: Request, cursor: str | None = None) -> Response:
        _, credential, principal = signed_in(request, Section.meetings)
        page = await back(request).meetings(credential, cursor, settings.page_size)
        return render(
            request,
            "meetings.html",
            page=page,
            cursor=cursor,
            may_call=principal.role == "coordinator",
            authorities=principal.authorities,
        )

    @app.post("/meetings/call")
    async def call_meeting(request: Request) -> Response:
        session, credential, principal = signed_in(request, Section.meetings)
        form = await posted(request, session)
        if principal.role != "coordinator":
            raise NotForYourRole("meetings/call")
        authority = form.get("local_authority", "")
        kind = form.get("kind", MeetingKind.pre_mset.value)
        if authority not in principal.authorities or kind not in {"pre_mset", "mset"}:
            raise NotFound(404, _body("no such schedule"))
        await back(request).call_meeting(credential, authority, kind)
        flash(
            session,
            "The meeting is being called: its agenda is drawn up in a few seconds. "
            "Refresh this page to see it.",
        )
        return redirect(request, "/meetings")

    # --- preparing a meeting (coordinator) ---------------------------------------------------

    @app.get("/awaiting", response_class=HTMLResponse)
    async def awaiting(
        request: Request, local_authority: str = "", cursor: str | None = None
    ) -> Response:
        """The cases awaiting Pre-MSET of the authorities the person serves (or one of them),
        submitted longest ago first, a page at a time; a coordinator calls the authority's
        Pre-MSET meeting from here."""
        _, credential, principal = signed_in(request, Section.awaiting)
        authority = local_authority if local_authority in principal.authorities else ""
        page = await back(request).cases_at(
            credential, Stage.awaiting_pre_mset, authority or None, cursor, settings.page_size
        )
        base = "/awaiting" + (f"?local_authority={authority}" if authority else "")
        return render(
            request,
            "awaiting.html",
            page=page,
            cursor=cursor,
            base=base,
            authority=authority,
            authorities=principal.authorities,
            may_call=principal.role == "coordinator",
        )

    async def _attendance_page(
        request: Request,
        credential: str,
        meeting_id: uuid.UUID,
        rows: list[dict[str, str]],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        found = await back(request).meeting(credential, meeting_id)
        agencies = await back(request).agencies(credential)
        return render(
            request,
            "attendance.html",
            status=status,
            meeting=found,
            rows=rows,
            errors=errors,
            agencies=agencies,
            capacities=attendance.CAPACITY_NAMES,
        )

    @app.get("/meetings/{meeting_id}/attendance", response_class=HTMLResponse)
    async def attendance_form(request: Request, meeting_id: uuid.UUID) -> Response:
        _, credential, principal = signed_in(request, Section.meetings)
        if principal.role != "coordinator":
            raise NotForYourRole("meetings/attendance")
        found = await back(request).meeting(credential, meeting_id)
        rows = attendance.rows_of(found.attendance.attendees)
        return await _attendance_page(request, credential, meeting_id, rows, {})

    @app.post("/meetings/{meeting_id}/attendance", response_class=HTMLResponse)
    async def record_attendance(request: Request, meeting_id: uuid.UUID) -> Response:
        """Who attended and who sent apologies, by agency (the meeting's attendance route,
        which replaces the list). "Add another person" shows the form with a row more."""
        session, credential, principal = signed_in(request, Section.meetings)
        fields = await posted(request, session)
        if principal.role != "coordinator":
            raise NotForYourRole("meetings/attendance")
        adding = "add_person" in fields
        agencies = {str(a.agency_id): a.name for a in await back(request).agencies(credential)}
        form = attendance.read_attendance(fields, agencies, adding=adding)
        errors = {} if adding else form.errors
        if not adding and form.update is not None:
            try:
                await back(request).set_attendance(credential, meeting_id, form.update)
            except (Invalid, Conflict) as exc:
                for e in exc.errors or [FieldError(field="body", reason=exc.detail)]:
                    errors.setdefault(*attendance.refusal_field(e.field, e.reason, form.sent))
        if adding or errors:
            status = 200 if adding else 422
            return await _attendance_page(
                request, credential, meeting_id, form.rows, errors, status
            )
        flash(session, "The attendance is recorded.")
        return redirect(request, f"/meetings/{meeting_id}")

    @app.post("/meetings/{meeting_id}/agenda/refresh")
    async def refresh_agenda(request: Request, meeting_id: uuid.UUID) -> Response:
        session, credential, principal = signed_in(request, Section.meetings)
        await posted(request, session)
        if principal.role != "coordinator":
            raise NotForYourRole("meetings/agenda")
        try:
            await back(request).refresh_agenda(credential, meeting_id)
        except Conflict as exc:
            flash(session, f"The agenda was not drawn up again: {_reason(exc)}")
            return redirect(request, f"/meetings/{meeting_id}")
        flash(session, "The agenda is drawn up again from the cases as they are now.")
        return redirect(request, f"/meetings/{meeting_id}")

    @app.get("/meetings/{meeting_id}", response_class=HTMLResponse)
    async def meeting(
        request: Request, meeting_id: uuid.UUID, cursor: str | None = None
    ) -> Response:
        _, credential, principal = signed_in(request, Section.meetings)
        agenda = await back(request).agenda(credential, meeting_id, cursor, settings.page_size)
        # A Pre-MSET item's decision is an outcome; an MSET (or LMAPS) item's is a review
        # and its plan (meeting.html links each to its form).
        may_decide = domain.may_use(principal.role, Section.decide) and agenda.status != "closed"
        found = await back(request).meeting(credential, meeting_id)
        return render(
            request,
            "meeting.html",
            agenda=agenda,
            cursor=cursor,
            may_decide=may_decide,
            attendance=found.attendance,
            may_prepare=principal.role == "coordinator" and agenda.status != "closed",
        )

    @app.get("/meetings/{meeting_id}/minutes", response_class=HTMLResponse)
    async def minutes(
        request: Request, meeting_id: uuid.UUID, cursor: str | None = None
    ) -> Response:
        """The minutes: each item's decision as the person's role may see it (a panel
        member's come without rationales and notes: the meeting service trims them)."""
        _, credential, _ = signed_in(request, Section.meetings)
        agenda = await back(request).agenda(credential, meeting_id, cursor, settings.page_size)
        # The agreed actions' owners, named by the directory: only this page's, in one ask.
        owner_ids = {
            a.owner_agency_id for i in agenda.items if i.decision for a in i.decision.actions
        }
        owners = await back(request).agency_names(credential, owner_ids) if owner_ids else {}
        return render(
            request,
            "minutes.html",
            agenda=agenda,
            cursor=cursor,
            owners=owners,
            aims=plan.AIM_NAMES,
            targets=plan.TARGET_NAMES,
        )

    @app.get("/meetings/{meeting_id}/minutes.{fmt}")
    async def minutes_download(request: Request, meeting_id: uuid.UUID, fmt: str) -> Response:
        _, credential, _ = signed_in(request, Section.meetings)
        if fmt not in {"md", "pdf"}:
            raise NotFound(404, _body("no such format"))
        body, kind, disposition = await back(request).minutes(credential, meeting_id, fmt)
        name = f'attachment; filename="minutes-{meeting_id}.{fmt}"'
        return Response(body, media_type=kind, headers={"Content-Disposition": disposition or name})

    @app.get("/meetings/{meeting_id}/items/{item_id}/decision", response_class=HTMLResponse)
    async def item_decision_form(
        request: Request, meeting_id: uuid.UUID, item_id: uuid.UUID, case: uuid.UUID
    ) -> Response:
        _, credential, _ = signed_in(request, Section.decide)
        view = await back(request).case(credential, case)
        values = {"level": (view.suggested_level or view.referrer_level).value}
        return render(
            request,
            "decision.html",
            view=view,
            values=values,
            errors={},
            decision_id="",
            action=f"/meetings/{meeting_id}/items/{item_id}/decision?case={case}",
            back_to=(f"/meetings/{meeting_id}", "Back to the meeting"),
        )

    @app.post("/meetings/{meeting_id}/items/{item_id}/decision", response_class=HTMLResponse)
    async def item_decide(
        request: Request, meeting_id: uuid.UUID, item_id: uuid.UUID, case: uuid.UUID
    ) -> Response:
        """The panel's decision on one agenda item, through the meeting's decision route:
        the item's id is the decision's, so a second chair's different decision is refused
        (409) and shown as such."""
        session, credential, _ = signed_in(request, Section.decide)
        form = await posted(request, session)
        values = {k: form.get(k, "") for k in ("outcome", "level", "rationale")}
        errors: dict[str, str] = {}
        decision: PreMsetDecisionRequest | None = None
        try:
            decision = PreMsetDecisionRequest(
                outcome=values["outcome"] or None,
                level=values["level"] or None,
                rationale=values["rationale"].strip() or None,
            )
        except ValidationError as exc:
            errors = _decision_errors(exc)
        if decision is not None:
            try:
                await back(request).decide_item(credential, meeting_id, item_id, decision)
            except Conflict as exc:
                errors = {
                    "outcome": "Another decision is recorded for this item already: "
                    + _in_words(_reason(exc))
                }
            except Invalid as exc:
                errors = _refusal_errors(exc)
        if errors:
            view = await back(request).case(credential, case)
            return render(
                request,
                "decision.html",
                status=422,
                view=view,
                values=values,
                errors=errors,
                decision_id="",
                action=f"/meetings/{meeting_id}/items/{item_id}/decision?case={case}",
                back_to=(f"/meetings/{meeting_id}", "Back to the meeting"),
            )
        flash(session, "The panel's decision on this item is recorded.")
        return redirect(request, f"/meetings/{meeting_id}")

    # --- an MSET meeting's item: the review and its plan (chair) -----------------------------

    async def _reviewed_meeting(
        credential: str, request: Request, meeting_id: uuid.UUID
    ) -> MeetingPublic:
        """The meeting whose item is reviewed: an MSET (or LMAPS) meeting, whose decisions
        are reviews; a Pre-MSET meeting's items have the outcome form instead."""
        found = await back(request).meeting(credential, meeting_id)
        if found.kind == MeetingKind.pre_mset:
            raise NotFound(404, _body("a Pre-MSET meeting's items are not reviewed"))
        return found

    def _item_where(meeting: MeetingPublic, item_id: uuid.UUID, case: uuid.UUID) -> dict[str, Any]:
        return {
            "meeting": meeting,
            "action": f"/meetings/{meeting.meeting_id}/items/{item_id}/review?case={case}",
            "back_to": (f"/meetings/{meeting.meeting_id}", "Back to the meeting"),
        }

    @app.get("/meetings/{meeting_id}/items/{item_id}/review", response_class=HTMLResponse)
    async def item_review_form(
        request: Request, meeting_id: uuid.UUID, item_id: uuid.UUID, case: uuid.UUID
    ) -> Response:
        _, credential, _ = signed_in(request, Section.decide)
        found = await _reviewed_meeting(credential, request, meeting_id)
        view = await back(request).case(credential, case)
        where = _item_where(found, item_id, case)
        return await _plan_page(request, credential, view, _blank_plan(view), **where)

    @app.post("/meetings/{meeting_id}/items/{item_id}/review", response_class=HTMLResponse)
    async def item_review(
        request: Request, meeting_id: uuid.UUID, item_id: uuid.UUID, case: uuid.UUID
    ) -> Response:
        """The MSET group's review of one agenda item and its plan, through the meeting's
        decision route (the minutes hold it; the item's id is the review's). The same form
        as the case's; a second, different decision on the item (409) is shown as such."""
        session, credential, _ = signed_in(request, Section.decide)
        fields = await posted(request, session)

        async def send(review: MsetReviewRequest) -> None:
            await back(request).decide_item(credential, meeting_id, item_id, review)

        def conflict(exc: Conflict) -> str:
            return "Another decision is recorded for this item already: " + _in_words(_reason(exc))

        form, adding = await _send_plan(fields, None, send, conflict)
        if adding or form.errors:
            found = await _reviewed_meeting(credential, request, meeting_id)
            view = await back(request).case(credential, case)
            status = 200 if adding else 422
            where = _item_where(found, item_id, case)
            return await _plan_page(request, credential, view, form, status, **where)
        flash(session, "The MSET group's review of this item and its plan are recorded.")
        return redirect(request, f"/meetings/{meeting_id}")

    return app


_DATE_PARTS = ("day", "month", "year")


def _report_filters(
    request: Request, authorities: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The report filters as typed (area, the period's first and last days, suppression), and
    the GOV.UK errors for what is not a choice or not a date."""
    q = request.query_params
    chosen = {
        "area": q.get("area", "region"),
        "suppress": "yes" if q.get("suppress") == "yes" else "",
        **{f"{end}-{part}": q.get(f"{end}-{part}", "").strip() for end in ("from", "to")
           for part in _DATE_PARTS},
    }  # fmt: skip
    errors: dict[str, str] = {}
    if chosen["area"] != "region" and chosen["area"] not in authorities:
        errors["area"] = "Select the whole partnership or one local authority"
        chosen["area"] = "region"
    days: dict[str, date] = {}
    for end, words in (("from", "first"), ("to", "last")):
        typed = [chosen[f"{end}-{p}"] for p in _DATE_PARTS]
        if not any(typed):
            continue
        try:
            d, m, y = (int(x) for x in typed)
            days[end] = date(y, m, d)
        except ValueError:
            errors[f"{end}-day"] = f"The period's {words} day must be a real date, like 1 4 2025"
    if "from" in days and "to" in days and days["to"] < days["from"]:
        errors["to-day"] = "The period's last day must be the same as or after its first day"
    return chosen, errors


def _report_params(chosen: dict[str, str]) -> dict[str, Any]:
    """The reports API's query for the filters: one authority or the region, and the period
    [first day, the day after the last day) in UK time."""
    params: dict[str, Any] = (
        {"region": "all"} if chosen["area"] == "region" else {"authority": chosen["area"]}
    )
    for end, key, shift in (("from", "since", 0), ("to", "until", 1)):
        typed = [chosen[f"{end}-{p}"] for p in _DATE_PARTS]
        if all(typed):
            d, m, y = (int(x) for x in typed)
            day = datetime(y, m, d, tzinfo=LONDON) + timedelta(days=shift)
            params[key] = day.isoformat()
    if chosen["suppress"]:
        params["suppress"] = "true"
    return params


def _report_query_string(chosen: dict[str, str]) -> str:
    return urlencode({k: v for k, v in chosen.items() if v})


def _local(target: str) -> str:
    """Only a path on this site to go back to after sign-in (never another site's URL)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _reason(exc: ServiceAnswer) -> str:
    return exc.errors[0].reason if exc.errors else exc.detail


# An instant as a service writes it in a reason (``2026-11-28T02:40:02.737085+00:00``).
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def _in_words(text: str) -> str:
    """A service's reason with each instant in it as a person reads one, in UK time."""
    return _INSTANT.sub(lambda m: when(datetime.fromisoformat(m.group(0))), text)


def _differing(exc: ServiceAnswer) -> str:
    """What of a conflicting decision differs from the one recorded, in words."""
    fields = [domain.words(e.field).lower() for e in exc.errors if e.field != "body"]
    if not fields:
        return _reason(exc)
    named = fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]
    return f"their {named} {'differs' if len(fields) == 1 else 'differ'} from yours"


def _body(detail: str) -> Any:
    from mset_platform.edge import ErrorBody

    return ErrorBody(detail=detail)


def _offered_at(values: dict[str, str]) -> datetime | None:
    """The offer's date and time, or None where none was typed (an interview not offered)."""
    typed = [values[k] for k in ("offered_day", "offered_month", "offered_year", "offered_time")]
    if not any(typed):
        return None
    return domain.local_datetime(*typed)


def _rhi_form_errors(values: dict[str, str]) -> dict[str, str]:
    """The interview form's own checks, in GOV.UK's words, before the episode is asked."""
    errors: dict[str, str] = {}
    outcome = values["outcome"]
    if outcome not in domain.RHI_OUTCOME_NAMES:
        errors["outcome"] = "Select the outcome of the Return Home Interview"
    if outcome == "not_offered":
        if not values["reason_not_offered"]:
            errors["reason_not_offered"] = "Enter why the interview was not offered"
        return errors
    try:
        if outcome and _offered_at(values) is None:
            errors["offered_at"] = "Enter the date and time the interview was offered"
    except domain.BadDate as exc:
        errors["offered_at"] = str(exc)
    return errors


def _rhi_validation_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else "outcome"
        name = name if name in {"offered_at", "reason_not_offered"} else "outcome"
        errors.setdefault(name, _rhi_words(e["msg"].removeprefix("Value error, ")))
    return errors


def _rhi_words(reason: str) -> str:
    """An episode's reason in a person's words: the API's field names become what they are."""
    text = reason.replace("(reason_not_offered)", "").replace("offered_at", "the offer's date")
    return _sentence(text.strip())


_DECISION_FIELDS = ("outcome", "level", "rationale")
_MISSING = {
    "outcome": "Select the panel's decision",
    "level": "Select the level the panel agrees",
    "rationale": "Enter the rationale",
}


def _decision_errors(exc: ValidationError) -> dict[str, str]:
    """The form's own check, in GOV.UK's words for each field."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else "outcome"
        name = name if name in _DECISION_FIELDS else "outcome"
        # A rule of the decision (a rationale for 'not_met', no low level to MSET) in the
        # words the case would use, as a sentence.
        said = _sentence(e["msg"].removeprefix("Value error, "))
        errors.setdefault(name, _MISSING[name] if e["type"] in {"enum", "missing"} else said)
    return errors


def _refusal_errors(exc: ServiceAnswer) -> dict[str, str]:
    """The case's refusal (or the service's 422), next to the field it is about."""
    errors: dict[str, str] = {}
    for e in exc.errors or []:
        field = e.field if e.field in _DECISION_FIELDS else None
        field = field or domain.refusal_field(e.reason, _DECISION_FIELDS, default="outcome")
        errors.setdefault(field, _sentence(e.reason))
    if not errors:
        errors["outcome"] = _sentence(exc.detail)
    return errors


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else text


def main() -> None:
    serve_main("portal", PortalSettings, create_app)


if __name__ == "__main__":
    main()
