"""Spans recorded in the test process: the services under test run in it (APIs under uvicorn
threads, workers on the test's event loop), so one in-memory exporter sees every span of a
chain. OpenTelemetry allows one global tracer provider per process: it is installed once,
the first time a test asks, with the services' own processors (``tracing.tracer_provider``,
redaction included)."""

from __future__ import annotations

import functools

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mset_platform.tracing import tracer_provider


@functools.cache
def recorded_spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = tracer_provider("mset-tests", "test", [SimpleSpanProcessor(exporter)])
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another tracer provider was set first"
    return exporter


def ancestry(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """``span``, its parent, its parent's parent... as far as recorded spans go."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


def strings(span: ReadableSpan, key: str) -> list[str]:
    """A span's attribute that is a list of strings (empty when absent)."""
    value = (span.attributes or {}).get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, tuple | list) else []
