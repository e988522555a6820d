"""The meeting API's documentation: every request model has an example, and the examples
are valid requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from mset_contract.meeting import (
    ActionCreate,
    AttendanceUpdate,
    Attendee,
    DecisionCreate,
    LmapsReferralCreate,
    MeetingCreate,
    MsetReviewCreate,
    PreMsetDecisionCreate,
)
from services.meeting.api import create_app
from services.meeting.settings import MeetingSettings

REQUEST_MODELS: list[type[BaseModel]] = [
    MeetingCreate,
    AttendanceUpdate,
    Attendee,
    PreMsetDecisionCreate,
    MsetReviewCreate,
    ActionCreate,
    LmapsReferralCreate,
]


def test_every_request_model_carries_a_valid_example() -> None:
    for model in REQUEST_MODELS:
        examples = model.model_json_schema().get("examples")
        assert examples, f"{model.__name__} has no example"
        for example in examples:
            model.model_validate(example)


def test_every_request_body_in_the_openapi_document_has_examples() -> None:
    doc = create_app(MeetingSettings()).openapi()
    bodies: list[tuple[str, dict[str, Any]]] = [
        (f"{method.upper()} {path}", op["requestBody"])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert {name for name, _ in bodies} == {
        "POST /v1/meetings",
        "PUT /v1/meetings/{meeting_id}/attendance",
        "POST /v1/meetings/{meeting_id}/items/{item_id}/decision",
    }
    decision = TypeAdapter(DecisionCreate)
    for name, body in bodies:
        examples = body["content"]["application/json"]["examples"]
        assert examples, name
        if name.endswith("/decision"):
            for ex in examples.values():
                decision.validate_python(ex["value"])
