"""Metrics every MSET process exposes in the Prometheus text format (docs/metrics.md).

- An API: ``GET /metrics`` on its own port, with the request metrics of ``RequestMetrics``
  (per route *template*, method and status class), the process's own, and the gauges its
  service reads from its tables (``TableGauges``).
- A worker: two ports, both from its settings (``worker_start_metrics``). The Temporal SDK's
  own metrics are served by the SDK's Rust core on ``worker_sdk_metrics_port``: that exporter
  owns its registry and its HTTP server, so Python's metrics cannot join it. The worker's
  domain counters and process metrics are served by prometheus-client on
  ``worker_metrics_port``.

Label values come from closed vocabularies (stage, kind, urgency, consumer group, route
template, status class) and local authority codes (one per authority the deployment serves):
never an id, a path as sent, or anything personal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from fastapi import FastAPI
    from temporalio.runtime import TelemetryConfig

    from mset_platform.settings import ServiceSettings

log = logging.getLogger("mset.metrics")

# The label of a request no route matched (a 404 on an unknown path): never the path itself,
# which a caller chooses and may fill with ids.
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route ``scope`` is for (``/v1/referrals/{referral_id}``).

    Matched here, before the app runs, as the router matches: a request the edge refuses
    before routing (body too large, not JSON) is still labelled with its route. A route that
    matches the path but not the method (a 405) is labelled with its template too.
    """
    app = scope.get("app")
    partial: str | None = None
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
        if match is Match.PARTIAL and partial is None:
            partial = str(route.path)
    return partial or UNMATCHED


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class HttpMetrics:
    """An API's request metrics, on its app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status_class")
        self.requests = Counter(
            "mset_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            "mset_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class.",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "mset_http_request_errors",
            "HTTP requests that ended in a server error (5xx, or an exception the app did "
            "not handle), by method and route template.",
            ("method", "route"),
            registry=registry,
        )


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request (the outermost layer, so the
    edge's own refusals are counted too)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = route_template(scope)
        status = 500  # unless the app answers: an exception it did not handle is a 500
        started = time.perf_counter()

        async def recorded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recorded_send)
        finally:
            m = self.metrics
            labels = (method, route, status_class(status))
            m.requests.labels(*labels).inc()
            m.duration.labels(*labels).observe(time.perf_counter() - started)
            if status >= 500:
                m.errors.labels(method, route).inc()


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Request metrics and ``GET /metrics`` on ``app``, with a registry of its own (two apps
    in one process, as in the tests, do not share counters). A service adds its gauges to
    ``app.state.metrics`` (``TableGauges.register``)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app.state.metrics = registry
    # Added last by the caller's set-up, so it wraps every other middleware.
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(registry))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Collectors that read tables are synchronous: off the event loop.
        body = await run_in_threadpool(generate_latest, request.app.state.metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return registry


class TableGauges(Collector):
    """Gauges a service reads from its own tables when scraped.

    ``read`` returns the metric families; its answer is kept for ``ttl`` seconds, so
    scrapes from several Prometheus servers (or a dashboard refreshing) cost one set of
    queries. A read that fails keeps the last answer and sets ``mset_domain_metrics_up`` to
    0, so a database outage shows as such instead of failing the whole scrape.
    """

    def __init__(
        self,
        name: str,
        read: Callable[[], Iterable[Metric]],
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.read = read
        self.ttl = ttl
        self.clock = clock
        self.lock = threading.Lock()
        self.cached: list[Metric] = []
        self.read_at: float | None = None
        self.up = 0

    def describe(self) -> Iterable[Metric]:
        # Nothing: registering must not query the database (prometheus-client would call
        # collect() to learn the names otherwise).
        return []

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            now = self.clock()
            if self.read_at is None or now - self.read_at >= self.ttl:
                try:
                    self.cached = list(self.read())
                    self.up = 1
                except Exception:
                    log.warning("%s metrics: reading the tables failed", self.name, exc_info=True)
                    self.up = 0
                self.read_at = now
            up = GaugeMetricFamily(
                "mset_domain_metrics_up",
                "1 when the service's last read of its domain metrics succeeded.",
                labels=["service"],
            )
            up.add_metric([self.name], self.up)
            return [*self.cached, up]

    def register(self, registry: CollectorRegistry) -> TableGauges:
        registry.register(self)
        return self


def gauge(
    name: str, documentation: str, labels: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> GaugeMetricFamily:
    """A gauge family from query rows: the label values first, the value last."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for *values, value in rows:
        family.add_metric([str(v) for v in values], float(value))
    return family


def sdk_telemetry_config(bind_address: str) -> TelemetryConfig:
    """How a worker's Temporal SDK exports its metrics: on ``bind_address``, names as the
    SDK's core makes them (its default ``temporal_`` prefix, no unit suffix), durations in
    seconds. The dashboard and alert rules (deploy/grafana, deploy/prometheus) are checked
    against the names this gives (tests/support/exported_metrics.py)."""
    from temporalio.runtime import PrometheusConfig, TelemetryConfig

    return TelemetryConfig(
        metrics=PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
    )


def worker_start_metrics(settings: ServiceSettings) -> None:
    """A worker process's metrics endpoints, before any Temporal client connects.

    The SDK's Prometheus exporter is configured on the process's default runtime, so every
    client (and so every worker) made in this process reports through it without being told.
    """
    host = settings.metrics_host
    if settings.worker_sdk_metrics_port is not None:
        from temporalio.runtime import Runtime

        runtime = Runtime(
            telemetry=sdk_telemetry_config(f"{host}:{settings.worker_sdk_metrics_port}")
        )
        Runtime.set_default(runtime, error_if_already_set=True)
    if settings.worker_metrics_port is not None:
        serve_worker_metrics(host, settings.worker_metrics_port)


def serve_worker_metrics(host: str, port: int) -> WSGIServer:
    """A worker's own metrics endpoint (``/metrics`` on ``host:port``): prometheus-client's
    default registry, where the worker's counters are, in a daemon thread. Returned so that a
    test can stop it (``shutdown()`` then ``server_close()``); a worker serves it until it
    exits."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
