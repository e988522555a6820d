"""How an event travels: CloudEvents 1.0 over Kafka (binary content mode) and as one
CloudEvents JSON document (webhook bodies), both ways, with validation into the catalogue's
models (docs/decisions/0005-one-topic-cloudevents-binary-mode.md).

Wire format (CloudEvents 1.0, Kafka protocol binding, *binary* content mode):

=================  =========================================================================
Kafka              CloudEvents
=================  =========================================================================
key                ``partitionkey`` extension = the case (referral) id: one case, one
                   partition, so a case's events are read in the order they were written
``ce_id``          ``id``: deterministic per workflow step (``catalogue.event_id``), so a retried
                   activity re-sends the *same* event and consumers drop the copy
``ce_type``        ``type``, past tense: ``mset.referral.escalated``
``ce_source``      ``source``: who says so, e.g. ``/mset/workflows/referral``
``ce_subject``     ``subject``: the case id
``ce_time``        ``time``: when it happened (RFC 3339, UTC)
``ce_dataschema``  ``urn:mset:events:<type>:v<version>``: the model (and version) of ``data``
``content-type``   ``application/json``
``ce_traceparent`` ``traceparent`` (optional): the W3C trace context of the span that published
                   the event, the CloudEvents distributed-tracing extension; ``tracestate``
                   likewise. Operations data, never part of the event's model: a consumer
                   continues the trace from it (``trace_context``)
value              ``data``: the event's own fields as JSON (everything but the envelope)
=================  =========================================================================

Webhook deliveries carry the same event in CloudEvents *structured* mode
(``application/cloudevents+json``): one JSON document with the attributes and ``data``
(without the tracing extension: MSET's trace ids are its own operations data).

Topics: every event goes to :data:`EVENTS_TOPIC` (one topic, keyed by case, so per-case
order holds across event types); consumers read it in their own groups and skip the types
they do not handle. What a consumer cannot validate goes to :data:`DEAD_LETTER_TOPIC`
with the reason in the ``mset_dlq_reason`` header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from mset_contract.events.catalogue import ENVELOPE_FIELDS, EVENT_TYPES, EVENTS_BY_KEY, MsetEvent

EVENTS_TOPIC = "mset.events"
DEAD_LETTER_TOPIC = "mset.events.dlq"

# Kafka header names on dead-lettered messages (the original headers are kept beside them).
DLQ_REASON_HEADER = "mset_dlq_reason"
DLQ_CONSUMER_HEADER = "mset_dlq_consumer"
DLQ_ORIGIN_HEADER = "mset_dlq_origin"  # "<topic>/<partition>/<offset>"

# The CloudEvents distributed-tracing extension's attributes (W3C trace context).
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
# W3C trace context values are short ASCII; anything longer is not one.
_TRACE_VALUE_MAX = 512

CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# Must match catalogue.DATASCHEMA.
_DATASCHEMA_RE = re.compile(r"^urn:mset:events:(?P<type>[a-z0-9_.]+):v(?P<version>[0-9]{1,3})$")


class EventRejected(Exception):
    """A message that is not a valid MSET event. ``reason`` names what is wrong without
    repeating the offending values (they could be anything, personal data included)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _trace_attributes(trace: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k in TRACE_ATTRIBUTES if (v := (trace or {}).get(k))}


def to_cloudevent(event: MsetEvent, trace: Mapping[str, str] | None = None) -> CloudEvent:
    """``trace``: the publishing span's W3C trace context (``traceparent``, ``tracestate``),
    carried as the distributed-tracing extension."""
    return CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": str(event.id),
            "type": event.type,
            "source": event.source,
            "subject": str(event.subject),
            "time": event.time,
            "datacontenttype": CONTENT_TYPE,
            "dataschema": event.dataschema,
            ce_kafka.PARTITIONKEY_ATTR: str(event.subject),
            **_trace_attributes(trace),
        },
        data=event.data(),
    )


@dataclass(frozen=True)
class KafkaRecord:
    """What a producer sends: kafka-python takes headers as a list of (name, bytes)."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


def to_kafka(event: MsetEvent, trace: Mapping[str, str] | None = None) -> KafkaRecord:
    """The event as a Kafka record in CloudEvents binary mode; key = the case id. ``trace``:
    see ``to_cloudevent``."""
    msg = ce_kafka.to_binary(to_cloudevent(event, trace), JSONFormat())
    return KafkaRecord(
        key=str(event.subject).encode("utf-8"), value=msg.value, headers=list(msg.headers.items())
    )


def to_structured_json(event: MsetEvent, trace: Mapping[str, str] | None = None) -> bytes:
    """The event as one CloudEvents JSON document (webhook bodies, without ``trace``; the
    outbox, with it)."""
    return JSONFormat().write(to_cloudevent(event, trace))


def trace_context(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The distributed-tracing extension of a Kafka record in binary mode (``ce_traceparent``,
    ``ce_tracestate``), for a consumer to continue the trace; empty when it has none.
    Whatever is not a plausible value is left out: a bad trace header never rejects an
    event (the propagator ignores a malformed ``traceparent`` and starts a new trace)."""
    found: dict[str, str] = {}
    for name, raw in headers or ():
        if not isinstance(name, str) or not isinstance(raw, bytes):
            continue
        attr = name.lower().removeprefix(ce_kafka.CE_PREFIX)
        if name.lower().startswith(ce_kafka.CE_PREFIX) and attr in TRACE_ATTRIBUTES:
            if len(raw) <= _TRACE_VALUE_MAX and raw.isascii():
                found[attr] = raw.decode("ascii")
    return found


def structured_trace_context(body: bytes) -> dict[str, str]:
    """The distributed-tracing extension of a CloudEvents JSON document (the outbox's copy of
    an event), to publish it again in the trace it was first published in."""
    try:
        attrs = JSONFormat().read(CloudEvent, body).get_attributes()
    except Exception:  # not ours to judge here: from_structured_json says what is wrong
        return {}
    return {k: v for k in TRACE_ATTRIBUTES if isinstance(v := attrs.get(k), str)}


def _validation_reason(exc: ValidationError) -> str:
    # Locations and error types only: pydantic's messages quote the input value.
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['type']}"
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    more = f" (+{len(parts) - 5} more)" if len(parts) > 5 else ""
    return "data does not match the schema: " + "; ".join(parts[:5]) + more


def _event_from_attributes(attrs: Mapping[str, Any], data: Any) -> MsetEvent:
    schema = attrs.get("dataschema")
    match = _DATASCHEMA_RE.match(schema) if isinstance(schema, str) else None
    if match is None:
        raise EventRejected("missing or unrecognised dataschema (want urn:mset:events:<type>:vN)")
    type_, version = match["type"], int(match["version"])
    if attrs.get("type") != type_:
        raise EventRejected("type and dataschema disagree")
    model = EVENTS_BY_KEY.get((type_, version))
    if model is None:
        known = "known" if type_ in EVENT_TYPES else "unknown"
        raise EventRejected(f"no model for event type {type_} v{version} ({known} type)")
    if not isinstance(data, dict):
        raise EventRejected("data is not a JSON object")
    envelope = {k: attrs.get(k) for k in ("id", "source", "time", "subject")}
    clash = ENVELOPE_FIELDS & data.keys()
    if clash:
        raise EventRejected(f"data repeats envelope attributes: {', '.join(sorted(clash))}")
    try:
        return model.model_validate({**data, **envelope, "type": type_, "version": version})
    except ValidationError as exc:
        raise EventRejected(_validation_reason(exc)) from None


def from_kafka(
    headers: Iterable[tuple[str, bytes | None]] | None, key: bytes | None, value: bytes | None
) -> MsetEvent:
    """Validate a Kafka record into its event model, or raise :class:`EventRejected`."""
    hdrs: dict[str, bytes] = {}
    for name, raw in headers or ():
        if not isinstance(name, str) or not isinstance(raw, bytes):
            raise EventRejected("a header without a value")
        if name.lower() in hdrs:
            raise EventRejected(f"header {name.lower()} appears more than once")
        hdrs[name.lower()] = raw
    if not any(h.startswith(ce_kafka.CE_PREFIX) for h in hdrs):
        raise EventRejected("not a CloudEvent: no ce_ headers (binary content mode expected)")
    if key is None:
        raise EventRejected("no message key (the case id)")
    try:
        ce = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=hdrs, key=key, value=value or b""),
            JSONFormat(),
            CloudEvent,
        )
    except Exception as exc:  # bad UTF-8, a bad time, the SDK's own validation errors
        raise EventRejected(f"invalid CloudEvents attributes ({type(exc).__name__})") from None
    attrs = ce.get_attributes()
    if attrs.get("specversion") != "1.0":
        raise EventRejected("specversion must be 1.0")
    if attrs.get("datacontenttype") != CONTENT_TYPE:
        raise EventRejected(f"content-type must be {CONTENT_TYPE}")
    event = _event_from_attributes(attrs, ce.get_data())
    if attrs.get(ce_kafka.PARTITIONKEY_ATTR) != str(event.subject):
        raise EventRejected("the message key is not the event's subject (case id)")
    return event


def from_structured_json(body: bytes) -> MsetEvent:
    """Validate a CloudEvents JSON document (a webhook body) into its event model."""
    try:
        ce = JSONFormat().read(CloudEvent, body)
    except Exception as exc:  # malformed JSON or attributes
        raise EventRejected(f"not a CloudEvents JSON document ({type(exc).__name__})") from None
    attrs = ce.get_attributes()
    attrs.pop(ce_kafka.PARTITIONKEY_ATTR, None)
    return _event_from_attributes(attrs, ce.get_data())
