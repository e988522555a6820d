"""Triage HTTP API: ``POST /v1/evaluate`` for staff and MSET services. HTTP only: the work is
in domain.py, the same code the Temporal activity calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from mset_contract.triage import RulesetInfo, TriageInput, TriageResult, triage_input_example
from mset_platform.edge import (
    Caller,
    FieldError,
    add_healthz,
    answer,
    error_response,
    error_responses,
    serve_main,
    service_app,
)
from mset_platform.identity import Resolver, resolving, with_service_token
from services.triage.domain import NotAllowed, Triage, UnknownRulesetVersion, may_triage
from services.triage.ruleset_config import RulesetConfigError
from services.triage.settings import TriageSettings


def create_app(
    settings: TriageSettings,
    resolver: Resolver | None = None,
    triage: Triage | None = None,
) -> FastAPI:
    """The triage API. ``resolver`` (credential → principal) and ``triage`` may be given, so
    tests need no referral service and share one rules host; by default the service token
    and the referral service's introspection decide who calls, and the rules are loaded
    (and checked) here, so a bad rules file stops the service before it listens."""
    if triage is None:
        triage = Triage.from_directory(settings.rules_directory(), settings.default_ruleset_version)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resolving(resolver, settings) as resolve:
            app.state.resolve = (
                resolve
                if resolver
                else with_service_token(settings.service_token.get_secret_value(), resolve)
            )
            yield

    app = service_app(
        title="MSET Flow — triage",
        description="Suggests a risk level, a Pre-MSET recommendation and escalations from a "
        "case's Risk Assessment Tool and history, and says why. Authenticate with a staff "
        "Bearer token or the MSET service token.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    _install_domain_errors(app)
    app.state.triage = triage
    app.state.resolve = resolver  # None: the default is set when the app starts
    errors = error_responses(401, 403, 422, 503)

    add_healthz(app)

    @app.get("/v1/rulesets", response_model=list[RulesetInfo], responses=errors, tags=["triage"])
    async def rulesets(request: Request, caller: Caller) -> list[RulesetInfo]:
        """The rules versions this service can evaluate with, and their timer settings."""
        may_triage(caller)
        versions: list[RulesetInfo] = request.app.state.triage.versions()
        return versions

    @app.post("/v1/evaluate", response_model=TriageResult, responses=errors, tags=["triage"])
    async def evaluate(
        request: Request,
        caller: Caller,
        body: Annotated[
            TriageInput,
            Body(openapi_examples={"repeat missing": {"value": triage_input_example()}}),
        ],
    ) -> Response:
        """Evaluate a case: suggested level, recommendation, escalations and every rule that
        fired, with the rules version that decided it. The same input gives the same answer."""
        may_triage(caller)
        # Called on the event loop, not in a thread: an evaluation takes a fraction of a
        # millisecond and holds the GIL throughout (the rules engine never releases it), so
        # a thread would add a hand-off and no parallelism.
        result: TriageResult = request.app.state.triage.evaluate(body)
        return Response(result.model_dump_json(), media_type="application/json")

    return app


def _install_domain_errors(app: FastAPI) -> None:
    async def unknown_version(_: Request, exc: Exception) -> JSONResponse:
        # A value of the request that names nothing known: answered like any other bad field.
        return error_response(
            422,
            f"the request is not valid: ruleset_version: {exc}",
            [FieldError(field="ruleset_version", reason=str(exc))],
        )

    app.add_exception_handler(UnknownRulesetVersion, unknown_version)
    answer(app, 403, NotAllowed)


def main() -> None:
    # Refuse to start, saying what is wrong, rather than serve with rules nobody checked.
    serve_main("triage", TriageSettings, create_app, RulesetConfigError)


if __name__ == "__main__":
    main()
