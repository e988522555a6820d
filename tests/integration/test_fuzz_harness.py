"""The fuzz tier's harness (``tests/support/fuzz.py``) can fail: a tiny API whose schema and
validation disagree, served over HTTP, is reported, with the request that found it; the
same API with the two agreeing passes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from mset_platform.edge import document_edge_answers, error_response, install_error_handlers
from tests.support.fuzz import Fuzz, run
from tests.support.servers import serve

# The query parameter ``limit`` as the code reads it: any integer, or one in 1..50.
Loose = Annotated[int, Query()]
Bounded = Annotated[int, Query(ge=1, le=50)]


def _app(enforced: bool, named: bool = True) -> FastAPI:
    """``GET /v1/things?limit=`` whose schema says 1..50; ``enforced`` says whether the code
    refuses what the schema does or takes any integer, ``named`` whether its 422 names the
    field (the edge's) or only says the request is wrong."""
    app = FastAPI()
    install_error_handlers(app)
    if not named:

        async def unnamed(_: Request, exc: Exception) -> JSONResponse:
            return error_response(422, "the request is not valid")

        app.add_exception_handler(RequestValidationError, unnamed)

    async def loose(limit: Loose = 10) -> dict[str, int]:
        return {"limit": limit}

    async def bounded(limit: Bounded = 10) -> dict[str, int]:
        return {"limit": limit}

    app.get("/v1/things")(bounded if enforced else loose)

    def openapi() -> dict[str, Any]:
        schema = get_openapi(title="things", version="1", routes=app.routes)
        params = schema["paths"]["/v1/things"]["get"]["parameters"]
        params[0]["schema"].update(minimum=1, maximum=50)  # what the schema promises
        app.openapi_schema = document_edge_answers(schema)  # the 422 the edge answers
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _fuzzed(enforced: bool, named: bool = True) -> list[str]:
    with serve(_app(enforced, named)) as url:
        return run(Fuzz(url, lambda method, path: {}, max_examples=20)).failures


async def test_an_invalid_value_the_api_accepts_is_reported() -> None:
    failures = await asyncio.to_thread(_fuzzed, False)
    assert failures, "a limit outside 1..50 was answered 200 and the harness said nothing"
    report = failures[0]
    assert "GET /v1/things" in report
    assert "Invalid data should have been rejected" in report
    assert "curl" in report and "answered 200" in report


async def test_the_same_api_refusing_it_passes() -> None:
    assert await asyncio.to_thread(_fuzzed, True) == []


async def test_a_refusal_that_names_no_field_is_reported() -> None:
    failures = await asyncio.to_thread(_fuzzed, True, False)
    assert failures and all("a 422 naming no field" in f for f in failures), failures
