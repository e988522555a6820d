"""Triage HTTP API: ``POST /v1/evaluate`` for staff and MSET services. HTTP only: the work is
in domain.py, the same code the Temporal activity calls."""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

import httpx
import uvicorn
from fastapi import Body, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from mset_contract.auth import Introspector, Principal
from mset_contract.edge import (
    BodyLimit,
    ErrorBody,
    FieldError,
    Forbidden,
    RequireJson,
    error_response,
    install_error_handlers,
    principal_dependency,
)
from mset_contract.triage import RulesetInfo, TriageInput, TriageResult, triage_input_example
from mset_contract.vocab import AgencyType, Role
from services.triage.domain import Triage, UnknownRulesetVersion
from services.triage.ruleset_config import RulesetConfigError
from services.triage.settings import TriageSettings

log = logging.getLogger("mset.triage")

Resolve = Callable[[str], Awaitable[Principal | None]]

# Who calls with the shared service token: another MSET service, not a partner agency.
SERVICE_PRINCIPAL = Principal(
    kind="agency",
    agency_id=UUID(int=0),
    agency_name="MSET Flow services",
    agency_type=AgencyType.other,
)
# Every staff role may ask for a triage: it suggests, it decides nothing.
STAFF_ROLES = frozenset(Role)

# Module level so FastAPI can resolve the annotation; the resolver lives on app.state.
current_principal = principal_dependency(lambda request: request.app.state.resolve)
Caller = Annotated[Principal, Depends(current_principal)]


class IdentityUnavailable(Exception):
    """The referral service, which owns identity, could not be asked who a caller is."""


def _may_triage(caller: Principal) -> None:
    if caller == SERVICE_PRINCIPAL or (caller.kind == "user" and caller.role in STAFF_ROLES):
        return
    raise Forbidden(
        "triage is for MSET staff and services; partner systems submit referrals instead"
    )


def _default_resolver(settings: TriageSettings, introspector: Introspector) -> Resolve:
    token = settings.service_token.get_secret_value().encode("utf-8")

    async def resolve(credential: str) -> Principal | None:
        if secrets.compare_digest(credential.encode("utf-8"), token):
            return SERVICE_PRINCIPAL
        try:
            return await introspector.principal(credential)
        except httpx.HTTPError as exc:
            raise IdentityUnavailable("cannot check the credential just now") from exc

    return resolve


def create_app(
    settings: TriageSettings,
    resolver: Resolve | None = None,
    triage: Triage | None = None,
) -> FastAPI:
    """The triage API. ``resolver`` (credential → principal) and ``triage`` may be given, so
    tests need no referral service and share one rules host; by default the service token
    and the referral service's introspection decide who calls, and the rules are loaded
    (and checked) here, so a bad rules file stops the service before it listens."""
    if triage is None:
        triage = Triage.from_directory(settings.rules_directory(), settings.default_ruleset_version)
    introspector: Introspector | None = None
    if resolver is None:
        introspector = Introspector(settings.referral_url)
        resolver = _default_resolver(settings, introspector)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if introspector is not None:
            await introspector.aclose()

    app = FastAPI(
        title="MSET Flow — triage",
        version="1",
        description="Suggests a risk level, a Pre-MSET recommendation and escalations from a "
        "case's Risk Assessment Tool and history, and says why. Authenticate with a staff "
        "Bearer token or the MSET service token.",
        lifespan=lifespan,
    )
    app.add_middleware(RequireJson)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    _install_domain_errors(app)
    app.state.triage = triage
    app.state.resolve = resolver
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
    }

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/rulesets", response_model=list[RulesetInfo], responses=errors, tags=["triage"])
    async def rulesets(request: Request, caller: Caller) -> list[RulesetInfo]:
        """The rules versions this service can evaluate with, and their timer settings."""
        _may_triage(caller)
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
        _may_triage(caller)
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

    async def identity_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("identity check failed", exc_info=exc.__cause__ or exc)
        resp = error_response(503, str(exc))
        resp.headers["Retry-After"] = "5"
        return resp

    app.add_exception_handler(UnknownRulesetVersion, unknown_version)
    app.add_exception_handler(IdentityUnavailable, identity_unavailable)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        settings = TriageSettings()
        app = create_app(settings)
    except (RulesetConfigError, ValidationError) as exc:
        # Refuse to start, saying what is wrong, rather than serve with rules nobody checked.
        sys.exit(f"triage: cannot start: {exc}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
