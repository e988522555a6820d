"""The event catalogue: no field of any event can carry a child's details, and every event
survives the trip through CloudEvents and Kafka unchanged."""

from __future__ import annotations

import enum
import json
import re
import types
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import AwareDatetime, BaseModel, StringConstraints, TypeAdapter, ValidationError

from mset_contract import events as ev
from mset_contract.events import (
    EVENT_MODELS,
    EVENTS_BY_KEY,
    MsetEvent,
    PublishEvents,
    ReferralEscalated,
    catalogue,
    example_events,
    from_kafka,
    from_structured_json,
    to_kafka,
    to_structured_json,
)

# Names that say "personal data or prose". Matched against the field name's words.
SUSPECT_WORDS = {
    "name", "forename", "surname", "dob", "birth", "birthday", "address", "postcode",
    "street", "email", "phone", "description", "note", "notes", "rationale", "text",
    "comment", "comments", "reason", "summary", "narrative", "details", "free", "body",
    "message", "nhs", "alias", "aliases", "given", "family", "known",
}  # fmt: skip
# Values no string field of an event may accept: a name, an address, a sentence.
PERSONAL_SAMPLES = [
    "Jane Smith",
    "12 High Street, Northtown NT1 2AB",
    "She was seen with an older man at the bus station",
    "x" * 200,
    # The child's identity (ADR 0028): an NHS number as partners write it, and a postcode.
    # (Bare digits are not a sample: a version code such as catalogue_version rightly takes
    # digits; that no event carries the number is tested end to end, test_child_links.py.)
    "943 476 5919",
    "NT1 2AB",
]
SCALARS = (uuid.UUID, datetime, bool, int, type(None))


def _str_leaf_problems(where: str, metadata: list[Any]) -> list[str]:
    constraints = [m for m in metadata if isinstance(m, StringConstraints)]
    if not any(c.pattern for c in constraints):
        return [f"{where}: free text (a str with no pattern); use an enum, a UUID or a code"]
    adapter: TypeAdapter[str] = TypeAdapter(Annotated[str, *metadata])
    accepted = []
    for sample in PERSONAL_SAMPLES:
        try:
            adapter.validate_python(sample)
            accepted.append(sample)
        except ValidationError:
            pass
    return [f"{where}: accepts {s[:30]!r}" for s in accepted]


def _annotation_problems(where: str, tp: Any, metadata: list[Any], seen: set[type]) -> list[str]:
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        return _annotation_problems(where, inner, [*metadata, *extra], seen)
    if origin in (Union, types.UnionType):
        return [p for arg in get_args(tp) for p in _annotation_problems(where, arg, [], seen)]
    if origin is Literal:
        return []  # a fixed value chosen by the code, not by a user
    if origin in (list, tuple, set, frozenset):
        return [
            p for arg in get_args(tp) for p in _annotation_problems(f"{where}[]", arg, [], seen)
        ]
    if origin is not None:
        return [f"{where}: {tp} (dicts and other containers can hold anything)"]
    if tp is str:
        return _str_leaf_problems(where, metadata)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return []
    if tp is AwareDatetime or (isinstance(tp, type) and issubclass(tp, SCALARS)):
        if tp is date:  # unreachable (datetime is a date), kept for the reader
            return [f"{where}: a date"]
        return []
    if isinstance(tp, type) and issubclass(tp, date):
        return [f"{where}: a plain date (a date of birth?); events carry times, not dates"]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return model_problems(tp, where, seen)
    return [f"{where}: type {tp!r} is not one the catalogue allows"]


def _suspect_name(field: str) -> bool:
    words = set(re.split(r"[_\W]+", field.lower()))
    return bool(words & SUSPECT_WORDS)


def model_problems(
    model: type[BaseModel], prefix: str = "", seen: set[type] | None = None
) -> list[str]:
    """Every field of ``model`` (and the models inside it) that could hold personal data."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    problems: list[str] = []
    for name, info in model.model_fields.items():
        where = f"{prefix or model.__name__}.{name}"
        type_problems = _annotation_problems(where, info.annotation, list(info.metadata), seen)
        problems += type_problems
        carries_text = "str" in repr(info.annotation) or any(
            isinstance(m, StringConstraints) for m in info.metadata
        )
        if _suspect_name(name) and (carries_text or type_problems):
            problems.append(f"{where}: the name suggests personal data or free text")
    return problems


@pytest.mark.parametrize("model", EVENT_MODELS, ids=lambda m: m.__name__)
def test_no_event_field_can_hold_a_name_a_birth_date_an_address_or_free_text(
    model: type[MsetEvent],
) -> None:
    assert model_problems(model) == []


def test_the_pii_check_fails_on_a_free_text_field() -> None:
    # A check that cannot fail proves nothing: these are the mistakes it must catch.
    class WithNote(MsetEvent):
        type: Literal["mset.test.noted"] = "mset.test.noted"
        version: Literal[1] = 1
        note: str

    class WithLooseRef(MsetEvent):
        type: Literal["mset.test.loose"] = "mset.test.loose"
        version: Literal[1] = 1
        child_ref: Annotated[str, StringConstraints(max_length=200, pattern=r"^.*$")]
        born: date
        extra: dict[str, str]

    assert any("note" in p for p in model_problems(WithNote))
    loose = model_problems(WithLooseRef)
    assert any("child_ref: accepts 'Jane Smith'" in p for p in loose)
    assert any("born: a plain date" in p for p in loose)
    assert any("extra" in p for p in loose)


def test_every_event_class_is_in_the_catalogue() -> None:
    def subclasses(cls: type) -> set[type]:
        out: set[type] = set()
        subs: list[type] = cls.__subclasses__()
        for sub in subs:
            out |= {sub} | subclasses(sub)
        return out

    concrete = {
        c
        for c in subclasses(MsetEvent)
        if c.__module__ == catalogue.__name__ and not c.__name__.startswith("_")
    }
    assert concrete == set(EVENT_MODELS)
    assert len(EVENTS_BY_KEY) == len(EVENT_MODELS)
    for model in EVENT_MODELS:
        t = model.model_fields["type"].default
        assert re.fullmatch(r"mset\.[a-z_]+\.[a-z_]+", t), t
        # Past tense: the catalogue names facts, not commands.
        assert t.rsplit(".", 1)[1].endswith(("ed", "_soon", "overdue")), t


def test_every_example_event_round_trips_through_kafka_and_json() -> None:
    examples = example_events()
    assert {type(e) for e in examples} == set(EVENT_MODELS)
    for event in examples:
        msg = to_kafka(event)
        assert msg.key == str(event.subject).encode()
        headers = dict(msg.headers)
        assert headers["ce_id"] == str(event.id).encode()
        assert headers["ce_type"] == event.type.encode()
        assert headers["ce_subject"] == str(event.subject).encode()
        assert headers["ce_specversion"] == b"1.0"
        assert headers["content-type"] == b"application/json"
        assert headers["ce_dataschema"] == f"urn:mset:events:{event.type}:v1".encode()
        assert from_kafka(msg.headers, msg.key, msg.value) == event
        assert from_structured_json(to_structured_json(event)) == event


def test_the_publish_input_rebuilds_each_event_as_its_own_class() -> None:
    inp = PublishEvents(events=example_events())
    back = PublishEvents.model_validate_json(inp.model_dump_json())
    assert back == inp
    assert [type(e) for e in back.events] == [type(e) for e in inp.events]


def test_event_ids_are_deterministic_per_workflow_step() -> None:
    a = ev.event_id("referral-1", "escalated/high_risk/1")
    assert a == ev.event_id("referral-1", "escalated/high_risk/1")
    assert a != ev.event_id("referral-1", "escalated/high_risk/2")
    assert a != ev.event_id("referral-2", "escalated/high_risk/1")
    with pytest.raises(ValueError):
        ev.event_id("", "x")


def _escalation() -> ReferralEscalated:
    return ev.high_risk_escalation(uuid.uuid4(), uuid.uuid4(), "northshire", datetime.now(UTC))


def _rejected(headers: list[tuple[str, bytes]], key: bytes | None, value: bytes | None) -> str:
    with pytest.raises(ev.EventRejected) as info:
        from_kafka(headers, key, value)
    return info.value.reason


def test_malformed_messages_are_rejected_with_a_reason_that_does_not_repeat_the_data() -> None:
    event = _escalation()
    msg = to_kafka(event)
    good = msg.headers

    assert "no ce_ headers" in _rejected([], b"k", b"{}")
    assert "no message key" in _rejected(good, None, msg.value)
    assert "not a JSON object" in _rejected(good, msg.key, b"not json")
    other_key = _rejected(good, uuid.uuid4().bytes.hex().encode(), msg.value)
    assert "key is not the event's subject" in other_key

    unknown = [(k, b"mset.referral.vanished" if k == "ce_type" else v) for k, v in good]
    assert "disagree" in _rejected(unknown, msg.key, msg.value)
    unknown_schema = [
        (k, b"urn:mset:events:mset.referral.escalated:v9" if k == "ce_dataschema" else v)
        for k, v in good
    ]
    assert "no model for event type mset.referral.escalated v9" in _rejected(
        unknown_schema, msg.key, msg.value
    )

    # A producer bug puts a child's name where a code belongs: refused, and the reason
    # names the field without repeating the value.
    data = event.data()
    data["kind"] = "Jane Smith"
    data["child_name"] = "Jane Smith"
    reason = _rejected(good, msg.key, json.dumps(data).encode())
    assert "kind" in reason and "child_name" in reason
    assert "Jane" not in reason

    bad_time = [(k, b"yesterday" if k == "ce_time" else v) for k, v in good]
    assert "invalid CloudEvents attributes" in _rejected(bad_time, msg.key, msg.value)
    dup = [*good, ("ce_id", b"again")]
    assert "more than once" in _rejected(dup, msg.key, msg.value)
