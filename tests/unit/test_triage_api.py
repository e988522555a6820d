"""``POST /v1/evaluate`` and friends, in process, with a stand-in for the referral service's
introspection: who may call, and how bad input is answered (422 naming the field)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mset_contract.auth import Principal
from mset_contract.triage import TriageResult, triage_input_example
from mset_contract.vocab import AgencyType, Role
from mset_platform.settings import DEV_SERVICE_TOKEN
from services.triage.api import create_app
from services.triage.domain import SERVICE_PRINCIPAL, Triage
from services.triage.ruleset_config import packaged_rulesets_dir
from services.triage.settings import TriageSettings
from tests.support.net import free_port

pytestmark = pytest.mark.unit

AGENCY = uuid.UUID("0b7a3c52-9d0e-4f3b-8a61-5c2e1d9f4a70")
TOKEN = "test-service-token-" + uuid.uuid4().hex


def _settings(**changes: Any) -> TriageSettings:
    # Explicit, so whatever MSET_* variables the test run has cannot change the answer.
    return TriageSettings(environment="test", service_token=TOKEN, **changes)


def _user(role: Role) -> Principal:
    return Principal(
        kind="user",
        agency_id=AGENCY,
        agency_name="Northshire Children's Services",
        agency_type=AgencyType.local_authority,
        user_id=uuid.uuid4(),
        user_name=f"A {role.value}",
        role=role,
    )


PRINCIPALS: dict[str, Principal] = {
    "service": SERVICE_PRINCIPAL,
    "partner": Principal(
        kind="agency",
        agency_id=AGENCY,
        agency_name="Northshire Children's Services",
        agency_type=AgencyType.childrens_social_care,
    ),
    **{role.value: _user(role) for role in Role},
}


async def resolve(credential: str) -> Principal | None:
    return PRINCIPALS.get(credential)


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://triage")


@pytest.fixture(scope="module")
async def client(triage: Triage) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(create_app(_settings(), resolver=resolve, triage=triage)) as c:
        yield c


async def _post(client: httpx.AsyncClient, body: Any, who: str | None = "service") -> Any:
    headers = {"Authorization": f"Bearer {who}"} if who else {}
    return await client.post("/v1/evaluate", json=body, headers=headers)


async def test_health_needs_no_credential(client: httpx.AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})


async def test_evaluate_explains_itself(client: httpx.AsyncClient) -> None:
    resp = await _post(client, triage_input_example())
    assert resp.status_code == 200, resp.text
    result = TriageResult.model_validate(resp.json())
    assert (result.ruleset_version, result.score, result.level) == ("1", 9, "medium")
    assert result.recommendation == "consider_at_pre_mset"
    assert {e.kind for e in result.escalations} == {
        "repeat_missing",
        "missing_in_other_authority",
    }
    assert result.fired and all(f.reason for f in result.fired)


async def test_the_openapi_example_is_itself_a_valid_request(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/v1/evaluate"]["post"]["requestBody"]["content"]["application/json"]
    (example,) = body["examples"].values()
    assert (await _post(client, example["value"])).status_code == 200
    schema_examples = spec["components"]["schemas"]["TriageInput"]["examples"]
    assert (await _post(client, schema_examples[0])).status_code == 200


async def test_the_same_request_gives_the_same_answer(client: httpx.AsyncClient) -> None:
    first = await _post(client, triage_input_example())
    second = await _post(client, triage_input_example())
    assert first.content == second.content


@pytest.mark.parametrize("role", list(Role))
async def test_every_staff_role_may_evaluate(client: httpx.AsyncClient, role: Role) -> None:
    assert (await _post(client, triage_input_example(), who=role.value)).status_code == 200


async def test_partner_systems_may_not(client: httpx.AsyncClient) -> None:
    resp = await _post(client, triage_input_example(), who="partner")
    assert resp.status_code == 403
    assert "partner systems submit referrals" in resp.json()["detail"]


async def test_no_or_a_wrong_credential_is_401(client: httpx.AsyncClient) -> None:
    assert (await _post(client, triage_input_example(), who=None)).status_code == 401
    assert (await _post(client, triage_input_example(), who="nobody")).status_code == 401
    assert (await client.get("/v1/rulesets")).status_code == 401


async def test_rulesets_are_listed(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/rulesets", headers={"Authorization": "Bearer coordinator"})
    assert resp.status_code == 200
    (v1,) = resp.json()
    assert (v1["version"], v1["name"], v1["default"]) == ("1", "mset_triage_v1", True)
    assert v1["timers"]["rhi_deadline_hours"] == 72


def _with(**changes: Any) -> dict[str, Any]:
    body = triage_input_example()
    body.update(changes)
    return body


def _indicator(**changes: Any) -> dict[str, Any]:
    ind = {"code": "MIS-01", "area": "missing", "kind": "moderate", "recency": "current"}
    ind.update(changes)
    return ind


BAD_INPUT = [
    ("bad recency", _with(indicators=[_indicator(recency="lately")]), "indicators.0.recency"),
    ("no as_of", {k: v for k, v in triage_input_example().items() if k != "as_of"}, "as_of"),
    ("naive as_of", _with(as_of="2026-11-16T09:30:00"), "as_of"),
    ("age out of range", _with(age_years=-1), "age_years"),
    ("level unknown", _with(referrer_level="severe"), "referrer_level"),
    ("unknown field", _with(child_name="Jane"), "child_name"),
    ("unknown code", _with(indicators=[_indicator(code="XXX-01")]), "indicators"),
    ("kind not the catalogue's", _with(indicators=[_indicator(kind="significant")]), "indicators"),
    ("code twice", _with(indicators=[_indicator(), _indicator()]), "indicators"),
    ("authority code", _with(local_authority="North Shire"), "local_authority"),
    (
        "return before report",
        _with(
            missing_episodes=[
                {
                    "episode_ref": "E1",
                    "reported_at": "2026-11-10T10:00:00+00:00",
                    "returned_at": "2026-11-09T10:00:00+00:00",
                }
            ]
        ),
        "missing_episodes.0",
    ),
    (
        "action owner",
        _with(actions=[{"action_ref": "A1", "owner_agency_id": "x", "due_at": "2026-11-20Z"}]),
        "actions.0.owner_agency_id",
    ),
    (
        "episode twice",
        _with(missing_episodes=[triage_input_example()["missing_episodes"][0]] * 2),
        "missing_episodes",
    ),
    ("unknown rules version", _with(ruleset_version="9"), "ruleset_version"),
    # Date arithmetic on these overflowed into a 500 (issue 11, finding 7).
    ("as_of in year 1", _with(as_of="0001-01-01T00:00:00Z"), "as_of"),
    ("as_of at the end of time", _with(as_of="9999-12-31T23:59:59Z"), "as_of"),
    (
        "episode in year 1",
        _with(missing_episodes=[{"episode_ref": "E1", "reported_at": "0001-01-01T00:00:00Z"}]),
        "missing_episodes.0.reported_at",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT]
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    resp = await _post(client, body)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert field in [e["field"] for e in errors], errors
    assert all(e["reason"] for e in errors)
    assert field in resp.json()["detail"]


async def test_bodies_that_are_not_json_are_422(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer service", "Content-Type": "application/json"}
    resp = await client.post("/v1/evaluate", content=b"{not json", headers=headers)
    assert resp.status_code == 422
    resp = await client.post(
        "/v1/evaluate",
        content=b"as_of=now",
        headers={"Authorization": "Bearer service", "Content-Type": "text/plain"},
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "header.content-type"


async def test_a_body_over_the_limit_is_422(triage: Triage) -> None:
    app = create_app(_settings(max_body_bytes=2000), resolver=resolve, triage=triage)
    async with _client(app) as small:
        resp = await small.post(
            "/v1/evaluate",
            content=json.dumps(triage_input_example()).encode() + b" " * 2000,
            headers={"Authorization": "Bearer service", "Content-Type": "application/json"},
        )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body"


async def test_the_service_token_needs_no_referral_service(triage: Triage) -> None:
    # The referral service is not running: the service token is checked here; anything
    # else would have to be asked about, and the caller is told to retry.
    settings = _settings(referral_url=f"http://127.0.0.1:{free_port()}")
    app = create_app(settings, triage=triage)
    async with app.router.lifespan_context(app), _client(app) as client:
        assert (await _post(client, triage_input_example(), who=TOKEN)).status_code == 200
        resp = await _post(client, triage_input_example(), who="msetu_someone")
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"


def test_settings_refuse_the_development_token_elsewhere() -> None:
    with pytest.raises(ValueError, match="must be set to a secret"):
        TriageSettings(environment="production", service_token=DEV_SERVICE_TOKEN)
    assert TriageSettings(environment="production", service_token="s" * 32).port == 8001
