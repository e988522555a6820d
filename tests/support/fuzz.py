"""Schemathesis over a served API: every operation of its OpenAPI, with generated requests
(valid by the schema, and not), sent over HTTP with a real credential; every answer checked.

A request valid by the schema must be accepted (``positive_data_acceptance``): answered 2xx,
or 404/409 for the state of the records (an id nobody holds, a case that has moved on). The
only other refusal allowed is a 422 whose every error is a rule no schema can state, each
listed below in ``BEYOND_THE_SCHEMA`` with why; anything else the service refuses, its
schema must say.

A request invalid by its schema must be refused (``negative_data_rejection``): answered one
of ``REFUSED``, and a 422 naming the field. Schemathesis itself lets pass what no schema can
refuse: an extra query parameter or header nobody declared (ignored, as HTTP APIs do), and a
"negated" value that serialises to a valid one (a query string carries text only).

Run in a thread (``asyncio.to_thread``): the requests are blocking, and the workers the
services call run on the test's event loop.
"""

from __future__ import annotations

import json
import re
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.config import PositiveDataAcceptanceConfig

# Not re-exported by schemathesis.config (4.x), unlike PositiveDataAcceptanceConfig.
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

# What a request valid by its schema may be answered: done, or refused for the state of the
# records only: 404, an id no record has (generated ids; the callers are chosen so that a
# real record is one they may see, and one they may not is a 404 too); 409, a conflict with
# the record's state (a case that has ended, an item decided, a subscription deleted).
# Schemathesis's default also lets 401, 403, 429 and 5xx pass: here each operation is called
# with a credential of a role that may call it, no test throttles, and 5xx never passes.
ACCEPTED = ["2xx", "404", "409"]

# What a request invalid by its schema may be answered: refused, before anything is done.
# 422 naming the field (the edge's answer to bad input of any kind: a field, a parameter, a
# header, the body's type, size or encoding); 401 or 403, the credential refused before the
# input is read; 404, a path that names no record (a path parameter that is no id) or a
# record the caller may not see; 405, a method the path does not have. Schemathesis's
# default also lets 400, 406, 409, 415, 428, 429 and 5xx pass: the edge answers none of them
# to bad input (ADR 0019: bad input is 422), and a 409 would mean the input was accepted as
# far as the record's state.
REFUSED = ["401", "403", "404", "405", "422"]


@dataclass(frozen=True)
class Beyond:
    """A refusal (422) of a request valid by its schema, for a rule JSON Schema cannot state:
    the error's ``field`` and ``reason`` (regular expressions, matched whole), and why."""

    field: str
    reason: str
    why: str

    def matches(self, error: Mapping[str, Any]) -> bool:
        return bool(
            re.fullmatch(self.field, str(error.get("field")))
            and re.fullmatch(self.reason, str(error.get("reason")), re.DOTALL)
        )


_STATE = "the records held: a schema describes one request, never the records it meets"
_CLOCK = "today's date: a schema is fixed text, and would be wrong tomorrow"
BEYOND_THE_SCHEMA = (
    # The records held.
    Beyond("body", r"the case is at stage '.*", f"the case's stage: {_STATE}"),
    Beyond("body", r"the case is closed already .*", f"the case's stage: {_STATE}"),
    Beyond("body", r"a Return Home Interview follows the child's return.*", _STATE),
    Beyond("body", r"returned_at is before the child was reported missing", _STATE),
    Beyond("body", r"the level '.*' is below the suggested '.*", f"the triage's level: {_STATE}"),
    Beyond("body", r"the level changes from .*", f"the case's level: {_STATE}"),
    Beyond("body", r"(actions: .*|open actions not accounted for.*)", f"the plan: {_STATE}"),
    Beyond("meeting_id", r"(no meeting|this is meeting) .*", f"the meeting: {_STATE}"),
    Beyond(r"actions\.\d+\.owner_agency_id", r"no agency .*", f"the directory: {_STATE}"),
    Beyond(
        r"actions\.\d+\.entity_id",
        r"(no person or location with this id that you may see|the entity is a \w+: .*)",
        f"the people and places of concern: {_STATE}",
    ),
    Beyond("kind", r"a \w+ meeting records '.*' decisions", f"the meeting's kind: {_STATE}"),
    Beyond("raise_lmaps", r"this is already an LMAPS meeting", f"the meeting's kind: {_STATE}"),
    # The clock.
    Beyond(r"[\w.]+", r".* is in the future", _CLOCK),
    Beyond(r"[\w.]+", r".* within 365 days.*: check the year", _CLOCK),
    Beyond(r"[\w.]*due_at", r".*the due date (has passed|must be in the future).*", _CLOCK),
    Beyond("held_at", r"a meeting called now cannot have been held before yesterday", _CLOCK),
    Beyond(r"child\.date_of_birth", r"the young person is \d+: MSET is for children .*", _CLOCK),
    # Other fields' values: JSON Schema compares a value with constants, never with another.
    Beyond(r"[\w.]+", r"reported_at is before the child's date of birth.*", "two values compared"),
    Beyond(r"[\w.]+", r"returned_at is before reported_at", "two values compared"),
    Beyond(
        "body",
        r"(each indicator code may appear once|actions: each action may be named once)",
        "uniqueness by one member of an item (uniqueItems compares whole items)",
    ),
    # Query parameters that go together, or exclude each other: OpenAPI has no dependencies
    # between parameters.
    Beyond(r"query\.(view|for_agency)", r"for_agency and view name the reader together", "ditto"),
    Beyond("query.agency", r"a child's reference is the referring agency's own.*", "ditto"),
    Beyond("query.authority", r"name one local authority .* or the region .*", "ditto"),
    # The partnership's authorities are each deployment's configuration; the contract's
    # models (and so the schema) are the same for every deployment.
    Beyond(
        r"[\w.]*(local_)?authority",
        r"no local authority '.*' in this partnership.*",
        "deployment configuration",
    ),
    # A check digit is arithmetic over the other digits (modulus 11): no pattern says it.
    Beyond(r"child\.nhs_number", r"the NHS number's check digit does not match.*", "a checksum"),
    # An opaque cursor is one the API made (signed): a schema can only say it is a string.
    Beyond("query.cursor", r"not a cursor this API made.*", "a token only the API mints"),
)


def _beyond_the_schema(response: Response) -> bool:
    if response.status_code != 422:
        return False
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all(
        any(b.matches(error) for b in BEYOND_THE_SCHEMA) for error in errors
    )


def valid_requests_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Schemathesis's ``positive_data_acceptance`` (answers in ``ACCEPTED``), but for the
    refusals no schema can state (``BEYOND_THE_SCHEMA``)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _beyond_the_schema(response):
            return None
        raise


class UnnamedField(AssertionError):
    """A request invalid by its schema refused with a 422 that names no field."""


def invalid_requests_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Schemathesis's ``negative_data_rejection`` (answers in ``REFUSED``), and a 422 names
    the field that is wrong, so that the partner can put it right."""
    negative_data_rejection(ctx, response, case)
    if (
        case.meta is not None
        and case.meta.generation.mode.is_negative
        and response.status_code == 422
        and not _names_a_field(response)
    ):
        raise UnnamedField("an invalid request was refused with a 422 naming no field")
    return None


def _names_a_field(response: Response) -> bool:
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all(isinstance(e, dict) and e.get("field") for e in errors)


# What every answer must be: not a 5xx; a status the operation documents; a body that
# matches the schema documented for that status; a request valid by the schema accepted; and
# one invalid by it refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    valid_requests_accepted,
    invalid_requests_refused,
]


@dataclass
class Fuzz:
    """How to fuzz one API: where it is, who calls each operation, which real ids to use
    beside generated ones, and how many requests per operation and mode."""

    base_url: str
    # The credential headers for an operation (its method and path template).
    credentials: Callable[[str, str], dict[str, str]]
    # Path parameters with a real record behind them (a referral, an episode, a meeting):
    # an operation with any of them is fuzzed again with them fixed, so its requests reach
    # past the 404 into the service's own checks.
    known: Mapping[str, Any] = field(default_factory=dict)
    max_examples: int = 20
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Operations (``"DELETE /v1/webhooks/{sub_id}"``) fuzzed after the rest: they end the
    # real record (close a meeting, delete a subscription) the others are fuzzed on.
    last: tuple[str, ...] = ()


@dataclass
class Outcome:
    # How often each operation answered each status (``"POST /v1/referrals 202"``).
    statuses: Counter[str] = field(default_factory=Counter)
    # A report of each (operation, mode) that failed a check, with its curl command.
    failures: list[str] = field(default_factory=list)


def run(fuzz: Fuzz) -> Outcome:
    """Fuzz every operation of the API's OpenAPI."""
    schema = schemathesis.openapi.from_url(f"{fuzz.base_url}/openapi.json")
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=ACCEPTED
    )
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=REFUSED
    )
    out = Outcome()
    operations: list[APIOperation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read is a failure
            out.failures.append(f"the OpenAPI cannot be read: {result.err()}")
        else:
            operations.append(result.ok())
    operations.sort(key=lambda op: _label(op) in fuzz.last)
    with requests.Session() as session:
        for operation in operations:
            headers = fuzz.credentials(operation.method.upper(), operation.path)
            for mode, strategy in _strategies(operation, fuzz):
                try:
                    _fuzz_one(fuzz, session, headers, operation, strategy, out)
                except Unsatisfiable:
                    continue  # nothing to make invalid: no parameters and no body
                except (Exception, BaseExceptionGroup) as exc:  # all collected, reported at once
                    out.failures.append(f"{_label(operation)} ({mode.value}): {_raised(exc)}")
    return out


def _fuzz_one(
    fuzz: Fuzz,
    session: requests.Session,
    headers: dict[str, str],
    operation: APIOperation,
    strategy: Any,
    out: Outcome,
) -> None:
    label = _label(operation)

    # A new connection per request: uvicorn closes a connection idle for 5 s, and a request
    # sent on it at that moment fails on the client's side (``RemoteDisconnected``), an
    # answer of the machine's timing and not of the service.
    headers = {**headers, "Connection": "close"}

    # Deterministic (a fixed seed per operation, no example database), no deadline (a loaded
    # machine), no shrinking: a failing case is reported as found, with the curl command
    # that reproduces it.
    @settings(
        max_examples=fuzz.max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Case) -> None:
        try:
            # Generous: a loaded machine's Temporal may take the referral API's whole start
            # time-out (30 s in these tests) before the API answers 503.
            response = case.call(
                base_url=fuzz.base_url, session=session, headers=headers, timeout=90
            )
        except requests.RequestException as exc:
            out.failures.append(f"{label}: no answer: {exc!r}\n  {case.as_curl_command()}")
            return
        out.statuses[f"{label} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:
            # Recorded as first seen, with the request and the answer, and not raised: a
            # replay by Hypothesis meets records the first request changed (a referral it
            # stored), so it would report only that the replay behaved differently.
            out.failures.append(_report(label, case, response, exc))

    one()


def _raised(exc: BaseException) -> str:
    """An exception the harness did not expect, with each part's last frames (Hypothesis
    wraps what the test raised in a group)."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return f"{exc}\n" + "\n".join("".join(traceback.format_exception(e, limit=-4)) for e in parts)


def _report(label: str, case: Case, response: Response, exc: BaseException) -> str:
    """What failed, the request that found it (as a curl command) and the answer."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    found = "; ".join(f"{type(e).__name__}: {e}" for e in parts)
    return (
        f"{label}: {found}\n  request: {case.as_curl_command()}\n"
        f"  answered {response.status_code}: {response.text[:2000]}"
    )


def _label(operation: APIOperation) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _strategies(operation: APIOperation, fuzz: Fuzz) -> list[tuple[GenerationMode, Any]]:
    """Each mode's requests with generated path parameters, then with the real ones."""
    names = {p.name for p in operation.path_parameters}
    real = {k: v for k, v in fuzz.known.items() if k in names}
    out = [(mode, operation.as_strategy(generation_mode=mode)) for mode in fuzz.modes]
    if real:
        out += [
            (mode, operation.as_strategy(generation_mode=mode, path_parameters=real))
            for mode in fuzz.modes
        ]
    return out
