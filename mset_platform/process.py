"""How a service process starts: its logging, and refusing to start on bad configuration.

Logs are structlog's: one JSON object a line in production (for a log shipper), readable
lines in development (``make dev``) and test. The standard library's loggers (ours,
uvicorn's, Temporal's, kafka-python's) go through the same processors, so a process writes
one format. Every line carries the ``service`` and, when it was written inside a span, the
``trace_id`` and ``span_id`` (mset_platform.tracing), so a trace leads to its log lines and a
log line to its trace. A value under a key that names personal data (``PERSONAL_DATA_KEYS``)
is replaced before it is rendered: a log line is not where a child's details may go, even
when a caller passes them by mistake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import trace
from pydantic import ValidationError
from structlog.typing import EventDict, WrappedLogger

from mset_platform.settings import Environment

# Keys whose values are personal data wherever they appear in MSET's models (a child's or a
# person's details, and every free-text field): never rendered in a log line.
PERSONAL_DATA_KEYS = frozenset(
    {
        "name",
        "full_name",
        "first_name",
        "last_name",
        # The child's identity (ADR 0028).
        "given",
        "family",
        "given_name",
        "family_name",
        "known_as",
        "aliases",
        "nhs_number",
        "date_of_birth",
        "dob",
        "address",
        "postcode",
        "email",
        "phone",
        "child",
        "description",
        "rationale",
        "circumstances",
        "notes",
        "progress_note",
        "free_text",
        "area_of_residence",
        "persons_of_concern",
        "locations",
    }
)
REDACTED = "[redacted]"


def redact_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace the value of every top-level key in ``PERSONAL_DATA_KEYS``."""
    for key in PERSONAL_DATA_KEYS & event_dict.keys():
        event_dict[key] = REDACTED
    return event_dict


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The current span's trace and span ids (W3C hex), when a span is recording."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def configure_logging(environment: Environment, service: str, level: int = logging.INFO) -> None:
    """The process's logging, once, at start-up. ``service``: the name in every line (the
    same as the traces' ``service.name``, ``tracing.service_name``)."""

    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        add_trace_context,
        redact_personal_data,
    ]
    # Tracebacks without local variables: those hold children's details, which logs must not.
    renderer: Any
    if environment == "production":
        renderer = structlog.processors.JSONRenderer()
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python narrates every connection at INFO; its warnings are what matter.
    logging.getLogger("kafka").setLevel(logging.WARNING)


@contextmanager
def refusing_to_start(name: str, *errors: type[Exception]) -> Iterator[None]:
    """Settings that do not validate (or a service's own ``errors``, such as a bad rules
    file) stop the process with one line saying what is wrong, before it listens."""
    refused: tuple[type[Exception], ...] = (ValidationError, *errors)
    try:
        yield
    except refused as exc:
        sys.exit(f"{name}: cannot start: {exc}")
