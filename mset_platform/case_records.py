"""``GET /v1/cases/{case_id}/record``: everything a service holds about one case, for the
referral service's subject access export (ADR 0023). The MSET services' token only: the
referral service asks each service through its API, never its tables (ADR 0014), and records
the export in its information-sharing ledger."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from mset_platform.access import Rule, require
from mset_platform.edge import Caller, Forbidden, error_responses

# The service's own reading of one case's record, given the request (for its app state).
RecordReader = Callable[[Request, uuid.UUID], dict[str, Any]]


def add_case_record_route(app: FastAPI, read: RecordReader, rule: Rule) -> None:
    """Added to the app itself (an included router is not matched by the edge's route
    labels: mset_platform/metrics.py)."""

    @app.get(
        "/v1/cases/{case_id}/record",
        tags=["information governance"],
        response_model=dict[str, Any],
        responses=error_responses(401, 403, 422),
    )
    async def case_record(request: Request, caller: Caller, case_id: uuid.UUID) -> dict[str, Any]:
        """Everything this service holds about the case, for a subject access export (the
        MSET services' token)."""
        require(caller, rule, Forbidden)  # the service's access policy row
        return await run_in_threadpool(read, request, case_id)
