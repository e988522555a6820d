"""Log lines (issue 12, item 4): JSON in production with the service and the trace they were
written in, readable in development, and never a value under a personal-data key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from mset_platform.process import PERSONAL_DATA_KEYS, configure_logging

SERVICE = "mset-referral"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging sets the process's root logger and structlog: put both back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_a_production_line_is_json_with_the_service_and_the_trace_it_was_written_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("production", SERVICE)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /v1/referrals") as span:
        structlog.get_logger("mset.referral.intake").info("referral accepted", kind="new_case")
        logging.getLogger("mset.referral.intake").warning("case %s signalled", "c-1")
    ctx = span.get_span_context()
    got = lines(capsys.readouterr().err)
    assert [line["event"] for line in got] == ["referral accepted", "case c-1 signalled"]
    for line in got:
        assert line["service"] == SERVICE
        assert line["trace_id"] == f"{ctx.trace_id:032x}"
        assert line["span_id"] == f"{ctx.span_id:016x}"
        assert line["logger"] == "mset.referral.intake"
    assert got[0]["kind"] == "new_case" and got[1]["level"] == "warning"


def test_a_line_outside_any_span_has_no_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production", SERVICE)
    logging.getLogger("mset.edge").info("started")
    (line,) = lines(capsys.readouterr().err)
    assert line["service"] == SERVICE
    assert "trace_id" not in line and "span_id" not in line


def test_no_value_under_a_personal_data_key_is_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("production", SERVICE)
    personal = {key: f"secret {key} value" for key in PERSONAL_DATA_KEYS}
    structlog.get_logger("mset.test").info("careless", case_ref="ok-to-log", **personal)
    err = capsys.readouterr().err
    (line,) = lines(err)
    assert line["case_ref"] == "ok-to-log"
    assert "secret" not in err
    assert {line[key] for key in PERSONAL_DATA_KEYS} == {"[redacted]"}
    # The set covers the tool's personal and free-text fields.
    assert {"name", "date_of_birth", "address", "description", "rationale"} <= PERSONAL_DATA_KEYS
    # And the child's identity (ADR 0028): the tool's own field names.
    assert {"given", "family", "known_as", "aliases", "nhs_number", "postcode"} <= (
        PERSONAL_DATA_KEYS
    )


def test_development_lines_are_for_people_and_still_name_the_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("development", SERVICE)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("mset.edge").info("started")
    err = capsys.readouterr().err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])
    assert "started" in err
    assert f"{span.get_span_context().trace_id:032x}" in err
    assert SERVICE in err
