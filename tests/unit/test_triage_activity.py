"""The Temporal activity ``triage.evaluate``: the same engine as the API, its payloads through
the pydantic data converter, and a non-retryable failure for an unknown rules version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from mset_contract.temporal import TRIAGE_EVALUATE_ACTIVITY
from mset_contract.triage import TriageInput, TriageResult, triage_input_example
from services.triage.activities import TriageActivities
from services.triage.domain import Triage
from services.triage.ruleset_config import packaged_rulesets_dir
from tests.support.codec import DATA_CONVERTER

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


def test_registered_under_the_contract_name() -> None:
    defn = activity._Definition.from_callable(TriageActivities.evaluate)
    assert defn is not None and defn.name == TRIAGE_EVALUATE_ACTIVITY == "triage.evaluate"


async def test_the_activity_gives_what_the_api_gives(triage: Triage) -> None:
    inp = TriageInput.model_validate(triage_input_example())
    result = await ActivityEnvironment().run(TriageActivities(triage).evaluate, inp)
    assert result == triage.evaluate(inp)
    assert result.ruleset_version == "1"


async def test_an_unknown_rules_version_is_not_retried(triage: Triage) -> None:
    inp = TriageInput.model_validate({**triage_input_example(), "ruleset_version": "9"})
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(TriageActivities(triage).evaluate, inp)
    assert err.value.non_retryable
    assert err.value.type == "UnknownRulesetVersion"


def test_input_and_result_survive_the_data_converter(triage: Triage) -> None:
    converter = DATA_CONVERTER.payload_converter
    inp = TriageInput.model_validate(triage_input_example())
    result = triage.evaluate(inp)
    (inp_payload, result_payload) = converter.to_payloads([inp, result])
    back_in, back_result = converter.from_payloads(
        [inp_payload, result_payload], [TriageInput, TriageResult]
    )
    assert back_in == inp
    assert back_result == result
