"""The HTTP edge every service shares: error bodies, body limits, credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from mset_contract.auth import credential_hash, new_secret
from mset_platform.edge import BodyLimit, RequireJson, install_error_handlers


class Thing(BaseModel):
    name: str


def app() -> FastAPI:
    a = FastAPI()
    a.add_middleware(RequireJson)
    a.add_middleware(BodyLimit, max_bytes=100)
    install_error_handlers(a)

    @a.post("/things")
    async def make(thing: Thing) -> Thing:
        return thing

    return a


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t")


async def test_body_limit_counts_bytes_even_without_content_length() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        yield b"x" * 200
        yield b'"}'

    async with client() as c:
        resp = await c.post(
            "/things", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in resp.request.headers
        assert resp.status_code == 422
        assert resp.json()["errors"] == [{"field": "body", "reason": "larger than 100 bytes"}]
        assert (await c.post("/things", json={"name": "ok"})).status_code == 200


async def test_wrong_content_type_names_the_header() -> None:
    async with client() as c:
        resp = await c.post("/things", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "header.content-type"


def test_secrets_are_random_prefixed_and_hashed() -> None:
    a, b = new_secret("msetk_"), new_secret("msetk_")
    assert a != b and a.startswith("msetk_") and len(a) > 40
    assert credential_hash(a) != a and len(credential_hash(a)) == 64
