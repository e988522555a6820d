"""The HTTP edge every service shares: the error body partners see, body limits, who is
calling, the health check, and serving the app.

Domain code raises plain exceptions; the HTTP status is chosen here or in a service's
``api.py``, never below it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from mset_contract.auth import Principal
from mset_platform.api_docs import install_api_docs
from mset_platform.db import ping
from mset_platform.identity import CALLER_ADDRESS, AuthenticationThrottled, IdentityUnavailable
from mset_platform.metrics import install_metrics
from mset_platform.process import configure_logging, refusing_to_start
from mset_platform.settings import ApiSettings
from mset_platform.tracing import configure_tracing, service_name

log = logging.getLogger("mset.edge")

# Seconds a client is asked to wait before retrying a 503.
RETRY_AFTER = "5"


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: each status answered with an ``ErrorBody``."""
    return {status: {"model": ErrorBody} for status in statuses}


class AuthenticationFailed(Exception):
    """No credential, or one that is not (or no longer) valid."""


class Forbidden(Exception):
    """A valid credential whose role may not do this."""


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        source, parts = parts[0], parts[1:]
        if source == "body" and not parts:
            return "body"
        if source != "body":
            return f"{source}.{'.'.join(parts)}"
    return ".".join(parts) or "body"


def _reason(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
        return "the request body is empty: send a JSON document"
    if err.get("type") == "json_invalid":
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        return "required field is missing"
    if err.get("type") == "extra_forbidden":
        return "unknown field (check its spelling against the schema)"
    return msg


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    return [
        FieldError(
            # A JSON syntax error's location is a character offset, not a field.
            field="body" if e.get("type") == "json_invalid" else _field_name(e["loc"]),
            reason=_reason(e),
        )
        for e in errors
    ]


def error_response(
    status: int, detail: str, errors: list[FieldError] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorBody(detail=detail, errors=errors or []).model_dump(), status_code=status
    )


def invalid_request_response(errors: Sequence[Any]) -> JSONResponse:
    """422 naming each field that is wrong and why."""
    fields = field_errors(errors)
    detail = "the request is not valid: " + "; ".join(f"{e.field}: {e.reason}" for e in fields)
    return error_response(422, detail, fields)


def unavailable_response(detail: str) -> JSONResponse:
    """503 with a Retry-After: nothing was done, and trying again shortly is safe."""
    resp = error_response(503, detail)
    resp.headers["Retry-After"] = RETRY_AFTER
    return resp


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return invalid_request_response(exc.errors())


async def _auth_handler(request: Request, exc: Exception) -> JSONResponse:
    resp = error_response(401, str(exc) or "authentication required")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="mset"'
    return resp


async def _forbidden_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response(403, str(exc) or "your role may not do this")


async def _identity_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    log.warning("identity check failed", exc_info=exc.__cause__ or exc)
    return unavailable_response(str(exc))


async def _throttled_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthenticationThrottled)
    resp = error_response(429, str(exc))
    resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(AuthenticationFailed, _auth_handler)
    app.add_exception_handler(AuthenticationThrottled, _throttled_handler)
    app.add_exception_handler(Forbidden, _forbidden_handler)
    app.add_exception_handler(IdentityUnavailable, _identity_unavailable_handler)


def answer(app: FastAPI, status: int, *errors: type[Exception]) -> None:
    """Answer each of a service's domain ``errors`` with ``status`` and the error's message
    (a 503 also says when to retry)."""

    async def handler(_: Request, exc: Exception) -> JSONResponse:
        if status == 503:
            return unavailable_response(str(exc))
        return error_response(status, str(exc))

    for error in errors:
        app.add_exception_handler(error, handler)


def answer_invalid_field(app: FastAPI, *errors: type[Exception], what: str = "request") -> None:
    """Answer each of a service's domain ``errors`` that name a wrong field (``field`` and
    ``reason`` attributes) with 422, as a request that fails validation is answered."""

    async def handler(_: Request, exc: Exception) -> JSONResponse:
        field, reason = getattr(exc, "field"), getattr(exc, "reason")  # noqa: B009
        return error_response(
            422,
            f"the {what} is not valid: {field}: {reason}",
            [FieldError(field=field, reason=reason)],
        )

    for error in errors:
        app.add_exception_handler(error, handler)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` before they are parsed.

    Counts the bytes actually received, so a missing or false Content-Length cannot get a
    larger body through. Answers 422 naming the body, as every other bad input is answered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        answered = False

        async def guarded_send(message: Message) -> None:
            if not answered:  # once we have refused the body, the app's own answer is dropped
                await send(message)

        async def counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not answered:
                    # The app may swallow an exception raised here (FastAPI turns it into a
                    # 400), so answer now and tell the app the client has gone.
                    await self._too_large(scope, receive, send)
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, guarded_send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = error_response(
            422,
            f"the request body is over the limit of {self.max_bytes} bytes",
            [FieldError(field="body", reason=f"larger than {self.max_bytes} bytes")],
        )
        await resp(scope, receive, send)


class RequireJson:
    """ASGI middleware: a request that carries a body must say it is JSON.

    Without this a form or text body reaches the model as a string and the partner is told
    something obscure about dictionaries; here they are told the content type is wrong.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"POST", "PUT", "PATCH"}:
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
            if ctype and ctype.lower() != "application/json":
                resp = error_response(
                    422,
                    f"the request content type is {ctype!r}; send application/json",
                    [FieldError(field="header.content-type", reason="must be application/json")],
                )
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


# How deeply a request's JSON may nest. Our deepest body (an MSET review's action) is four
# levels; Python's parser gives up near a thousand with an error FastAPI answers 400.
MAX_JSON_DEPTH = 32


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON document (brackets inside strings
    are not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def json_body_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> FieldError | None:
    """Why a request body cannot be read as JSON before it is parsed: not UTF-8 (RFC 8259
    requires it), or nested too deeply; None when it can be handed to the parser."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FieldError(
            field="body",
            reason=f"the body is not UTF-8 (byte {exc.start}); JSON must be sent as UTF-8",
        )
    if json_depth(body) > max_depth:
        return FieldError(
            field="body", reason=f"the JSON is nested more than {max_depth} levels deep"
        )
    return None


class JsonBody:
    """ASGI middleware: a JSON body that is not UTF-8 or nests too deeply is refused with 422
    naming the body, as malformed JSON is (ADR 0006); FastAPI would answer such a body 400.

    Reads the whole body (``BodyLimit``, outside this, bounds it), checks it, and hands the
    same bytes to the app."""

    def __init__(self, app: ASGIApp, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went (or BodyLimit refused the body and answered)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_body_problem(body, self.max_depth)
        if problem is not None:
            resp = error_response(
                422, f"the request is not valid: body: {problem.reason}", [problem]
            )
            await resp(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _path_methods(app: Any, path: str) -> set[str] | None:
    """Every method the app's routes answer at ``path`` (with HEAD for GET and OPTIONS
    itself), or None when no route has that path."""
    methods: set[str] = set()
    for route in getattr(app, "routes", []):
        route_methods = getattr(route, "methods", None)
        regex = getattr(route, "path_regex", None)
        if route_methods and regex is not None and regex.match(path):
            methods |= set(route_methods)
    if not methods:
        return None
    if "GET" in methods:
        methods.add("HEAD")
    return methods | {"OPTIONS"}


def allow_header(methods: set[str]) -> str:
    return ", ".join(sorted(methods))


class AllowedMethods:
    """ASGI middleware: ``OPTIONS`` on a path answers 204 with ``Allow`` naming every method
    of the path, and a 405 names them all too. Starlette answers both from the first route
    whose path matches, and FastAPI makes one route per method, so a path with GET and POST
    was said to allow only one of them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods = _path_methods(scope.get("app"), scope["path"])
        if methods is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            headers = [(b"allow", allow_header(methods).encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def allow_all(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", allow_header(methods).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, allow_all)


# What the edge itself answers, whatever the route says (descriptions for the OpenAPI).
INVALID = "Not valid: `errors` names each field and why."
UNAVAILABLE = "Who is calling could not be checked just now (identity); retry."


def _error_body_ref(schema: dict[str, Any]) -> dict[str, Any]:
    """``ErrorBody`` as a component of ``schema`` (with ``FieldError``), by reference."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
    return {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def document_edge_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """Make an app's OpenAPI say what the edge answers on every route, so that it tells no
    lie a generated client or schemathesis would catch:

    - **422** is an ``ErrorBody`` (FastAPI documents its own ``HTTPValidationError``, which
      the edge never sends) on every operation that takes parameters or a body: the
      validation handler, ``BodyLimit``, ``RequireJson`` and ``JsonBody`` answer it.
    - **503** on every authenticated operation (one that documents 401): a service that asks
      the referral service who is calling answers 503 when it cannot be asked.
    """
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: dict[str, Any] = op["responses"]
            if op.get("parameters") or op.get("requestBody") or "422" in responses:
                described = responses.get("422", {}).get("description")
                responses["422"] = {"description": described or INVALID, **_error_body_ref(schema)}
            if "401" in responses and "503" not in responses:
                responses["503"] = {"description": UNAVAILABLE, **_error_body_ref(schema)}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _install_edge_docs(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_edge_answers(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def service_app(
    title: str, description: str, lifespan: Lifespan[FastAPI] | None, max_body_bytes: int
) -> FastAPI:
    """A service's FastAPI app with what every service has at its edge: JSON bodies only, a
    body limit, the error shapes above, request metrics at ``GET /metrics``, and API docs
    that work on an isolated network."""
    app = FastAPI(
        title=title,
        version="1",
        description=description,
        lifespan=lifespan,
        # FastAPI's own pages load their assets from a CDN; ours are served from the project.
        docs_url=None,
        redoc_url=None,
    )
    install_api_docs(app)
    _install_edge_docs(app)
    # Innermost first: the body is checked as JSON only once its type and size are.
    app.add_middleware(JsonBody)
    app.add_middleware(RequireJson)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(AllowedMethods)
    # Last, so outermost: the refusals of the layers above are counted too.
    install_metrics(app)
    install_error_handlers(app)
    # A server span for every request (the first span of a case's trace), named by route
    # template; its context reaches the workflow the request starts through the Temporal
    # client's interceptor. Probes and scrapes are not traced: they would drown the rest.
    # ASGI send/receive spans are left out: one span per request says all that is needed.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/healthz,/livez,/metrics", exclude_spans=["receive", "send"]
    )
    return app


def read_credential(request: Request) -> str | None:
    """A partner's ``X-API-Key`` or a staff ``Authorization: Bearer`` token."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def caller_address(request: Request) -> str | None:
    """The address a request came from: the peer, or, behind a proxy uvicorn trusts
    (``FORWARDED_ALLOW_IPS``), the client the proxy names in X-Forwarded-For."""
    return request.client.host if request.client else None


async def current_principal(request: Request) -> Principal:
    """The caller's principal, resolved by the app's ``state.resolve``; or 401 (429 while
    the caller's address is throttled for failed attempts)."""
    credential = read_credential(request)
    if not credential:
        raise AuthenticationFailed("missing credential: send X-API-Key or a Bearer token")
    token = CALLER_ADDRESS.set(caller_address(request))
    try:
        principal: Principal | None = await request.app.state.resolve(credential)
    finally:
        CALLER_ADDRESS.reset(token)
    if principal is None:
        raise AuthenticationFailed("the credential is not valid")
    return principal


# A route's authenticated caller.
Caller = Annotated[Principal, Depends(current_principal)]


def add_healthz(app: FastAPI, database: Callable[[Request], Engine] | None = None) -> None:
    """``GET /healthz``: 200 when the service (and its ``database``, if it has one) answers."""

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        if database is not None:
            await run_in_threadpool(ping, database(request))
        return {"status": "ok"}

    # Liveness (deploy/k8s): the process answers, whatever its database does. /healthz is
    # readiness: a database outage takes every pod out of the Service, where restarting
    # them all (a liveness probe on /healthz) would add a restart storm to the outage.
    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}


def serve(name: str, app: FastAPI, settings: ApiSettings) -> None:
    """Serve ``app`` (the API ``name``) with uvicorn until stopped, logging and tracing as
    every MSET process does."""
    configure_logging(settings.environment, service_name(name))
    configure_tracing(settings, name)
    # log_config=None: uvicorn's loggers go through ours instead of its own set-up.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, log_level="info")


L = TypeVar("L", bound=ApiSettings)


def serve_main(
    name: str,
    load: Callable[[], L],
    create_app: Callable[[L], FastAPI],
    *errors: type[Exception],
) -> None:
    """An API process's whole main: settings read and the app built (or a one-line refusal,
    also for a service's own start-up ``errors``), then ``serve``."""
    with refusing_to_start(name, *errors):
        settings = load()
        app = create_app(settings)
    serve(name, app, settings)
