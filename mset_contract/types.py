"""Shared constrained types: one definition of what a valid value looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from temporalio import workflow

UK = ZoneInfo("Europe/London")

# A partner system's own reference (for a referral or a child): no spaces, bounded.
PartnerRef = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
    ),
]
# Local authority code, e.g. "northshire". The region's authorities are configuration.
LocalAuthorityCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9-]*$"
    ),
]
# The partnership's authorities when none are configured: the local stack's. The configured
# list is one setting every service reads the same way (``mset_platform.settings.
# AuthoritiesSettings``, ``MSET_AUTHORITIES``).
DEFAULT_AUTHORITIES: tuple[str, ...] = ("northshire", "eastmoor")

# --- text ------------------------------------------------------------------------------------
#
# Text people type is shown again on pages, in minutes (Markdown and PDF), in terminals and in
# partners' systems. A NUL byte ends a C string (and PostgreSQL refuses it); ESC starts an ANSI
# sequence that rewrites a terminal; other C0/C1 controls and DEL hide or reorder what is
# shown; an unpaired surrogate cannot be written as UTF-8 at all. None has a place in what a
# professional writes, so each is refused naming the character; newline, carriage return (a
# browser's line break is CR LF) and tab are kept. The same rule is in the OpenAPI schema as
# the field's ``pattern`` (``TEXT_PATTERN``: the characters allowed, at least one of them not
# white space, since surrounding white space is stripped and an empty text is refused).
#
# The pattern is written for every JSON Schema engine, not only Python's: partners' validators
# and schemathesis (Rust's regex, ECMA 262) read it. So it names no surrogate (those engines
# work on Unicode scalar values, where a surrogate is no character: a pattern naming one is
# unreadable to them, and schemathesis then ignored the whole pattern and generated control
# characters as "valid" text); a lone surrogate in a JSON string is not Unicode text (RFC 8259
# section 8.2), and the service refuses it all the same. And white space is spelled out rather
# than ``\s``, which means different characters in each engine: these are the characters
# stripping removes (Unicode White_Space), less the control characters refused anyway.

_REFUSED_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SPACES = r"\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^{_CONTROLS}]*[^{_CONTROLS}{_SPACES}][^{_CONTROLS}]*$"
# For a type whose own pattern narrows free text's (a person's name): its schema pattern
# refuses these too.
TEXT_CONTROLS, TEXT_SPACES = _CONTROLS, _SPACES


def refused_character(value: str) -> str | None:
    """The first character free text may not hold, described for the caller; or None."""
    m = _REFUSED_CHARS.search(value)
    if m is None:
        return None
    code = ord(m.group())
    name = {0: "NUL", 0x1B: "ESC (an ANSI escape sequence)", 0x7F: "DEL", 0x9B: "CSI"}.get(
        code, "a control character" if code < 0xD800 else "an unpaired surrogate"
    )
    return f"U+{code:04X} {name} at position {m.start()}"


def at_the_boundary(info: ValidationInfo) -> bool:
    """Whether a value is being accepted now, rather than read back: a stored record
    (``context={"stored": True}``) or a workflow's history holds values accepted under the
    rules of their day, and reading them back must not fail (a workflow that cannot decode
    its own history is stuck)."""
    if info.context and info.context.get("stored"):
        return False
    return not workflow.in_workflow()


def _printable(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str) and at_the_boundary(info):
        bad = refused_character(value)
        if bad is not None:
            raise ValueError(
                f"must not contain control characters: found {bad} (newline, carriage "
                "return and tab are allowed)"
            )
    return value


@dataclass(frozen=True)
class _SchemaPattern:
    """Puts the rule ``_printable`` enforces into the field's JSON schema."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


class SchemaRules:
    """Adds JSON Schema keywords to a type's schema (``Annotated[T, SchemaRules(...)]``): a rule
    the validators enforce that the generated schema would not otherwise say."""

    def __init__(self, **rules: Any) -> None:
        self.rules = rules

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.rules)
        return schema


def required_when(field: str, value: Any, *required: str) -> dict[str, Any]:
    """JSON Schema's ``if``/``then``: when ``field`` is ``value`` (``None``: when it is given
    and not null), the ``required`` fields must be given, and not null."""
    cond = {"const": value} if value is not None else {"not": {"type": "null"}}
    return {
        "if": {"properties": {field: cond}, "required": [field]},
        "then": {
            "properties": {name: {"not": {"type": "null"}} for name in required},
            "required": list(required),
        },
    }


ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    # After the constraints in this list, so it runs first, on the text as sent.
    BeforeValidator(_printable),
    _SchemaPattern(TEXT_PATTERN),
]
# Free text written by professionals. Kept only in the owning service's database: free text
# never goes into events, logs, metrics or search attributes.
FreeText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    # After the constraints in this list, so it runs first, on the text as sent.
    BeforeValidator(_printable),
    _SchemaPattern(TEXT_PATTERN),
]

# An id a caller gives a command of its own (a decision's or a review's id): letters, digits
# and . _ / - only, so it is safe in a log line, a workflow id and a URL.
_CLIENT_REF = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"


def _client_ref(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str) and at_the_boundary(info) and not re.match(_CLIENT_REF, value):
        raise ValueError("must start with a letter or digit; letters, digits and . _ / - only")
    return value


ClientRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    BeforeValidator(_client_ref),
    _SchemaPattern(_CLIENT_REF),
]

# --- booleans and counts ---------------------------------------------------------------------
#
# JSON has true and false: 0, 1, "yes" or "true" sent for a yes/no question is a partner's bug
# that lax parsing would record as an answer. Counts are JSON integers, never true or "14".
# ``14.0`` is the integer 14 to JSON Schema (a number whose fraction is zero), and many JSON
# writers (JavaScript's among them) cannot tell the two apart, so it is taken as 14: the
# schema's ``type: integer`` is then the whole rule. ``14.5`` is still refused.
Flag = Annotated[bool, Strict()]


def whole_number(value: Any) -> Any:
    """``14.0`` as 14 (``BeforeValidator`` of a strict int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Bounds go beside it on a model field (``Field(ge=1)``). Inside a union (``Count | None``)
# pydantic would write them into the schema as "ge"/"le", which JSON Schema does not know: there
# spell the type out with its bounds before the validator (``Annotated[int, Strict(),
# Field(ge=0), BeforeValidator(whole_number)] | None``).
Count = Annotated[int, Strict(), BeforeValidator(whole_number)]
# A plan action's id, as the case workflow mints it.
ActionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]

# Every moment the services record or compute with is in this span: far enough back for any
# child's history, far enough ahead for any deadline. Outside it, date arithmetic overflows
# (year 1 minus a window), so the edge refuses it as the field's error instead of a 500. The
# year is judged as written (``2199-12-31T23:59:00-05:00`` is in the span, though it is 2200
# in UTC): a rule a JSON Schema can state, as the ``pattern`` below beside ``format``, and a
# day either side of the span overflows nothing.
EARLIEST = datetime(1900, 1, 1, tzinfo=UK)
LATEST = datetime(2200, 1, 1, tzinfo=UK)
# The span in the OpenAPI schema: an ISO 8601 date or moment starts with its year.
YEAR_PATTERN = r"^(19[0-9]{2}|2[01][0-9]{2})-"


_SPAN = f"between {EARLIEST.year} and {LATEST.year - 1}"


def _in_span(value: datetime | date) -> Any:
    if not EARLIEST.year <= value.year < LATEST.year:
        raise ValueError(f"must be {_SPAN}")
    return value


_ISO_TEXT = re.compile(r"[0-9]{4}-")


def _text_only(value: Any) -> Any:
    # A number is not a date: lax parsing reads 0 as 1970-01-01 (seconds since the epoch),
    # and in a query string, where every value is text, "2041474" as well. An ISO 8601 date
    # starts with its four-digit year (the schema's pattern says which years).
    if isinstance(value, int | float) or (
        isinstance(value, str) and _ISO_TEXT.match(value) is None
    ):
        raise ValueError(
            "must be an ISO 8601 string (e.g. 2026-11-13T21:05:00+00:00 or 2026-11-13), "
            "not a number"
        )
    return value


# A timezone-aware moment within the span above, sent as an ISO 8601 string.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_text_only),
    AfterValidator(_in_span),
    _SchemaPattern(YEAR_PATTERN),
]
# How far ahead of our clock a partner's clock may be: a moment that has happened ("reported
# at", "returned at") is refused only beyond it.
CLOCK_SKEW = timedelta(minutes=5)


def not_in_future(value: datetime, field: str, info: ValidationInfo | None = None) -> datetime:
    """``value``, a moment that has happened; refused when it is in the future."""
    if info is not None and info.context and info.context.get("stored"):
        return value
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError(f"{field} is in the future")
    return value


# The furthest ahead a meeting is held or an action falls due: a date years away is a typing
# error (2199 for 2026), refused naming the field.
MAX_AHEAD = timedelta(days=365)


def check_within_a_year(value: datetime, what: str, now: datetime | None = None) -> datetime:
    """``value`` no more than ``MAX_AHEAD`` from now (``what`` says what it is)."""
    if value > (now or datetime.now(UTC)) + MAX_AHEAD:
        raise ValueError(f"{what} within {MAX_AHEAD.days} days: check the year")
    return value


def _utc_if_naive(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# A moment in a query string (``?until=2026-11-01T00:00:00Z``), within the span; one without a
# zone is read as UTC, as the reports have always read it.
QueryInstant = Annotated[
    datetime,
    BeforeValidator(_text_only),
    AfterValidator(_utc_if_naive),
    AfterValidator(_in_span),
    _SchemaPattern(YEAR_PATTERN),
]
# A calendar date within the span, sent as an ISO 8601 string (YYYY-MM-DD).
Day = Annotated[
    date, BeforeValidator(_text_only), AfterValidator(_in_span), _SchemaPattern(YEAR_PATTERN)
]

IndicatorCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)
]


def today_uk(now: datetime | None = None) -> date:
    """Today's date in England, where every MSET partnership works."""
    return (now or datetime.now(UK)).astimezone(UK).date()


def birthday(date_of_birth: date, years: int) -> date:
    """The date a child turns ``years`` old (29 February birthdays fall on 1 March)."""
    try:
        return date_of_birth.replace(year=date_of_birth.year + years)
    except ValueError:
        return date(date_of_birth.year + years, 3, 1)


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years of age on ``on`` (a child born 29 February turns a year older on 1 March)."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)


# --- what the rules may know of a date of birth ---------------------------------------------
#
# Workflow history keeps every triage input and result for as long as the case's history is
# kept, and several evaluations of one case sit side by side in it. A fact counted in days
# from the evaluation's moment ("turns 18 in 1200 days" beside ``as_of``) gives the date of
# birth away exactly; so would an age in years that changes on the birthday between two
# evaluations. The rules are therefore told only the calendar month in which the child turns
# 18, and an age that steps on the first of the month after the birthday: both are the same
# for every day of birth in one month, whatever moments the case is evaluated at
# (docs/decisions/0017-encrypted-workflow-payloads.md).


def month_of(d: date) -> date:
    """The first day of ``d``'s month."""
    return d.replace(day=1)


def months_between(start: date, end: date) -> int:
    """Whole calendar months from ``start``'s month to ``end``'s (negative when earlier)."""
    return (end.year - start.year) * 12 + end.month - start.month


def turns_18_month(date_of_birth: date) -> date:
    """The first day of the month in which a child turns 18."""
    return month_of(birthday(date_of_birth, 18))


def age_in_month(turns_18: date, on: date) -> int:
    """A child's age in whole years for the rules, from the month it turns 18: its age on
    the first of ``on``'s month as if born on the last day of its birth month. Never more
    than the real age and at most a month behind it, so a rule for children under an age
    keeps applying until the month after the birthday, never stops early."""
    return 17 - months_between(on, turns_18) // 12
