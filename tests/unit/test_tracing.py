"""Trace context on events and on rows whose work is done later, and what a span may carry
(issue 12, item 3). The whole chain is followed in tests/integration/test_notifications_chain.py
and tests/integration/test_notifications.py."""

from __future__ import annotations

import uuid

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mset_contract.events import (
    ReferralEscalated,
    example_events,
    from_kafka,
    structured_trace_context,
    to_kafka,
    to_structured_json,
    trace_context,
)
from mset_platform.tracing import (
    context_from,
    continued,
    current_traceparent,
    service_name,
    tracer_provider,
)
from services.notifications.store import DeliveryClaim, WebhookDelivery, WebhookSubscription
from services.notifications.webhook_spans import answer_on_span, post_span
from tests.support.tracing import recorded_spans

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def escalation() -> ReferralEscalated:
    return next(e for e in example_events() if isinstance(e, ReferralEscalated))


def test_an_event_carries_its_trace_as_the_cloudevents_tracing_extension() -> None:
    event = escalation()
    record = to_kafka(event, {"traceparent": TRACEPARENT})
    assert record.header("ce_traceparent") == TRACEPARENT.encode()
    assert trace_context(record.headers) == {"traceparent": TRACEPARENT}
    assert from_kafka(record.headers, record.key, record.value) == event  # not in the model
    # The outbox's copy keeps it (a re-send stays in the trace); a webhook body has none.
    assert structured_trace_context(to_structured_json(event, {"traceparent": TRACEPARENT})) == {
        "traceparent": TRACEPARENT
    }
    assert b"traceparent" not in to_structured_json(event)
    assert to_kafka(event).header("ce_traceparent") is None


def test_a_bad_trace_header_starts_a_new_trace_and_never_rejects_the_event() -> None:
    event = escalation()
    record = to_kafka(event)
    headers = [*record.headers, ("ce_traceparent", b"not-a-traceparent")]
    assert from_kafka(headers, record.key, record.value) == event
    ctx = context_from(trace_context(headers))
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert trace_context([("ce_traceparent", "\u00e9".encode() * 10)]) == {}
    assert trace_context([("ce_traceparent", b"x" * 10_000)]) == {}


def test_a_consumer_continues_the_published_trace() -> None:
    ctx = context_from({"traceparent": TRACEPARENT})
    parent = trace.get_current_span(ctx).get_span_context()
    assert f"{parent.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert f"{parent.span_id:016x}" == TRACEPARENT.split("-")[2]


def test_spans_leave_the_process_without_the_caller_or_exception_messages() -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider("mset-test", "test", [SimpleSpanProcessor(exporter)])
    with provider.get_tracer("t").start_as_current_span("POST /v1/referrals") as span:
        span.set_attribute("client.address", "192.0.2.7")
        span.set_attribute("http.user_agent", "Mozilla/5.0")
        span.set_attribute("http.route", "/v1/referrals")
        try:
            raise ValueError("duplicate key (name)=(Jane Doe)")
        except ValueError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"ValueError: {exc}"))
    (got,) = exporter.get_finished_spans()
    assert dict(got.attributes or {}) == {"http.route": "/v1/referrals"}
    (event,) = got.events
    assert dict(event.attributes or {}) == {"exception.type": "ValueError"}
    assert got.status.description == "ValueError"
    assert got.resource.attributes["service.name"] == "mset-test"


def test_service_names() -> None:
    assert service_name("referral") == "mset-referral"
    assert service_name("notifications worker") == "mset-notifications-worker"


def test_work_done_later_from_a_kept_traceparent_continues_that_trace() -> None:
    exporter = InMemorySpanExporter()
    tracer = tracer_provider("mset-test", "test", [SimpleSpanProcessor(exporter)]).get_tracer("t")
    with tracer.start_as_current_span("process mset.events") as consumer:
        kept = current_traceparent()  # what the consumer writes on the row
    assert kept is not None and len(kept) == 55  # fits the column (String(64))
    with continued(kept), tracer.start_as_current_span("StartWorkflow:x"):
        pass
    # A row written before traces were kept: the later work is a trace of its own.
    with continued(None), tracer.start_as_current_span("StartWorkflow:y"):
        pass
    got = {s.name: s for s in exporter.get_finished_spans()}
    later, orphan = got["StartWorkflow:x"], got["StartWorkflow:y"]
    assert later.parent is not None and later.parent.span_id == consumer.get_span_context().span_id
    assert later.context is not None
    assert later.context.trace_id == consumer.get_span_context().trace_id
    assert orphan.parent is None
    assert current_traceparent() is None  # nothing left attached


def _claim(traceparent: str | None) -> DeliveryClaim:
    delivery = WebhookDelivery(
        id=uuid.uuid4(), event_id=uuid.uuid4(), event_type="mset.referral.escalated"
    )
    delivery.traceparent = traceparent
    sub = WebhookSubscription(id=uuid.uuid4(), url="https://partner.example/hook?token=s3cret")
    return DeliveryClaim(delivery, sub, uuid.uuid4(), 2, False)


def test_a_webhook_attempt_is_a_client_span_of_the_deliverys_trace_with_the_outcome_only() -> None:
    spans = recorded_spans()
    failed, answered = _claim(TRACEPARENT), _claim(TRACEPARENT)
    with post_span(failed):
        answer_on_span(None, "refused: 10.1.2.3 is a private address")
    with post_span(answered):
        answer_on_span(502, "HTTP 502")
    mine = {str(failed.delivery.id), str(answered.delivery.id)}
    got = {
        str((s.attributes or {})["mset.webhook.delivery_id"]): s
        for s in spans.get_finished_spans()
        if (s.attributes or {}).get("mset.webhook.delivery_id") in mine
    }
    refused, bad_gateway = got[str(failed.delivery.id)], got[str(answered.delivery.id)]
    for span in (refused, bad_gateway):
        assert span.name == "POST webhook" and span.kind == trace.SpanKind.CLIENT
        assert span.parent is not None
        assert f"{span.parent.trace_id:032x}-{span.parent.span_id:016x}" == "-".join(
            TRACEPARENT.split("-")[1:3]
        )
        assert span.status.status_code == trace.StatusCode.ERROR
        assert (span.attributes or {})["mset.webhook.attempt"] == 2
        # Neither the partner's URL (a token may be in it) nor the error's detail.
        text = str(dict(span.attributes or {}))
        assert "partner.example" not in text and "s3cret" not in text and "10.1.2.3" not in text
    assert (refused.attributes or {})["error.type"] == "refused"
    assert "http.response.status_code" not in (refused.attributes or {})
    assert (bad_gateway.attributes or {})["error.type"] == "502"
    assert (bad_gateway.attributes or {})["http.response.status_code"] == 502
