"""A webhook delivery's attempts in the trace of the request that led to them
(docs/observability.md).

The webhook consumer keeps its span's ``traceparent`` on the delivery; the dispatcher posts
each attempt, later and on its own thread, inside a client span that continues that trace.
The span is made here rather than by httpx's instrumentation, which would send a
``traceparent`` header to the partner: MSET's trace ids are its own operations data (the
body leaves out the CloudEvents tracing extension for the same reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import SpanKind, StatusCode

from mset_platform.tracing import context_of, current_span, tracer
from services.notifications.store import DeliveryClaim


@contextmanager
def post_span(claim: DeliveryClaim) -> Iterator[None]:
    """One attempt as a ``POST webhook`` client span, a child of the consumer span that wrote
    the delivery. Ids and numbers only: not the URL (a partner may put a token in it), the
    body or the partner's answer."""
    with tracer().start_as_current_span(
        "POST webhook",
        context=context_of(claim.delivery.traceparent),
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": "POST",
            "mset.webhook.delivery_id": str(claim.delivery.id),
            "mset.webhook.subscription_id": str(claim.subscription.id),
            "mset.webhook.attempt": claim.attempt,
            "cloudevents.event_type": claim.delivery.event_type,
        },
    ):
        yield


def answer_on_span(code: int | None, error: str | None) -> None:
    """The attempt's outcome on the current (``post_span``) span."""
    span = current_span()
    if code is not None:
        span.set_attribute("http.response.status_code", code)
    if error is not None:
        # The status code, or the error's kind ("ConnectTimeout", "refused"): not its detail.
        span.set_attribute("error.type", str(code) if code is not None else error.split(":")[0])
        span.set_status(StatusCode.ERROR)
