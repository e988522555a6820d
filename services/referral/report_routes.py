"""The board reports' outputs over HTTP beyond JSON: CSV, SVG charts, publication with small
numbers suppressed, and the board pack PDF (docs/reports.md, docs/board-pack.md).

Routes only; the reports are made by ``ReportsDesk``, published by ``report_suppression``,
drawn by ``report_charts`` and laid out by ``board_pack``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from mset_contract.report_publication import PublishedReport
from mset_contract.reports import Report
from mset_contract.types import LocalAuthorityCode, QueryInstant
from mset_platform.edge import Caller, error_responses
from services.referral.board_pack import board_pack_pdf, board_pack_reports
from services.referral.report_charts import report_svg
from services.referral.report_suppression import publish
from services.referral.reports import ReportQuery, ReportsDesk


def report_response(
    made: Report,
    format: str | None,
    accept: str,
    suppress: bool,
    threshold: int,
) -> Report | PublishedReport | Response:
    """A report as the caller asked: JSON (the counts, or as published), CSV or SVG."""
    where = "region" if made.scope.region else made.scope.authorities[0]
    wants = format or (
        "csv" if "text/csv" in accept else "svg" if "image/svg+xml" in accept else "json"
    )
    if not suppress and wants == "json":
        return made
    shown = publish(made, threshold if suppress else None)
    if wants == "csv":
        filename = f"{made.name.value}-{where}.csv"
        return Response(
            shown.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    if wants == "svg":
        return Response(report_svg(shown), media_type="image/svg+xml; charset=utf-8")
    return shown


def add_board_pack_route(app: FastAPI, threshold: int) -> None:
    """``GET /v1/reports/board-pack.pdf``: registered before ``/v1/reports/{name}``, which
    would otherwise take the name."""

    @app.get(
        "/v1/reports/board-pack.pdf",
        response_class=Response,
        responses={
            **error_responses(401, 403, 422, 503),
            200: {"content": {"application/pdf": {"schema": {"type": "string"}}}},
        },
        tags=["reports"],
    )
    async def board_pack(
        request: Request,
        caller: Caller,
        authority: Annotated[
            LocalAuthorityCode | None, Query(description="One local authority; or region.")
        ] = None,
        region: Annotated[
            str | None,
            Query(
                max_length=16,
                description="'all': every authority of the partnership.",
                # The one value, as on the reports' route.
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
        suppress: Annotated[
            bool, Query(description="For publication: small counts shown as [c].")
        ] = False,
    ) -> Response:
        """Every board report for the period as one PDF, OFFICIAL-SENSITIVE on every page."""
        desk: ReportsDesk = request.app.state.reports
        reports = await board_pack_reports(
            desk, caller, ReportQuery(authority, region, since, until)
        )
        pdf = await run_in_threadpool(board_pack_pdf, reports, threshold if suppress else None)
        first = reports[0]
        where = "region" if first.scope.region else first.scope.authorities[0]
        name = f"board-pack-{where}-{first.since.date()}-{first.until.date()}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
