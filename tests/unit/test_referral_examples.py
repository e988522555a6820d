"""The referral API's examples are what they say: each named example, triaged by the shipped
rules, gets the level in its name; and the catalogue answers only for versions that exist."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from mset_contract.catalogue import available_versions
from mset_contract.referral import ReferralCreate, referral_example, referral_examples
from mset_contract.triage import TriageInput
from mset_contract.types import age_in_month, today_uk, turns_18_month
from mset_contract.vocab import RiskLevel
from services.referral.api import create_app
from services.referral.settings import ReferralSettings
from services.triage.domain import Triage
from services.triage.ruleset_config import packaged_rulesets_dir


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


def triage_input(tool: ReferralCreate) -> TriageInput:
    # What the referral service tells the rules about a tool (services/referral/activities.py).
    on = today_uk()
    turns_18 = turns_18_month(tool.child.date_of_birth)
    return TriageInput(
        as_of=datetime.now(UTC),
        catalogue_version=tool.catalogue_version,
        local_authority=tool.child.local_authority,
        age_years=age_in_month(turns_18, on),
        turns_18_month=turns_18,
        referrer_level=tool.referrer_judgement.level,
        referrer_rationale_given=bool(tool.referrer_judgement.rationale.strip()),
        indicators=tool.resolved_indicators(),
        exploitation_types=tool.exploitation_types,
    )


def openapi_examples() -> dict[str, dict[str, object]]:
    doc = create_app(ReferralSettings()).openapi()
    body = doc["paths"]["/v1/referrals"]["post"]["requestBody"]["content"]["application/json"]
    return {name: ex["value"] for name, ex in body["examples"].items()}


def test_the_documented_examples_are_the_contracts_and_the_first_is_the_example() -> None:
    examples = openapi_examples()
    assert examples == referral_examples()
    assert next(iter(examples.values())) == referral_example()
    assert {name.removesuffix(" risk") for name in examples} == {lvl.value for lvl in RiskLevel}


@pytest.mark.parametrize("name", list(referral_examples()))
def test_each_example_triages_as_its_name_says(triage: Triage, name: str) -> None:
    tool = ReferralCreate.model_validate(openapi_examples()[name])
    result = triage.evaluate(triage_input(tool))
    expected = RiskLevel(name.removesuffix(" risk"))
    assert result.suggested_level == expected, [f.reason for f in result.fired]
    # The referrer's own judgement in the example agrees with its name too.
    assert tool.referrer_judgement.level == expected


async def test_the_catalogue_answers_for_known_versions_and_404_names_them() -> None:
    app = create_app(ReferralSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://referral") as http:
        current = await http.get("/v1/catalogue")
        assert current.status_code == 200
        for version in available_versions():
            resp = await http.get("/v1/catalogue", params={"version": version})
            assert resp.status_code == 200 and resp.json()["version"] == version
        unknown = await http.get("/v1/catalogue", params={"version": "2"})
        assert unknown.status_code == 404
        detail = unknown.json()["detail"]
        assert "'2'" in detail
        assert all(v in detail for v in available_versions())
