"""Properties of every evaluation, over generated cases: the same input gives the same answer,
a new current significant indicator never lowers the level, and thousands of evaluations in
one process never exhaust the rules engine's session table."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mset_contract.catalogue import load_catalogue
from mset_contract.triage import ActionFact, MissingEpisodeFact, TriageInput
from mset_contract.vocab import IndicatorKind, Recency, RiskLevel
from services.triage.domain import Triage
from services.triage.examples import AS_OF, OWNER, distinct_inputs, indicator, months_after
from services.triage.ruleset_config import packaged_rulesets_dir

pytestmark = pytest.mark.unit

CATALOGUE = load_catalogue("1")
CODES = [i.code for i in CATALOGUE.indicator]
SIGNIFICANT = [i.code for i in CATALOGUE.indicator if i.kind is IndicatorKind.significant]


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    """One engine for the module, as in a running service."""
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


hours = st.integers(min_value=0, max_value=24 * 150)


@st.composite
def episodes(draw: st.DrawFn, n: int) -> MissingEpisodeFact:
    reported = draw(hours)
    returned = draw(st.none() | st.integers(min_value=0, max_value=reported))
    offered = None
    if returned is not None:
        offered = draw(st.none() | st.integers(min_value=0, max_value=returned))
    return MissingEpisodeFact(
        episode_ref=f"E{n}",
        reported_at=AS_OF - timedelta(hours=reported),
        returned_at=None if returned is None else AS_OF - timedelta(hours=returned),
        rhi_offered_at=None if offered is None else AS_OF - timedelta(hours=offered),
        located_in_authority=draw(st.sampled_from([None, "northshire", "eastmoor"])),
    )


@st.composite
def triage_inputs(draw: st.DrawFn) -> TriageInput:
    codes = draw(st.lists(st.sampled_from(CODES), unique=True, max_size=14))
    age = draw(st.integers(min_value=8, max_value=18))
    n_episodes = draw(st.integers(min_value=0, max_value=5))
    n_actions = draw(st.integers(min_value=0, max_value=3))
    return TriageInput(
        as_of=AS_OF,
        local_authority="northshire",
        age_years=age,
        turns_18_month=months_after(AS_OF, draw(st.integers(-2, (18 - age) * 12 + 1))),
        referrer_level=draw(st.sampled_from(list(RiskLevel))),
        referrer_rationale_given=draw(st.booleans()),
        indicators=[indicator(c, draw(st.sampled_from(list(Recency)))) for c in codes],
        missing_episodes=[draw(episodes(n)) for n in range(n_episodes)],
        actions=[
            ActionFact(
                action_ref=f"A{n}",
                owner_agency_id=OWNER,
                due_at=AS_OF + timedelta(hours=draw(st.integers(-200, 200))),
                completed=draw(st.booleans()),
            )
            for n in range(n_actions)
        ],
        last_assessed_at=draw(st.none() | hours.map(lambda h: AS_OF - timedelta(hours=h))),
    )


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(inp=triage_inputs())
def test_the_same_input_gives_the_same_result(triage: Triage, inp: TriageInput) -> None:
    first = triage.evaluate(inp)
    # Another evaluation in between must leave nothing behind in the engine.
    triage.evaluate(next(distinct_inputs(1, seed=7)))
    again = triage.evaluate(TriageInput.model_validate_json(inp.model_dump_json()))
    assert again.model_dump_json() == first.model_dump_json()


@FAST
@given(inp=triage_inputs(), rnd=st.randoms(use_true_random=False))
def test_the_order_of_facts_does_not_matter(
    triage: Triage, inp: TriageInput, rnd: random.Random
) -> None:
    shuffled = inp.model_copy(
        update={
            "indicators": rnd.sample(inp.indicators, len(inp.indicators)),
            "missing_episodes": rnd.sample(inp.missing_episodes, len(inp.missing_episodes)),
            "actions": rnd.sample(inp.actions, len(inp.actions)),
        }
    )
    assert triage.evaluate(shuffled) == triage.evaluate(inp)


@FAST
@given(inp=triage_inputs(), code=st.sampled_from(SIGNIFICANT))
def test_a_current_significant_indicator_never_lowers_the_level(
    triage: Triage, inp: TriageInput, code: str
) -> None:
    before = triage.evaluate(inp)
    others = [i for i in inp.indicators if i.code != code]
    more = inp.model_copy(update={"indicators": [*others, indicator(code, Recency.current)]})
    after = triage.evaluate(more)
    assert after.suggested_level.rank >= before.suggested_level.rank
    assert after.level.rank >= before.level.rank
    assert after.score >= before.score  # a present code at an older recency scored less


@FAST
@given(inp=triage_inputs())
def test_every_result_is_complete_and_explained(triage: Triage, inp: TriageInput) -> None:
    result = triage.evaluate(inp)
    rules = [f.rule for f in result.fired]
    assert sum(r.startswith("band.") for r in rules) == 1
    assert sum(r.startswith("suggest.") for r in rules) == 1
    assert sum(r.startswith("judgement.") for r in rules) == 1
    assert sum(r.startswith("recommend.") for r in rules) == 1
    assert sum(f.points or 0 for f in result.fired) == result.score
    assert result.level.rank == max(result.suggested_level.rank, result.referrer_level.rank)
    assert all(f.reason for f in result.fired)
    for esc in result.escalations:
        assert esc.rule in rules and esc.notify and esc.reason


def test_five_thousand_distinct_evaluations_in_one_process() -> None:
    """The engine's table holds 1024 sessions; each evaluation's session is deleted, so it
    never fills, however many evaluations one process makes."""
    triage = Triage.from_directory(packaged_rulesets_dir(), "1")
    try:
        seen: set[str] = set()
        levels: set[RiskLevel] = set()
        for inp in distinct_inputs(5000, seed=11):
            key = inp.model_dump_json()
            assert key not in seen
            seen.add(key)
            levels.add(triage.evaluate(inp).level)
        assert len(seen) == 5000
        assert levels == set(RiskLevel)
        assert triage.host.sessions_opened == triage.host.sessions_deleted == 5000
    finally:
        triage.close()
