"""How a case's answers are told over HTTP, written once for every API that sends a case
requests (the referral API and the meeting API install the same handlers):

| the case's answer | status |
| --- | --- |
| ``DecisionRefused``: its validator refused | 422, with the case's reason |
| ``DecisionConflict``: its id was recorded with another body | 409, naming the fields |
| ``CaseClosed``: its workflow has finished | 409 |
| ``CaseUnreachable``: Temporal unreachable, or no answer in time | 503, with ``Retry-After`` |
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mset_platform.cases import CaseClosed, CaseUnreachable, DecisionConflict, DecisionRefused
from mset_platform.edge import ErrorBody, FieldError, error_response

log = logging.getLogger("mset.cases")
RETRY_AFTER_SECONDS = 5

# For a route's ``responses=``: what a request sent to a case may be answered.
CASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The case has ended, or the decision's id was recorded with another "
        "body (`errors` names the fields that differ).",
    },
    422: {"model": ErrorBody, "description": "Not valid, or refused by the case."},
    503: {"model": ErrorBody, "description": "The case could not be reached; retry."},
}


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DecisionRefused)
    return error_response(
        422,
        f"the case refused it, nothing was recorded: {exc.reason}",
        [FieldError(field="body", reason=exc.reason)],
    )


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DecisionConflict)
    reason = "differs from the decision first recorded under this id"
    return error_response(
        409,
        f"the case refused it, nothing was recorded: {exc.reason}",
        [FieldError(field=f, reason=reason) for f in exc.fields],
    )


async def _closed(_: Request, exc: Exception) -> JSONResponse:
    return error_response(409, str(exc))


async def _unreachable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("case unreachable: %s", exc, exc_info=exc.__cause__ or exc)
    resp = error_response(503, str(exc))
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


def install_case_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DecisionRefused, _refused)
    app.add_exception_handler(DecisionConflict, _conflict)
    app.add_exception_handler(CaseClosed, _closed)
    app.add_exception_handler(CaseUnreachable, _unreachable)
