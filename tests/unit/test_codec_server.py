"""The codec server over HTTP (in process): Temporal's remote codec protocol for ops tokens
only, CORS for the Temporal UI's origin only. The same server against a real history is in
tests/integration/test_encrypted_history.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from pydantic import ValidationError
from temporalio.api.common.v1 import Payloads

from mset_platform.codec import EncryptionCodec, Keyring
from mset_platform.codec_server import (
    DEV_OPS_TOKEN,
    CodecServerSettings,
    create_app,
)
from tests.support.codec import TEST_KEYRING

UI = "http://127.0.0.1:18233"
TOKEN = "ops-token-for-the-unit-tests-0123456789"
SECRET = "Planted-Progress-Note-Okapi-4410"


def codec_settings(**values: object) -> CodecServerSettings:
    return CodecServerSettings.model_validate(
        {"environment": "test", "ui_origin": UI, "ops_tokens": {"ops-alice": TOKEN}, **values}
    )


@pytest.fixture
async def server() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(codec_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as client:
        yield client


async def sealed_body(keys: Keyring = TEST_KEYRING) -> str:
    from mset_platform.temporal import data_converter

    plain = data_converter(keys).payload_converter.to_payloads([SECRET])
    sealed = await EncryptionCodec(keys).encode(plain)
    return json_format.MessageToJson(Payloads(payloads=sealed))


def readable(body: str) -> str:
    """What a reader of the answer sees: each payload's data (base64 in protobuf JSON)."""
    payloads = json_format.Parse(body, Payloads()).payloads
    return " ".join(p.data.decode("utf-8", "replace") for p in payloads)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def test_an_ops_token_decodes_the_payloads(server: httpx.AsyncClient) -> None:
    body = await sealed_body()
    assert SECRET not in readable(body)
    resp = await server.post("/decode", content=body, headers=bearer())
    assert resp.status_code == 200
    assert SECRET in readable(resp.text)
    # Only the last part of the path counts: the CLI's {namespace} templating works.
    resp = await server.post("/default/decode", content=body, headers=bearer())
    assert resp.status_code == 200 and SECRET in readable(resp.text)


async def test_encode_gives_what_decode_reads(server: httpx.AsyncClient) -> None:
    from mset_platform.temporal import data_converter

    plain = data_converter(TEST_KEYRING).payload_converter.to_payloads([SECRET])
    body = json_format.MessageToJson(Payloads(payloads=plain))
    encoded = await server.post("/encode", content=body, headers=bearer())
    assert encoded.status_code == 200 and SECRET not in readable(encoded.text)
    decoded = await server.post("/decode", content=encoded.text, headers=bearer())
    assert SECRET in readable(decoded.text)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        bearer("not-the-ops-token-at-all-0000000000"),
        {"Authorization": f"Basic {TOKEN}", "Content-Type": "application/json"},
    ],
    ids=["no credential", "a wrong token", "not a bearer token"],
)
async def test_without_an_ops_token_nothing_is_decoded(
    server: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    resp = await server.post("/decode", content=await sealed_body(), headers=headers)
    assert resp.status_code == 401
    assert "payloads" not in resp.json()
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_the_sign_in_cookie_lets_the_browser_decode(server: httpx.AsyncClient) -> None:
    refused = await server.post(
        "/login",
        content="token=wrong",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 401 and "mset_codec_ops" not in refused.headers.get(
        "set-cookie", ""
    )
    resp = await server.post(
        "/login",
        content=f"token={TOKEN}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200 and "Signed in as ops-alice" in resp.text
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    body = await sealed_body()
    decoded = await server.post(
        "/decode", content=body, headers={"Content-Type": "application/json"}
    )
    assert decoded.status_code == 200 and SECRET in readable(decoded.text)
    await server.post("/logout")
    server.cookies.clear()  # httpx keeps a deleted cookie's jar entry until told
    again = await server.post("/decode", content=body, headers={"Content-Type": "application/json"})
    assert again.status_code == 401


async def test_cors_answers_the_temporal_ui_only(server: httpx.AsyncClient) -> None:
    body = await sealed_body()
    from_ui = await server.post("/decode", content=body, headers={**bearer(), "Origin": UI})
    assert from_ui.headers["access-control-allow-origin"] == UI
    assert from_ui.headers["access-control-allow-credentials"] == "true"
    elsewhere = "http://evil.example"
    other = await server.post("/decode", content=body, headers={**bearer(), "Origin": elsewhere})
    assert "access-control-allow-origin" not in other.headers
    # The browser's preflight: allowed for the UI (with the headers it sends), not for others.
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    ok = await server.options("/decode", headers={**ask, "Origin": UI})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == UI
    assert "x-namespace" in ok.headers["access-control-allow-headers"].lower()
    no = await server.options("/decode", headers={**ask, "Origin": elsewhere})
    assert "access-control-allow-origin" not in no.headers
    # Refusals carry the UI's CORS headers too, so the UI can show why.
    refused = await server.post(
        "/decode", content=body, headers={"Origin": UI, "Content-Type": "application/json"}
    )
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == UI


async def test_a_payload_under_an_unknown_key_is_a_400_naming_it(
    server: httpx.AsyncClient,
) -> None:
    other = Keyring(current="someone-elses", keys={"someone-elses": os.urandom(32)})
    resp = await server.post("/decode", content=await sealed_body(other), headers=bearer())
    assert resp.status_code == 400
    assert "someone-elses" in resp.json()["detail"]


@pytest.mark.parametrize("body", ["not json", '{"payloads": "nope"}', '{"other": 1}'])
async def test_a_body_that_is_not_payloads_is_a_400(server: httpx.AsyncClient, body: str) -> None:
    resp = await server.post("/decode", content=body, headers=bearer())
    assert resp.status_code == 400
    assert "payloads" in resp.json()["detail"]


def test_production_refuses_the_development_ops_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSET_CODEC_KEY_FILE", raising=False)  # the test tier's (conftest)
    monkeypatch.setenv("MSET_CODEC_KEYS", "prod=" + "A" * 43 + "=")
    with pytest.raises(ValidationError, match="'dev-ops' is the development one"):
        CodecServerSettings(environment="production", ops_tokens={"dev-ops": DEV_OPS_TOKEN})
    with pytest.raises(ValidationError, match="no ops token is set"):
        CodecServerSettings(environment="production")


def test_the_ops_token_file_adds_the_user_ops(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("a-token-from-a-mounted-secret-0123456789\n")
    got = codec_settings(ops_token_file=file).tokens()
    assert got == {"ops-alice": TOKEN, "ops": "a-token-from-a-mounted-secret-0123456789"}
    # Given a token of its own, development no longer accepts the public development one.
    only_file = CodecServerSettings.model_validate({"ops_token_file": file})
    assert DEV_OPS_TOKEN not in only_file.tokens().values()


def test_a_short_ops_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="24\\+ characters"):
        codec_settings(ops_tokens={"ops-bob": "short"})
