"""Every service's OpenAPI says what its edge answers (mset_platform/edge.py): a 422 is the
ErrorBody the edge sends, never FastAPI's HTTPValidationError, on every operation that takes
input; every authenticated operation documents the 503 of an identity check that could not
be made. Schemathesis holds the running services to this (tests/integration/
test_openapi_fuzz.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_boundary_types import every_app

pytestmark = pytest.mark.unit
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.parametrize("name", ["referral", "triage", "meeting", "notifications"])
def test_every_422_is_the_error_body_the_edge_sends(name: str) -> None:
    schema = every_app()[name].openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "ErrorBody" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            responses: dict[str, Any] = op["responses"]
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in responses, (name, method, path)
            if "422" in responses:
                body = responses["422"]["content"]["application/json"]["schema"]
                assert body == ERROR_BODY, (name, method, path)
            if "401" in responses:
                assert "503" in responses, (name, method, path)
