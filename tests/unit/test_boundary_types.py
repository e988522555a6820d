"""The shared boundary types (mset_contract/types.py) and the edge's body checks: what they
refuse, what they keep, and that the OpenAPI schema says the same as the validator."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError

from mset_contract.cases import MsetReviewCreate
from mset_contract.meeting import DecisionCreate, ItemDecisionCreate
from mset_contract.referral import MissingReportCreate
from mset_contract.types import Count, Day, Flag, FreeText, Instant, QueryInstant, ShortText
from mset_platform.edge import MAX_JSON_DEPTH, json_body_problem, json_depth
from services.meeting.api import create_app as meeting_app
from services.meeting.settings import MeetingSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referral.api import create_app as referral_app
from services.referral.settings import ReferralSettings
from services.triage.api import create_app as triage_app
from services.triage.settings import TriageSettings

pytestmark = pytest.mark.unit

TEXT = TypeAdapter(FreeText)
REFUSED_TEXT = [
    "a\x00b",  # NUL
    "\x1b[31mred",  # ANSI colour
    "\x1b]0;title\x07",  # OSC: sets a terminal's title
    "a\x9bb",  # 8-bit CSI
    "back\x08space",
    "del\x7f",
    "form\x0cfeed",
    "\ud800",  # unpaired surrogate: cannot be written as UTF-8
    "   ",  # nothing but white space
]
KEPT_TEXT = ["Left home.\nPhone off.", "a\tb", "line\r\nbreak", "Café — 10pm", "😀", "\ufeffa"]
# White space of other scripts and typography: stripped, so nothing but it is empty text.
BLANK_TEXT = ["\u3000", "\xa0 \u2003", "\u2028"]


@pytest.mark.parametrize("value", REFUSED_TEXT)
def test_free_text_refuses_control_characters(value: str) -> None:
    for adapter in (TEXT, TypeAdapter(ShortText)):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


@pytest.mark.parametrize("value", KEPT_TEXT)
def test_free_text_keeps_newlines_tabs_and_any_printable_character(value: str) -> None:
    assert TEXT.validate_python(value) == value.strip()


def test_the_schema_pattern_says_what_the_validator_does() -> None:
    pattern = re.compile(TEXT.json_schema()["pattern"])
    for value in REFUSED_TEXT + BLANK_TEXT:
        if not _is_surrogate(value):  # no character: see the next test
            assert not pattern.search(value), repr(value)
    for value in KEPT_TEXT:
        assert pattern.search(value), repr(value)
    for value in BLANK_TEXT:
        with pytest.raises(ValidationError):
            TEXT.validate_python(value)


def _is_surrogate(value: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def test_a_json_schema_engine_reads_the_text_rule_as_the_validator_does() -> None:
    # Partners' validators and schemathesis read the pattern with an ECMA 262 / Rust engine,
    # not Python's: one that could not read it (a surrogate range did that) ignores it, and
    # generated control characters as valid text. A lone surrogate is no Unicode character,
    # so no such engine can be given one; the validator refuses it all the same.
    schema = TEXT.json_schema()
    engine = jsonschema_rs.validator_for(schema)
    for value in REFUSED_TEXT + BLANK_TEXT:
        if not _is_surrogate(value):
            assert not engine.is_valid(value), repr(value)
    for value in KEPT_TEXT:
        assert engine.is_valid(value), repr(value)


def test_a_refusal_names_the_character() -> None:
    with pytest.raises(ValidationError, match=r"U\+001B ESC"):
        TEXT.validate_python("ok \x1b[2J")


def test_text_stored_before_the_rule_is_read_back() -> None:
    assert TEXT.validate_python("old\x07", context={"stored": True}) == "old\x07"


@pytest.mark.parametrize("value", [0, 1, "true", "yes", 0.0])
def test_a_flag_is_true_or_false_only(value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Flag).validate_python(value)


@pytest.mark.parametrize("value", [True, "14", 14.5, float("inf")])
def test_a_count_is_an_integer_only(value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Count).validate_python(value)


def test_a_count_written_with_a_zero_fraction_is_that_integer() -> None:
    # 14.0 is the integer 14 to JSON Schema, whose "type: integer" is the OpenAPI's rule.
    assert TypeAdapter(Count).validate_python(14.0) == 14
    assert jsonschema_rs.validator_for(TypeAdapter(Count).json_schema()).is_valid(14.0)


@pytest.mark.parametrize(
    "value",
    [
        0,
        1700000000,
        1.5,
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1899-12-31T00:00:00Z",
        "2026-11-13T21:05:00",  # no zone
    ],
)
def test_an_instant_is_an_aware_iso_string_in_the_span(value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(value)


def test_instants_and_days_in_the_span_are_kept() -> None:
    assert TypeAdapter(Instant).validate_python("2026-11-13T21:05:00+00:00").year == 2026
    assert TypeAdapter(Day).validate_python("2012-03-14").year == 2012
    naive = TypeAdapter(QueryInstant).validate_python("2026-01-01T00:00:00")
    assert naive.tzinfo is not None  # a query's moment without a zone is UTC
    for bad in ("0001-01-01", 0, "2200-01-01"):
        with pytest.raises(ValidationError):
            TypeAdapter(Day).validate_python(bad)
    with pytest.raises(ValidationError):
        TypeAdapter(QueryInstant).validate_python("0001-01-01T00:00:00Z")


def test_the_span_is_the_year_as_written_and_the_schema_says_so() -> None:
    for adapter, earliest, latest, before, after in (
        (
            TypeAdapter(Instant),
            "1900-01-01T00:00:00+05:00",  # 1899 in UTC, 1900 as written
            "2199-12-31T23:59:59-05:00",
            "1899-12-31T23:59:59-05:00",
            "2200-01-01T00:00:00+05:00",
        ),
        (TypeAdapter(Day), "1900-01-01", "2199-12-31", "1899-12-31", "2200-01-01"),
    ):
        engine = jsonschema_rs.validator_for(adapter.json_schema())
        for kept in (earliest, latest):
            adapter.validate_python(kept)
            assert engine.is_valid(kept), kept
        for refused in (before, after):
            with pytest.raises(ValidationError, match="between 1900 and 2199"):
                adapter.validate_python(refused)
            assert not engine.is_valid(refused), refused


def test_the_schema_requires_what_the_routes_require() -> None:
    # The meeting API tells a decision's kind by "kind", so it needs one.
    union = TypeAdapter(DecisionCreate).json_schema()
    assert union["required"] == ["kind"]
    # Where the meeting names the decision, those fields are null or absent.
    item = TypeAdapter(ItemDecisionCreate).json_schema()
    assert item["properties"]["meeting_id"] == {"type": "null"}
    # The referral API names a review by the caller's review_id.
    assert "review_id" in MsetReviewCreate.model_json_schema()["required"]
    with pytest.raises(ValidationError, match="review_id"):
        MsetReviewCreate.model_validate({"level": "high"})


def test_a_missing_report_is_refused_before_the_childs_birth() -> None:
    body = MissingReportCreate.model_json_schema()["examples"][0]
    with pytest.raises(ValidationError, match="before the child's date of birth"):
        MissingReportCreate.model_validate({**body, "reported_at": "2011-01-01T00:00:00Z"})
    with pytest.raises(ValidationError, match="not a number"):
        MissingReportCreate.model_validate({**body, "reported_at": 0})


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[{{{", "b": [1, {"c": "\\"]"}]}') == 3
    assert json_body_problem(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert json_body_problem(b'{"a": "caf\xe9"}') is not None  # latin-1, not UTF-8
    assert json_body_problem('{"a": "café"}'.encode()) is None


def every_app() -> dict[str, FastAPI]:
    return {
        "referral": referral_app(ReferralSettings()),
        "triage": triage_app(TriageSettings()),
        "meeting": meeting_app(MeetingSettings()),
        "notifications": notifications_app(NotificationsSettings()),
    }


def _keywords(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        out = set(schema)
        for key, value in schema.items():
            if key not in ("properties", "examples", "example", "default", "$defs", "schemas"):
                out |= _keywords(value)
            elif key in ("properties", "$defs", "schemas"):
                for sub in value.values():
                    out |= _keywords(sub)
        return out
    if isinstance(schema, list):
        return set().union(*(_keywords(v) for v in schema))
    return set()


@pytest.mark.parametrize("name", ["referral", "triage", "meeting", "notifications"])
def test_every_openapi_states_bounds_as_json_schema(name: str) -> None:
    # Pydantic writes a bound beside a union as "ge"/"le", which JSON Schema does not know:
    # no client or test would see the bound.
    doc = every_app()[name].openapi()
    assert not _keywords(doc["components"]) & {"ge", "le", "gt", "lt"}, name


@pytest.mark.parametrize("name", ["referral", "triage", "meeting", "notifications"])
async def test_options_names_every_method_of_every_documented_path(name: str) -> None:
    app = every_app()[name]
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for template, operations in paths.items():
            documented = {m.upper() for m in operations}
            path = re.sub(r"\{[^}]+\}", "x1", template)
            resp = await http.options(path)
            assert resp.status_code == 204, (name, template, resp.text)
            allowed = {m.strip() for m in resp.headers["allow"].split(",")}
            expected = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
            assert allowed == expected, (name, template)
            # A method the path does not take is 405, naming them all as well.
            other = "PATCH" if "PATCH" not in documented else "PUT"
            refused = await http.request(other, path)
            assert refused.status_code == 405, (name, template)
            assert {m.strip() for m in refused.headers["allow"].split(",")} == expected
