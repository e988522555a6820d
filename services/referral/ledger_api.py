"""The ledger's and subject access's routes on the referral API (HTTP only: the work is in
ledger.py and subject.py). The DPO reads and exports; the other MSET services report."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Principal
from mset_contract.ledger import (
    DisclosurePage,
    DisclosurePublic,
    DisclosurePurpose,
    DisclosureReports,
    DisclosuresRecorded,
    DisclosureView,
    ShownTo,
    SubjectAccessExport,
)
from mset_contract.types import QueryInstant
from mset_contract.vocab import Role
from mset_platform.edge import Caller, FieldError, answer, error_response, error_responses
from mset_platform.paging import PageRequest, page_query
from services.referral.domain import NotAService, RequestInvalid
from services.referral.ledger import Disclosed, Ledger, to
from services.referral.policy import (
    DISCLOSURES_EXPORT,
    DISCLOSURES_READ,
    DISCLOSURES_REPORT,
    Rule,
    require,
)
from services.referral.store import LEDGER_ORDER
from services.referral.subject import (
    ChildAmbiguous,
    ChildNotFound,
    NotTheDpo,
    SubjectAccess,
    require_dpo,
)

CSV_COLUMNS = [f for f in DisclosurePublic.model_fields]

Child = Annotated[
    str | None,
    Query(
        max_length=64,
        description="One child: a referral id, or the referring agency's reference for the "
        "child (then `agency` is that agency, and also filters).",
    ),
]
Agency = Annotated[uuid.UUID | None, Query(description="Shared with this agency.")]
Since = Annotated[QueryInstant | None, Query(description="From this moment (inclusive).")]
Until = Annotated[QueryInstant | None, Query(description="Before this moment.")]


class ShownToQuery:
    """Whom a service shows the cases it asks about to (``GET /v1/cases/who``)."""

    def __init__(
        self,
        for_agency: Annotated[
            uuid.UUID | None, Query(description="The reader's agency (with `view`).")
        ] = None,
        for_user: Annotated[uuid.UUID | None, Query(description="The reader.")] = None,
        for_role: Annotated[Role | None, Query(description="The reader's role.")] = None,
        view: Annotated[
            Literal["agenda", "minutes"] | None, Query(description="What is shown to them.")
        ] = None,
        meeting_id: Annotated[uuid.UUID | None, Query(description="The meeting's.")] = None,
    ) -> None:
        named = (for_user, for_role, meeting_id)
        if (for_agency is None) != (view is None) or (for_agency is None and any(named)):
            missing = "query.view" if view is None else "query.for_agency"
            raise RequestInvalid(missing, "for_agency and view name the reader together")
        self.agency, self.user, self.role = for_agency, for_user, for_role
        self.view, self.meeting_id = view, meeting_id

    def shown(self) -> ShownTo | None:
        if self.agency is None or self.view is None:
            return None
        return ShownTo(
            agency_id=self.agency,
            user_id=self.user,
            role=self.role,
            view=DisclosureView(self.view),
            meeting_id=self.meeting_id,
        )


def add_ledger_routes(app: FastAPI) -> None:
    """The routes, added to the app itself (an included router is not matched by the edge's
    route labels: mset_platform/metrics.py)."""
    tags: list[str | Enum] = ["information governance"]
    dpo_errors = error_responses(401, 403, 404, 422)

    def _ledger(request: Request) -> Ledger:
        ledger: Ledger = request.app.state.intake.ledger
        return ledger

    def _subject(request: Request) -> SubjectAccess:
        subject: SubjectAccess = request.app.state.subject
        return subject

    def _read_ledger(
        request: Request,
        caller: Principal,
        child: str | None,
        agency: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
        rule: Rule,
    ) -> tuple[list[uuid.UUID] | None, uuid.UUID | None]:
        """The filter's cases and agency; the DPO's read is recorded first (one entry per
        case of the child, else one for the ledger itself)."""
        require_dpo(caller, rule)
        case_ids: list[uuid.UUID] | None = None
        by_agency = agency
        if child is not None:
            found = _subject(request).find(child, agency)
            case_ids = found.case_ids
            if not _is_uuid(child):
                by_agency = None  # the agency named the child's reference, not a recipient
        filters = [f"child={child}" if child else "", f"agency={agency}" if agency else ""]
        filters += [f"since={since.isoformat()}" if since else ""]
        filters += [f"until={until.isoformat()}" if until else ""]
        fields = ["ledger entries", *(f for f in filters if f)]
        _ledger(request).record(
            [
                Disclosed(
                    case_id=c,
                    view=DisclosureView.ledger,
                    purpose=DisclosurePurpose.oversight,
                    record="ledger",
                    fields=fields,
                    **to(caller),
                )
                for c in (case_ids or [None])  # type: ignore[list-item]
            ]
        )
        return case_ids, by_agency

    @app.get("/v1/disclosures", tags=tags, response_model=DisclosurePage, responses=dpo_errors)
    async def list_disclosures(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(LEDGER_ORDER)],
        child: Child = None,
        agency: Agency = None,
        since: Since = None,
        until: Until = None,
    ) -> DisclosurePage:
        """The information-sharing ledger, oldest first, filtered by child, agency or period
        (the DPO). Your read is itself an entry."""

        def work() -> DisclosurePage:
            case_ids, by_agency = _read_ledger(
                request, caller, child, agency, since, until, DISCLOSURES_READ
            )
            got = _ledger(request).page(
                page, case_ids=case_ids, agency_id=by_agency, since=since, until=until
            )
            return DisclosurePage(items=got.rows, next_cursor=got.next_cursor)

        return await run_in_threadpool(work)

    @app.get(
        "/v1/disclosures/export.csv",
        tags=tags,
        response_class=Response,
        responses={**dpo_errors, 200: {"content": {"text/csv": {}}}},
    )
    async def export_disclosures(
        request: Request,
        caller: Caller,
        child: Child = None,
        agency: Agency = None,
        since: Since = None,
        until: Until = None,
    ) -> Response:
        """The ledger as CSV, with the same filters (the DPO). The export is itself an
        entry."""

        def work() -> str:
            case_ids, by_agency = _read_ledger(
                request, caller, child, agency, since, until, DISCLOSURES_EXPORT
            )
            rows = _ledger(request).all(
                case_ids=case_ids, agency_id=by_agency, since=since, until=until
            )
            out = io.StringIO()
            w = csv.writer(out)
            w.writerow(CSV_COLUMNS)
            for r in rows:
                d = r.model_dump(mode="json")
                d["fields"] = "; ".join(d["fields"])
                w.writerow([_cell(d[c]) for c in CSV_COLUMNS])
            return out.getvalue()

        body = await run_in_threadpool(work)
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="disclosures.csv"'},
        )

    @app.post(
        "/v1/disclosures",
        tags=tags,
        response_model=DisclosuresRecorded,
        responses=error_responses(401, 403, 422),
    )
    async def report_disclosures(
        request: Request, caller: Caller, body: DisclosureReports
    ) -> DisclosuresRecorded:
        """Disclosures another MSET service made (the MSET services' token). A report sent
        again under the same `report_id` is recorded once."""
        require(caller, DISCLOSURES_REPORT, NotAService)
        n = await run_in_threadpool(_ledger(request).report, body.entries, body.reporter)
        return DisclosuresRecorded(recorded=n)

    @app.get(
        "/v1/subject-access/{child}",
        tags=tags,
        response_model=SubjectAccessExport,
        responses={**dpo_errors, 200: {"content": {"text/html": {}}}},
    )
    async def subject_access(
        request: Request,
        caller: Caller,
        child: Annotated[str, Path(max_length=64, description="A referral id, or a reference.")],
        agency: Annotated[
            uuid.UUID | None,
            Query(description="The agency whose reference `child` is (not needed with an id)."),
        ] = None,
        format: Annotated[
            Literal["json", "html"],
            Query(description="`html`: a printable page marked OFFICIAL-SENSITIVE."),
        ] = "json",
    ) -> Response:
        """Everything held about one child, as one document, for a subject access request
        (the DPO): tools, cases (decisions, actions, episodes), what the meeting and
        notifications services hold, and every disclosure. The export is itself an entry."""
        from services.referral.subject import to_html

        doc = await _subject(request).export(caller, child, agency)
        headers = {"Content-Disposition": f'attachment; filename="subject-access-{child}.{format}"'}
        if format == "html":
            return HTMLResponse(to_html(doc), headers=headers)
        return JSONResponse(doc.model_dump(mode="json"), headers=headers)


def install_ledger_errors(app: FastAPI) -> None:
    async def ambiguous(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChildAmbiguous)
        return error_response(422, exc.reason, [FieldError(field=exc.field, reason=exc.reason)])

    answer(app, 403, NotTheDpo)
    answer(app, 404, ChildNotFound)
    app.add_exception_handler(ChildAmbiguous, ambiguous)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
