"""The codec server: Temporal's remote codec protocol over the payload keyring, for ops.

``POST /encode`` and ``POST /decode`` (also under any prefix, such as ``/default/decode``
for the CLI's ``--codec-endpoint http://host:8005/{namespace}``) take and return
``{"payloads": [...]}``, Temporal's ``Payloads`` message as protobuf JSON. With it the Temporal
UI and ``temporal workflow show --codec-endpoint ... --codec-auth "Bearer <token>"`` show an
ops user the history the server itself holds only encrypted.

Who may call: an ops token from the settings (``MSET_CODEC_SERVER_OPS_TOKENS``, one per
person, by name; ``MSET_CODEC_SERVER_OPS_TOKEN_FILE``), as ``Authorization: Bearer``; or, for
the Temporal UI (which sends no header of its own unless it has single sign-on), the same
token given once at ``/login`` and kept in an HttpOnly cookie the browser sends with the
UI's requests. Staff tokens are not
accepted: decoding reads every case in every authority, which no staff role may, and the
server must work while the referral service (which resolves staff tokens) is down, which is
when ops most need to read history (docs/decisions/0017-encrypted-workflow-payloads.md).
Browsers may call it from the Temporal UI's origin only (CORS). Every decode is logged with
the ops user's name, never with what was decoded.

    python -m mset_platform.codec_server
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from temporalio.api.common.v1 import Payload, Payloads

from mset_platform.codec import EncryptionCodec, PayloadTampered, UnknownKeyId
from mset_platform.edge import (
    AuthenticationFailed,
    BodyLimit,
    add_healthz,
    error_response,
    install_error_handlers,
    serve_main,
)
from mset_platform.settings import ApiSettings

log = logging.getLogger("mset.codec")

DEV_OPS_TOKEN = "dev-ops-token-not-for-production"  # noqa: S105 - refused in production
COOKIE = "mset_codec_ops"
MIN_TOKEN_CHARS = 24


class CodecServerSettings(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_CODEC_SERVER_")

    port: int = 8005
    # The Temporal UI's origin (scheme://host:port): the only one browsers may call from.
    ui_origin: str = "http://127.0.0.1:8233"
    # Ops user's name → their token (JSON). A name is what the audit log shows.
    ops_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    # A file holding one more token, for the ops user named "ops" (a mounted Secret; the
    # token ``make dev`` generates).
    ops_token_file: Path | None = None
    # A history page of payloads is a few hundred kB at most; the UI sends one page at once.
    max_body_bytes: int = 4 * 1024 * 1024
    # How long a UI sign-in (the cookie) lasts.
    session_hours: float = Field(default=8.0, gt=0, le=24)
    _tokens: dict[str, str] = PrivateAttr(default_factory=dict)

    def tokens(self) -> dict[str, str]:
        """Ops user's name → token, from both settings (read when the settings were made)."""
        return dict(self._tokens)

    @model_validator(mode="after")
    def _tokens_usable(self) -> Self:
        tokens = {name: token.get_secret_value() for name, token in self.ops_tokens.items()}
        if self.ops_token_file is not None:
            try:
                tokens["ops"] = self.ops_token_file.read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"cannot read the ops token file {self.ops_token_file}: {exc.strerror}"
                ) from None
        if not tokens:
            if self.environment != "development":
                raise ValueError(
                    "no ops token is set (MSET_CODEC_SERVER_OPS_TOKENS or "
                    "MSET_CODEC_SERVER_OPS_TOKEN_FILE): no one could decode"
                )
            tokens = {"dev-ops": DEV_OPS_TOKEN}
        for name, token in tokens.items():
            if len(token) < MIN_TOKEN_CHARS:
                raise ValueError(f"the ops token of {name!r} must be {MIN_TOKEN_CHARS}+ characters")
            if self.environment == "production" and token == DEV_OPS_TOKEN:
                raise ValueError(
                    f"the ops token of {name!r} is the development one: set a secret in production"
                )
        self._tokens = tokens
        return self


class CodecRequestInvalid(Exception):
    """The body is not a ``Payloads`` message in protobuf JSON, or a payload cannot be
    decoded (unknown key id, altered ciphertext)."""


def _credential(request: Request) -> str:
    """The request's bearer token, else its sign-in cookie ("" for neither)."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    given = bearer.strip() if scheme.lower() == "bearer" else ""
    return given or request.cookies.get(COOKIE, "")


def _ops_user(given: str, tokens: dict[str, bytes]) -> str:
    """The name of the ops user whose token ``given`` is, or 401."""
    if not given:
        raise AuthenticationFailed(
            "an ops credential is required: send Authorization: Bearer <ops token>, "
            "or sign in at /login"
        )
    found = None
    for name, token in tokens.items():  # compare with every token: no early exit to time
        if secrets.compare_digest(given.encode(), token):
            found = name
    if found is None:
        raise AuthenticationFailed("the ops credential is not valid")
    return found


def _parse(body: bytes) -> list[Payload]:
    try:
        return list(json_format.Parse(body, Payloads()).payloads)
    except json_format.ParseError as exc:
        raise CodecRequestInvalid(f'the body is not {{"payloads": [...]}} ({exc})') from None


Transform = Callable[[Iterable[Payload]], Awaitable[list[Payload]]]


def create_app(settings: CodecServerSettings) -> FastAPI:
    keyring = settings.codec_keyring()
    assert keyring is not None  # it requires keys (payload_keys_required): it holds them all
    codec = EncryptionCodec(keyring)
    tokens = {name: token.encode() for name, token in settings.tokens().items()}
    secure_cookie = settings.ui_origin.startswith("https://")

    app = FastAPI(
        title="MSET codec server",
        version="1",
        description="Temporal's remote codec protocol over MSET's payload keys, for ops.",
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Outermost, so refusals (401, 400) carry the CORS headers the UI needs to read them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[settings.ui_origin],
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,  # the UI's sign-in cookie
        max_age=600,
    )
    install_error_handlers(app)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        # Temporal's codec protocol answers a body or payload it cannot handle with 400.
        return error_response(400, str(exc))

    app.add_exception_handler(CodecRequestInvalid, invalid)
    add_healthz(app)

    async def run(request: Request, transform: Transform, what: str) -> Response:
        user = _ops_user(_credential(request), tokens)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise CodecRequestInvalid("send the payloads as application/json")
        payloads = _parse(await request.body())
        try:
            out = await transform(payloads)
        except (UnknownKeyId, PayloadTampered) as exc:
            log.warning("codec %s refused for %s: %s", what, user, exc)
            raise CodecRequestInvalid(str(exc)) from None
        namespace = request.headers.get("x-namespace", "-")
        log.info("codec %s: %d payloads for %s (namespace %s)", what, len(out), user, namespace)
        return Response(
            json_format.MessageToJson(Payloads(payloads=out)), media_type="application/json"
        )

    # The protocol's clients may mount the endpoints under any prefix: only the last part of
    # the path says which it is.
    @app.post("/decode", tags=["codec"])
    @app.post("/{prefix:path}/decode", tags=["codec"], include_in_schema=False)
    async def decode(request: Request) -> Response:
        """Decrypt payloads (an ops credential is required)."""
        return await run(request, codec.decode, "decode")

    @app.post("/encode", tags=["codec"])
    @app.post("/{prefix:path}/encode", tags=["codec"], include_in_schema=False)
    async def encode(request: Request) -> Response:
        """Encrypt payloads with the current key (an ops credential is required)."""
        return await run(request, codec.encode, "encode")

    @app.get("/login", response_class=HTMLResponse, tags=["ops"])
    async def login_form() -> HTMLResponse:
        """Sign the browser in, for the Temporal UI."""
        return HTMLResponse(_page(_FORM))

    @app.post("/login", response_class=HTMLResponse, tags=["ops"])
    async def login(request: Request) -> HTMLResponse:
        """Sign the browser in with an ops token (form field ``token``)."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        try:
            user = _ops_user(token, tokens)
        except AuthenticationFailed:
            return HTMLResponse(_page("<p>That token is not valid.</p>" + _FORM), status_code=401)
        log.info("codec sign-in for %s", user)
        resp = HTMLResponse(
            _page(
                f"<p>Signed in as {html.escape(user)}. The Temporal UI at "
                f"{html.escape(settings.ui_origin)} now shows decoded payloads in this "
                "browser (its codec settings must include cross-origin credentials).</p>"
            )
        )
        resp.set_cookie(
            COOKIE,
            token,
            max_age=int(settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
        )
        return resp

    @app.post("/logout", response_class=HTMLResponse, tags=["ops"])
    async def logout() -> HTMLResponse:
        """Forget the browser's sign-in."""
        resp = HTMLResponse(_page("<p>Signed out.</p>"))
        resp.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=secure_cookie)
        return resp

    return app


_FORM = (
    '<form method="post" action="/login"><label for="token">Ops token</label> '
    '<input id="token" name="token" type="password" autocomplete="off"> '
    '<button type="submit">Sign in</button></form>'
)


def _page(body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>MSET codec server</title></head><body><h1>MSET codec server</h1>"
        f"{body}</body></html>"
    )


def main() -> None:
    serve_main("codec server", CodecServerSettings, create_app)


if __name__ == "__main__":
    main()
