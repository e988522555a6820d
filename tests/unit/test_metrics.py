"""Request metrics at the HTTP edge: one series per route template, method and status class,
never per path as sent; and the scrape-time gauge collector's cache."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel

from mset_platform.edge import service_app
from mset_platform.metrics import TableGauges, gauge
from tests.support.metrics import samples, uuid_like_label_values, value


class Thing(BaseModel):
    name: str


def app() -> FastAPI:
    a = service_app("t", "t", lifespan=None, max_body_bytes=100)

    @a.get("/v1/things/{thing_id}")
    async def read(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    @a.post("/v1/things")
    async def make(thing: Thing) -> Thing:
        return thing

    @a.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return a


async def scrape(c: httpx.AsyncClient) -> str:
    resp = await c.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


def client(a: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: an unhandled exception is answered 500, as uvicorn does.
    transport = httpx.ASGITransport(app=a, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_requests_are_labelled_by_route_template_not_by_path() -> None:
    async with client(app()) as c:
        for _ in range(3):
            assert (await c.get(f"/v1/things/{uuid.uuid4()}")).status_code == 200
        assert (await c.get("/v1/things/not-a-uuid")).status_code == 422
        text = await scrape(c)
    template = "/v1/things/{thing_id}"
    requests = "mset_http_requests_total"
    assert value(text, requests, method="GET", route=template, status_class="2xx") == 3
    assert value(text, requests, method="GET", route=template, status_class="4xx") == 1
    assert (
        value(text, "mset_http_request_duration_seconds_count", route=template, status_class="2xx")
        == 3
    )
    assert uuid_like_label_values(text) == []
    assert not any("not-a-uuid" in v for s in samples(text) for v in s.labels.values())


async def test_refusals_before_routing_unknown_paths_and_server_errors_are_counted() -> None:
    async with client(app()) as c:
        # Refused by the edge's body limit before the router runs: still its route's series.
        big = await c.post("/v1/things", json={"name": "x" * 200})
        assert big.status_code == 422
        assert (await c.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404
        assert (await c.delete("/v1/things")).status_code == 405
        assert (await c.get("/boom")).status_code == 500
        text = await scrape(c)
    requests = "mset_http_requests_total"
    assert value(text, requests, method="POST", route="/v1/things", status_class="4xx") == 1
    assert value(text, requests, method="GET", route="unmatched", status_class="4xx") == 1
    assert value(text, requests, method="DELETE", route="/v1/things", status_class="4xx") == 1
    assert value(text, requests, method="GET", route="/boom", status_class="5xx") == 1
    assert value(text, "mset_http_request_errors_total", method="GET", route="/boom") == 1
    assert uuid_like_label_values(text) == []


async def test_two_apps_in_one_process_count_apart() -> None:
    a, b = app(), app()
    async with client(a) as ca, client(b) as cb:
        await ca.post("/v1/things", json={"name": "x"})
        text_b = await scrape(cb)
    assert value(text_b, "mset_http_requests_total", route="/v1/things") is None


def test_table_gauges_read_once_per_ttl_and_survive_a_failed_read() -> None:
    now = [0.0]
    reads: list[int] = []
    fail = [False]

    def read() -> list[object]:
        if fail[0]:
            raise OSError("database down")
        reads.append(1)
        return [gauge("mset_things", "Things.", ("kind",), [("a", len(reads))])]

    registry = CollectorRegistry()
    TableGauges("t", read, ttl=5.0, clock=lambda: now[0]).register(registry)  # type: ignore[arg-type]
    assert reads == []  # registering does not query
    first = generate_latest(registry).decode()
    assert value(first, "mset_things", kind="a") == 1
    assert value(first, "mset_domain_metrics_up", service="t") == 1
    now[0] = 4.0
    assert value(generate_latest(registry).decode(), "mset_things", kind="a") == 1
    now[0] = 5.0
    assert value(generate_latest(registry).decode(), "mset_things", kind="a") == 2
    fail[0], now[0] = True, 10.0
    failed = generate_latest(registry).decode()
    assert value(failed, "mset_things", kind="a") == 2  # the last good answer
    assert value(failed, "mset_domain_metrics_up", service="t") == 0
