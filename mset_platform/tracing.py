"""Traces: one OpenTelemetry trace from a partner's request to the inbox item it causes.

The chain (docs/observability.md):

1. the HTTP request: FastAPI's instrumentation (``edge.service_app``);
2. the workflow it starts and each activity: Temporal's ``TracingInterceptor`` on every
   client, which every worker built on that client inherits (``temporal.interceptors``);
3. the Kafka event: the publishing activity puts the current span's W3C trace context on the
   event as the CloudEvents distributed-tracing extension (``traceparent``), see
   ``mset_contract.events.codec``;
4. the consumer: each consumer group continues the trace from that ``traceparent`` in a span
   of its own, inside which the inbox item or webhook delivery is written;
5. what happens later, on another loop, from a row the consumer wrote (the webhook POST, the
   re-escalation workflow's start): the row keeps the consumer span's ``traceparent``
   (``current_traceparent``) and the later work continues from it (``continued``).

Every process has an SDK tracer provider (``configure_tracing``), so trace ids exist, travel
and reach the logs even when nothing is exported; spans leave the process only when an OTLP
endpoint is configured.

Traces are operations data, but a trace backend is not where personal data may go: spans
name routes, workflow and activity types, event types and opaque ids, never a name or free
text. ``Redacting`` removes what the instrumentations would otherwise record about the caller
(address, user agent) and exception messages (an error may quote the value it refused).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mset_platform.settings import ServiceSettings

# The instrumentation scope of MSET's own spans (the consumers').
TRACER_NAME = "mset"

# W3C trace context, the format of the CloudEvents distributed-tracing extension.
_PROPAGATOR = TraceContextTextMapPropagator()

# What the HTTP instrumentation records about the caller: a staff member's address and
# browser are personal data, and nothing an operator needs to follow a request.
REDACTED_ATTRIBUTES = frozenset(
    {
        "client.address",
        "client.port",
        "net.peer.ip",
        "net.peer.port",
        "http.client_ip",
        "http.user_agent",
        "user_agent.original",
        "http.host",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "network.peer.address",
        "network.peer.port",
    }
)


def service_name(name: str) -> str:
    """The OpenTelemetry ``service.name`` (and the logs' ``service``) of a process named
    ``name`` ("referral", "notifications worker"): ``mset-referral``,
    ``mset-notifications-worker``."""
    return "mset-" + "-".join(name.lower().split())


def _redacted(span: ReadableSpan) -> ReadableSpan:
    attributes = {k: v for k, v in (span.attributes or {}).items() if k not in REDACTED_ATTRIBUTES}
    # An exception keeps its type: its message and stack trace may quote a value (an
    # integrity error quotes the row), and are in the service's logs for whoever needs them.
    events = [
        Event(
            e.name,
            {"exception.type": (e.attributes or {}).get("exception.type", "")},
            e.timestamp,
        )
        if e.name == "exception"
        else e
        for e in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, status.description.split(":", 1)[0])
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class Redacting(SpanProcessor):
    """Hands ``inner`` a copy of each ended span without the caller's details and without
    exception messages (an ended span cannot be changed, so it is copied)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(_redacted(span))

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def tracer_provider(
    service: str, environment: str, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """An SDK provider for ``service``, each of ``processors`` behind ``Redacting``."""
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": service, "deployment.environment.name": environment}
        )
    )
    for processor in processors:
        provider.add_span_processor(Redacting(processor))
    return provider


def configure_tracing(settings: ServiceSettings, name: str) -> None:
    """The process's tracer provider, once, at start-up: spans exported over OTLP (HTTP,
    protobuf) to ``settings.otlp_endpoint`` in batches when it is set, nowhere otherwise."""
    processors: list[SpanProcessor] = []
    if settings.otlp_endpoint:
        # Imported here: a process that exports nothing needs no exporter (or its requests).
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter(
            endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces"
        )
        processors.append(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider(service_name(name), settings.environment, processors))


def tracer() -> trace.Tracer:
    # A proxy until the provider is set: modules may ask before start-up has configured it.
    return trace.get_tracer(TRACER_NAME)


def current_span() -> trace.Span:
    return trace.get_current_span()


def current_trace_context() -> dict[str, str]:
    """The current span's W3C trace context (``traceparent``, and ``tracestate`` when there
    is one); empty when no span is recording."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str]) -> Context:
    """The context to continue a trace in, from a ``traceparent`` (and ``tracestate``); a
    missing or malformed one starts a new trace rather than failing the work."""
    return _PROPAGATOR.extract(carrier, context=otel_context.Context())


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, to keep on a row whose work is done later, on
    another loop (a webhook delivery, an inbox item's re-escalation timer); None when no span
    is recording. An SDK span's is always version 00: 55 characters."""
    return current_trace_context().get("traceparent")


def context_of(traceparent: str | None) -> Context:
    """The context to continue a kept ``traceparent`` in (a new trace when there is none)."""
    return context_from({"traceparent": traceparent} if traceparent else {})


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Run the block in the trace of a kept ``traceparent``: spans started inside it (the
    Temporal interceptor's, for one) are children of the span that kept it."""
    token = otel_context.attach(context_of(traceparent))
    try:
        yield
    finally:
        otel_context.detach(token)
