"""The HTTP edge every service shares: the error body partners see, body limits, and how a
credential is read from a request. Part of the API contract, so it lives here once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mset_contract.auth import Principal


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


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


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "the request is not valid: " + "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return error_response(422, detail, errors)


async def _auth_handler(request: Request, exc: Exception) -> JSONResponse:
    resp = error_response(401, str(exc) or "authentication required")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="mset"'
    return resp


async def _forbidden_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response(403, str(exc) or "your role may not do this")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(AuthenticationFailed, _auth_handler)
    app.add_exception_handler(Forbidden, _forbidden_handler)


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


Resolver = Callable[[str], Awaitable[Principal | None]]


def principal_dependency(get_resolver: Callable[[Request], Resolver]) -> Callable[..., Any]:
    """A FastAPI dependency returning the caller's principal or raising 401."""

    async def current_principal(request: Request) -> Principal:
        credential = read_credential(request)
        if not credential:
            raise AuthenticationFailed("missing credential: send X-API-Key or a Bearer token")
        principal = await get_resolver(request)(credential)
        if principal is None:
            raise AuthenticationFailed("the credential is not valid")
        return principal

    return current_principal
